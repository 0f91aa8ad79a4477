"""Incidents: posts from different people about one problem at about the same time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import NotFound


class IncidentsMixin:
    # ---------------------------------------------------------------- incidents
    def incident_candidates(self, topic: str, *, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
        """Problem posts (complaints or negative, not reposts) on this topic in [since, until], with their vectors
        and incidents, in no particular order (incidents.group orders them itself, to bisect on their times)."""
        import numpy as np

        rows = self._rows(
            """SELECT p.id AS post_id, p.author_id, p.created_at, p.text, v.vector, ip.incident_id
               FROM priorities pr JOIN posts p ON p.id = pr.post_id JOIN post_vectors v ON v.post_id = p.id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN incident_posts ip ON ip.post_id = p.id
               WHERE pr.topic = ? AND p.created_at >= ? AND p.created_at <= ?
                 AND (pr.intent = 'complaint' OR s.label = 'negative') AND p.is_repost = 0""",
            [topic, self.stamp(since), self.stamp(until)])
        for r in rows:
            r["vector"] = np.frombuffer(r["vector"], dtype=np.float32)
        return rows

    def incident_of(self, post_id: int) -> int | None:
        return self._scalar("SELECT incident_id FROM incident_posts WHERE post_id = ?", [post_id])

    def create_incident(self, topic: str, first_post: int, *, at: str) -> int:
        with self.atomic():
            incident = self._scalar(
                "INSERT INTO incidents (topic, first_seen, last_seen, created_at, size, authors) "
                "VALUES (?, ?, ?, ?, 1, 1) RETURNING id", [topic, at, at, self.stamp()])
            self._x("INSERT INTO incident_posts (post_id, incident_id, similarity) VALUES (?, ?, 1) "
                    "ON CONFLICT DO NOTHING",
                            [first_post, incident])
        return incident

    def add_to_incident(self, incident_id: int, post_id: int, similarity: float) -> None:
        self._x("INSERT INTO incident_posts (post_id, incident_id, similarity) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                        [post_id, incident_id, similarity])

    def grow_incident(self, incident_id: int, post_id: int) -> None:
        """Count a member just added: size, authors (a new one only if no other member post is theirs), first and
        last seen. Constant work whatever the incident's size (the author check starts from the author's posts)."""
        self._x("""UPDATE incidents SET
                     size = size + 1,
                     authors = authors + CASE WHEN EXISTS (
                         SELECT 1 FROM posts mine JOIN posts other ON other.author_id = mine.author_id
                         JOIN incident_posts ip ON ip.post_id = other.id
                         WHERE mine.id = ? AND other.id != mine.id AND ip.incident_id = incidents.id)
                       THEN 0 ELSE 1 END,
                     first_seen = CASE WHEN (SELECT created_at FROM posts WHERE id = ?) < first_seen
                                  THEN (SELECT created_at FROM posts WHERE id = ?) ELSE first_seen END,
                     last_seen = CASE WHEN (SELECT created_at FROM posts WHERE id = ?) > last_seen
                                 THEN (SELECT created_at FROM posts WHERE id = ?) ELSE last_seen END
                   WHERE id = ?""", [post_id, post_id, post_id, post_id, post_id, incident_id])

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        allowed = {"size", "authors", "first_seen", "last_seen", "representative_post_id", "title"}
        if set(fields) - allowed:
            raise ValueError(f"unknown incident fields {set(fields) - allowed}")
        self._x(f"UPDATE incidents SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                        [*fields.values(), incident_id])

    def incident(self, incident_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM incidents WHERE id = ?", [incident_id])
        if row is None:
            raise NotFound(f"no incident with id {incident_id}", "`taiwa incidents` lists them")
        return row

    def incidents(self, *, min_size: int = 2, limit: int = 50) -> list[dict[str, Any]]:
        """Incidents, most recently active first, with how many of their drafts still wait for a person."""
        return self._rows(
            """SELECT i.*, (SELECT count(*) FROM incident_posts ip JOIN actions ac ON ac.post_id = ip.post_id
                            WHERE ip.incident_id = i.id AND ac.kind = 'reply' AND ac.state = 'pending') AS open
               FROM incidents i WHERE i.size >= ? ORDER BY i.last_seen DESC, i.id DESC LIMIT ?""",
            [min_size, limit])

    def incident_members(self, incident_id: int) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT ip.post_id, ip.similarity, p.author_id, p.created_at, p.text, p.platform, a.handle
               FROM incident_posts ip JOIN posts p ON p.id = ip.post_id JOIN authors a ON a.id = p.author_id
               WHERE ip.incident_id = ? ORDER BY p.created_at, p.id""", [incident_id])

    def incident_actions(self, incident_id: int) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT ac.id, ac.kind, ac.state, ac.text, ac.version, a.handle, a.name AS author_name, p.id AS post_id,
                      p.lang
               FROM incident_posts ip JOIN actions ac ON ac.post_id = ip.post_id JOIN posts p ON p.id = ip.post_id
               JOIN authors a ON a.id = p.author_id WHERE ip.incident_id = ? ORDER BY p.created_at, ac.id""",
            [incident_id])
