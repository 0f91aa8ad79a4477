"""Workers sharing one database: stream leases, claimed chunks, singleton jobs (store level, on both backends
where SQLite behaves the same; the PostgreSQL-only parts on a real server)."""

import datetime as dt

import pytest

from taiwa.errors import LeaseLost, TaiwaError
from taiwa.listeners.base import Author, Post
from taiwa.store import Store

from .conftest import T0

NOW = dt.datetime.now(dt.timezone.utc)


def posts(n: int, start: int = 0) -> list[Post]:
    return [Post("x", str(i), Author(str(i % 7), f"u{i % 7}"), f"post {i}", T0) for i in range(start, start + n)]


def test_streams_are_shared_fairly_renewed_and_taken_over_after_expiry(store):
    names = ["replay:a", "replay:b", "replay:c", "replay:d"]
    store.register_worker("w1", "h", 1, ["listen:replay"], now=NOW)
    assert store.claim_streams("w1", names, lease_seconds=60, now=NOW) == names      # alone: everything
    store.register_worker("w2", "h", 2, ["listen:replay"], now=NOW)
    # w2 joined: w1's share is now two; it gives two back on its next pass, and w2 takes them.
    assert store.claim_streams("w2", names, lease_seconds=60, now=NOW) == []         # all still held
    assert store.claim_streams("w1", names, lease_seconds=60, now=NOW) == names[:2]
    assert store.claim_streams("w2", names, lease_seconds=60, now=NOW) == names[2:]
    # w1 dies (no heartbeat, no renewal). Within its lease nobody may take its streams...
    later = NOW + dt.timedelta(seconds=30)
    store.worker_heartbeat("w2", lease_seconds=60, now=later)
    assert store.claim_streams("w2", names, lease_seconds=60, now=later) == names[2:]
    # ...once the lease expired, w2 (now the only live worker) takes them over.
    much_later = NOW + dt.timedelta(seconds=90)
    store.worker_heartbeat("w2", lease_seconds=60, now=much_later)
    assert store.claim_streams("w2", names, lease_seconds=60, now=much_later) == names
    held = {r["name"]: r["worker"] for r in store.leases()}
    assert held == dict.fromkeys(names, "w2")
    live = {w["id"]: w for w in store.workers(stale_after=60, now=much_later)}
    assert live["w2"]["alive"] and not live["w1"]["alive"] and live["w2"]["leases"] == names
    # A clean stop frees the leases at once.
    store.unregister_worker("w2")
    store.register_worker("w3", "h", 3, [], now=much_later)
    assert store.claim_streams("w3", names, lease_seconds=60, now=much_later) == names


def test_a_worker_that_lost_its_lease_cannot_store_or_move_the_cursor(store):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=120)
    store.register_worker("w1", "h", 1, [], now=old)
    assert store.claim_streams("w1", ["s"], lease_seconds=60, now=old) == ["s"]
    store.register_worker("w2", "h", 2, [])
    assert store.claim_streams("w2", ["s"], lease_seconds=60) == ["s"]       # w1's lease ran out
    with pytest.raises(LeaseLost, match="w2"):
        store.ingest(posts(5), listener="s", cursor="5", lease=("w1", 60))
    assert store.count("posts") == 0 and store.cursor("s") is None            # nothing of w1's batch landed
    store.ingest(posts(5), listener="s", cursor="5", lease=("w2", 60))
    assert store.count("posts") == 5 and store.cursor("s") == "5"


def test_a_live_lease_is_renewed_by_each_batch(store):
    store.register_worker("w1", "h", 1, [])
    store.claim_streams("w1", ["s"], lease_seconds=5)
    before = store.leases()[0]["expires_at"]
    store.ingest(posts(2), listener="s", cursor="2", lease=("w1", 600))
    assert store.leases()[0]["expires_at"] > before


def test_sqlite_runs_every_job_here_without_contention(tmp_path):
    s = Store(tmp_path / "t.db")
    s.ingest(posts(4), listener="t", cursor=None)
    with s.claim_unclassified(10) as rows, s.singleton("digest") as mine:
        assert [r["text"] for r in rows] == [f"post {i}" for i in range(4)] and mine
    s.close()


# ---------------------------------------------------------------------------------------------- PostgreSQL only
def test_two_workers_never_claim_the_same_posts(pg_url):
    a, b = Store(pg_url), Store(pg_url)
    try:
        a.ingest(posts(10), listener="t", cursor=None)
        with a.claim_unclassified(4) as first:
            with b.claim_unclassified(4) as second:
                assert not {r["id"] for r in first} & {r["id"] for r in second}
                assert len(first) == len(second) == 4
            from taiwa.models.sentiment import Sentiment

            s = Sentiment("neutral", {"negative": 0.1, "neutral": 0.8, "positive": 0.1}, "test")
            a.save_sentiments((r["id"], s) for r in first)
        # a's chunk is classified and b's released: the next claim gets only what is left unclassified
        with b.claim_unclassified(10) as rest:
            assert len(rest) == 6 and not {r["id"] for r in rest} & {r["id"] for r in first}
    finally:
        a.close()
        b.close()


def test_a_dead_workers_chunk_is_free_again(pg_url):
    a, b = Store(pg_url), Store(pg_url)
    try:
        a.ingest(posts(6), listener="t", cursor=None)
        claim = a.claim_unclassified(6)
        held = claim.__enter__()
        with b.claim_unclassified(6) as none:
            assert held and none == []
        # the worker's process dies: its connection goes, and the server rolls its transaction back (the timeout
        # makes the call wait until that backend has gone, so its row locks are released before the next claim)
        assert b._scalar("SELECT pg_terminate_backend(?, 10000)", [a.conn.info.backend_pid])
        with b.claim_unclassified(6) as taken:
            assert [r["id"] for r in taken] == [r["id"] for r in held]
    finally:
        b.close()


def test_singleton_jobs_run_on_one_worker_at_a_time(pg_url):
    a, b = Store(pg_url), Store(pg_url)
    try:
        with a.singleton("digest") as mine:
            with b.singleton("digest") as theirs, b.singleton("followups") as other_job:
                assert mine and not theirs and other_job
        with b.singleton("digest") as theirs_now:
            assert theirs_now
    finally:
        a.close()
        b.close()


def test_workers_need_postgresql_and_a_lone_daemon_excludes_them(cfg, tmp_path, pg_url):
    from taiwa.scheduler import Daemon, DaemonRunning

    with pytest.raises(TaiwaError, match="PostgreSQL"):
        Daemon(cfg, worker=True, jobs=["process"]).start()
    cfg.sections["taiwa"]["database"] = pg_url
    s = Store(pg_url)
    try:
        s.register_worker("other:1:abc", "other", 1, ["process"])
        with pytest.raises(DaemonRunning, match="worker"):
            Daemon(cfg, jobs=["process"]).start()
        s.forget_worker("other:1:abc")
        s.acquire_lock(99, "elsewhere", stale_after=dt.timedelta(seconds=90))
        with pytest.raises(DaemonRunning, match="alone"):
            Daemon(cfg, worker=True, jobs=["process"]).start()
    finally:
        s.close()


def test_the_monthly_x_budget_is_never_overspent_by_concurrent_workers(store):
    """Twelve workers reserve a page of 10 reads each at once from a budget of 50: exactly five get theirs."""
    import threading

    from taiwa.errors import ListenerPaused
    from taiwa.listeners.x import Budget

    got, paused, barrier = [], [], threading.Barrier(12)

    def worker() -> None:
        s = Store(store.database)
        try:
            barrier.wait()
            got.append(Budget(s, reads=50, writes=5).reserve_read(10))
        except ListenerPaused:
            paused.append(1)
        finally:
            s.close()

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 5 and len(paused) == 7 and store.usage("x")["reads"] == 50
    Budget(store, reads=50, writes=5).release_read(got[0])      # a failed request gives its page back
    assert store.usage("x")["reads"] == 40


def test_status_and_workers_list_who_holds_what(pg_url, tmp_path):
    import subprocess
    import sys

    s = Store(pg_url)
    s.register_worker("box1:41:aa11", "box1", 41, ["listen:replay", "process"])
    s.claim_streams("box1:41:aa11", ["replay:/data/a.jsonl"], lease_seconds=60)
    s.close()
    assert subprocess.run([sys.executable, "-m", "taiwa", "init", "taiwa.toml"], cwd=tmp_path).returncode == 0
    for verb in ("workers", "status"):
        r = subprocess.run([sys.executable, "-m", "taiwa", "--db", pg_url, verb], capture_output=True, text=True,
                           cwd=tmp_path, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        assert "box1:41:aa11" in r.stdout and "replay:/data/a.jsonl" in r.stdout and "yes" in r.stdout
