"""Drafts and their approval state machine; the audit log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable, Sequence

from ..errors import InvalidTransition, NotFound, StaleAction
from .common import (OPEN_STATES, TRANSITIONS, _to_json, now_iso)


class ActionsMixin:
    # ---------------------------------------------------------------- actions
    def create_actions(self, rows: Iterable[dict[str, Any]], at: dt.datetime | None = None) -> int:
        """Insert drafts; a post never gets two drafts of the same kind (re-running drafting is a no-op)."""
        stamp = self.stamp(at)
        data = [(r["post_id"], r["kind"], r.get("intent", ""), r.get("text", ""), r.get("text", ""),
                 r.get("template", ""), json.dumps(r.get("memory", []), ensure_ascii=False), stamp, stamp,
                 r.get("followup_of"), r.get("asks", ""), r.get("assigned_to") or "", r.get("answer", ""),
                 r.get("answer_score"), int(bool(r.get("needs_answer"))), r.get("ask", ""),
                 _to_json(r["recalled"]) if r.get("recalled") else "", _to_json(r.get("conversation", [])),
                 r.get("backend", "templates"), _to_json(r["unsure"]) if r.get("unsure") else "") for r in rows]
        with self.atomic():
            created = self._xmany(
                """INSERT INTO actions (post_id, kind, intent, text, draft_text, template, memory,
                       created_at, updated_at, followup_of, asks, assigned_to, answer, answer_score, needs_answer,
                       ask, recalled, conversation, backend, unsure)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT DO NOTHING""", data)
            if created:
                self._audit("taiwa", None, "drafted", "", "pending", f"{created} draft(s)")
        return created

    def action(self, action_id: int) -> dict[str, Any]:
        row = self._one(
            """SELECT ac.*, p.platform, p.platform_id, p.text AS post_text, p.created_at AS post_created_at,
                      p.url, p.author_id, p.source, p.conversation_id, p.can_reply, p.lang, p.audience,
                      a.handle, a.name AS author_name, a.followers,
                      s.label, s.negative, s.neutral, s.positive, pr.score, pr.reasons,
                      coalesce(pr.topic, '') AS topic
               FROM actions ac JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE ac.id = ?""", [action_id])
        if row is None:
            raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions and their ids")
        return row

    def inbox(self, *, states: Sequence[str] = ("pending",), platform: str | None = None,
              kind: str | None = None, sentiment: str | None = None, campaign: str | None = None,
              terms: Sequence[str] = (), assigned_to: str | None = None, snoozed: bool | None = None,
              now: dt.datetime | None = None, limit: int = 50, topic: str | None = None,
              incident: int | None = None, needs_answer: bool | None = None, search: str | None = None,
              sla_hours: dict[str, float] | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        """Open actions, highest priority first, with everything the 'why' column needs.

        terms: the post must contain one of these (a brand's keywords and @handles), case-insensitively.
        snoozed: None = all, False = hide actions snoozed until after `now`, True = only those.
        search: words to find in the post, the draft or the author (full-text, trigram: any language).
        sla_hours: response targets per tier (escalated, complaint, question, other): each row gets `due_at`
        and `overdue`, and overdue rows sort up, right after escalated ones."""
        where, params = [f"ac.state IN ({','.join('?' * len(states))})"], list(states)
        if search and search.split():
            clause, values = self.sql.search(search.split())
            where.append(clause)
            params += values
        if tag:
            where.append("(EXISTS (SELECT 1 FROM labels l WHERE l.subject = 'action:' || ac.id AND l.tag = ?) OR "
                         "EXISTS (SELECT 1 FROM labels l WHERE l.subject = 'person:' || coalesce(a.person, a.id) "
                         "AND l.tag = ?) OR " + self.sql.contains("coalesce(pr.tags, '')", "?") + ")")
            params += [tag, tag, json.dumps(tag)]
        if terms:
            where.append("(" + " OR ".join(self.sql.contains("lower(p.text)", "?") for _ in terms) + ")")
            params.extend(t.lower() for t in terms)
        if assigned_to is not None:
            where.append("ac.assigned_to = ?"); params.append(assigned_to)
        if snoozed is not None:
            where.append("(ac.snoozed_until IS NOT NULL AND ac.snoozed_until > ?)" if snoozed else
                         "(ac.snoozed_until IS NULL OR ac.snoozed_until <= ?)")
            params.append(self.stamp(now))
        if platform:
            where.append("p.platform = ?"); params.append(platform)
        if kind:
            where.append("ac.kind = ?"); params.append(kind)
        if sentiment:
            where.append("s.label = ?"); params.append(sentiment)
        if campaign:
            where.append("EXISTS (SELECT 1 FROM campaign_posts cp WHERE cp.post_id = p.id AND cp.campaign = ?)")
            params.append(campaign)
        if topic:
            where.append("pr.topic = ?"); params.append(topic)
        if incident is not None:
            where.append("ip.incident_id = ?"); params.append(incident)
        if needs_answer is not None:
            where.append("ac.needs_answer = ?"); params.append(int(needs_answer))
        sla = sla_hours or {}
        due = (self.sql.julianday("p.created_at") + " + (CASE WHEN coalesce(pr.escalated, 0) <> 0 THEN ? "
               "WHEN ac.intent = 'complaint' THEN ? WHEN ac.intent = 'question' THEN ? ELSE ? END) / 24.0")
        due_params = [sla.get("escalated", 1e6), sla.get("complaint", 1e6), sla.get("question", 1e6),
                      sla.get("other", 1e6)]
        now_jd = self.stamp(now)
        overdue = f"CASE WHEN ? = 1 AND ({due}) < {self.sql.julianday('?')} THEN 1 ELSE 0 END"
        rows = self._rows(
            f"""SELECT ac.id, ac.kind, ac.state, ac.intent, ac.text, ac.memory, ac.created_at, ac.assigned_to,
                       ac.snoozed_until, ac.answer, ac.answer_score, ac.needs_answer, ac.ask, ac.recalled,
                       ac.conversation, ac.backend, p.id AS post_id, p.platform, p.platform_id, p.text AS post_text,
                       p.created_at AS post_created_at, p.lang, a.handle, a.followers, s.label, s.negative,
                       s.positive, pr.score, pr.reasons, coalesce(pr.escalated, 0) AS escalated,
                       coalesce(pr.rules, '[]') AS rules, coalesce(pr.tags, '[]') AS tags,
                       coalesce(pr.topic, '') AS topic, pr.topic_score, ip.incident_id AS incident,
                       ac.version, a.name AS author_name, coalesce(a.person, a.id) AS person,
                       (SELECT {self.sql.group_concat('cp.campaign', ', ')} FROM campaign_posts cp WHERE cp.post_id = p.id)
                           AS campaigns,
                       {due} AS due_jd, {overdue} AS overdue
                FROM actions ac JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
                LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
                LEFT JOIN incident_posts ip ON ip.post_id = p.id
                WHERE {' AND '.join(where)}
                ORDER BY coalesce(pr.escalated, 0) DESC, overdue DESC, coalesce(pr.score, 0) DESC,
                         p.created_at DESC, ac.id
                LIMIT ?""", [*due_params, *due_params, int(bool(sla)), now_jd, *params, limit])
        for r in rows:
            jd = r.pop("due_jd")
            r["due_at"] = _from_julian(jd) if sla and jd is not None else None
        return rows

    def actions_in_state(self, state: str, *, by_priority: bool = False) -> list[dict[str, Any]]:
        """Ids of the actions in a state; by_priority: escalated first, then by score (what a sender takes)."""
        if by_priority:
            return self._rows(
                """SELECT ac.id FROM actions ac LEFT JOIN priorities pr ON pr.post_id = ac.post_id
                   WHERE ac.state = ? ORDER BY coalesce(pr.escalated, 0) DESC, coalesce(pr.score, 0) DESC, ac.id""",
                [state])
        return self._rows("SELECT id FROM actions WHERE state = ? ORDER BY id", [state])

    def state_counts(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self._rows("SELECT state, count(*) AS n FROM actions GROUP BY state")}

    def transition(self, action_id: int, to: str, *, actor: str, expect: Sequence[str] | None = None,
                   detail: str = "", version: int | None = None, **fields: Any) -> dict[str, Any]:
        """Move an action to `to` if (and only if) its current state allows it. Compare-and-set, audited.

        Two processes racing for the same action cannot both win: the UPDATE names the state it read. `version`:
        the version the person saw; if anyone changed the action since, StaleAction says what changed."""
        allowed_fields = {"text", "reason", "approved_by", "approved_at", "sending_since", "sent_at",
                          "platform_ref"}
        if set(fields) - allowed_fields:
            raise ValueError(f"unknown action fields {set(fields) - allowed_fields}")
        with self.atomic():
            row = self._one("SELECT id, state, text, version FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            self._check_version(action_id, row, version)
            current = row["state"]
            if (expect is not None and current not in expect) or to not in TRANSITIONS[current]:
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
                raise InvalidTransition(
                    f"action {action_id} is {current}; it cannot become {to}",
                    f"from {current} it can become: {allowed}")
            sets = {"state": to, "updated_at": self.stamp(), **fields}
            assignments = ", ".join(f"{k} = ?" for k in sets)
            cur = self._x(f"UPDATE actions SET {assignments} WHERE id = ? AND state = ?",
                                  [*sets.values(), action_id, current])
            if cur.rowcount != 1:  # pragma: no cover - the read and write share one transaction
                raise InvalidTransition(f"action {action_id} changed while we looked at it", "try again")
            extra = detail
            if "text" in fields and fields["text"] != row["text"]:
                extra = (detail + "; " if detail else "") + f"text edited: {row['text']!r} → {fields['text']!r}"
            self._audit(actor, action_id, f"state:{to}", current, to, extra)
        return self.action(action_id)

    def _check_version(self, action_id: int, row: dict[str, Any], version: int | None) -> None:
        if version is None or row["version"] == version:
            return
        changes = self._rows("SELECT actor, event, before, after FROM audit WHERE action_id = ? ORDER BY id DESC "
                             "LIMIT 3", [action_id])
        what = "; ".join(f"{c['actor']}: {c['event'].replace('state:', '→ ')}" for c in changes) or "it was redrafted"
        raise StaleAction(f"#{action_id} changed since you opened it ({what})",
                          "reload it to see the change; your edit is kept in the page to paste back")

    def edit_text(self, action_id: int, text: str, actor: str, *, version: int | None = None) -> None:
        with self.atomic():
            row = self._one("SELECT state, text, version FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            self._check_version(action_id, row, version)
            if row["state"] not in ("pending", "failed", "needs_check"):
                raise InvalidTransition(f"action {action_id} is {row['state']}; its text can no longer change",
                                        "only pending, failed or needs_check drafts can be edited")
            self._x("UPDATE actions SET text = ?, updated_at = ? WHERE id = ?", [text, self.stamp(), action_id])
            self._audit(actor, action_id, "edited", row["text"], text, "")

    def use_saved(self, action_id: int, text: str, actor: str, *, answer: str = "", ask: str = "") -> None:
        """A saved reply (an answer or a topic's ask) picked for a draft: its text, and what it now stands on."""
        with self.atomic():
            row = self._one("SELECT state, text FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            if row["state"] not in ("pending", "failed", "needs_check"):
                raise InvalidTransition(f"action {action_id} is {row['state']}; its text can no longer change",
                                        "only pending, failed or needs_check drafts can be edited")
            self._x(
                """UPDATE actions SET text = ?, answer = ?, answer_score = NULL, needs_answer = 0,
                       ask = CASE WHEN ? != '' THEN ? ELSE ask END, updated_at = ? WHERE id = ?""",
                [text, answer, ask, ask, self.stamp(), action_id])
            self._audit(actor, action_id, "saved_reply", row["text"], text,
                        f"answer {answer}" if answer else f"ask {ask}")

    def assign(self, action_id: int, user: str, actor: str) -> None:
        """Give an action to a teammate ('' = nobody). Audited."""
        with self.atomic():
            row = self._one("SELECT assigned_to FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "the inbox lists the open actions")
            if user and not self._one("SELECT 1 FROM users WHERE name = ? AND disabled = 0", [user]):
                raise NotFound(f"no teammate called {user!r}", "`taiwa user list` shows the team")
            self._x("UPDATE actions SET assigned_to = ?, updated_at = ? WHERE id = ?",
                            [user, self.stamp(), action_id])
            self._audit(actor, action_id, "assigned", row["assigned_to"], user, "")

    def snooze(self, action_id: int, until: dt.datetime | None, actor: str) -> None:
        """Hide an open action from the inbox until `until` (None: wake it now). Audited."""
        with self.atomic():
            row = self._one("SELECT state, snoozed_until FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "the inbox lists the open actions")
            if row["state"] not in OPEN_STATES:
                raise InvalidTransition(f"action {action_id} is {row['state']}; only open actions can be snoozed",
                                        "nothing to do: it is no longer waiting for anyone")
            value = self.stamp(until) if until else None
            self._x("UPDATE actions SET snoozed_until = ?, updated_at = ? WHERE id = ?",
                            [value, self.stamp(), action_id])
            self._audit(actor, action_id, "snoozed" if until else "woken", row["snoozed_until"] or "",
                        value or "", "")

    def thread(self, post: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
        """The other stored posts of the post's conversation (or the post it answers), oldest first, with our
        reply to each if one went out."""
        keys = [k for k in (post.get("conversation_id"), post.get("in_reply_to_id")) if k]
        if not keys:
            return []
        return self._rows(
            """SELECT p.id, p.text, p.created_at, a.handle,
                      (SELECT ac.text FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'reply'
                         AND ac.state = 'sent') AS our_reply
               FROM posts p JOIN authors a ON a.id = p.author_id
               WHERE p.platform = ? AND p.id != ? AND (p.conversation_id IN (?, ?) OR p.platform_id IN (?, ?))
               ORDER BY p.created_at LIMIT ?""",
            [post["platform"], post["id"], keys[0], keys[-1], keys[0], keys[-1], limit])

    def author_overview(self, author_id: str, *, exclude_post: int | None = None, limit: int = 20
                        ) -> dict[str, Any]:
        """Everything the inbox shows about one customer: earlier posts with our replies, open follow-ups."""
        posts = self.author_history(author_id, limit=limit, exclude_post=exclude_post)
        followups = self._rows(
            """SELECT f.id, f.asks, f.state, f.due_at, f.created_at, ac.text AS our_reply
               FROM followups f JOIN actions ac ON ac.id = f.action_id
               WHERE f.author_id = ? AND f.state IN ('waiting', 'answered', 'drafted') ORDER BY f.id""",
            [author_id])
        return {"posts": posts, "followups": followups,
                "total_posts": self._scalar("SELECT count(*) FROM posts WHERE author_id = ?", [author_id])}

    def platforms(self) -> list[str]:
        """The platforms the stored posts came from."""
        return [r["platform"] for r in self._rows("SELECT DISTINCT platform FROM posts ORDER BY platform")]

    def approval_counts(self) -> dict[str, int]:
        """Decisions people made on drafts: approved (ever) and rejected."""
        row = self._one("""SELECT sum(CASE WHEN approved_at IS NOT NULL THEN 1 ELSE 0 END) AS approved,
                                  sum(CASE WHEN state = 'rejected' THEN 1 ELSE 0 END) AS rejected,
                                  sum(CASE WHEN intent = 'complaint' AND state IN ('pending', 'approved', 'failed',
                                      'needs_check') THEN 1 ELSE 0 END) AS open_complaints
                           FROM actions""")
        return {k: int(v or 0) for k, v in (row or {}).items()}

    # ---------------------------------------------------------------- audit
    def _audit(self, actor: str, action_id: int | None, event: str, before: str, after: str, detail: str) -> None:
        self._x(
            "INSERT INTO audit (at, actor, action_id, event, before, after, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [self.stamp(), actor, action_id, event, before, after, detail])

    def audit_log(self, action_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if action_id is None:
            return self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", [limit])
        return self._rows("SELECT * FROM audit WHERE action_id = ? ORDER BY id", [action_id])


def _from_julian(jd: float) -> str:
    return now_iso(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=jd - 2440587.5))
