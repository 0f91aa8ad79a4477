"""Shared set-up for the inbox tests: a real store filled through the real pipeline, and a team."""

from __future__ import annotations

import datetime as dt
import re

from taiwa import pipeline
from taiwa.listeners.replay import ReplayListener
from taiwa.store import Store

from .conftest import T0, record, write_jsonl

PASSWORDS = {"ann": "ann-approves-42", "rob": "rob-responds-42", "vic": "vic-views-4242", "ada": "ada-admin-4242"}
HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> my mug is broken @kettlebird"


def fill(tmp_path, cfg, model) -> Store:
    """Posts → classify → triage, exactly as `taiwa listen` does; then a team of four."""
    posts = [
        record(1, "@kettlebird my grinder arrived broken and nobody answers. Refund please", handle="dan",
               followers=4300, hours=-30),
        record(2, "@kettlebird is the Shibuya store open on Sunday?", handle="lena", hours=-5),
        record(3, "Sunrise pour-over, love it #MyKettleMorning @kettlebird", handle="kai", hours=-60,
               hashtags=["MyKettleMorning"]),
        record(4, HOSTILE, handle="mallory", hours=-3),
        record(5, "@kettlebird_jp マグが割れて届きました。交換できますか？", handle="yuki", hours=-2, lang="ja"),
        record(6, "@kettlebird the grinder is still making that noise", handle="dan", followers=4300, hours=-1),
        record(7, "Best beans ever, thank you @kettlebird #MyKettleMorning", handle="mo", hours=-40,
               hashtags=["MyKettleMorning"]),
    ]
    path = write_jsonl(tmp_path / "posts.jsonl", posts)
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(path)])
    pipeline.classify(store, model)
    pipeline.triage(store, cfg, now=T0)
    store.add_user("ann", "approver", PASSWORDS["ann"], "test")
    store.add_user("rob", "responder", PASSWORDS["rob"], "test")
    store.add_user("vic", "viewer", PASSWORDS["vic"], "test")
    store.add_user("ada", "admin", PASSWORDS["ada"], "test")
    return store


def clock():
    return T0 + dt.timedelta(minutes=30)


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def action_id(store: Store, handle: str, kind: str = "reply") -> int:
    rows = [r for r in store.inbox(states=("pending",), limit=100) if r["handle"] == handle and r["kind"] == kind]
    assert rows, f"no pending {kind} for @{handle}"
    return rows[0]["id"]
