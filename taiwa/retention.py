"""Retention: what taiwa stops keeping, and when. `[retention]` in taiwa.toml, run daily by the daemon (and by
`taiwa prune`):

    raw_days      the platforms' raw JSON of each post is cleared after this many days (0: kept)
    nothing_days  posts that led to nothing (no draft, no campaign entry, no incident) are deleted after this many
                  days (0: kept)

Campaign figures over time (snapshots), the audit log and everything a draft, a report or an incident stands on are
kept whatever their age.

Ages are counted from the newest post stored (or the clock, if it is earlier): a clock that jumps ahead (a wrong
host clock, a restored snapshot, a test run at another date) must not delete data that is only "old" by that
clock, and a taiwa that read nothing for a year keeps what it has. `taiwa prune --dry-run` says what would go.
"""

from __future__ import annotations

import datetime as dt

from .config import Config
from .store import Store, now_iso


SLACK = dt.timedelta(days=1)


def anchor(store: Store, now: dt.datetime) -> dt.datetime:
    """The instant ages are counted from: now, or the newest stored post (plus a day) if that is earlier."""
    newest = store.latest_post_time()
    return min(now, newest + SLACK) if newest else now


def prune(store: Store, config: Config, *, now: dt.datetime | None = None, dry_run: bool = False
          ) -> dict[str, int | str]:
    now = now or store.clock()
    r = config.sections["retention"]
    base = anchor(store, now)
    out: dict[str, int | str] = dict(store.prune(
        raw_before=now_iso(base - dt.timedelta(days=r["raw_days"])) if r["raw_days"] else None,
        nothing_before=now_iso(base - dt.timedelta(days=r["nothing_days"])) if r["nothing_days"] else None,
        dry_run=dry_run))
    out["counted_from"] = now_iso(base)
    if base < now - SLACK:
        out["note"] = (f"the clock ({now:%Y-%m-%d %H:%M}) is ahead of the newest post stored "
                       f"({base - SLACK:%Y-%m-%d %H:%M}); ages were counted from the newest post")
    return out
