"""Customers: authors, their history, linked accounts, and erasure on request."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from .common import (_to_json)


class PeopleMixin:
    # ---------------------------------------------------------------- people: one customer's linked accounts
    def person_of(self, author_id: str) -> str:
        return self._scalar("SELECT coalesce(person, id) FROM authors WHERE id = ?", [author_id]) or author_id

    def linked_accounts(self, author_id: str) -> list[dict[str, Any]]:
        """Every account of the customer this author belongs to (the author included)."""
        return self._rows(
            """SELECT id, platform, handle, name, followers FROM authors
               WHERE person = ? OR id = ?
               ORDER BY platform, handle""", [self.person_of(author_id)] * 2)

    def link_authors(self, author_id: str, other_id: str, *, actor: str) -> list[dict[str, Any]]:
        """One customer, two accounts: every account of `other_id`'s customer joins `author_id`'s. Audited."""
        with self.atomic():
            for a in (author_id, other_id):
                if not self._one("SELECT 1 FROM authors WHERE id = ?", [a]):
                    raise NotFound(f"no author {a}", "`taiwa link` takes platform:handle of accounts taiwa has seen")
            keep, old = self.person_of(author_id), self.person_of(other_id)
            if keep != old:
                self._x("UPDATE authors SET person = ? WHERE person = ? OR id = ?", [keep, old, old])
                self._audit(actor, None, "accounts_linked", other_id, author_id, "")
        return self.linked_accounts(author_id)

    def unlink_author(self, author_id: str, *, actor: str) -> None:
        """This account stands alone again (the others stay linked to each other)."""
        with self.atomic():
            person = self.person_of(author_id)
            others = [r["id"] for r in self.linked_accounts(author_id) if r["id"] != author_id]
            self._x("UPDATE authors SET person = NULL WHERE id = ?", [author_id])
            if person == author_id and others:   # the others keep a person id of their own
                self._x(f"UPDATE authors SET person = ? WHERE id IN ({','.join('?' * len(others))})",
                                [others[0], *others])
            self._audit(actor, None, "account_unlinked", author_id, "", "")

    def open_reply(self, author_id: str) -> dict[str, Any] | None:
        """The customer's reply draft that still waits for a person (not a follow-up), if any: new posts join it."""
        return self._one(
            # The customer's posts first (a materialized CTE fixes that order on both databases), then their
            # drafts: every step is an index look-up, never a scan of all pending drafts, even while the
            # planner's statistics still think the actions table is empty (a busy first hour on PostgreSQL).
            """WITH theirs AS MATERIALIZED (
                   SELECT p.id FROM authors au JOIN posts p ON p.author_id = au.id WHERE au.person = ? OR au.id = ?)
               SELECT ac.* FROM theirs CROSS JOIN actions ac
               WHERE ac.post_id = theirs.id AND ac.kind = 'reply' AND ac.state = 'pending'
                 AND ac.followup_of IS NULL
               ORDER BY ac.id DESC LIMIT 1""", [self.person_of(author_id)] * 2)

    def merge_into(self, action_id: int, fields: dict[str, Any], *, actor: str = "taiwa") -> bool:
        """A customer's new post joins their open draft: the action now answers that post (and lists the earlier
        ones); its text is redrafted only if nobody edited it. False (nothing changed) when the draft is no longer
        pending: a person decided on it since it was looked up."""
        allowed = {"post_id", "intent", "text", "draft_text", "template", "memory", "answer", "answer_score",
                   "needs_answer", "ask", "recalled", "conversation", "backend", "unsure"}
        if set(fields) - allowed:
            raise ValueError(f"unknown action fields {set(fields) - allowed}")
        row = self._one("SELECT post_id, state, text, draft_text FROM actions WHERE id = ?", [action_id])
        if row is None or row["state"] != "pending":
            return False
        values = dict(fields)
        if row["text"] != row["draft_text"]:        # a person's edit is kept; the new post is listed beside it
            values.pop("text", None)
        for key in ("memory", "conversation"):
            if key in values and not isinstance(values[key], str):
                values[key] = _to_json(values[key])
        if "unsure" in values and not isinstance(values["unsure"], str):
            values["unsure"] = _to_json(values["unsure"]) if values["unsure"] else ""
        if "recalled" in values and not isinstance(values["recalled"], str):
            values["recalled"] = _to_json(values["recalled"]) if values["recalled"] else ""
        values["updated_at"] = self.stamp()
        self._x(f"UPDATE actions SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ? "
                        "AND state = 'pending'", [*values.values(), action_id])
        self._audit(actor, action_id, "merged", str(row["post_id"]), str(fields.get("post_id", row["post_id"])),
                    "the customer wrote again; this draft now answers their newest post")
        return True

    def judgements(self) -> list[dict[str, Any]]:
        """Every post with what taiwa made of it: topic, intent, escalation, score, and which drafts it got."""
        return self._rows(
            """SELECT p.id AS post_id, p.platform_id, p.author_id, p.lang, coalesce(pr.topic, '') AS topic,
                      pr.intent, coalesce(pr.escalated, 0) AS escalated, pr.score, s.label,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'like') AS like_proposed,
                      (SELECT ip.incident_id FROM incident_posts ip WHERE ip.post_id = p.id) AS incident,
                      (SELECT ac.id FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'reply') AS reply_id
               FROM posts p LEFT JOIN priorities pr ON pr.post_id = p.id LEFT JOIN sentiments s ON s.post_id = p.id
               ORDER BY p.id""")

    def reply_for_post(self, post_id: int) -> dict[str, Any] | None:
        """The reply that answers this post: its own, or the conversation's it joined (not follow-ups)."""
        return self._one(
            f"""SELECT ac.* FROM actions ac WHERE ac.kind = 'reply' AND ac.followup_of IS NULL AND
                   (ac.post_id = ? OR {self.sql.in_json_list("?", "ac.conversation")})
               ORDER BY ac.id DESC LIMIT 1""", [post_id, post_id])

    def open_replies_by_person(self) -> dict[str, int]:
        """How many reply drafts wait for a person, per customer (linked accounts count as one)."""
        return {r["person"]: r["n"] for r in self._rows(
            """SELECT coalesce(a.person, a.id) AS person, count(*) AS n FROM actions ac
               JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
               WHERE ac.kind = 'reply' AND ac.state = 'pending' AND ac.followup_of IS NULL GROUP BY 1""")}

    def actions_for_post(self, post_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM actions WHERE post_id = ? ORDER BY id", [post_id])

    # ---------------------------------------------------------------- privacy
    def find_authors(self, handle: str, platform: str | None = None) -> list[dict[str, Any]]:
        h = handle.lstrip("@").lower()
        if platform:
            return self._rows("SELECT * FROM authors WHERE lower(handle) = ? AND platform = ?", [h, platform])
        return self._rows("SELECT * FROM authors WHERE lower(handle) = ?", [h])

    def forget_author(self, author_id: str, actor: str) -> dict[str, int]:
        """Erase one author: posts (text, raw JSON), sentiments, priorities, drafts and their memory, follow-ups,
        campaign entries, the author row, and audit details that quoted their drafts. The audit log keeps the
        fact that an erasure happened, not the content."""
        with self.atomic():
            post_ids = [r["id"] for r in self._rows("SELECT id FROM posts WHERE author_id = ?", [author_id])]
            marks = ",".join("?" * len(post_ids)) or "NULL"
            action_ids = [r["id"] for r in self._rows(f"SELECT id FROM actions WHERE post_id IN ({marks})", post_ids)]
            amarks = ",".join("?" * len(action_ids)) or "NULL"
            counts = {"posts": len(post_ids), "actions": len(action_ids)}
            # Audit rows about their actions keep who, when and the state change; any text goes (edits quote the
            # reply, notes and tags their words, saved replies the name).
            self._x(f"UPDATE audit SET before = CASE WHEN event LIKE 'state:%' THEN before ELSE '' END, "
                    f"after = CASE WHEN event LIKE 'state:%' THEN after ELSE '' END, detail = '' "
                    f"WHERE action_id IN ({amarks})", action_ids)
            counts["followups"] = self._x(
                f"DELETE FROM followups WHERE author_id = ? OR action_id IN ({amarks})", [author_id, *action_ids]
            ).rowcount
            # The team's notes and tags about them or their drafts, and the audit rows that quote those.
            person = self._scalar("SELECT coalesce(person, id) FROM authors WHERE id = ?", [author_id]) or author_id
            subjects = sorted({f"person:{author_id}", f"person:{person}", *(f"action:{a}" for a in action_ids)})
            smarks = ",".join("?" * len(subjects))
            counts["notes"] = self._x(f"DELETE FROM notes WHERE subject IN ({smarks})", subjects).rowcount
            counts["tags"] = self._x(f"DELETE FROM labels WHERE subject IN ({smarks})", subjects).rowcount
            self._x(f"UPDATE audit SET before = '', after = '', detail = '' WHERE detail IN ({smarks})", subjects)
            self._x(f"DELETE FROM corrections WHERE post_id IN ({marks})", post_ids)
            self._x(f"DELETE FROM incident_posts WHERE post_id IN ({marks})", post_ids)
            for table, col in (("actions", "post_id"), ("sentiments", "post_id"), ("priorities", "post_id"),
                               ("campaign_posts", "post_id")):
                self._x(f"DELETE FROM {table} WHERE {col} IN ({marks})", post_ids)
            self._x("DELETE FROM posts WHERE author_id = ?", [author_id])
            self._x("UPDATE authors SET person = NULL WHERE person = ?", [author_id])
            self._x("DELETE FROM authors WHERE id = ?", [author_id])
            self._audit(actor, None, "author_forgotten", "", "", f"{counts['posts']} posts, {counts['actions']} "
                        f"actions erased on request")
        return counts
