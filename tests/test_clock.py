"""One clock, passed down: month boundaries for X's budget, and no module asking the operating system for the date."""

import ast
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from taiwa import clock
from taiwa.errors import ConfigError
from taiwa.listeners import x as xl
from taiwa.pipeline import listen
from taiwa.responders import senders
from taiwa.responders.x_sender import sender_from_config
from tests.test_x import API, ENV, SEARCH, _approved, fx

ROOT = Path(__file__).resolve().parent.parent
LAST_SECOND = dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=dt.timezone.utc)


@pytest.fixture
def xcfg(cfg):
    cfg.sections["platforms.x"].update(enabled=True, mentions=False, page_size=100, max_pages_per_run=1)
    return cfg


def test_reads_reserved_on_the_last_second_of_a_month_are_settled_in_that_month(xcfg, store):
    """The page is reserved at 23:59:59 on 30 November and comes back after midnight: the 97 reads it did not
    use go back to November, not to December (before: November +100, December -97)."""
    t = clock.FixedClock(LAST_SECOND)

    def page(request):
        t.advance(seconds=2)                     # the request crosses midnight
        return 200, {}, json.dumps(fx("search_page2"))

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, SEARCH, callback=page)
        [listener] = xl.listeners_from_config(xcfg, store, env=ENV, sleep=lambda s: None, now=t)
        report = listen(store, [listener], now=t())
    got = len(fx("search_page2")["data"])
    assert report.new == got
    assert store.usage("x", LAST_SECOND)["reads"] == got
    assert store.usage("x", LAST_SECOND + dt.timedelta(days=1))["reads"] == 0


def test_a_refused_write_is_given_back_to_the_month_it_was_taken_from(xcfg, store):
    t = clock.FixedClock(LAST_SECOND)
    _approved(store, "reply", "Hi Dan, sorry about the grinder.")

    def refuse(request):
        t.advance(seconds=2)
        return 403, {}, json.dumps(fx("forbidden_reply"))

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, f"{API}/tweets", callback=refuse)
        sender = sender_from_config(xcfg, store, env=ENV, now=t)
        report = senders.send_approved(store, lambda a: sender, now=t())
    assert report.failed == 1
    assert store.usage("x", LAST_SECOND)["writes"] == 0
    assert store.usage("x", LAST_SECOND + dt.timedelta(days=1))["writes"] == 0


# Reading the operating system's date anywhere but taiwa/clock.py is how a test comes to pass only in November.
FORBIDDEN = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
             ("time", "time"), ("time", "localtime"), ("time", "gmtime"), ("time", "ctime")}


def test_no_module_but_the_clock_reads_the_date():
    offenders = []
    for path in sorted((ROOT / "taiwa").rglob("*.py")):
        if path.name == "clock.py" and path.parent.name == "taiwa":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if (name, node.func.attr) in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "read the time through taiwa.clock (passed down), not the OS: " + ", ".join(offenders)


def test_taiwa_clock_starts_a_process_at_another_instant(tmp_path):
    code = "from taiwa import clock; print(clock.system().isoformat())"
    env = {**os.environ, "TAIWA_CLOCK": "2027-12-31T23:59:30Z"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    started = dt.datetime.fromisoformat(out.stdout.strip())
    assert dt.timedelta(0) <= started - dt.datetime(2027, 12, 31, 23, 59, 30, tzinfo=dt.timezone.utc) \
        < dt.timedelta(minutes=1)


def test_the_clock_setting_is_checked_when_the_file_is_read(tmp_path, monkeypatch):
    from taiwa import config as config_mod

    monkeypatch.delenv("TAIWA_CLOCK", raising=False)
    good = config_mod.parse({"taiwa": {"clock": "2028-02-29T09:00+09:00"},
                             "brands": [{"name": "B", "handles": ["b"]}]}, base_dir=tmp_path)
    assert dt.timedelta(0) <= good.clock() - dt.datetime(2028, 2, 29, 0, 0, tzinfo=dt.timezone.utc) \
        < dt.timedelta(minutes=1)
    with pytest.raises(ConfigError) as e:
        config_mod.parse({"taiwa": {"clock": "next tuesday"}, "brands": [{"name": "B", "handles": ["b"]}]},
                         base_dir=tmp_path)
    assert e.value.key == "taiwa.clock" and "ISO 8601" in e.value.problem
    ahead = config_mod.parse({"taiwa": {"clock": "+365d"}, "brands": [{"name": "B", "handles": ["b"]}]},
                             base_dir=tmp_path)
    assert abs(ahead.clock() - clock.wall() - dt.timedelta(days=365)) < dt.timedelta(seconds=5)
