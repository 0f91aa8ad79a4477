"""Two people in the inbox at once, in Debian's Chromium: a key acts only on the row visibly focused, focus stays
where it was when a teammate changes the list, a refusal says why, Enter on a control presses that control, "next"
is the next row shown; one reply for an incident starts from {name} and shows what each person receives."""

from __future__ import annotations

import time

from taiwa import pipeline
from taiwa.listeners.replay import ReplayListener
from taiwa.responders import approval
from taiwa.store import Store

from .conftest import T0, record, write_jsonl
from .test_incidents import CRASH
from .test_web_browser_teamwork import browser, server, sign_in_by_keyboard  # noqa: F401 - fixtures
from .test_web_browser import ARTIFACTS
from tests.support.waiting import pause


def _wait(page, check, what, seconds=8.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(100)


def test_focus_stays_put_when_a_teammate_changes_the_list(server, browser):  # noqa: F811
    url, store, _ = server
    ann = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    sign_in_by_keyboard(ann, url, "ann")
    ann.wait_for_timeout(600)                                     # the live connection is open
    for _ in range(4):
        ann.keyboard.press("j")
    rows = ann.eval_on_selector_all("#rows tr.item", "rs => rs.map(r => r.dataset.action)")
    fifth = ann.get_attribute("#rows tr.item.current", "data-action")
    assert fifth == rows[4]
    # A teammate closes another item: ann's focus does not move.
    approval.done(store, int(rows[1]), actor="ada")
    _wait(ann, lambda: ann.query_selector(f'#rows tr.item[data-action="{rows[1]}"]') is None, "row 2 never left")
    assert ann.get_attribute("#rows tr.item.current", "data-action") == fifth
    # A teammate closes the focused item itself: focus goes to the row that took its place, never to row 1, and
    # the page says so.
    approval.done(store, int(fifth), actor="ada")
    _wait(ann, lambda: ann.query_selector(f'#rows tr.item[data-action="{fifth}"]') is None, "row 5 never left")
    now = ann.eval_on_selector_all("#rows tr.item", "rs => rs.map(r => r.dataset.action)")
    assert ann.get_attribute("#rows tr.item.current", "data-action") == now[3] == rows[5]
    assert "left this list" in ann.inner_text("#list-message")
    # A refused approval says why (the item was rejected a moment before the key).
    target = ann.get_attribute("#rows tr.item.current", "data-action")
    store.transition(int(target), "rejected", actor="ada", reason="dup", detail="dup")
    ann.keyboard.press("a")
    ann.wait_for_selector("#list-message:not([hidden])")
    _wait(ann, lambda: f"#{target} not done" in ann.inner_text("#list-message"), "the refusal was silent")
    assert store.action(int(target))["state"] == "rejected"


def test_enter_on_a_control_presses_it_and_next_is_the_next_row_shown(server, browser):  # noqa: F811
    url, store, _ = server
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    sign_in_by_keyboard(page, url, "ann")
    page.fill("#search", "grinder")
    page.focus("#filters button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")                                   # the Filter button, not an item
    assert "/actions/" not in page.url and "q=grinder" in page.url
    page.goto(url + "/")
    shown = page.eval_on_selector_all("#rows tr.item", "rs => rs.map(r => r.dataset.action)")
    page.focus(f'#rows tr.item[data-action="{shown[2]}"] a.open')
    with page.expect_navigation():
        page.keyboard.press("Enter")                                   # the link that has the focus
    assert f"/actions/{shown[2]}?" in page.url
    page.goto(f"{url}/actions/{shown[0]}?back=%2F")
    with page.expect_navigation():
        page.keyboard.press("d")                                       # done: the next row shown opens
    assert f"/actions/{shown[1]}?" in page.url


def _incident_store(tmp_path, cfg, model):
    posts = [record(i + 1, text, handle=h, lang=lang, hours=-3 + i * 0.4,
                    author={"id": f"u-{h}", "handle": h, "name": name, "followers": 100})
             for i, ((h, text, lang), name) in enumerate(zip(CRASH[:5], ["Pia Lind", "Shop https://evil.example",
                                                                         "@kettlebird_support", "Gus\u202e", "Ayu"]))]
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", [
        {k: v for k, v in p.items() if k != "author_handle"} for p in posts]))])
    pipeline.classify(store, model)
    pipeline.triage(store, cfg, now=T0)
    return store


def test_one_reply_for_all_starts_from_name_and_shows_what_each_person_receives(tmp_path, cfg, default_model,
                                                                                  browser):  # noqa: F811
    import socket
    import threading

    import uvicorn

    from taiwa.web.app import create_app

    from .web_helpers import PASSWORDS, clock

    store = _incident_store(tmp_path, cfg, default_model)
    store.add_user("ann", "approver", PASSWORDS["ann"], "test")
    [incident] = [r["id"] for r in store._rows("SELECT id FROM incidents")]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(cfg, clock=clock), host="127.0.0.1", port=port,
                                        log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        pause(0.05)
    try:
        url = f"http://127.0.0.1:{port}"
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        sign_in_by_keyboard(page, url, "ann")
        page.goto(f"{url}/incidents/{incident}")
        box = page.input_value("#incident-text")
        assert "{name}" in box and "@pia" not in box.lower() and "Pia Lind" not in box
        previews = page.eval_on_selector_all("#members .preview", "ps => ps.map(p => p.textContent)")
        assert len(previews) >= 4
        page.fill("#incident-text", "Hi {name}, a fix for the checkout crash is rolling out now.")
        previews = page.eval_on_selector_all("#members .preview", "ps => ps.map(p => p.textContent)")
        assert any(p.startswith("Hi Pia Lind,") for p in previews)
        assert not any("evil.example" in p or "@kettlebird_support" in p or "\u202e" in p for p in previews)
        page.screenshot(path=str(ARTIFACTS / "incident-reply-all.png"), full_page=True)
        with page.expect_navigation():
            page.click("#approve-all")
        texts = {r["handle"]: r["text"] for r in store._rows(
            "SELECT a.handle, ac.text FROM actions ac JOIN posts p ON p.id = ac.post_id JOIN authors a "
            "ON a.id = p.author_id JOIN incident_posts ip ON ip.post_id = p.id WHERE ac.kind = 'reply' "
            "AND ac.state = 'approved'")}
        assert texts and all(t.startswith("Hi ") and "{name}" not in t for t in texts.values())
        assert len({t.split(",")[0] for t in texts.values()}) == len(texts)   # each person their own name
        assert not any("evil" in t or "kettlebird_support" in t for t in texts.values())
        assert texts.get("pia", "").startswith("Hi Pia Lind,")
    finally:
        srv.should_exit = True
        store.close()
