"""The inbox as a team's daily tool, through Starlette's test client on a real store: every new POST needs the
session's CSRF token and the right role; the triage flow; done; bulk; search; SLA; notes and tags; corrections;
presence and the version check; live updates; sending everything in priority order."""

from __future__ import annotations

import json
import re
import threading

import pytest
from starlette.testclient import TestClient

from taiwa.store import WAITING_STATES
from taiwa.web.app import create_app

from .web_helpers import PASSWORDS, action_id, clock, csrf_of, fill


@pytest.fixture
def web(tmp_path, cfg, default_model):
    store = fill(tmp_path, cfg, default_model)
    app = create_app(cfg, clock=clock)
    yield app, store
    store.close()


def signed_in(app, name):
    c = TestClient(app, base_url="http://127.0.0.1")
    page = c.get("/login")
    c.post("/login", data={"name": name, "password": PASSWORDS[name], "csrf": csrf_of(page.text), "next": "/"})
    return c, csrf_of(c.get("/").text)


def seen(store, ids: list[int]) -> list[str]:
    """What the list's boxes send: each item with the version the person saw."""
    return [f"{i}:{store.action(i)['version']}" for i in ids]


def ids_on(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-action="(\d+)"', html)]


def test_new_posts_need_csrf_and_the_right_role(web):
    app, store = web
    aid = action_id(store, "lena")
    routes = [(f"/actions/{aid}/done", {}, "responder"), (f"/actions/{aid}/note", {"text": "n"}, "responder"),
              (f"/actions/{aid}/tag", {"tag": "vip"}, "responder"),
              (f"/actions/{aid}/correct", {"field": "intent", "value": "question"}, "responder"),
              (f"/actions/{aid}/here", {}, "viewer"), ("/bulk", {"do": "done", "ids": [aid]}, "responder"),
              ("/bulk", {"do": "approve", "ids": [aid]}, "approver")]
    ann, token = signed_in(app, "ann")
    for path, data, _ in routes:
        for bad in (None, "wrong"):
            r = ann.post(path, data={**data, **({"csrf": bad} if bad else {})}, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, (path, bad)
    vic, vtoken = signed_in(app, "vic")
    rob, rtoken = signed_in(app, "rob")
    for path, data, role in routes:
        if role != "viewer":
            assert vic.post(path, data={**data, "csrf": vtoken}, follow_redirects=False).status_code == 403, path
    assert rob.post("/bulk", data={"do": "approve", "ids": [aid], "csrf": rtoken},
                    follow_redirects=False).status_code == 403
    a = store.action(aid)
    assert a["state"] == "pending" and store.notes([f"action:{aid}"]) == []


def test_after_a_decision_the_next_open_item_of_the_same_list_opens(web):
    app, store = web
    ann, token = signed_in(app, "ann")
    listed = ids_on(ann.get("/?kind=reply").text)
    assert len(listed) >= 3
    back = "/?kind=reply"
    r = ann.post(f"/actions/{listed[0]}/approve", data={"csrf": token, "back": back}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/actions/{listed[1]}?back=")
    r = ann.post(f"/actions/{listed[1]}/done", data={"csrf": token, "back": back, "reason": "answered by phone"},
                 follow_redirects=False)
    assert r.headers["location"].startswith(f"/actions/{listed[2]}?")
    assert store.action(listed[1])["state"] == "done" and store.action(listed[1])["reason"] == "answered by phone"
    # The default view shows what waits for a person; approved items have their own view.
    waiting, approved = ids_on(ann.get("/").text), ids_on(ann.get("/?view=approved").text)
    assert listed[0] not in waiting and listed[1] not in waiting and approved == [listed[0]]
    assert listed[1] in ids_on(ann.get("/?view=closed").text)
    assert any(e["event"] == "state:done" for e in store.audit_log(listed[1]))


def test_bulk_decisions_for_replies_too(web):
    app, store = web
    ann, token = signed_in(app, "ann")
    some = ids_on(ann.get("/?kind=reply").text)[:3]
    r = ann.post("/bulk", data={"csrf": token, "do": "snooze", "hours": "4", "ids": some[:2], "back": "/"})
    assert "Snoozed 2 of 2" in r.text
    assert all(store.action(i)["snoozed_until"] for i in some[:2])
    r = ann.post("/bulk", data={"csrf": token, "do": "assign", "user": "rob", "ids": some, "back": "/"})
    assert all(store.action(i)["assigned_to"] == "rob" for i in some)
    r = ann.post("/bulk", data={"csrf": token, "do": "reject", "reason": "", "ids": seen(store, [some[2]]),
                                "back": "/"})
    assert "needs a reason" in r.text and store.action(some[2])["state"] == "pending"
    assert ann.post("/bulk", data={"csrf": token, "do": "explode", "ids": some}).status_code == 400
    assert ann.post("/bulk", data={"csrf": token, "do": "done", "ids": ["x"]}).status_code == 400


def test_search_combines_with_filters_in_english_and_japanese(web, cfg):
    app, store = web
    vic, _ = signed_in(app, "vic")
    dan, yuki = action_id(store, "dan"), action_id(store, "yuki")
    assert ids_on(vic.get("/?q=grinder").text) == [dan]
    assert ids_on(vic.get("/?q=マグが割れ").text) == [yuki]           # trigram index: Japanese
    assert ids_on(vic.get("/?q=交換").text) == [yuki]                  # two characters: scanned instead
    assert ids_on(vic.get("/?q=grinder&platform=instagram").text) == []
    assert ids_on(vic.get("/?q=%40lena").text) == [action_id(store, "lena")]   # authors too
    from click.testing import CliRunner

    from taiwa.cli import cli

    out = CliRunner().invoke(cli, ["--db", str(cfg.database), "--demo", "inbox", "--search", "grinder", "--json"])
    assert [json.loads(x)["id"] for x in out.output.splitlines()] == [dan]


def test_notes_tags_and_corrections_are_for_the_team_and_audited(web, cfg):
    app, store = web
    rob, token = signed_in(app, "rob")
    aid = action_id(store, "dan")
    rob.post(f"/actions/{aid}/note", data={"csrf": token, "about": "customer", "text": "Called him; sends photos"})
    rob.post(f"/actions/{aid}/tag", data={"csrf": token, "about": "customer", "tag": "vip"})
    rob.post(f"/actions/{aid}/tag", data={"csrf": token, "about": "action", "tag": "warranty"})
    page = rob.get(f"/actions/{aid}").text
    assert "Called him; sends photos" in page and "#vip" in page and "#warranty" in page
    assert ids_on(rob.get("/?tag=vip").text) == [aid]
    rob.post(f"/actions/{aid}/correct", data={"csrf": token, "field": "intent", "value": "question"})
    rob.post(f"/actions/{aid}/correct", data={"csrf": token, "field": "sentiment", "value": "neutral"})
    post_id = store.action(aid)["post_id"]
    assert store.priority(post_id)["intent"] == "question" and store.post(post_id)["label"] == "neutral"
    assert store.intent_corrections()[0]["intent"] == "question"
    assert rob.post(f"/actions/{aid}/correct", data={"csrf": token, "field": "topic",
                                                      "value": "nonsense"}).status_code == 400
    events = {e["event"] for e in store.audit_log(limit=50)}
    assert {"note", "tagged", "intent_corrected", "sentiment_corrected"} <= events
    # Nothing of it is ever sent: approve and send, and the outbox holds the reply only.
    ann, atoken = signed_in(app, "ann")
    ann.post(f"/actions/{aid}/approve", data={"csrf": atoken})
    ann.post("/send", data={"csrf": atoken})
    sent = cfg.outbox.read_text(encoding="utf-8")
    assert "Called him" not in sent and "vip" not in sent


def test_a_teammates_change_refuses_a_stale_approval_and_presence_shows(web):
    app, store = web
    ann, atoken = signed_in(app, "ann")
    ada, dtoken = signed_in(app, "ada")
    aid = action_id(store, "lena")
    page = ann.get(f"/actions/{aid}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    other = ada.get(f"/actions/{aid}").text
    assert "also open by ann" in other                                 # presence, shown on the item
    assert "👁 ada" in ann.get("/").text or "ada" in ann.post(f"/actions/{aid}/here", data={"csrf": atoken}).text
    ada.post(f"/actions/{aid}/save", data={"csrf": dtoken, "text": "Hi Lena, yes: Sundays 9–18!",
                                           "version": version})
    r = ann.post(f"/actions/{aid}/approve", data={"csrf": atoken, "version": version,
                                                  "text": "Hi Lena — my older edit"}, follow_redirects=False)
    assert "stale=1" in r.headers["location"]
    assert store.action(aid)["state"] == "pending" and store.action(aid)["text"] == "Hi Lena, yes: Sundays 9–18!"
    flash = ann.get(r.headers["location"]).text
    assert "changed since you opened it" in flash and "ada" in flash
    assert json.loads(ann.post(f"/actions/{aid}/here", data={"csrf": atoken}).text)["version"] > int(version)


def test_live_updates_stream_a_change_made_elsewhere(web):
    app, store = web
    from taiwa.web import listing

    listing.EVENT_STREAM_SECONDS = 3
    vic, _ = signed_in(app, "vic")
    since = store.last_change()
    aid = action_id(store, "lena")
    threading.Timer(0.5, lambda: store.assign(aid, "rob", "ann")).start()
    with vic.stream("GET", f"/events?since={since}") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = ""
        for line in r.iter_lines():
            if line.startswith("data:"):
                data = line[5:]
                break
    change = json.loads(data)
    assert change["changes"][0] == {"action": aid, "event": "assigned", "by": "ann"}
    assert "rob" in vic.get("/rows").text


def test_send_takes_every_approved_in_priority_order_and_says_what_is_left(web, cfg):
    app, store = web
    ann, token = signed_in(app, "ann")
    approved = ids_on(ann.get("/?kind=reply").text)
    for i in reversed(approved):                       # approved lowest first: sending must still go by priority
        ann.post(f"/actions/{i}/approve", data={"csrf": token})
    r = ann.post("/send", data={"csrf": token, "back": "/"})
    assert f"Sent {len(approved)}" in r.text and "left approved 0" in r.text
    sent = [json.loads(x)["action_id"] for x in cfg.outbox.read_text(encoding="utf-8").splitlines()]
    assert sent == approved


def test_sla_targets_show_time_left_and_metrics_show_attainment(web, cfg):
    app, store = web
    vic, _ = signed_in(app, "vic")
    html = vic.get("/").text
    assert "overdue by" in html or "due in" in html
    ann, token = signed_in(app, "ann")
    aid = action_id(store, "lena")
    ann.post(f"/actions/{aid}/approve", data={"csrf": token})
    ann.post("/send", data={"csrf": token})
    m = vic.get("/metrics").text
    assert "Response targets" in m and "question" in m
    rows = store.inbox(states=WAITING_STATES, sla_hours=cfg.sla_hours, now=clock(), limit=50)
    assert all(r["due_at"] for r in rows if r["kind"] == "reply")
