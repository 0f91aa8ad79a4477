"""One database shared the way taiwa is deployed: the daemon, the inbox and CLI commands in separate processes,
each keeping a long-lived connection while it opens and closes other Stores (one per job, request or command).

The corruption this guards against: opening the database file outside SQLite (Python's open() to look at its
header) and closing that descriptor drops every POSIX lock the process holds on the file, including the locks of
its other live SQLite connections. Another process then writes under them and the file is damaged ("disk I/O
error", then "database disk image is malformed").

Duration: TAIWA_SOAK_SECONDS (default 6 s per test here; `TAIWA_SOAK_SECONDS=600 pytest tests/reliability -k shared`
is the long run documented in the README)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from taiwa.store import Store

SECONDS = float(os.environ.get("TAIWA_SOAK_SECONDS", "6"))

# One process: a long-lived Store that keeps writing, and a short-lived Store opened and closed between writes,
# exactly as a daemon job or a web request does beside the process's main connection.
CHURN = r"""
import datetime as dt, sys, time
from taiwa.store import Store
from taiwa.listeners.base import Author, Post

db, tag, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
keep = Store(db)
deadline = time.monotonic() + seconds
i = errors = 0
while time.monotonic() < deadline:
    i += 1
    try:
        with keep.atomic():
            keep.record_run(f"{tag}-main", f"write {i}")
            keep.ingest([Post(platform="replay", platform_id=f"{tag}-{i}", author=Author(f"{tag}", tag),
                              text=f"post {i} from {tag} " + "x" * (i % 300),
                              created_at=dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc))],
                        listener=f"churn:{tag}", cursor=str(i))
        for _ in range(2):
            short = Store(db)                   # a job / request / command opens its own Store...
            short.record_run(f"{tag}-short", f"job {i}")
            short.count("posts")
            short.close()                       # ...and closes it while `keep` is still live
    except Exception as e:                      # noqa: BLE001 - counted and reported by the test
        errors += 1
        print(f"{tag}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        if errors > 20:
            break
print(f"{tag} {i} {errors}", flush=True)
"""


def _integrity(db: Path) -> str:
    s = Store(db, migrate=False)
    try:
        return s._scalar("PRAGMA integrity_check")
    finally:
        s.close()


def test_processes_opening_and_closing_stores_beside_a_live_writer_never_corrupt_the_file(tmp_path):
    db = tmp_path / "shared.db"
    Store(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", CHURN, str(db), tag, str(SECONDS)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("daemon", "inbox", "cli")]
    results = [p.communicate(timeout=SECONDS + 120) for p in procs]
    errors = [err for _, err in results if err.strip()]
    assert not errors, "writers saw errors:\n" + "\n".join(e[-2000:] for e in errors)
    assert _integrity(db) == "ok"
    s = Store(db)
    writes = {tag: int(n) for tag, n, _ in (out.split() for out, _ in results)}
    for tag, n in writes.items():
        stored = s._scalar("SELECT count(*) FROM posts WHERE platform_id LIKE ?", [f"{tag}-%"])
        assert stored == n, f"{tag} wrote {n} posts, {stored} are stored"
    s.close()
    print(f"{SECONDS:.0f} s, writes per process {writes}: integrity_check ok, every write stored")


def test_a_file_that_is_not_a_database_is_refused_by_sqlite_with_a_clear_error(tmp_path):
    from taiwa.errors import StoreError

    bogus = tmp_path / "notes.db"
    bogus.write_text("these are my notes, not a database\n" * 10)
    try:
        Store(bogus)
    except StoreError as e:
        assert "is not a SQLite database" in e.message and str(bogus) in e.message
    else:
        raise AssertionError("a text file was opened as a database")
    assert bogus.read_text().startswith("these are my notes")   # untouched
