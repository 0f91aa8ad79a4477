"""The approval inbox's routes through Starlette's test client, on a real SQLite store filled by the pipeline."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from taiwa.store import Store
from taiwa.web.app import histogram_svg, response_metrics
from taiwa.web.app import create_app

from .web_helpers import HOSTILE, PASSWORDS, action_id, clock, csrf_of, fill


@pytest.fixture
def web(tmp_path, cfg, default_model):
    store = fill(tmp_path, cfg, default_model)
    app = create_app(cfg, clock=clock)
    yield app, store
    store.close()


def signed_in(app, name: str) -> tuple[TestClient, str]:
    c = TestClient(app, base_url="http://127.0.0.1")
    page = c.get("/login")
    r = c.post("/login", data={"name": name, "password": PASSWORDS[name], "csrf": csrf_of(page.text), "next": "/"},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    inbox = c.get("/")
    assert inbox.status_code == 200
    return c, csrf_of(inbox.text)


def test_every_route_refuses_a_visitor_without_a_session(web):
    app, store = web
    c = TestClient(app, base_url="http://127.0.0.1")
    aid = action_id(store, "dan")
    checked = 0
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path in ("/login", "/healthz"):     # the sign-in page, and the health check (tested apart)
            continue
        path = route.path.replace("{action_id:int}", str(aid)).replace("{incident_id:int}", "1")
        for method in route.methods - {"HEAD"}:
            r = c.request(method, path, data={"text": "hijacked", "reason": "x", "ids": [aid]},
                          follow_redirects=False)
            checked += 1
            if method == "GET":
                assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            assert "hijacked" not in r.text and "grinder" not in r.text
    assert checked == len(app.routes) - 3            # all but the two sign-in routes and /healthz
    assert store.action(aid)["state"] == "pending"          # nothing happened
    # A forged or expired cookie is no better than none.
    c.cookies.set("taiwa_session", "forged")
    assert c.get("/", follow_redirects=False).status_code == 303


def test_sign_in_needs_the_right_password_and_a_form_token(web):
    app, store = web
    c = TestClient(app, base_url="http://127.0.0.1")
    token = csrf_of(c.get("/login").text)
    bad = c.post("/login", data={"name": "ann", "password": "wrong-password", "csrf": token})
    assert bad.status_code == 401 and "Wrong name or password" in bad.text
    no_token = c.post("/login", data={"name": "ann", "password": PASSWORDS["ann"]}, follow_redirects=False)
    assert no_token.status_code == 403
    token = csrf_of(c.get("/login").text)
    ok = c.post("/login", data={"name": "ann", "password": PASSWORDS["ann"], "csrf": token,
                                "next": "https://evil.example/"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"   # never redirected off-site
    cookie = ok.cookies.get("taiwa_session")
    assert cookie and store._scalar("SELECT count(*) FROM web_sessions WHERE token_hash = ?", [cookie]) == 0
    assert "samesite=strict" in ok.headers["set-cookie"].lower() and "httponly" in ok.headers["set-cookie"].lower()
    # Disabling the account ends the session at once.
    assert c.get("/").status_code == 200
    store.set_user("ann", "test", disabled=True)
    assert c.get("/", follow_redirects=False).status_code == 303


def test_every_post_needs_the_sessions_csrf_token(web):
    app, store = web
    c, token = signed_in(app, "ann")
    aid = action_id(store, "dan")
    for path, data in [(f"/actions/{aid}/approve", {}), (f"/actions/{aid}/reject", {"reason": "no"}),
                       (f"/actions/{aid}/save", {"text": "x"}), (f"/actions/{aid}/snooze", {"hours": "4"}),
                       (f"/actions/{aid}/assign", {"user": "rob"}), ("/likes/approve", {"ids": [aid]}),
                       ("/send", {}), ("/logout", {})]:
        for bad in (None, "wrong-token"):
            r = c.post(path, data={**data, **({"csrf": bad} if bad else {})}, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, (path, bad)
    a = store.action(aid)
    assert a["state"] == "pending" and a["assigned_to"] == "" and a["snoozed_until"] is None
    # Another user's token is not this session's token either.
    _, other = signed_in(app, "ada")
    assert c.post(f"/actions/{aid}/approve", data={"csrf": other}, follow_redirects=False).status_code == 403
    assert c.post(f"/actions/{aid}/approve", data={"csrf": token}, follow_redirects=False).status_code == 303


def test_inbox_is_ordered_by_priority_and_says_why(web, cfg):
    from taiwa.store import WAITING_STATES

    app, store = web
    c, _ = signed_in(app, "vic")
    html = c.get("/").text
    rows = store.inbox(states=WAITING_STATES, limit=200, sla_hours=cfg.sla_hours, now=clock())
    shown = [int(x) for x in __import__("re").findall(r'<tr data-action="(\d+)"', html)]
    assert shown == [r["id"] for r in rows] and len(shown) >= 6
    # Escalated first, then what is past its response target (SLA), then by score.
    keys = [(r["escalated"], r["overdue"], r["score"]) for r in rows]
    assert keys == sorted(keys, reverse=True) and any(r["overdue"] for r in rows)
    assert 'class="due late"' in html and "overdue by" in html
    top = next(r for r in rows if not r["overdue"])
    for reason in json.loads(store.action(top["id"])["reasons"]):
        assert reason.replace("'", "&#39;") in html
    assert "campaign: MyKettleMorning" in html


def test_filters_narrow_the_inbox(web):
    app, store = web
    c, _ = signed_in(app, "vic")

    def ids(query: str) -> set[int]:
        return {int(x) for x in __import__("re").findall(r'<tr data-action="(\d+)"', c.get("/?" + query).text)}

    everything = ids("")
    likes = ids("kind=like")
    assert likes and likes < everything
    assert all(store.action(i)["kind"] == "like" for i in likes)
    negative = ids("sentiment=negative")
    assert negative and all(store.action(i)["label"] == "negative" for i in negative)
    campaign = ids("campaign=MyKettleMorning")
    assert {store.action(i)["handle"] for i in campaign} == {"kai", "mo"}
    assert ids("platform=instagram") == set()
    assert ids("brand=Kettlebird+Coffee") == everything          # every sample post names the brand
    assert c.get("/?state=bogus").status_code == 400


def test_approve_as_drafted_and_edit_then_approve_are_audited_with_the_user(web):
    app, store = web
    c, token = signed_in(app, "ann")
    first, second = action_id(store, "dan"), action_id(store, "lena")
    drafted = store.action(first)["text"]
    r = c.post(f"/actions/{first}/approve", data={"csrf": token, "text": drafted}, follow_redirects=False)
    assert r.status_code == 303
    a = store.action(first)
    assert a["state"] == "approved" and a["approved_by"] == "ann" and a["text"] == drafted
    edited = "Hi Lena, yes: Shibuya is open on Sundays from 9 to 18. See you there!"
    r = c.post(f"/actions/{second}/approve", data={"csrf": token, "text": edited})
    assert f"Approved #{second} (edited)." in r.text               # the flash message says what happened
    b = store.action(second)
    assert b["state"] == "approved" and b["text"] == edited and b["draft_text"] != edited
    log = store.audit_log(second)
    assert log[-1]["actor"] == "ann" and log[-1]["before"] == "pending" and log[-1]["after"] == "approved"
    assert edited in log[-1]["detail"]
    page = c.get("/audit").text
    assert "ann" in page and f"#{second}" in page


def test_roles_limit_what_each_teammate_can_do(web):
    app, store = web
    aid = action_id(store, "dan")
    viewer, vt = signed_in(app, "vic")
    r = viewer.post(f"/actions/{aid}/approve", data={"csrf": vt}, follow_redirects=False)
    assert r.status_code == 403 and "viewer" in r.text
    assert viewer.post(f"/actions/{aid}/save", data={"csrf": vt, "text": "x"}).status_code == 403
    responder, rt = signed_in(app, "rob")
    assert responder.post(f"/actions/{aid}/approve", data={"csrf": rt}, follow_redirects=False).status_code == 403
    r = responder.post(f"/actions/{aid}/save", data={"csrf": rt, "text": "Hi Dan, so sorry. DM us?"},
                       follow_redirects=False)
    assert r.status_code == 303
    assert store.action(aid)["text"] == "Hi Dan, so sorry. DM us?" and store.action(aid)["state"] == "pending"
    responder.post(f"/actions/{aid}/assign", data={"csrf": rt, "user": "ann"})
    assert store.action(aid)["assigned_to"] == "ann"
    ann, at = signed_in(app, "ann")
    mine = ann.get("/?assigned=me").text
    assert f'data-action="{aid}"' in mine and mine.count("<tr data-action=") == 1


def test_reject_needs_a_reason_and_keeps_it(web):
    app, store = web
    c, token = signed_in(app, "ann")
    aid = action_id(store, "lena")
    r = c.post(f"/actions/{aid}/reject", data={"csrf": token, "reason": "  "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/actions/{aid}?back=")
    assert "needs a reason" in c.get(f"/actions/{aid}").text
    assert store.action(aid)["state"] == "pending"
    c.post(f"/actions/{aid}/reject", data={"csrf": token, "reason": "answered by phone"})
    a = store.action(aid)
    assert a["state"] == "rejected" and a["reason"] == "answered by phone"


def test_too_long_replies_are_refused_by_the_server_too(web):
    app, store = web
    c, token = signed_in(app, "ann")
    aid = action_id(store, "dan")
    r = c.post(f"/actions/{aid}/approve", data={"csrf": token, "text": "ケトル" * 100}, follow_redirects=False)
    assert r.status_code == 303
    assert "600 characters" in c.get(f"/actions/{aid}").text   # 300 CJK characters weigh 600 on X
    assert store.action(aid)["state"] == "pending"


def test_snooze_hides_until_the_time_then_it_comes_back(web, cfg):
    app, store = web
    c, token = signed_in(app, "rob")
    aid = action_id(store, "lena")
    c.post(f"/actions/{aid}/snooze", data={"csrf": token, "hours": "4"})
    assert f'data-action="{aid}"' not in c.get("/").text
    assert f'data-action="{aid}"' in c.get("/?snoozed=only").text
    later = create_app(cfg, clock=lambda: clock() + dt.timedelta(hours=5))
    c2, _ = signed_in(later, "rob")
    assert f'data-action="{aid}"' in c2.get("/").text
    assert [e["event"] for e in store.audit_log(aid)] == ["snoozed"]


def test_likes_are_approved_in_bulk_but_replies_are_not(web):
    app, store = web
    c, token = signed_in(app, "ann")
    likes = [r["id"] for r in store.inbox(kind="like", limit=50)]
    reply = action_id(store, "dan")
    assert len(likes) >= 2
    c.post("/likes/approve", data={"csrf": token,
                                   "ids": [f"{i}:{store.action(i)['version']}" for i in [*likes, reply]]})
    assert all(store.action(i)["state"] == "approved" for i in likes)
    assert store.action(reply)["state"] == "pending"


def test_hostile_post_text_is_escaped_and_scripts_are_not_allowed_to_run(web):
    app, store = web
    c, _ = signed_in(app, "vic")
    aid = action_id(store, "mallory")
    for page in (c.get("/"), c.get(f"/actions/{aid}")):
        assert "<script>window.pwned" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'nonce-" in csp and "unsafe-inline" not in csp
        nonce = csp.split("'nonce-")[1].split("'")[0]
        assert page.text.count("<script") == page.text.count(f'<script nonce="{nonce}"') == 1
    assert HOSTILE  # the post really contains both payloads


def test_author_history_thread_and_open_followups_are_shown(web):
    app, store = web
    c, _ = signed_in(app, "vic")
    aid = action_id(store, "dan")
    a = store.action(aid)
    page = c.get(f"/actions/{aid}").text
    other = "my grinder arrived broken" if "still making" in a["post_text"] else "still making that noise"
    assert other in page and "2 posts from this customer" in page
    assert "also answers their earlier posts" in page          # one conversation: both posts, one draft


def test_send_from_the_page_is_at_most_once(web, cfg):
    app, store = web
    c, token = signed_in(app, "ann")
    aid = action_id(store, "dan")
    c.post(f"/actions/{aid}/approve", data={"csrf": token})
    c.post("/send", data={"csrf": token})
    c.post("/send", data={"csrf": token})                        # a double click
    assert store.action(aid)["state"] == "sent"
    lines = [json.loads(x) for x in cfg.outbox.read_text(encoding="utf-8").splitlines()]
    assert [x["action_id"] for x in lines].count(aid) == 1


def test_metrics_page_figures_come_from_the_database(web):
    app, store = web
    c, token = signed_in(app, "ann")
    dan, lena = action_id(store, "dan"), action_id(store, "lena")
    c.post(f"/actions/{dan}/approve", data={"csrf": token})
    c.post(f"/actions/{lena}/reject", data={"csrf": token, "reason": "handled by phone"})
    c.post("/send", data={"csrf": token})
    rows = store.response_times()
    m = response_metrics(rows)
    page = c.get("/metrics").text
    assert m["overall"]["n"] == 1
    assert f'{m["overall"]["median"]:.1f} h' in page
    assert ">50%<" in page                                        # 1 approved, 1 rejected
    open_complaints = store.approval_counts()["open_complaints"]
    assert f'id="open-complaints">{open_complaints}<' in page
    assert "<svg" in page


def test_response_metrics_median_and_p90():
    t = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    rows = [{"platform": p, "label": s, "created_at": t.isoformat(),
             "first_sent": (t + dt.timedelta(hours=h)).isoformat()}
            for p, s, h in [("x", "negative", 1), ("x", "negative", 2), ("x", "positive", 10),
                            ("instagram", "neutral", 4)]]
    m = response_metrics(rows)
    assert m["overall"]["median"] == pytest.approx(3.0)
    assert m["overall"]["p90"] == pytest.approx(4 + 0.7 * 6)     # between the 3rd (4 h) and 4th (10 h)
    assert m["platform"]["x"]["median"] == pytest.approx(2.0) and m["platform"]["instagram"]["n"] == 1
    assert m["sentiment"]["negative"]["p90"] == pytest.approx(1.9)
    svg = histogram_svg(m["hours"])
    assert svg.count("<rect") == 6 and "<title>1–4 h: 2</title>" in svg and "<title>4–12 h: 2</title>" in svg
    assert "<title>&lt; 1 h: 0</title>" in svg


def test_passwords_and_session_cookies_are_stored_only_as_hashes(web):
    app, store = web
    c, _ = signed_in(app, "ann")
    raw = Store(store.path).db.conn.execute("SELECT * FROM users").fetchall()
    dump = "\n".join(store.db.conn.iterdump())
    for pw in PASSWORDS.values():
        assert pw not in dump
    assert c.cookies.get("taiwa_session") not in dump
    assert all(r[2].startswith("scrypt$") for r in raw)
