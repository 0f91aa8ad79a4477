"""The daemon: real APScheduler jobs on the replay listener, the lock, signals, kill -9, follow-ups."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from taiwa.errors import TaiwaError
from taiwa.listeners.replay import ReplayListener
from taiwa.pipeline import listen
from taiwa.responders import approval, followups, senders
from taiwa.scheduler import Daemon, DaemonRunning
from taiwa.store import Store

from .conftest import T0, record, write_jsonl
from tests.support.waiting import pause


def wait_for(condition, timeout=60.0):
    """Poll a condition on real state (a database) until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        pause(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def dcfg(cfg, tmp_path):
    posts = [record(1, "@kettlebird my mug arrived cracked", handle="a"),
             record(2, "Sunrise coffee #MyKettleMorning so happy", handle="b"),
             record(3, "Is the Shibuya store open on Sunday?", handle="c")]
    cfg.sections["platforms.replay"]["paths"] = [str(write_jsonl(tmp_path / "in.jsonl", posts))]
    return cfg


FAST = {"listen:replay": 0.2, "process": 0.2, "send": 0.2, "followups": 0.2, "campaigns": 0.5, "digest": 1,
        "heartbeat": 0.2}


def test_jobs_run_on_their_intervals_end_to_end(dcfg, default_model):
    d = Daemon(dcfg, intervals=FAST, model_loader=lambda: default_model)
    d.start()
    store = Store(dcfg.database)
    try:
        wait_for(lambda: store.count("actions") == 3 and store.count("priorities") == 3)
        wait_for(lambda: {j["name"] for j in store.jobs() if j["runs"]} >= {"listen:replay", "process", "send",
                                                                           "followups", "campaigns", "digest"})
        assert store.lock_holder()["pid"] == os.getpid()
    finally:
        d.stop()
    assert store.lock_holder() is None
    assert all(j["errors"] == 0 for j in store.jobs()), store.jobs()
    assert (dcfg.database.parent / "digests").exists()
    assert store._scalar("SELECT count(*) FROM campaign_snapshots") >= 2


def test_a_failing_job_is_recorded_and_never_stops_the_others(dcfg):
    def broken_model():
        raise RuntimeError("model file is corrupt")

    d = Daemon(dcfg, intervals=FAST, jobs=["listen:replay", "process"], model_loader=broken_model)
    d.start()
    store = Store(dcfg.database)
    try:
        wait_for(lambda: any(j["name"] == "process" and j["errors"] >= 2 for j in store.jobs()))
        wait_for(lambda: any(j["name"] == "listen:replay" and j["runs"] >= 2 for j in store.jobs()))
    finally:
        d.stop()
    jobs = {j["name"]: j for j in store.jobs()}
    assert "RuntimeError: model file is corrupt" in jobs["process"]["last_error"]
    assert jobs["listen:replay"]["errors"] == 0 and store.count("posts") == 3


def test_stopping_while_a_job_runs_does_not_deadlock(dcfg, monkeypatch):
    """Regression: a job finishing during scheduler.shutdown(wait=True) asked the scheduler for its next run
    time, which needs the lock shutdown holds while it waits for that job: SIGTERM hung the daemon."""
    import threading

    import taiwa.scheduler as sched

    running = threading.Event()

    def slow_job(daemon, store):
        running.set()
        while not daemon.stopping():
            pause(0.01)
        pause(0.3)          # still running while stop() is inside shutdown(wait=True)
        return "done"

    monkeypatch.setattr(sched, "job_campaigns", slow_job)
    d = Daemon(dcfg, intervals=FAST, jobs=["campaigns"])
    d.start()
    assert running.wait(10)
    stopper = threading.Thread(target=d.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=20)
    assert not stopper.is_alive(), "stop() deadlocked with a running job"
    assert Store(dcfg.database).lock_holder() is None


def test_one_daemon_per_database(dcfg):
    first = Daemon(dcfg, intervals=FAST, jobs=["campaigns"])
    first.start()
    try:
        with pytest.raises(DaemonRunning) as e:
            Daemon(dcfg, jobs=["campaigns"], pid=first.pid + 100000).start()
        assert f"pid {first.pid}" in e.value.message
    finally:
        first.stop()


def test_a_stale_lock_is_taken_over(dcfg):
    store = Store(dcfg.database)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert store.acquire_lock(dead.pid, "thishost", stale_after=dt.timedelta(seconds=90)) is None
    # Same host, pid no longer running: taken over at once.
    assert store.acquire_lock(os.getpid(), "thishost", stale_after=dt.timedelta(seconds=90)) is None
    store.release_lock(os.getpid())
    # A daemon on another host (its pid cannot be checked from here): an old heartbeat is taken over,
    # a fresh one is respected.
    now = dt.datetime.now(dt.timezone.utc)
    assert store.acquire_lock(1, "other", stale_after=dt.timedelta(seconds=90),
                              now=now - dt.timedelta(hours=1)) is None
    assert store.acquire_lock(2, "thishost", stale_after=dt.timedelta(seconds=90), now=now) is None
    holder = store.acquire_lock(3, "thishost2", stale_after=dt.timedelta(seconds=90), now=now)
    assert holder["pid"] == 2 and holder["host"] == "thishost"
    assert any(e["event"] == "lock_taken_over" for e in store.audit_log())


def test_unknown_jobs_are_refused(dcfg):
    with pytest.raises(TaiwaError) as e:
        Daemon(dcfg, jobs=["listen:x"])
    assert "listen:x" in e.value.message


def _daemon_process(project, *args):
    # Output to a file, never an unread pipe: a daemon blocked on a full pipe looks like a hung daemon.
    with open(project / "daemon.out", "a", encoding="utf-8") as out:
        return subprocess.Popen([sys.executable, "-m", "taiwa", "-c", str(project / "taiwa.toml"), "run",
                                 "--quiet", *args], cwd=project, stdout=out, stderr=subprocess.STDOUT, text=True)


def _project(tmp_path, n_posts, interval_minutes=0.002):
    from click.testing import CliRunner

    from taiwa.cli import cli

    CliRunner().invoke(cli, ["init", str(tmp_path / "taiwa.toml")])
    with open(tmp_path / "big.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n_posts):
            fh.write(json.dumps(record(i, f"post number {i} about the kettle", handle=f"u{i % 500}",
                                       hours=i / 1000)) + "\n")
    toml = (tmp_path / "taiwa.toml").read_text(encoding="utf-8")
    toml = toml.replace('paths = ["taiwa:data/sample_posts.jsonl"]', 'paths = ["big.jsonl"]')
    toml = toml.replace("interval_minutes = 5", f"interval_minutes = {interval_minutes}")
    (tmp_path / "taiwa.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def _stopped(proc, project, timeout=60) -> int:
    """Wait for a daemon to exit; if it does not, show where each of its threads is (SIGUSR1 → faulthandler)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        pause(2)
        proc.kill()
        raise AssertionError("daemon did not stop after SIGTERM; its threads:\n"
                             + (project / "daemon.out").read_text()[-8000:]) from None


def test_sigterm_stops_cleanly_and_releases_the_lock(tmp_path):
    project = _project(tmp_path, 2000)
    proc = _daemon_process(project, "--jobs", "listen:replay")
    store = Store(project / "taiwa.db")
    wait_for(lambda: store.count("posts") == 2000)
    proc.send_signal(signal.SIGTERM)
    assert _stopped(proc, project) == 0
    assert store.lock_holder() is None
    lines = [json.loads(x) for x in (project / "taiwa.log").read_text().splitlines()]
    assert any("received SIGTERM" in x["msg"] for x in lines) and lines[-1]["msg"] == "daemon stopped"
    console = (project / "daemon.out").read_text()
    assert "WARNING" not in console and "Traceback" not in console  # --quiet: log lines go to the file only


def test_kill_9_mid_batch_then_restart_loses_and_duplicates_nothing(tmp_path):
    n = 60_000
    project = _project(tmp_path, n)
    store = Store(project / "taiwa.db")
    proc = _daemon_process(project, "--jobs", "listen:replay")
    wait_for(lambda: store.count("posts") > 0, timeout=60)
    proc.kill()                                               # SIGKILL: no handler, no cleanup
    proc.wait()
    killed_at = store.count("posts")
    assert 0 < killed_at < n, f"killed after {killed_at} of {n}: too late to show anything"
    assert store.lock_holder() is not None                    # the dead daemon's lock is still there
    proc = _daemon_process(project, "--jobs", "listen:replay")  # takes the stale lock over
    wait_for(lambda: store.count("posts") == n, timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert _stopped(proc, project) == 0
    assert store._scalar("SELECT count(DISTINCT platform_id) FROM posts") == n
    assert store._scalar("SELECT min(CAST(platform_id AS INTEGER)) FROM posts") == 0
    assert store._scalar("SELECT max(CAST(platform_id AS INTEGER)) FROM posts") == n - 1
    print(f"killed with {killed_at} of {n} posts stored; after restart {store.count('posts')}, each once")


# --------------------------------------------------------------------------- follow-ups (controlled clock)
def _sent_reply(tmp_path, store, cfg, text, asks):
    path = write_jsonl(tmp_path / "f.jsonl", [record(1, "@kettlebird the lid leaks", handle="amy", hours=-2)])
    listen(store, [ReplayListener(path)])
    store.create_actions([{"post_id": 1, "kind": "reply", "text": text, "asks": asks}])
    approval.approve(store, 1, actor="kim")
    senders.send_approved(store, lambda a: senders.OutboxSender(tmp_path / "out.jsonl"), now=T0 - dt.timedelta(hours=1))
    return path


def _answer(tmp_path, store, text, hours):
    path = write_jsonl(tmp_path / "a.jsonl", [record(2, text, handle="amy", hours=hours)])
    listen(store, [ReplayListener(path)])


def test_an_unanswered_complaint_reply_gets_one_checkin_draft(tmp_path, store, cfg):
    _sent_reply(tmp_path, store, cfg, "Sorry! DM us your order number?", "resolution")
    r = followups.run(store, cfg, now=T0)
    assert r.tracked == 1 and r.drafted == 0
    r = followups.run(store, cfg, now=T0 + dt.timedelta(hours=46))    # sent at T0-1h; due 48h later
    assert r.drafted == 0
    r = followups.run(store, cfg, now=T0 + dt.timedelta(hours=47))
    assert r.drafted == 1
    check = store.action(2)
    assert check["post_id"] == 1 and check["followup_of"] == 1 and check["state"] == "pending"
    assert "just checking in" in check["text"]
    assert followups.run(store, cfg, now=T0 + dt.timedelta(days=5)).drafted == 0   # never twice


def test_a_complaint_answered_in_time_gets_no_checkin(tmp_path, store, cfg):
    _sent_reply(tmp_path, store, cfg, "Sorry! DM us your order number?", "resolution")
    followups.run(store, cfg, now=T0)
    _answer(tmp_path, store, "@kettlebird sent you a DM", hours=3)
    r = followups.run(store, cfg, now=T0 + dt.timedelta(hours=60))
    assert r.answered == 1 and r.drafted == 0 and store.count("actions") == 1


@pytest.mark.parametrize("answer, expect_draft, template", [
    ("@kettlebird yes please, I'd love to try it!", True, "Great"),
    ("@kettlebird ぜひお願いします！", True, "ありがとうございます"),
    ("@kettlebird no thanks", False, None),
    ("@kettlebird いいえ、結構です", False, None),
])
def test_offer_answers_yes_and_no(tmp_path, store, cfg, answer, expect_draft, template):
    _sent_reply(tmp_path, store, cfg, "Thanks! Would you like to try our new lid? Interested?", "offer")
    followups.run(store, cfg, now=T0)
    _answer(tmp_path, store, answer, hours=1)
    r = followups.run(store, cfg, now=T0 + dt.timedelta(hours=2))
    assert r.answered == 1 and (r.drafted == 1) == expect_draft
    if expect_draft:
        draft = store.action(2)
        assert draft["post_id"] == 2 and template in draft["text"] and draft["state"] == "pending"
    else:
        assert store.count("actions") == 1 and store.followups()[0]["state"] == "closed"


def test_offer_answered_later_gets_a_reminder_after_n_days(tmp_path, store, cfg):
    _sent_reply(tmp_path, store, cfg, "Would you like to join the tasting? Interested?", "offer")
    followups.run(store, cfg, now=T0)
    _answer(tmp_path, store, "@kettlebird maybe later, busy right now", hours=1)
    r = followups.run(store, cfg, now=T0 + dt.timedelta(hours=2))
    assert r.answered == 1 and r.drafted == 0
    assert store.followups()[0]["answer"] == "later"
    assert followups.run(store, cfg, now=T0 + dt.timedelta(days=2)).drafted == 0
    r = followups.run(store, cfg, now=T0 + dt.timedelta(days=3, hours=2))
    assert r.drafted == 1 and "check back" in store.action(2)["text"] and store.action(2)["asks"] == "offer"


def test_reading_answers():
    assert followups.read_answer("Yes, but later please") == "later"
    assert followups.read_answer("not interested, sorry") == "no"
    assert followups.read_answer("Sure, sounds good") == "yes"
    assert followups.read_answer("来週また考えます") == "later"
    assert followups.read_answer("what colour is it?") == "other"


def test_the_log_file_is_json_lines_without_secrets(dcfg, tmp_path, monkeypatch):
    import logging

    from taiwa.scheduler import setup_logging

    secret = "AAAA-super-secret-bearer"
    monkeypatch.setenv("TAIWA_X_BEARER_TOKEN", secret)
    log_file = tmp_path / "logs" / "taiwa.log"
    setup_logging(dcfg, log_file, console=False)
    logging.getLogger("taiwa.listeners.x").warning("request failed with header Bearer %s", secret)
    logging.getLogger("taiwa.daemon").info("job %s: %s", "send", "1 sent")
    for h in logging.getLogger("taiwa").handlers:
        h.flush()
    text = log_file.read_text(encoding="utf-8")
    assert secret not in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[0]["msg"] == "request failed with header Bearer ***" and lines[1]["msg"] == "job send: 1 sent"
    logging.getLogger("taiwa").handlers.clear()
