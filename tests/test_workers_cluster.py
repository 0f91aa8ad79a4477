"""Three `taiwa run --worker` processes on one PostgreSQL database replay 30,000 posts split into six streams;
one worker is SIGKILLed midway. Every post is stored once, classified once, ranked once; no action is sent
twice; the dead worker's streams are taken over and finished by the others."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from taiwa.responders import approval
from taiwa.store import Store

from .conftest import record, write_jsonl
from .support.worker import write_config
from tests.support.waiting import pause

POSTS, STREAMS = 30_000, 6
INTERVALS = {"listen:replay": 0.2, "process": 0.2, "send": 0.3, "heartbeat": 0.3}
ROOT = Path(__file__).resolve().parents[1]


def text(i: int) -> str:
    """Mostly chatter that needs nothing from the brand; one post in 25 a complaint (a reply draft), one in 25
    praise (a like)."""
    if i % 25 == 0:
        return f"@acme my order {i} arrived broken, please help"
    if i % 25 == 12:
        return f"love the new @acme kettle, thanks {i}"
    return f"nice weather for a cup of tea today, number {i}"


def write_streams(folder: Path) -> list[Path]:
    paths = []
    for s in range(STREAMS):
        recs = [record(i, text(i), handle=f"c{i % 4000}", hours=i / 3600) for i in range(s, POSTS, STREAMS)]
        paths.append(write_jsonl(folder / f"stream{s}.jsonl", recs))
    return paths


def install_classification_log(store: Store) -> None:
    """Every write of a post's sentiment (insert or update) leaves a row: 'classified once' is counted by the
    database itself, whatever the workers believe they did."""
    store._x("CREATE TABLE classified_log (post_id BIGINT NOT NULL, op TEXT NOT NULL)")
    store._x("""CREATE FUNCTION log_classified() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO classified_log VALUES (NEW.post_id, TG_OP); RETURN NEW; END $$""")
    store._x("""CREATE TRIGGER classified_log AFTER INSERT OR UPDATE ON sentiments
                FOR EACH ROW EXECUTE FUNCTION log_classified()""")


def start_worker(toml: Path, folder: Path, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.support.worker", str(toml), json.dumps(INTERVALS)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(folder / f"worker{n}.err", "wb"))


def approve_waiting(store: Store) -> int:
    n = 0
    for a in store.actions_in_state("pending"):
        try:
            approval.approve(store, a["id"], actor="tester")
            n += 1
        except Exception:   # noqa: BLE001 - merged or changed by a worker meanwhile; the next pass sees it
            pass
    return n


def test_three_workers_share_the_work_and_survive_a_kill(pg_url, tmp_path):
    streams = write_streams(tmp_path)
    toml = write_config(tmp_path, pg_url, streams, "Acme", daemon={"lease_seconds": 3, "lock_stale_seconds": 5})
    store = Store(pg_url)
    install_classification_log(store)
    workers = [start_worker(toml, tmp_path, n) for n in range(3)]
    victim, victim_id, victim_streams = None, "", []
    deadline = time.monotonic() + 420
    try:
        while time.monotonic() < deadline:
            if any(w.poll() is not None for w in workers if w is not victim):
                raise AssertionError("a worker exited: " + " | ".join(
                    (tmp_path / f"worker{n}.err").read_text()[-2000:] for n in range(3)))
            if victim is None and store.count("posts") >= POSTS // 3:
                holding = [w for w in store.workers(stale_after=5) if w["leases"]]
                if holding:   # kill a worker that is reading streams right now, without warning
                    chosen = holding[0]
                    victim = next(w for w in workers if w.pid == chosen["pid"])
                    victim_id, victim_streams = chosen["id"], chosen["leases"]
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
            approve_waiting(store)
            done = (store.count("posts") == POSTS and store.count("priorities") == POSTS
                    and not store.actions_in_state("pending") and not store.actions_in_state("approved"))
            if done and victim is not None:
                break
            pause(0.2)
        else:
            raise AssertionError(f"not finished: {store.count('posts')} posts, {store.count('sentiments')} "
                                 f"classified, {store.count('priorities')} ranked, queues {store.queue_sizes()}")
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)

    assert victim is not None and victim_streams
    # stored once: 30,000 rows, and the streams' cursors counted each batch once (a batch the dead worker read
    # but never committed was read again by the stream's new holder; nothing was committed twice)
    assert store.count("posts") == POSTS
    cursors = {c["listener"]: c for c in store.cursors()}
    assert len(cursors) == STREAMS and sum(c["posts_read"] for c in cursors.values()) == POSTS
    # classified once: one sentiment write per post, counted by the database's trigger
    writes = collections.Counter(r["post_id"] for r in store._rows("SELECT post_id FROM classified_log"))
    assert len(writes) == POSTS and set(writes.values()) == {1}
    # sent at most once: one outbox line per action, one `sent` transition per action in the audit log
    lines = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    per_action = collections.Counter(r["action_id"] for r in lines)
    assert lines and max(per_action.values()) == 1
    sent_audit = collections.Counter(r["action_id"] for r in store._rows(
        "SELECT action_id FROM audit WHERE event = 'state:sent'"))
    assert max(sent_audit.values()) == 1 and set(sent_audit) <= set(per_action)
    # A worker killed between writing its outbox line and recording it leaves that action for a person
    # (needs_check, or sending until the lease runs out): written once, never sent again.
    unsettled = set(per_action) - set(sent_audit)
    assert all(store.action(a)["state"] in ("needs_check", "sending") for a in unsettled)
    # the dead worker's streams were taken over and read to the end by the others
    leases = {r["name"]: r for r in store.leases()}
    assert all(leases[s]["worker"] != victim_id for s in victim_streams)
    alive = {w["id"]: w for w in store.workers(stale_after=5)}
    assert victim_id in alive and not alive[victim_id]["alive"]     # left behind, shown as not alive
    store.close()
