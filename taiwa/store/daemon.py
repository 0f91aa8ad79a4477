"""The daemon's lock, jobs and queues; follow-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from .common import (parse_iso)


class DaemonMixin:
    # ---------------------------------------------------------------- the daemon: lock, jobs, queues
    def acquire_lock(self, pid: int, host: str, *, stale_after: dt.timedelta,
                     now: dt.datetime | None = None) -> dict[str, Any] | None:
        """Take the one-daemon lock. Returns the holder's row when someone else holds a live lock, else None.

        A lock is taken over when its heartbeat is older than `stale_after`, or when its pid is dead on this
        host (a daemon killed with -9 leaves its row behind)."""
        import os

        now = now or self.clock()
        with self.atomic():
            row = self._one("SELECT * FROM daemon_lock WHERE id = 1")
            if row and row["pid"] != pid:
                fresh = parse_iso(row["heartbeat_at"]) > now - stale_after
                alive = True
                if row["host"] == host:
                    try:
                        os.kill(row["pid"], 0)
                    except ProcessLookupError:
                        alive = False
                    except PermissionError:
                        alive = True
                if fresh and alive:
                    return row
                self._audit("taiwa", None, "lock_taken_over", f"pid {row['pid']}@{row['host']}",
                            f"pid {pid}@{host}", "stale heartbeat" if not fresh else "holder is not running")
            self._x(
                """INSERT INTO daemon_lock (id, pid, host, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
                       started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at""",
                [pid, host, self.stamp(now), self.stamp(now)])
        return None

    def heartbeat(self, pid: int, now: dt.datetime | None = None) -> bool:
        """Refresh our lock; False when another daemon has taken it (we must stop)."""
        cur = self._x("UPDATE daemon_lock SET heartbeat_at = ? WHERE id = 1 AND pid = ?", [self.stamp(now), pid])
        return cur.rowcount == 1

    def release_lock(self, pid: int) -> None:
        self._x("DELETE FROM daemon_lock WHERE id = 1 AND pid = ?", [pid])

    def lock_holder(self) -> dict[str, Any] | None:
        return self._one("SELECT * FROM daemon_lock WHERE id = 1")

    def record_job(self, name: str, *, at: dt.datetime, duration_s: float, result: str = "", error: str = "",
                   next_run_at: dt.datetime | None = None) -> None:
        self._x(
            """INSERT INTO jobs (name, runs, errors, failing, last_run_at, last_duration_s, last_result, last_error,
                                 next_run_at)
               VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET runs = jobs.runs + 1, errors = jobs.errors + excluded.errors,
                   failing = CASE WHEN excluded.errors > 0 THEN jobs.failing + 1 ELSE 0 END,
                   last_run_at = excluded.last_run_at, last_duration_s = excluded.last_duration_s,
                   last_result = excluded.last_result,
                   last_error = CASE WHEN excluded.last_error != '' THEN excluded.last_error ELSE jobs.last_error END,
                   next_run_at = excluded.next_run_at""",
            [name, 1 if error else 0, 1 if error else 0, self.stamp(at), round(duration_s, 3), result, error,
             self.stamp(next_run_at) if next_run_at else None])

    def set_next_run(self, name: str, next_run_at: dt.datetime | None) -> None:
        self._x(
            """INSERT INTO jobs (name, next_run_at) VALUES (?, ?)
               ON CONFLICT (name) DO UPDATE SET next_run_at = excluded.next_run_at""",
            [name, self.stamp(next_run_at) if next_run_at else None])

    # ---------------------------------------------------------------- retention and backups
    def prune(self, *, raw_before: str | None, nothing_before: str | None, dry_run: bool = False
              ) -> dict[str, int]:
        """Forget what is no longer needed: the raw platform JSON of posts older than raw_before, and posts older
        than nothing_before that led to nothing (no draft, no campaign entry, no incident, no follow-up answer,
        not part of a conversation). Aggregates (campaign snapshots), the audit log and everything a draft or a
        report stands on are kept."""
        out = {"raw_cleared": 0, "posts_deleted": 0}
        raw_old = "created_at < ? AND raw != '{}'"
        led_nowhere = """created_at < ?
            AND NOT EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = posts.id)
            AND NOT EXISTS (SELECT 1 FROM campaign_posts cp WHERE cp.post_id = posts.id)
            AND NOT EXISTS (SELECT 1 FROM incident_posts ip WHERE ip.post_id = posts.id)
            AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.answer_post_id = posts.id)
            AND NOT EXISTS (SELECT 1 FROM actions ac WHERE {in_conversation})""".format(
            in_conversation=self.sql.in_json_list("posts.id", "ac.conversation"))
        if dry_run:   # the same conditions, counted
            if raw_before:
                out["raw_cleared"] = self._scalar(f"SELECT count(*) FROM posts WHERE {raw_old}", [raw_before])
            if nothing_before:
                out["posts_deleted"] = self._scalar(f"SELECT count(*) FROM posts WHERE {led_nowhere}",
                                                    [nothing_before])
            return out
        with self.atomic():
            if raw_before:
                out["raw_cleared"] = self._x(f"UPDATE posts SET raw = '{{}}' WHERE {raw_old}", [raw_before]).rowcount
            if nothing_before:
                out["posts_deleted"] = self._x(f"DELETE FROM posts WHERE {led_nowhere}", [nothing_before]).rowcount
            if any(out.values()):
                self._audit("taiwa", None, "retention", "", "",
                            f"{out['raw_cleared']} raw records cleared, {out['posts_deleted']} posts deleted")
        return out

    def jobs(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM jobs ORDER BY name")

    def queue_sizes(self) -> dict[str, int]:
        """What waits at each step: unclassified posts, posts to rank, drafts for a person, approved to send."""
        return {
            "to_classify": self._scalar("SELECT count(*) FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id "
                                        "WHERE s.post_id IS NULL"),
            "to_rank": self._scalar("SELECT count(*) FROM sentiments s LEFT JOIN priorities pr "
                                    "ON pr.post_id = s.post_id WHERE pr.post_id IS NULL"),
            "to_approve": self._scalar("SELECT count(*) FROM actions WHERE state = 'pending'"),
            "to_send": self._scalar("SELECT count(*) FROM actions WHERE state = 'approved'"),
            "to_check": self._scalar("SELECT count(*) FROM actions WHERE state = 'needs_check'"),
            "followups_waiting": self._scalar("SELECT count(*) FROM followups WHERE state = 'waiting'"),
        }

    def snapshot_campaigns(self, at: dt.datetime, own_handles: Iterable[str] = ()) -> int:
        rows = self.campaign_summary(own_handles)
        with self.atomic():
            self._xmany(
                """INSERT INTO campaign_snapshots (campaign, at, entries, participants, positive, negative)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (campaign, at) DO UPDATE SET entries = excluded.entries,
                       participants = excluded.participants, positive = excluded.positive,
                       negative = excluded.negative""",
                [(r["name"], self.stamp(at), r["entries"], r["participants"], r["positive"] or 0, r["negative"] or 0)
                 for r in rows])
        return len(rows)

    def campaign_snapshots(self, campaign: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM campaign_snapshots WHERE campaign = ? ORDER BY at", [campaign])

    # ---------------------------------------------------------------- follow-ups
    def sent_replies_without_followup(self) -> list[dict[str, Any]]:
        """Sent replies that asked something and are not yet tracked as a follow-up."""
        return self._rows(
            """SELECT ac.id, ac.asks, ac.sent_at, ac.post_id, p.author_id, p.conversation_id, p.platform_id
               FROM actions ac JOIN posts p ON p.id = ac.post_id
               LEFT JOIN followups f ON f.action_id = ac.id
               WHERE ac.kind = 'reply' AND ac.state = 'sent' AND ac.asks != '' AND f.id IS NULL""")

    def add_followup(self, action_id: int, author_id: str, asks: str, due_at: dt.datetime | None) -> None:
        self._x(
            """INSERT INTO followups (action_id, author_id, asks, due_at, created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""", [action_id, author_id, asks, self.stamp(due_at) if due_at else None,
                                           self.stamp()])

    def waiting_followups(self) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT f.*, ac.sent_at, ac.post_id AS replied_post_id, p.conversation_id, p.platform_id,
                      p.platform
               FROM followups f JOIN actions ac ON ac.id = f.action_id JOIN posts p ON p.id = ac.post_id
               WHERE f.state IN ('waiting', 'answered') ORDER BY f.id""")

    def next_post_by(self, author_id: str, after: str, conversation_id: str = "") -> dict[str, Any] | None:
        """The author's first post after `after` — in the same conversation when the platform tells us one."""
        if conversation_id:
            row = self._one("""SELECT * FROM posts WHERE author_id = ? AND created_at > ? AND conversation_id = ?
                               ORDER BY created_at LIMIT 1""", [author_id, after, conversation_id])
            if row:
                return row
        return self._one("SELECT * FROM posts WHERE author_id = ? AND created_at > ? ORDER BY created_at LIMIT 1",
                         [author_id, after])

    def update_followup(self, followup_id: int, **fields: Any) -> None:
        allowed = {"state", "answer", "answer_post_id", "due_at", "draft_action_id"}
        if set(fields) - allowed:
            raise ValueError(set(fields) - allowed)
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._x(f"UPDATE followups SET {sets} WHERE id = ?", [*fields.values(), followup_id])

    def followup_action(self, post_id: int, followup_of: int) -> int | None:
        return self._scalar("SELECT id FROM actions WHERE post_id = ? AND followup_of = ?", [post_id, followup_of])

    def followups(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM followups ORDER BY id")
