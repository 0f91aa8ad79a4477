"""Hostile input is named and contained; secrets never reach the database, logs or reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taiwa import config as config_mod
from taiwa.errors import ConfigError, StoreError
from taiwa.listeners.replay import ReplayListener
from taiwa.pipeline import listen
from taiwa.responders.drafts import render
from taiwa.store import Store

from ..conftest import record
from tests.support.waiting import pause

ZW_RTL = "\u200b\u200d\u202e\u2067 مرحبا kettle \u2069\u200f"
SCRIPT = "<script>alert(1)</script><b onmouseover=alert(2)>hi</b> @kettlebird"
SQL = "'); DROP TABLE posts; -- @kettlebird \" OR 1=1 --"


def test_a_file_of_hostile_records_names_each_bad_line_and_keeps_every_good_one(tmp_path, store):
    good = [record(1, ZW_RTL), record(2, SCRIPT), record(3, SQL), record(4, "x" * 99_000 + " kettle"),
            record(5, "plain good post about the mug")]
    bad = {
        "{not json": "not valid JSON",
        json.dumps(record(6, "wrong type", followers="many")): "followers",
        json.dumps({k: v for k, v in record(7, "no text").items() if k != "text"}): "missing field 'text'",
        json.dumps(record(8, "y" * 1_048_576)): "1,048,576 characters",
        json.dumps(record(9, "where from", platform="myspace")): "unknown platform 'myspace'",
        json.dumps(record(10, "when", created_at="yesterday-ish")): "created_at",
        json.dumps(["a", "list"]): "expected a JSON object",
    }
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in good]
    lines[2:2] = [k.encode() for k in bad] + [b'{"id": "11", "text": "caf\xe9 \xff"}']
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = listen(store, [ReplayListener(path)])
    assert report.new == len(good)
    assert len(report.problems) == len(bad) + 1
    for problem, (_, words) in zip(report.problems, list(bad.items())):
        assert problem.startswith(f"{path}:") and words in problem, problem
    assert "not valid UTF-8" in report.problems[-1] and "byte 0xe9" in report.problems[-1]
    stored = {r["platform_id"]: r["text"] for r in store._rows("SELECT platform_id, text FROM posts")}
    assert stored["1"] == ZW_RTL and stored["2"] == SCRIPT and stored["3"] == SQL   # exactly as written
    assert store.count("posts") == 5                                                 # the table survived
    # The reported line numbers are right: line 3 is the first bad one.
    assert report.problems[0].startswith(f"{path}:3:")


@pytest.mark.parametrize("text, key", [
    ('[taiwa]\ndatabase = 5\n', "taiwa.database"),
    ('[platforms.myspace]\nenabled = true\n', "platforms.myspace"),
    ('[platforms.x]\nbearer_token = "AAAA1234"\n', "bearer_token"),
    ('[[campaigns]]\nname = "A"\nhashtags = ["a"]\nstart = 2026-01-02\nend = 2026-01-01\n', "campaigns[0].end"),
    ('[priority.weights]\nsentiment = "high"\n', "priority.weights"),
])
def test_bad_configuration_names_the_key(tmp_path, text, key):
    p = tmp_path / "taiwa.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert key in str(e.value) and str(p) in str(e.value)


def test_an_unusable_database_path_is_named(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreError) as e:
        Store(tmp_path / "adir")
    assert "adir" in e.value.message
    with pytest.raises(StoreError) as e:
        Store(tmp_path / "missing-folder" / "taiwa.db")
    assert "missing-folder" in e.value.message


text_st = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=text_st, handle=st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True), memory=text_st,
       campaign=text_st, lang=st.sampled_from(["en", "ja", "fr"]),
       template=st.sampled_from(["complaint", "question", "praise", "campaign", "other", "negative"]))
def test_templates_render_any_name_memory_or_campaign_without_breaking(tmp_path, name, handle, memory, campaign,
                                                                       lang, template):
    cfg = config_mod.sample_config(tmp_path)
    out = render(cfg, template, lang, post={"handle": handle, "author_name": name, "text": "the mug"},
                 memory=memory, campaign=campaign)
    assert isinstance(out, str) and out.strip()
    # The fields are placed, never interpreted: braces in a name stay literal, nothing unfilled remains.
    inputs = name + handle + memory + campaign
    for token in ("{name}", "{handle}", "{brand}", "{memory}", "{topic}", "{campaign}"):
        if token not in inputs:
            assert token not in out
    # A name is cleaned of links, mentions and invisible characters first (taiwa/names.py); what is left is
    # placed as it is.
    from taiwa.names import clean_name

    kept = clean_name(name)
    if lang == "en" and template == "complaint" and kept and kept.lower() != handle.lower():
        assert kept in out


SECRETS = {"TAIWA_X_BEARER_TOKEN": "AAAAbearer-SENTINEL-7f3a", "TAIWA_X_CONSUMER_KEY": "ck-SENTINEL-19c2",
           "TAIWA_X_CONSUMER_SECRET": "cs-SENTINEL-a8d0", "TAIWA_X_ACCESS_TOKEN": "at-SENTINEL-52be",
           "TAIWA_X_ACCESS_TOKEN_SECRET": "ats-SENTINEL-0e91", "TAIWA_IG_GRAPH_TOKEN": "EAAG-SENTINEL-6c44"}


def test_a_full_demo_run_writes_no_secret_anywhere(tmp_path):
    env = {**os.environ, **SECRETS, "TAIWA_USER": "ann"}
    taiwa = [sys.executable, "-m", "taiwa"]

    def run(*args, **kw):
        return subprocess.run([*taiwa, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600, **kw)

    outputs = [run("demo")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    outputs.append(run("--demo", "approve", *[str(i) for i in range(1, 40)]))
    outputs.append(run("--demo", "send"))
    outputs.append(run("--demo", "campaign", "report", "MyKettleMorning", "--out", "report"))
    outputs.append(run("--demo", "status"))
    daemon = subprocess.Popen([*taiwa, "--demo", "run", "--jobs", "campaigns,digest,send"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    store = Store(tmp_path / "demo.db")
    while not any(j["runs"] for j in store.jobs() if j["name"] == "digest"):
        assert time.monotonic() < deadline and daemon.poll() is None, "the daemon did not run its jobs"
        pause(0.1)
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=60)
    store.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "demo.db" for p in files) and any(p.suffix == ".log" for p in files)
    assert any(p.name == "report.html" for p in files) and any("outbox" in p.name for p in files)
    for p in files:
        data = p.read_bytes()
        for name, value in SECRETS.items():
            assert value.encode() not in data, f"{name}'s value found in {p}"
    for o in [*(x.stdout + x.stderr for x in outputs), out]:
        for value in SECRETS.values():
            assert value not in o
    print(f"{len(files)} files ({sum(p.stat().st_size for p in files):,} bytes) and all output: no secret")
