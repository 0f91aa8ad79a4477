"""Ingest benchmark: batched upserts vs. row-by-row inserts, and memory while replaying a large file.

    python bench/ingest.py                      # 100k posts for the ratio, 1M for the memory curve
    python bench/ingest.py --posts 20000 --replay 200000   # quicker

1. The same N replayed posts go into three fresh databases: through Store.ingest in batches of 1,000 (one
   transaction per batch, executemany upserts, WAL); through Store.ingest one post at a time (batching
   alone); and through a naive loop of sqlite-utils upserts on a default-settings database, one durable
   commit per post (what a first version does). Prints posts/s for each and both ratios (goal ≥ 20×).
2. A JSONL file of M posts is replayed through the real ReplayListener into a store, in a child process,
   printing peak RSS at 10%, 50% and 100% of the file (goal: flat, not growing with the input).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import peak_rss_mib  # noqa: E402

from taiwa.listeners.replay import ReplayListener  # noqa: E402
from taiwa.store import Store  # noqa: E402

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
WORDS = "the mug kettle grinder arrived cracked love morning coffee refund late great app crashed beans".split()


def make_file(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12)) + f" #{'tag%d' % (i % 50)}"
            fh.write(json.dumps({"id": str(i), "platform": "x", "text": text,
                                 "created_at": (T0 + dt.timedelta(seconds=i * 13)).isoformat(),
                                 "author": {"id": str(i % 20000), "handle": f"user{i % 20000}",
                                            "followers": (i * 37) % 50000}, "likes": i % 17}) + "\n")


def read_posts(path: Path) -> list:
    posts = []
    for batch in ReplayListener(path).read(None):
        posts += batch.posts
    return posts


def naive_insert(posts: list, path: Path) -> None:
    """What a first version looks like: sqlite-utils upserts, one post at a time, on a default-settings database
    (rollback journal, synchronous=FULL: every post is its own durable commit)."""
    from sqlite_utils import Database

    db = Database(path)
    for p in posts:
        db["authors"].upsert({"id": f"{p.platform}:{p.author.platform_id}", "handle": p.author.handle,
                              "name": p.author.name, "followers": p.author.followers}, pk="id")
        db["posts"].upsert({"platform": p.platform, "platform_id": p.platform_id, "text": p.text,
                            "author_id": f"{p.platform}:{p.author.platform_id}",
                            "created_at": p.created_at.isoformat(), "likes": p.likes,
                            "hashtags": json.dumps(p.hashtags), "raw": json.dumps(p.raw)},
                           pk=("platform", "platform_id"))
    assert db["posts"].count == len(posts)


def bench_ratio(n: int, tmp: Path) -> None:
    src = tmp / "posts.jsonl"
    make_file(src, n)
    posts = read_posts(src)
    batched = Store(tmp / "batched.db")
    t = time.perf_counter()
    for i in range(0, len(posts), 1000):
        batched.ingest(posts[i:i + 1000], listener="bench", cursor=str(i))
    t_batched = time.perf_counter() - t
    one = Store(tmp / "one.db")
    t = time.perf_counter()
    for i, p in enumerate(posts):
        one.ingest([p], listener="bench", cursor=str(i))
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    naive_insert(posts, tmp / "naive.db")
    t_naive = time.perf_counter() - t
    assert batched.count("posts") == one.count("posts") == n
    print(f"ingest {n:,} posts (same posts, fresh databases):")
    print(f"  taiwa batched upserts (1,000 a transaction, WAL): {n / t_batched:9,.0f} posts/s ({t_batched:6.1f}s)")
    print(f"  taiwa Store, one post a transaction (WAL):       {n / t_one:9,.0f} posts/s ({t_one:6.1f}s)")
    print(f"  naive row-by-row sqlite-utils upserts (defaults): {n / t_naive:9,.0f} posts/s ({t_naive:6.1f}s)")
    print(f"  → {t_naive / t_batched:.0f}× the naive row-by-row peer (goal ≥ 20×); "
          f"batching alone, same store and SQL: {t_one / t_batched:.1f}×")


def child_replay(path: str, db: str, total: int) -> None:
    store = Store(db)
    done, marks = 0, {int(total * 0.1), int(total * 0.5), total}
    for batch in ReplayListener(path).read(None):
        store.ingest(batch.posts, listener="bench", cursor=batch.cursor)
        before = done
        done += len(batch.posts)
        for m in sorted(marks):
            if before < m <= done:
                rss = peak_rss_mib()
                print(f"  after {done:>9,} posts: peak RSS {rss:6.1f} MiB", flush=True)


def bench_memory(m: int, tmp: Path) -> None:
    src = tmp / "big.jsonl"
    make_file(src, m)
    size = src.stat().st_size / 2 ** 20
    print(f"replay {m:,} posts ({size:,.0f} MiB JSONL) through ReplayListener into a store:")
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--child", str(src), str(tmp / "big.db"), str(m)], check=True)
    print(f"  {m / (time.perf_counter() - t):,.0f} posts/s end to end")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_replay(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--replay", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        bench_ratio(args.posts, Path(d))
        bench_memory(args.replay, Path(d))


if __name__ == "__main__":
    main()
