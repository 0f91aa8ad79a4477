"""The demo's data lives in the present: the bundled fortnight of Kettlebird posts, moved so that its newest post
is a few minutes old when `taiwa demo` runs.

`taiwa demo` writes the moved copy (demo-posts.jsonl) beside demo.db; every later `--demo` command reads the same
copy, so the campaigns' dates move by the same amount and ages, deadlines and charts all follow one clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from . import config as config_mod

DEMO_DB, DEMO_OUTBOX, DEMO_POSTS = "demo.db", "demo-outbox.jsonl", "demo-posts.jsonl"
SAMPLE = "taiwa:data/sample_posts.jsonl"
FRESHEST = dt.timedelta(minutes=4)     # how old the newest post is when the demo starts


def _created(line: str) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads(line)["created_at"])


def write_posts(base_dir: Path, now: dt.datetime) -> dt.timedelta:
    """Write demo-posts.jsonl in base_dir: the sample corpus moved so its newest post is FRESHEST old at `now`.
    Returns the shift (whole seconds)."""
    cfg = config_mod.sample_config(base_dir)
    lines = cfg.resolve(SAMPLE).read_text(encoding="utf-8").splitlines()
    newest = max(_created(line) for line in lines if line.strip())
    shift = dt.timedelta(seconds=int((now - FRESHEST - newest).total_seconds()))
    out = []
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        rec["created_at"] = (dt.datetime.fromisoformat(rec["created_at"]) + shift).isoformat()
        out.append(json.dumps(rec, ensure_ascii=False))
    tmp = base_dir / (DEMO_POSTS + ".tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    tmp.replace(base_dir / DEMO_POSTS)
    return shift


def shift_of(base_dir: Path) -> dt.timedelta | None:
    """How far the demo's copy in base_dir was moved, or None when `taiwa demo` has not written one."""
    path = base_dir / DEMO_POSTS
    if not path.exists():
        return None
    cfg = config_mod.sample_config(base_dir)
    with open(cfg.resolve(SAMPLE), encoding="utf-8") as original, open(path, encoding="utf-8") as moved:
        first, first_moved = original.readline(), moved.readline()
    try:
        return _created(first_moved) - _created(first)
    except (ValueError, KeyError):
        return None


def config(base_dir: Path) -> config_mod.Config:
    """The demo's configuration: the sample taiwa.toml with demo.db, demo-outbox.jsonl and, once `taiwa demo`
    has run here, its moved posts and campaigns."""
    cfg = config_mod.sample_config(base_dir)
    cfg.sections["taiwa"]["database"] = DEMO_DB
    cfg.sections["taiwa"]["outbox"] = DEMO_OUTBOX
    shift = shift_of(base_dir)
    if shift is not None:
        cfg.sections["platforms.replay"]["paths"] = [DEMO_POSTS]
        # Campaign days move by the posts' whole days; the rest of the shift moves where those days begin, so
        # every entry stays on the campaign day it was written for.
        days = dt.timedelta(days=round(shift.total_seconds() / 86400))
        cfg.campaigns = [dataclasses.replace(c, start=c.start + days, end=c.end + days, day_offset=shift - days)
                         for c in cfg.campaigns]
    return cfg
