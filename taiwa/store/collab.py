"""Working together in the inbox: internal notes and tags (never sent), who has an item open, what changed."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from ..errors import NotFound, ValidationError

PRESENCE_SECONDS = 30      # someone who has not pinged for this long has left the item


class CollabMixin:
    # ---------------------------------------------------------------- notes and tags: for the team, never sent
    def subject_for(self, kind: str, key: Any) -> str:
        """'person:<id>' for a customer (their linked accounts share it), 'action:<id>' for a draft."""
        if kind == "person":
            return f"person:{self.person_of(str(key))}"
        if kind == "action":
            return f"action:{int(key)}"
        raise ValueError(kind)

    def add_note(self, subject: str, author: str, text: str, *, action_id: int | None = None) -> None:
        text = (text or "").strip()
        if not text:
            raise ValidationError("the note is empty", "write what the team should know")
        with self.atomic():
            self._x("INSERT INTO notes (subject, author, text, created_at) VALUES (?, ?, ?, ?)",
                            [subject, author, text[:4000], self.stamp()])
            self._audit(author, action_id, "note", "", text[:4000], subject)

    def notes(self, subjects: Sequence[str]) -> list[dict[str, Any]]:
        if not subjects:
            return []
        return self._rows(f"SELECT * FROM notes WHERE subject IN ({','.join('?' * len(subjects))}) "
                          "ORDER BY created_at DESC, id DESC", list(subjects))

    def add_label(self, subject: str, tag: str, actor: str, *, action_id: int | None = None) -> None:
        tag = " ".join((tag or "").split())[:40]
        if not tag:
            raise ValidationError("the tag is empty", "a word or two, e.g. vip or 'press'")
        with self.atomic():
            cur = self._x("INSERT INTO labels (subject, tag, added_by, added_at) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT DO NOTHING",
                                  [subject, tag, actor, self.stamp()])
            if cur.rowcount:
                self._audit(actor, action_id, "tagged", "", tag, subject)

    def remove_label(self, subject: str, tag: str, actor: str, *, action_id: int | None = None) -> None:
        with self.atomic():
            cur = self._x("DELETE FROM labels WHERE subject = ? AND tag = ?", [subject, tag])
            if not cur.rowcount:
                raise NotFound(f"no tag {tag!r} here", "the tags are listed beside the item")
            self._audit(actor, action_id, "untagged", tag, "", subject)

    def labels(self, subjects: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s: [] for s in subjects}
        if subjects:
            for r in self._rows(f"SELECT subject, tag FROM labels WHERE subject IN ({','.join('?' * len(subjects))}) "
                                "ORDER BY tag", list(subjects)):
                out[r["subject"]].append(r["tag"])
        return out

    # ---------------------------------------------------------------- presence
    def touch_presence(self, action_id: int, user: str, now: dt.datetime | None = None) -> None:
        self._x("""INSERT INTO presence (action_id, "user", seen_at) VALUES (?, ?, ?)
                           ON CONFLICT (action_id, "user") DO UPDATE SET seen_at = excluded.seen_at""",
                        [action_id, user, self.stamp(now)])

    def leave(self, action_id: int, user: str) -> None:
        self._x('DELETE FROM presence WHERE action_id = ? AND "user" = ?', [action_id, user])

    def present(self, action_ids: Sequence[int], now: dt.datetime | None = None) -> dict[int, list[str]]:
        """Who has each item open right now."""
        if not action_ids:
            return {}
        since = self.stamp((now or self.clock()) - dt.timedelta(seconds=PRESENCE_SECONDS))
        out: dict[int, list[str]] = {}
        for r in self._rows(f'SELECT action_id, "user" FROM presence WHERE seen_at >= ? AND action_id IN '
                            f"({','.join('?' * len(action_ids))}) ORDER BY \"user\"", [since, *action_ids]):
            out.setdefault(r["action_id"], []).append(r["user"])
        return out

    # ---------------------------------------------------------------- what changed (live updates)
    def last_change(self) -> int:
        """The newest audit row: anything anyone (or the daemon) did to an action moves it."""
        return self._scalar("SELECT coalesce(max(id), 0) FROM audit") or 0

    def changes_since(self, audit_id: int, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT id, at, actor, action_id, event, after FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                          [audit_id, limit])

    # ---------------------------------------------------------------- corrections of what taiwa understood
    def correct(self, post_id: int, field: str, value: str, actor: str) -> None:
        """A person's intent or topic for a post: the ranking's record changes, and the correction is kept for
        `taiwa model train-intent --corrections` (sentiment goes through correct_sentiment)."""
        if field not in ("intent", "topic"):
            raise ValueError(field)
        with self.atomic():
            row = self._one(f"SELECT {field} AS v FROM priorities WHERE post_id = ?", [post_id])
            if row is None:
                raise NotFound(f"post {post_id} has not been ranked yet", "run `taiwa listen` first")
            self._x(f"UPDATE priorities SET {field} = ? WHERE post_id = ?", [value, post_id])
            self._x("INSERT INTO corrections (post_id, field, before, after, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
                            [post_id, field, row["v"] or "", value, actor, self.stamp()])
            self._audit(actor, None, f"{field}_corrected", row["v"] or "", value, f"post {post_id}")

    def intent_corrections(self) -> list[dict[str, Any]]:
        """Posts a person gave an intent, latest correction per post."""
        return self._rows(
            """SELECT p.text, c.after AS intent, p.lang FROM corrections c JOIN posts p ON p.id = c.post_id
               WHERE c.field = 'intent' AND c.id = (SELECT max(id) FROM corrections c2
                                                    WHERE c2.post_id = c.post_id AND c2.field = 'intent')""")
