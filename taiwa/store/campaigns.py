"""Hashtag campaigns, their entries, snapshots and inbox alerts."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from ..errors import NotFound


class CampaignsMixin:
    # ---------------------------------------------------------------- campaigns
    def sync_campaigns(self, campaigns: Sequence[Any]) -> None:
        with self.atomic():
            for c in campaigns:
                self._x(
                    """INSERT INTO campaigns (name, hashtags, start, "end", platforms, goals)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (name) DO UPDATE SET hashtags = excluded.hashtags, start = excluded.start,
                           "end" = excluded."end", platforms = excluded.platforms, goals = excluded.goals""",
                    [c.name, json.dumps(c.hashtags, ensure_ascii=False), c.start.isoformat(), c.end.isoformat(),
                     json.dumps(c.platforms), json.dumps(c.goals)])

    def add_campaign_entries(self, rows: Iterable[tuple[str, int, str]]) -> None:
        with self.atomic():
            self._xmany(
                "INSERT INTO campaign_posts (campaign, post_id, hashtag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", list(rows))

    def campaign_summary(self, own_handles: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Entries per campaign: originals only, without spam and without the brand's own accounts' posts."""
        own = sorted({h.lower() for h in own_handles})
        marks = ",".join("?" * len(own)) or "NULL"
        return self._rows(
            f"""SELECT c.name, count(p.id) AS entries, count(DISTINCT p.author_id) AS participants,
                      sum(CASE WHEN s.label = 'positive' THEN 1 ELSE 0 END) AS positive,
                      sum(CASE WHEN s.label = 'negative' THEN 1 ELSE 0 END) AS negative
               FROM campaigns c LEFT JOIN campaign_posts cp ON cp.campaign = c.name
               LEFT JOIN posts p ON p.id = cp.post_id AND p.is_repost = 0
                   AND NOT EXISTS (SELECT 1 FROM priorities pr WHERE pr.post_id = cp.post_id AND pr.intent = 'spam')
                   AND NOT EXISTS (SELECT 1 FROM authors a WHERE a.id = p.author_id AND lower(a.handle) IN ({marks}))
               LEFT JOIN sentiments s ON s.post_id = p.id
               GROUP BY c.name ORDER BY c.name""", own)

    def campaign_entries(self, campaign: str) -> list[dict[str, Any]]:
        """Every post that entered the campaign (originals and reposts), with author, sentiment and whether the
        team reacted (an action sent) or has one waiting."""
        return self._rows(
            """SELECT p.id, p.platform, p.platform_id, p.text, p.created_at, p.url, p.is_repost, p.likes, p.reposts,
                      p.replies, p.author_id, a.handle, a.followers, s.label, cp.hashtag, pr.intent,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id AND ac.state = 'sent') AS reacted,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id
                              AND ac.state IN ('pending', 'approved')) AS reaction_waiting
               FROM campaign_posts cp JOIN posts p ON p.id = cp.post_id JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE cp.campaign = ? ORDER BY p.created_at, p.id""", [campaign])

    def first_post_times(self, author_ids: Sequence[str]) -> dict[str, str]:
        if not author_ids:
            return {}
        marks = ",".join("?" * len(author_ids))
        return {r["author_id"]: r["first"] for r in self._rows(
            f"SELECT author_id, min(created_at) AS first FROM posts WHERE author_id IN ({marks}) GROUP BY author_id",
            list(author_ids))}

    def raise_alert(self, kind: str, subject: str, window_start: str, detail: str) -> bool:
        """Record an alert once per (kind, subject, window); True when it is new."""
        cur = self._x(
            """INSERT INTO alerts (kind, subject, window_start, detail, created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""", [kind, subject, window_start, detail, self.stamp()])
        return cur.rowcount == 1

    def alerts(self, state: str | None = "open") -> list[dict[str, Any]]:
        if state is None:
            return self._rows("SELECT * FROM alerts ORDER BY window_start DESC, id DESC")
        return self._rows("SELECT * FROM alerts WHERE state = ? ORDER BY window_start DESC, id DESC", [state])

    def acknowledge_alert(self, alert_id: int, actor: str) -> None:
        with self.atomic():
            cur = self._x("UPDATE alerts SET state = 'acknowledged', acknowledged_by = ? WHERE id = ? "
                                  "AND state = 'open'", [actor, alert_id])
            if cur.rowcount != 1:
                raise NotFound(f"no open alert with id {alert_id}", "`taiwa inbox` lists the open alerts")
            self._audit(actor, None, "alert_acknowledged", "open", "acknowledged", f"alert {alert_id}")
