"""End to end: replayed posts through listen → classify → triage (topics, intent, rules, incidents, drafts with
answers, memory and conversations), on the demo's configuration, with the time of each stage and peak RSS.

    python bench/e2e.py                 # 5,000 posts
    python bench/e2e.py --posts 100000  # the fp32 default: 14.3 minutes on 2 cores (README)
    python bench/e2e.py --posts 100000 --int8   # [model] int8 = true: 8.4 minutes (the goal: under 10)

The posts are the demo corpus's texts (English and Japanese) given new ids, new authors (one in eight writes
again, so memory and conversations are exercised) and times spread over two weeks. Prints posts/s per stage and
overall, and what 100,000 posts would take at that rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import peak_rss_mib  # noqa: E402

from taiwa import config as config_mod  # noqa: E402
from taiwa import pipeline  # noqa: E402
from taiwa.listeners.replay import ReplayListener  # noqa: E402
from taiwa.models.sentiment import load_model  # noqa: E402
from taiwa.store import Store  # noqa: E402

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def make_file(path: Path, n: int, seed: int = 7) -> None:
    corpus = [json.loads(line) for line in resources.files("taiwa").joinpath("data/sample_posts.jsonl")
              .read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    authors = max(1, n * 7 // 8)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            src = rng.choice(corpus)
            who = rng.randrange(authors)
            rec = {**src, "id": f"e2e{i}", "created_at": (T0 + dt.timedelta(seconds=i * 1209600 / n)).isoformat(),
                   "author": {**src["author"], "id": f"a{who}", "handle": f"user_{who}", "name": f"user_{who}"}}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--int8", action="store_true", help="[model] int8 = true (e5 in int8 too)")
    ap.add_argument("--no-cascade", action="store_true", help="[model] cascade = false (both heads on every post)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="taiwa-e2e-"))
    cfg = config_mod.sample_config(work)
    path = work / "posts.jsonl"
    make_file(path, args.posts)
    store = Store(cfg.database)
    times = {}
    t = time.perf_counter()
    pipeline.listen(store, [ReplayListener(path)])
    times["listen"] = time.perf_counter() - t
    t = time.perf_counter()
    model = load_model("default", int8=args.int8, cascade=not args.no_cascade)
    times["load model"] = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.classify(store, model)
    times["classify"] = time.perf_counter() - t
    t = time.perf_counter()
    report = pipeline.triage(store, cfg, now=T0 + dt.timedelta(days=14))
    times["triage + draft"] = time.perf_counter() - t
    n = args.posts
    total = sum(v for k, v in times.items() if k != "load model")
    for k, v in times.items():
        rate = f"{n / v:10.1f} posts/s" if k != "load model" else ""
        print(f"{k:>15}: {v:8.1f} s {rate}")
    print(f"{'end to end':>15}: {total:8.1f} s {n / total:10.1f} posts/s (model load apart); peak RSS "
          f"{peak_rss_mib():.0f} MiB")
    print(f"drafts {report.drafts}, merged into open conversations {report.merged}, likes {report.likes}, "
          f"incident posts {report.incident_posts}")
    route = model.english
    print(f"model: int8 {args.int8}, cascade {not args.no_cascade} (MiniLM read {route.routed} of {route.seen} "
          f"Latin-script posts)")
    print(f"100,000 posts at this rate: {100_000 / (n / total) / 60:.1f} minutes")
    store.close()


if __name__ == "__main__":
    main()
