from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from taiwa import config as config_mod
from taiwa.store import Store

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)


def _hand_the_moved_clock_to_children() -> None:
    """Under libfaketime (the suite is run a year ahead, at a month's last second, on 29 February…) this process
    runs on the faked clock, but the processes the tests start (daemons, workers, the inbox server, Chromium, a
    language-model server) get the moved time through taiwa's own clock setting instead: libfaketime 0.9.10
    breaks Python's sleep (clock_nanosleep on the monotonic clock answers EINVAL, so time.sleep and
    Popen.wait(timeout) fail) and browsers under it. The offset is this process's faked time minus what an
    unfaked process reads."""
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return
    import subprocess
    import time

    from taiwa import clock
    from tests.support.waiting import pause

    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    real = float(subprocess.run(["date", "+%s.%N"], env=env, capture_output=True, text=True, check=True).stdout)
    offset = f"{dt.datetime.now(dt.timezone.utc).timestamp() - real:+.3f}s"
    del os.environ["LD_PRELOAD"]          # children start without libfaketime (FAKETIME keeps this one moved) ...
    os.environ["TAIWA_CLOCK"] = offset    # ... and with taiwa's clock moved as far
    time.sleep = pause                    # the standard library's waits in this process (subprocess, threads)
    original = clock.from_setting

    def here(value: str | None = None):
        # This process is already moved by libfaketime: the children's offset must not move it twice.
        if os.environ.get("TAIWA_CLOCK") == offset:
            del os.environ["TAIWA_CLOCK"]
            try:
                return original(value)
            finally:
                os.environ["TAIWA_CLOCK"] = offset
        return original(value)

    clock.from_setting = here


_hand_the_moved_clock_to_children()


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL server for the whole test run (tests/support/pg.py). Without PostgreSQL installed the
    PostgreSQL half of the suite skips, saying how to install it; CI sets TAIWA_REQUIRE_POSTGRES=1 to fail instead."""
    from tests.support.pg import INSTALL, Cluster, find_bin

    if find_bin() is None:
        if os.environ.get("TAIWA_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required here (TAIWA_REQUIRE_POSTGRES=1) but not installed: " + INSTALL)
        pytest.skip("PostgreSQL is not installed: " + INSTALL)
    cluster = Cluster().start()
    # Every test's database is a copy of one already migrated: CREATE DATABASE ... TEMPLATE is a file copy.
    cluster.admin("CREATE DATABASE taiwa_template")
    Store(cluster.url("taiwa_template")).close()
    yield cluster
    from taiwa.store.postgres import close_pools

    close_pools()
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A new, migrated PostgreSQL database of its own for one test."""
    name = pg_cluster.create_database(template="taiwa_template")
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    """Every test that takes `store` runs on both backends: a SQLite file and a real PostgreSQL database."""
    if request.param == "sqlite":
        s = Store(tmp_path / "t.db")
    else:
        s = Store(request.getfixturevalue("pg_url"))
    yield s
    s.close()


@pytest.fixture
def cfg(tmp_path: Path) -> config_mod.Config:
    return config_mod.sample_config(tmp_path)


def record(i: int, text: str, *, handle: str = "amy", followers: int = 100, hours: float = 0, **extra) -> dict:
    """One post in taiwa's documented replay format."""
    rec = {"id": str(i), "platform": "x", "text": text,
           "created_at": (T0 + dt.timedelta(hours=hours)).isoformat(),
           "author": {"id": f"u-{handle}", "handle": handle, "name": handle.title(), "followers": followers}}
    rec.update(extra)
    return rec


def write_jsonl(path: Path, records: list, raw_lines: dict[int, bytes] | None = None) -> Path:
    """Write records as JSONL; raw_lines puts exact bytes at given (0-based) line positions."""
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    for pos, raw in sorted((raw_lines or {}).items()):
        lines.insert(pos, raw)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="session")
def default_model():
    """The real offline default model (MiniLM + e5 heads), loaded once per test run."""
    from taiwa.models.sentiment import load_default

    return load_default(device="cpu")


@pytest.fixture(autouse=True)
def quick_password_hashing(request, monkeypatch):
    """In-process tests hash with a cheaper scrypt cost (the web tests add four users each); the tests of the cost
    itself (marked full_scrypt) and every subprocess (`taiwa user add`, the soak) use the real one."""
    if "full_scrypt" not in request.keywords:
        from taiwa import store as store_mod

        monkeypatch.setitem(store_mod.SCRYPT, "n", 2 ** 12)


# The slowest tests (model retraining, encoder agreement, the worker cluster, the soak, the browser, the language-
# model server, the whole demo, `taiwa eval`): marked "slow" so `make test-fast` leaves them out of the inner loop.
# `make test` and CI run everything.
SLOW_FILES = {"test_soak.py", "test_workers_cluster.py", "test_web_browser.py", "test_web_browser_teamwork.py",
              "test_web_browser_focus.py", "test_llm.py", "test_encoders.py", "test_intent.py", "test_eval.py",
              "test_cascade.py", "test_shared_database.py", "test_crash_and_load.py"}
SLOW_TESTS = {"test_a_full_demo_run_writes_no_secret_anywhere", "test_demo_end_to_end_then_approve_and_send",
              "test_model_eval_on_the_hand_labelled_set", "test_accuracy_floor_on_a_fixed_held_out_sample"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
