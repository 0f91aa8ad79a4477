"""The command line as a user meets it: errors name the problem and exit non-zero, nothing else is lost."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from taiwa.cli import cli
from taiwa.store import Store

from .conftest import record, write_jsonl


def taiwa(*args, cwd):
    return subprocess.run([sys.executable, "-m", "taiwa", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def project(tmp_path):
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "taiwa.toml")]).exit_code == 0
    return tmp_path


def test_listen_a_file_reports_bad_lines_and_keeps_the_rest(project):
    path = write_jsonl(project / "export.jsonl", [record(1, "fine"), record(2, "also fine")],
                       raw_lines={1: b'{"id": 5}'})
    r = taiwa("-c", "taiwa.toml", "listen", "--no-process", "--file", str(path), cwd=project)
    assert r.returncode == 0, r.stderr
    assert "2 new posts" in r.stdout and "1 lines skipped" in r.stdout
    assert f"{path}:2" in r.stderr and "missing fields 'text', 'created_at', 'author_handle'" in r.stderr
    s = Store(project / "taiwa.db")
    assert s.count("posts") == 2 and s.count("ingest_problems") == 1
    r = taiwa("-c", "taiwa.toml", "status", cwd=project)
    assert "unreadable" in r.stdout and "2 posts" in r.stdout


def _one_draft(project, text):
    path = write_jsonl(project / "e.jsonl", [record(1, "my mug is broken")])
    taiwa("-c", "taiwa.toml", "listen", "--no-process", "--file", str(path), cwd=project)
    s = Store(project / "taiwa.db")
    s.create_actions([{"post_id": 1, "kind": "reply", "text": text}])
    s.close()


def test_unknown_ids_and_forbidden_transitions_exit_with_their_codes(project):
    _one_draft(project, "Sorry! DM us?")
    r = taiwa("-c", "taiwa.toml", "show", "999", cwd=project)
    assert r.returncode == 4 and "no action with id 999" in r.stderr
    r = taiwa("-c", "taiwa.toml", "approve", "1", "--text", "x" * 300, cwd=project)
    assert r.returncode == 6 and "limit is 280" in r.stderr
    r = taiwa("-c", "taiwa.toml", "reject", "1", "--reason", "dup", "--as", "kim", cwd=project)
    assert r.returncode == 0
    r = taiwa("-c", "taiwa.toml", "check", "1", "--sent", cwd=project)
    assert r.returncode == 5 and "rejected" in r.stderr
    r = taiwa("-c", "taiwa.toml", "audit", "1", cwd=project)
    assert "kim" in r.stdout and "dup" in r.stdout


def test_an_unreadable_replay_file_type_is_named(project):
    (project / "posts.txt").write_text("hello")
    r = taiwa("-c", "taiwa.toml", "listen", "--no-process", "--file", str(project / "posts.txt"), cwd=project)
    assert r.returncode != 0 and "unsupported file type '.txt'" in r.stderr


def test_inbox_json_lines(project):
    _one_draft(project, "Sorry!")
    r = taiwa("-c", "taiwa.toml", "inbox", "--json", cwd=project)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["id"], x["text"], x["post_text"]) for x in rows] == [(1, "Sorry!", "my mug is broken")]


def test_model_eval_on_the_hand_labelled_set(tmp_path):
    r = taiwa("model", "eval", "--hand-only", "--device", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "hand-labelled English (routed), 54 posts: accuracy" in r.stdout
    assert "hand-labelled Japanese (routed), 39 posts: accuracy" in r.stdout


def test_markup_and_html_in_hostile_input_never_break_the_terminal(project):
    """Post text, handles, field names and reasons come from outside: rich must print them, not parse them."""
    bad = project / "hostile.jsonl"
    bad.write_text(
        '{"id": "1", "text": "hi", "created_at": "2026-11-20T00:00:00Z", "author_handle": "a", "[/x]": 1}\n'
        '{"id": "2", "text": "[bold red]fake[/] <script>alert(1)</script> \\u200b\\u202e", '
        '"created_at": "2026-11-20T00:00:00Z", "author_handle": "b[/]"}\n', encoding="utf-8")
    r = taiwa("-c", "taiwa.toml", "listen", "--no-process", "--file", str(bad), cwd=project)
    assert r.returncode == 0, r.stderr
    assert "unknown field(s) ['[/x]']" in r.stderr
    s = Store(project / "taiwa.db")
    s.create_actions([{"post_id": 1, "kind": "reply", "text": "[/] reply [link=x]y[/link]"}])
    s.close()
    for args in (["status"], ["inbox"], ["show", "1"], ["audit"]):
        r = taiwa("-c", "taiwa.toml", *args, cwd=project)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
    r = taiwa("-c", "taiwa.toml", "reject", "1", "--reason", "[/nope] spam", cwd=project)
    assert r.returncode == 0 and "[/nope] spam" in r.stdout
    (project / "bad.toml").write_text('[model]\nname = 5\ndevice = "[/x]"\n', encoding="utf-8")
    r = taiwa("-c", "bad.toml", "status", cwd=project)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "model.name" in r.stderr
