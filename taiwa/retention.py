"""Retention: what taiwa stops keeping, and when. `[retention]` in taiwa.toml, run daily by the daemon (and by
`taiwa prune`):

    raw_days      the platforms' raw JSON of each post is cleared after this many days (0: kept)
    nothing_days  posts that led to nothing (no draft, no campaign entry, no incident) are deleted after this many
                  days (0: kept)

Campaign figures over time (snapshots), the audit log and everything a draft, a report or an incident stands on are
kept whatever their age.
"""

from __future__ import annotations

import datetime as dt

from .config import Config
from .store import Store, now_iso


def prune(store: Store, config: Config, *, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or store.clock()
    r = config.sections["retention"]
    return store.prune(raw_before=now_iso(now - dt.timedelta(days=r["raw_days"])) if r["raw_days"] else None,
                       nothing_before=now_iso(now - dt.timedelta(days=r["nothing_days"])) if r["nothing_days"]
                       else None)
