"""The inbox under hostile or odd use: sign-in throttling, hashing cost, odd ids and numbers, headers on every
response, cookies, links from posts. Real store filled by the pipeline; Starlette's test client."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from taiwa import store as store_mod
from taiwa.web.app import SignInThrottle, create_app

from .web_helpers import PASSWORDS, action_id, clock, csrf_of, fill


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def web(tmp_path, cfg, default_model):
    store = fill(tmp_path, cfg, default_model)
    ticks = Clock()
    app = create_app(cfg, clock=clock, throttle=SignInThrottle(now=ticks), secure_cookies=False)
    yield app, store, ticks
    store.close()


def _try(c: TestClient, name: str, password: str):
    page = c.get("/login")
    return c.post("/login", data={"name": name, "password": password, "csrf": csrf_of(page.text), "next": "/"},
                  follow_redirects=False)


def signed_in(app, name="ann"):
    c = TestClient(app, base_url="http://127.0.0.1")
    assert _try(c, name, PASSWORDS[name]).status_code == 303
    return c, csrf_of(c.get("/").text)


def test_failed_sign_ins_are_throttled_per_account_even_for_the_right_password(web):
    app, store, ticks = web
    c = TestClient(app, base_url="http://127.0.0.1")
    codes = [_try(c, "ann", f"guess-{i}").status_code for i in range(8)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
    r = _try(c, "ann", PASSWORDS["ann"])
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text        # refused before any check
    ticks.t += 31                                                              # the first wait (30 s) is over
    assert _try(c, "ann", PASSWORDS["ann"]).status_code == 303
    assert _try(c, "rob", PASSWORDS["rob"]).status_code == 303                # other accounts were never affected


def test_one_address_guessing_many_accounts_is_throttled_too(web):
    app, store, ticks = web
    c = TestClient(app, base_url="http://127.0.0.1")
    codes = [_try(c, f"nobody{i}", "guess-guess").status_code for i in range(22)]
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]


@pytest.mark.full_scrypt
def test_passwords_use_current_scrypt_cost_and_old_hashes_are_upgraded_at_sign_in(web):
    app, store, _ = web
    assert store_mod.SCRYPT == {"n": 2 ** 17, "r": 8, "p": 1}
    old = store_mod.hash_password(PASSWORDS["vic"], n=2 ** 14)
    store.db.execute("UPDATE users SET password_hash = ? WHERE name = 'vic'", [old])
    signed_in(app, "vic")
    now = store._scalar("SELECT password_hash FROM users WHERE name = 'vic'")
    assert now != old and now.startswith("scrypt$131072$8$1$")
    assert store_mod.check_password(PASSWORDS["vic"], now)


@pytest.mark.parametrize("method, path, data, status", [
    ("GET", "/actions/99999999999999999999", None, 404),
    ("GET", "/actions/0", None, 404),
    ("GET", "/audit?action=²", None, 400),
    ("GET", "/audit?action=99999999999999999999", None, 400),
    ("POST", "/actions/99999999999999999999/approve", {}, 404),
])
def test_odd_ids_are_400_or_404_never_500(web, method, path, data, status):
    app, store, _ = web
    c, token = signed_in(app)
    r = c.request(method, path, data={**(data or {}), "csrf": token} if method == "POST" else None,
                  follow_redirects=False)
    assert r.status_code == status, (path, r.status_code)


@pytest.mark.parametrize("hours", ["1e300", "nan", "inf", "-5", "100000"])
def test_snooze_refuses_impossible_hours(web, hours):
    app, store, _ = web
    c, token = signed_in(app)
    aid = action_id(store, "dan")
    r = c.post(f"/actions/{aid}/snooze", data={"csrf": token, "hours": hours}, follow_redirects=False)
    assert r.status_code == 400 and store.action(aid)["snoozed_until"] is None


def test_security_headers_on_404s_and_redirects_too(web):
    app, store, _ = web
    c = TestClient(app, base_url="http://127.0.0.1")
    for r in (c.get("/nowhere"), c.get("/", follow_redirects=False), c.get("/login")):
        assert r.headers["x-content-type-options"] == "nosniff", r.status_code
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "same-origin"


def test_flash_and_session_cookies_are_secure_under_secure_cookies(tmp_path, cfg, default_model):
    store = fill(tmp_path, cfg, default_model)
    app = create_app(cfg, clock=clock, secure_cookies=True)
    c = TestClient(app, base_url="https://127.0.0.1")
    r = _try(c, "ann", PASSWORDS["ann"])
    assert "secure" in r.headers["set-cookie"].lower()
    token = csrf_of(c.get("/").text)
    aid = action_id(store, "dan")
    r = c.post(f"/actions/{aid}/snooze", data={"csrf": token, "hours": "2"}, follow_redirects=False)
    flash = [h for h in r.headers.get_list("set-cookie") if h.startswith("taiwa_flash=")]
    assert flash and "secure" in flash[0].lower()


def test_a_javascript_url_is_never_rendered_as_a_link(web):
    app, store, _ = web
    aid = action_id(store, "dan")
    post_id = store.action(aid)["post_id"]
    store.db.execute("UPDATE posts SET url = 'javascript:alert(1)' WHERE id = ?", [post_id])
    c, _ = signed_in(app)
    page = c.get(f"/actions/{aid}").text
    assert "javascript:" not in page
    store.db.execute("UPDATE posts SET url = 'https://x.com/dan/status/1' WHERE id = ?", [post_id])
    assert 'href="https://x.com/dan/status/1"' in c.get(f"/actions/{aid}").text


def test_campaign_csv_keeps_formulas_as_text(tmp_path, store):
    from taiwa.campaigns import cell, report_dir
    from taiwa.errors import ConfigError

    assert cell('=HYPERLINK("http://evil","x")') == '\'=HYPERLINK("http://evil","x")'
    assert [cell(v) for v in ("+1", "-1", "@x", "\tx", "fine")] == ["'+1", "'-1", "'@x", "'\tx", "fine"]
    assert report_dir(tmp_path, "WinterCup") == (tmp_path / "reports" / "WinterCup").resolve()
    with pytest.raises(ConfigError):
        report_dir(tmp_path, "../../x")


def test_back_links_never_leave_the_site_and_odd_input_is_a_clear_answer(web):
    """'back' may not point elsewhere (/\\host, /%09/host, //host); notes and presence on an item that does not
    exist plant nothing; a NUL or hundreds of words in a search answer 200 or 400, never 500."""
    from taiwa.web.util import local_path

    for bad in ("/\\evil.example", "/%09/evil.example", "/\t/evil.example", "//evil.example", "https://evil.example"):
        assert local_path(bad) == "/", bad
    assert local_path("/?kind=reply&q=mug") == "/?kind=reply&q=mug"
    app, store, _ = web
    c, token = signed_in(app, "ann")
    missing = 999_999
    r = c.post(f"/actions/{missing}/note", data={"csrf": token, "text": "planted", "back": "/"},
               follow_redirects=False)
    assert r.status_code in (303, 404) and store.notes([f"action:{missing}"]) == []
    assert c.post(f"/actions/{missing}/here", data={"csrf": token}).status_code == 404
    assert c.get("/?q=mug%00grinder").status_code == 200
    assert c.get("/?q=" + "+".join(["ab"] * 331)).status_code == 400


def test_a_burst_of_sign_ins_is_counted_before_any_password_is_hashed():
    """30 attempts that arrive together (29 wrong, then the right one): each is counted as it starts, so only the
    first five are checked at all and the right password in the burst is refused; at most two hashes run at once."""
    from taiwa.web.util import SignInThrottle

    t = SignInThrottle()
    allowed = [t.begin("ann", "10.0.0.1") == 0 for _ in range(30)]
    assert sum(allowed) == 5 and allowed[-1] is False
    assert t.hashing.acquire(blocking=False) and t.hashing.acquire(blocking=False)
    assert not t.hashing.acquire(blocking=False)          # a third concurrent hash is answered 429
    fresh = SignInThrottle()
    assert fresh.begin("bob", "10.0.0.2") == 0
    fresh.succeeded("bob", "10.0.0.2")
    assert fresh.failures.get(("address", "10.0.0.2")) == [] and ("account", "bob") not in fresh.failures


def test_big_bodies_and_fields_are_refused_before_any_work(web):
    """A 300 MB multipart body or a 1 MB field to /login is answered 413 without being read or stored; a long edit
    of a reply is refused with its size."""
    app, store, _ = web
    c = TestClient(app, base_url="http://127.0.0.1")
    r = c.post("/login", content=b"x" * (2 * 1024 * 1024),
               headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    ann, token = signed_in(app, "ann")
    aid = action_id(store, "dan")
    r = ann.post(f"/actions/{aid}/save", data={"csrf": token, "text": "a." * 15_000, "back": "/"},
                 follow_redirects=False)
    assert r.status_code == 413 and store.action(aid)["text"] != "a." * 15_000


def test_the_live_stream_ends_at_once_when_the_account_is_disabled(web):
    import threading
    import time

    app, store, _ = web
    c, _ = signed_in(app, "rob")

    def disable():
        threading.Event().wait(1.0)
        store.set_user("rob", "ann", disabled=True)

    threading.Thread(target=disable).start()
    started = time.monotonic()
    r = c.get("/events?since=0")
    assert "signed-out" in r.text and time.monotonic() - started < 15   # not the stream's 300 s
