"""Workers on PostgreSQL against one daemon on SQLite: the same replayed posts (six streams), listened,
classified and triaged (with drafts), by `taiwa run` on a SQLite file and by 1, 2 and 3 `taiwa run --worker`
processes sharing a private PostgreSQL server (tests/support/pg.py).

    python bench/workers.py                       # 2,000 posts, the real offline model
    python bench/workers.py --model quick --posts 20000   # a stand-in model: what coordination costs

posts/s counts from the first post classified to the last one triaged (model loading excluded), and prints each
setup's ratio to SQLite with one daemon. Workers add capacity where the work is (classifying) only as far as
there are cores: on a 2-core machine the third worker shares them with the other two and with PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import ROOT  # noqa: E402

from taiwa.store import Store  # noqa: E402
from tests.support.worker import write_config  # noqa: E402

STREAMS = 6


def make_streams(folder: Path, n: int) -> list[Path]:
    """The demo corpus's texts with new ids and authors (one in eight writes again), dealt into six files."""
    import random

    corpus = [json.loads(line) for line in resources.files("taiwa").joinpath("data/sample_posts.jsonl")
              .read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(7)
    authors = max(1, n * 7 // 8)
    files = [open(folder / f"stream{s}.jsonl", "w", encoding="utf-8") for s in range(STREAMS)]
    for i in range(n):
        src, who = rng.choice(corpus), rng.randrange(authors)
        rec = {**src, "id": f"w{i}", "author": {**src["author"], "id": f"a{who}", "handle": f"user_{who}",
                                                 "name": f"user_{who}"}}
        files[i % STREAMS].write(json.dumps(rec, ensure_ascii=False) + "\n")
    for fh in files:
        fh.close()
    return [folder / f"stream{s}.jsonl" for s in range(STREAMS)]


def start(toml: Path, model: str, worker: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if model == "quick":
        cmd = [sys.executable, "-m", "tests.support.worker", str(toml),
               json.dumps({"listen:replay": 0.3, "process": 0.3, "heartbeat": 1})] + ([] if worker else ["--daemon"])
    else:
        cmd = [sys.executable, "-m", "taiwa", "-c", str(toml), "run", "--quiet",
               "--jobs", "listen:replay,process"] + (["--worker"] if worker else [])
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(label: str, database: str, streams: list[Path], folder: Path, n: int, model: str, workers: int) -> float:
    toml = write_config(folder, database, streams, "Kettlebird", replay={"interval_minutes": 0.005},
                        daemon={"process_seconds": 0.3, "heartbeat_seconds": 1})
    procs = [start(toml, model, worker=database.startswith("postgresql")) for _ in range(workers)]
    store = Store(database)
    first = None
    try:
        while True:
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"{label}: a process exited: {p.stderr.read().decode()[-1500:]}")
            if first is None and store.count("sentiments"):
                first = time.perf_counter()
            if store.count("priorities") >= n:
                break
            time.sleep(0.2)
        took = time.perf_counter() - first
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=120)
        store.close()
    rate = n / took
    print(f"{label:<28} {took:7.1f} s   {rate:7.1f} posts/s", flush=True)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--model", choices=("default", "quick"), default="default",
                    help="default: the real offline model; quick: tests/support/worker.py's stand-in")
    args = ap.parse_args()
    from tests.support.pg import Cluster

    work = Path(tempfile.mkdtemp(prefix="taiwa-workers-"))
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
    streams = make_streams(work, args.posts)
    print(f"{args.posts} posts in {STREAMS} streams, model: {args.model}, {os.cpu_count()} cores")
    (work / "s").mkdir()
    rates = {"sqlite": run("SQLite, one daemon", str(work / "s" / "bench.db"), streams, work / "s", args.posts,
                           args.model, 1)}
    cluster = Cluster().start()
    try:
        for k in (1, 2, 3):
            name = f"w{k}"
            cluster.admin(f"CREATE DATABASE {name}")
            (work / name).mkdir()
            rates[name] = run(f"PostgreSQL, {k} worker{'s' if k > 1 else ''}", cluster.url(name), streams,
                              work / name, args.posts, args.model, k)
    finally:
        cluster.stop()
    print()
    for k in (1, 2, 3):
        print(f"{k} worker{'s' if k > 1 else ' '} / SQLite one daemon: {rates[f'w{k}'] / rates['sqlite']:.2f}x")


if __name__ == "__main__":
    main()
