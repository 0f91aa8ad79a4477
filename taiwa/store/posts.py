"""Posts, what taiwa made of them, listener cursors and platform usage."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..errors import NotFound
from .common import (_raw_json, _split_problem, _to_json, now_iso, parse_iso)
from ..listeners.base import Post


@dataclass
class IngestResult:
    new: int
    updated: int
    problems: int


def _nul(value: str) -> str:
    return value.replace("\x00", "") if "\x00" in value else value


class PostsMixin:
    # ---------------------------------------------------------------- ingest
    def ingest(self, posts: Sequence[Post], *, listener: str, cursor: str | None,
               problems: Iterable[str] = (), at: dt.datetime | None = None,
               reads: tuple | None = None, lease: tuple[str, float] | None = None) -> IngestResult:
        """Upsert a batch of posts and their authors, move the listener's cursor, record problems: one transaction.
        lease: (worker, lease_seconds) when a worker holds this listener's stream; checked (and renewed) inside
        the transaction, LeaseLost if another worker took it over (nothing is stored then).

        Re-reading a post updates its counters (likes, reposts, replies) and never duplicates it."""
        stamp = self.stamp(at)
        problems = list(problems)
        author_rows, post_rows = {}, []
        for p in posts:
            a = p.author
            aid = f"{p.platform}:{_nul(a.platform_id)}"
            # A NUL character means nothing in a post and PostgreSQL refuses it in text: dropped here, for both
            # databases, so one such record never fails its batch.
            author_rows[aid] = (aid, p.platform, _nul(a.platform_id), _nul(a.handle), _nul(a.name),
                                int(a.followers), int(a.verified), stamp, stamp)
            post_rows.append((p.platform, _nul(p.platform_id), aid, _nul(p.text), _nul(p.lang), now_iso(p.created_at),
                              _nul(p.url), _nul(p.conversation_id), _nul(p.in_reply_to_id), int(p.is_repost),
                              int(p.can_reply),
                              int(p.likes), int(p.reposts), int(p.replies),
                              _to_json(p.hashtags), _to_json(p.mentions), listener, _raw_json(p.raw), stamp,
                              p.audience))
        with self.atomic():
            if lease is not None:
                self._check_lease(listener, *lease)
            before = self._scalar("SELECT coalesce(max(id), 0) FROM posts")
            self._xmany(
                """INSERT INTO authors (id, platform, platform_id, handle, name, followers, verified,
                                        first_seen_at, last_seen_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, name = excluded.name,
                       followers = excluded.followers, verified = excluded.verified,
                       last_seen_at = excluded.last_seen_at""",
                list(author_rows.values()))
            self._xmany(
                """INSERT INTO posts (platform, platform_id, author_id, text, lang, created_at, url,
                       conversation_id, in_reply_to_id, is_repost, can_reply, likes, reposts, replies,
                       hashtags, mentions, source, raw, ingested_at, audience)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (platform, platform_id) DO UPDATE SET likes = excluded.likes,
                       reposts = excluded.reposts, replies = excluded.replies, can_reply = excluded.can_reply,
                       audience = excluded.audience""",
                post_rows)
            new = self._scalar("SELECT count(*) FROM posts WHERE id > ?", [before])
            if cursor is not None:
                self._x(
                    """INSERT INTO cursors (listener, position, updated_at, posts_read) VALUES (?, ?, ?, ?)
                       ON CONFLICT (listener) DO UPDATE SET position = excluded.position,
                           updated_at = excluded.updated_at, posts_read = cursors.posts_read + excluded.posts_read""",
                    [listener, cursor, stamp, len(posts)])
            if problems:
                self._xmany(
                    "INSERT INTO ingest_problems (listener, at, location, reason) VALUES (?, ?, ?, ?)",
                    [(listener, stamp, *_split_problem(p)) for p in problems])
            if reads and reads[1]:
                platform, n, *when = reads   # when: the reservation's instant, so the month it was taken from
                self.add_usage(platform, reads=n, at=(when[0] if when else None) or at)
        return IngestResult(new=new, updated=len(post_rows) - new, problems=len(problems))

    # ---------------------------------------------------------------- listener state and platform usage
    def pause_listener(self, listener: str, until: dt.datetime, reason: str) -> None:
        self._x(
            """INSERT INTO listener_state (listener, paused_until, pause_reason) VALUES (?, ?, ?)
               ON CONFLICT (listener) DO UPDATE SET paused_until = excluded.paused_until,
                   pause_reason = excluded.pause_reason""", [listener, self.stamp(until), reason])

    def paused_until(self, listener: str, now: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        """(until, reason) if the listener must wait, else None."""
        row = self._one("SELECT paused_until, pause_reason FROM listener_state WHERE listener = ?", [listener])
        if not row or not row["paused_until"]:
            return None
        until = parse_iso(row["paused_until"])
        return (until, row["pause_reason"]) if until > (now or self.clock()) else None

    def record_run(self, listener: str, result: str, error: str = "", at: dt.datetime | None = None) -> None:
        self._x(
            """INSERT INTO listener_state (listener, last_run_at, last_result, errors, last_error)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (listener) DO UPDATE SET last_run_at = excluded.last_run_at,
                   last_result = excluded.last_result, errors = listener_state.errors + excluded.errors,
                   last_error = CASE WHEN excluded.last_error != '' THEN excluded.last_error
                                     ELSE listener_state.last_error END""",
            [listener, self.stamp(at), result, 1 if error else 0, error])

    def listener_states(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM listener_state ORDER BY listener")

    def add_usage(self, platform: str, *, reads: int = 0, writes: int = 0, at: dt.datetime | None = None) -> None:
        month = (at or self.clock()).strftime("%Y-%m")
        self._x(
            """INSERT INTO platform_usage (platform, month, reads, writes) VALUES (?, ?, ?, ?)
               ON CONFLICT (platform, month) DO UPDATE SET reads = platform_usage.reads + excluded.reads,
                   writes = platform_usage.writes + excluded.writes""", [platform, month, reads, writes])

    def reserve_usage(self, platform: str, kind: str, n: int, limit: int, at: dt.datetime | None = None) -> int | None:
        """Take `n` reads or writes out of the month's `limit` in one statement (workers on several machines
        share the budget, so a check followed by a later add could overspend it). Returns what was used before
        when reserved, None when it would go over (nothing is taken then). Give back what a call did not use
        with add_usage(..., -unused)."""
        if kind not in ("reads", "writes"):
            raise ValueError(kind)
        month = (at or self.clock()).strftime("%Y-%m")
        if n > limit:
            return None
        with self.atomic():
            row = self._one(
                f"""INSERT INTO platform_usage (platform, month, reads, writes) VALUES (?, ?, ?, ?)
                    ON CONFLICT (platform, month) DO UPDATE SET {kind} = platform_usage.{kind} + excluded.{kind}
                    WHERE platform_usage.{kind} + excluded.{kind} <= ?
                    RETURNING {kind}""",
                [platform, month, n if kind == "reads" else 0, n if kind == "writes" else 0, limit])
        return None if row is None else row[kind] - n

    def usage(self, platform: str, at: dt.datetime | None = None) -> dict[str, int]:
        month = (at or self.clock()).strftime("%Y-%m")
        row = self._one("SELECT reads, writes FROM platform_usage WHERE platform = ? AND month = ?", [platform, month])
        return row or {"reads": 0, "writes": 0}

    def cursor(self, listener: str) -> str | None:
        return self._scalar("SELECT position FROM cursors WHERE listener = ?", [listener])

    def reset_cursor(self, listener: str) -> None:
        self._x("DELETE FROM cursors WHERE listener = ?", [listener])

    def cursors(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM cursors ORDER BY listener")

    def ingest_problems(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM ingest_problems ORDER BY id DESC LIMIT ?", [limit])

    # ---------------------------------------------------------------- posts
    def post(self, post_id: int) -> dict[str, Any]:
        row = self._one(
            """SELECT p.*, a.handle, a.name AS author_name, a.followers, a.verified,
                      s.label, s.negative, s.neutral, s.positive, s.model_id, s.source AS label_source,
                      pr.score, pr.intent, pr.reasons
               FROM posts p JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE p.id = ?""", [post_id])
        if row is None:
            raise NotFound(f"no post with id {post_id}", "`taiwa inbox` lists the posts waiting for a person")
        return row

    def post_or_none(self, post_id: int) -> dict[str, Any] | None:
        try:
            return self.post(post_id)
        except NotFound:
            return None

    def posts_without_sentiment(self, limit: int = 10_000) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT p.id, p.text FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id
               WHERE s.post_id IS NULL ORDER BY p.id LIMIT ?""", [limit])

    def posts_to_triage(self, limit: int = 10_000, after: tuple[str, int] | None = None) -> list[dict[str, Any]]:
        """Classified posts that have no priority yet (new since the last triage), oldest first; `after`
        (created_at, id) starts the scan past posts a run already triaged instead of stepping over them again."""
        since = "AND p.created_at >= ? AND (p.created_at > ? OR p.id > ?)" if after else ""
        return self._rows(
            f"""SELECT p.*, a.handle, a.name AS author_name, a.followers, a.verified,
                      s.label, s.negative, s.neutral, s.positive
               FROM posts p JOIN authors a ON a.id = p.author_id JOIN sentiments s ON s.post_id = p.id
               LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE pr.post_id IS NULL {since} ORDER BY p.created_at, p.id LIMIT ?""",
            [*([after[0], after[0], after[1]] if after else []), limit])

    def latest_post_time(self) -> dt.datetime | None:
        v = self._scalar("SELECT max(created_at) FROM posts")
        return parse_iso(v) if v else None

    def count(self, table: str) -> int:
        if table not in {"posts", "authors", "sentiments", "priorities", "actions", "audit", "campaign_posts",
                         "ingest_problems"}:
            raise ValueError(table)
        return self._scalar(f"SELECT count(*) FROM {table}")

    def save_sentiments(self, rows: Iterable[tuple[int, Any]], at: dt.datetime | None = None) -> None:
        """rows: (post_id, Sentiment). A person's correction (source='human') is never overwritten by the model."""
        stamp = self.stamp(at)
        data = [(pid, s.label, s.scores["negative"], s.scores["neutral"], s.scores["positive"], s.model_id, stamp)
                for pid, s in rows]
        with self.atomic():
            self._xmany(
                """INSERT INTO sentiments (post_id, label, negative, neutral, positive, model_id, classified_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (post_id) DO UPDATE SET label = excluded.label, negative = excluded.negative,
                       neutral = excluded.neutral, positive = excluded.positive, model_id = excluded.model_id,
                       classified_at = excluded.classified_at
                   WHERE sentiments.source = 'model'""", data)

    def save_vectors(self, rows: Iterable[tuple[int, Any]], model: str = "multilingual-e5-small") -> None:
        """rows: (post_id, float vector). Kept so topics (and later answers) reuse the sentiment pass's encoding."""
        import numpy as np

        data = [(pid, model, np.asarray(v, dtype=np.float32).tobytes()) for pid, v in rows if v is not None]
        if data:
            with self.atomic():
                self._xmany(
                    """INSERT INTO post_vectors (post_id, model, vector) VALUES (?, ?, ?)
                       ON CONFLICT (post_id) DO UPDATE SET model = excluded.model, vector = excluded.vector""", data)

    def vectors(self, post_ids: Sequence[int]) -> dict[int, Any]:
        import numpy as np

        if not post_ids:
            return {}
        rows = self._x(f"SELECT post_id, vector FROM post_vectors WHERE post_id IN "
                       f"({','.join('?' * len(post_ids))})", list(post_ids)).fetchall()
        return {pid: np.frombuffer(blob, dtype=np.float32) for pid, blob in rows}

    def correct_sentiment(self, post_id: int, label: str, actor: str) -> None:
        """A person's label for a post; kept for retraining (`taiwa model train --corrections`)."""
        self.post(post_id)
        scores = {k: (1.0 if k == label else 0.0) for k in ("negative", "neutral", "positive")}
        with self.atomic():
            before = self._scalar("SELECT label FROM sentiments WHERE post_id = ?", [post_id]) or ""
            self._x(
                """INSERT INTO sentiments (post_id, label, negative, neutral, positive, model_id, source,
                       classified_at) VALUES (?, ?, ?, ?, ?, 'human', 'human', ?)
                   ON CONFLICT (post_id) DO UPDATE SET label = excluded.label, negative = excluded.negative,
                       neutral = excluded.neutral, positive = excluded.positive, model_id = 'human',
                       source = 'human', classified_at = excluded.classified_at""",
                [post_id, label, scores["negative"], scores["neutral"], scores["positive"], self.stamp()])
            self._audit(actor, None, "sentiment_corrected", before, label, f"post {post_id}")

    def sentiment_corrections(self) -> list[dict[str, Any]]:
        return self._rows("""SELECT p.text, s.label FROM sentiments s JOIN posts p ON p.id = s.post_id
                             WHERE s.source = 'human'""")

    def save_priorities(self, rows: Iterable[dict[str, Any]], at: dt.datetime | None = None) -> None:
        stamp = self.stamp(at)
        data = [(r["post_id"], r["score"], r["intent"], r["sentiment"], r["intent_c"], r["reach"], r["recency"],
                 r["campaign"], json.dumps(r["reasons"], ensure_ascii=False), stamp, int(r.get("escalated", False)),
                 _to_json(r.get("rules", [])), _to_json(r.get("tags", [])), r.get("topic", ""), r.get("topic_score"),
                 _to_json(r.get("topic_evidence", []))) for r in rows]
        with self.atomic():
            self._xmany(
                """INSERT INTO priorities (post_id, score, intent, sentiment_c, intent_c, reach_c, recency_c,
                       campaign_c, reasons, computed_at, escalated, rules, tags, topic, topic_score,
                       topic_evidence)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (post_id) DO UPDATE SET score = excluded.score, intent = excluded.intent,
                       sentiment_c = excluded.sentiment_c, intent_c = excluded.intent_c,
                       reach_c = excluded.reach_c, recency_c = excluded.recency_c,
                       campaign_c = excluded.campaign_c, reasons = excluded.reasons,
                       computed_at = excluded.computed_at, escalated = excluded.escalated,
                       rules = excluded.rules, tags = excluded.tags, topic = excluded.topic,
                       topic_score = excluded.topic_score, topic_evidence = excluded.topic_evidence""", data)

    def priority(self, post_id: int) -> dict[str, Any]:
        """The stored score and its components for one post ({} if it was not ranked yet)."""
        return self._one("SELECT * FROM priorities WHERE post_id = ?", [post_id]) or {}

    def author_history(self, author_id: str, before: dt.datetime | None = None, *, since: dt.datetime | None = None,
                       limit: int, exclude_post: int | None = None) -> list[dict[str, Any]]:
        """The customer's posts (newest first; only those in [since, before) when given), across the accounts linked
        to this author, with what taiwa made of each, what we replied if it was sent, and whether they spoke again
        after that reply or its follow-up closed."""
        window = (" AND p.created_at < ?" if before else "") + (" AND p.created_at >= ?" if since else "")
        return self._rows(
            f"""SELECT p.id, p.text, p.created_at, p.platform, p.is_repost, p.author_id, s.label, pr.intent,
                      coalesce(pr.topic, '') AS topic,
                      (SELECT a.text FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         AND a.state = 'sent' ORDER BY a.id LIMIT 1) AS our_reply,
                      (SELECT a.sent_at FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         AND a.state = 'sent' ORDER BY a.id LIMIT 1) AS replied_at,
                      (SELECT a.state FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         ORDER BY a.id LIMIT 1) AS reply_state,
                      (SELECT f.state FROM followups f JOIN actions a ON a.id = f.action_id
                         WHERE a.post_id = p.id ORDER BY f.id DESC LIMIT 1) AS followup_state
               FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE p.author_id IN (SELECT id FROM authors WHERE person = ? OR id = ?)
                 AND p.id != ?{window}
               ORDER BY p.created_at DESC LIMIT ?""",
            [*[self.person_of(author_id)] * 2, exclude_post or -1, *([self.stamp(before)] if before else []),
             *([self.stamp(since)] if since else []), limit])
