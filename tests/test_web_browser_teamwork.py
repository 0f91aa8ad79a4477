"""The inbox as a team uses it all day, in Debian's Chromium through Playwright: a keyboard-only session that
triages 20 items; two people on one item (presence, and a stale edit refused with the text kept); a new post
appearing without a reload; search in English and Japanese; a phone-width screen without sideways scrolling."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from taiwa import pipeline
from taiwa.listeners.replay import ReplayListener
from taiwa.store import Store
from taiwa.web.app import create_app

from .conftest import T0, record, write_jsonl
from .test_web_browser import ARTIFACTS, CHROMIUM, _browser_or_skip
from .web_helpers import PASSWORDS, clock
from tests.support.waiting import pause

PROBLEMS = ["my grinder stopped working", "the kettle lid leaks", "my beans arrived stale", "the app crashes at pay",
            "the mug came chipped", "my order is two weeks late", "the tumbler leaks in my bag",
            "the barista was rude today", "I was charged twice", "the pour-over kit is missing a filter"]
QUESTIONS = ["do you ship to Canada?", "is the mug dishwasher safe?", "when is the holiday blend back?",
             "does the kettle work on induction?", "can I change my subscription grind?"]


@pytest.fixture
def server(tmp_path, cfg, default_model):
    import uvicorn

    posts = [record(i, f"@kettlebird {PROBLEMS[i % 10]} ({i})", handle=f"user{i}", hours=-i * 0.5)
             for i in range(18)]
    posts += [record(100 + i, f"@kettlebird {q}", handle=f"asker{i}", hours=-i) for i, q in enumerate(QUESTIONS)]
    posts.append(record(200, "@kettlebird_jp 届いたマグが割れていました。交換できますか？", handle="yuki", lang="ja"))
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "posts.jsonl", posts))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    for name, role in (("ann", "approver"), ("ada", "admin")):
        store.add_user(name, role, PASSWORDS[name], "test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(cfg, clock=clock), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the inbox server did not start"
        pause(0.05)
    yield f"http://127.0.0.1:{port}", store, tmp_path
    srv.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture
def browser():
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def sign_in_by_keyboard(page, url, name):
    page.goto(url + "/")
    page.wait_for_selector("#name:focus")                     # the name field has the focus: no Tab needed
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[name])
    page.keyboard.press("Enter")
    page.wait_for_selector("#inbox")


def test_a_keyboard_only_session_triages_twenty_items(server, browser):
    url, store, _ = server
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    loads = []
    page.on("load", lambda: loads.append(page.url))
    sign_in_by_keyboard(page, url, "ann")
    first = page.get_attribute("#rows tr.item.current", "data-action")
    assert first == page.evaluate("document.activeElement.dataset.action")   # the first item has the focus
    page.keyboard.press("o")
    page.wait_for_selector("#item-nav")
    loads.clear()
    decided: dict[str, list[int]] = {"approved": [], "edited": [], "rejected": [], "snoozed": [], "done": []}
    for i in range(20):
        aid = int(page.get_attribute("#item-nav", "data-action"))
        step = ["approved", "edited", "rejected", "snoozed", "done"][i % 5]
        with page.expect_navigation():
            if step == "approved":
                page.keyboard.press("a")
            elif step == "edited":
                page.keyboard.press("e")
                page.keyboard.press("Control+A")
                page.keyboard.type(f"Hi! Sorted: we're sending a replacement today. ({i})")
                page.keyboard.press("Control+Enter")
            elif step == "rejected":
                page.keyboard.press("r")
                page.keyboard.type("handled by phone")
                page.keyboard.press("Enter")
            elif step == "snoozed":
                page.keyboard.press("s")
            else:
                page.keyboard.press("d")
        page.wait_for_selector("#flash")
        decided[step].append(aid)
    page.screenshot(path=str(ARTIFACTS / "keyboard-triage.png"), full_page=True)
    states = {aid: store.action(aid) for ids in decided.values() for aid in ids}
    assert len(states) == 20                                   # twenty different items, each once
    assert all(states[i]["state"] == "approved" for i in decided["approved"] + decided["edited"])
    assert all(states[i]["text"].startswith("Hi! Sorted") for i in decided["edited"])
    assert all(states[i]["state"] == "rejected" and states[i]["reason"] == "handled by phone"
               for i in decided["rejected"])
    assert all(states[i]["snoozed_until"] for i in decided["snoozed"])
    assert all(states[i]["state"] == "done" for i in decided["done"])
    approved = len(decided["approved"]) + len(decided["edited"])
    print(f"\nkeyboard triage: 20 items, {len(loads)} page loads ({len(loads) / 20:.1f} per item), "
          f"0 clicks; {approved} approved with 1 key each (edits: e, type, Ctrl+Enter)")
    assert len(loads) == 20 and not errors, errors


def test_two_people_on_one_item_presence_and_a_stale_edit(server, browser):
    url, store, _ = server
    ann = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    ada = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    sign_in_by_keyboard(ann, url, "ann")
    sign_in_by_keyboard(ada, url, "ada")
    aid = ann.get_attribute("#rows tr.item", "data-action")
    ada.goto(f"{url}/actions/{aid}")
    ann.goto(f"{url}/actions/{aid}")
    assert "also open by ada" in ann.inner_text("#here")
    deadline = time.monotonic() + 8                              # ada's page learns that ann is here too
    while "ann" not in ada.inner_text("#here"):
        assert time.monotonic() < deadline, "ada's page never showed ann"
        ada.wait_for_timeout(200)
    ada.fill("#reply-text", "Hi! Ada's better wording, not saved yet.")
    with ann.expect_navigation():
        ann.keyboard.press("a")                                  # ann approves first
    ada.wait_for_selector("#stale:not([hidden])", timeout=8000)  # ada's page notices within a few seconds
    ada.click("#save")
    ada.wait_for_selector("#flash")
    assert "changed since you opened it" in ada.inner_text("#flash") and "ann" in ada.inner_text("#flash")
    assert ada.is_visible("#restore") and "Ada's better wording" in ada.inner_text("#restore-text")
    assert store.action(int(aid))["state"] == "approved"
    assert store.action(int(aid))["text"] != "Hi! Ada's better wording, not saved yet."
    ada.screenshot(path=str(ARTIFACTS / "stale-edit.png"), full_page=True)


def test_a_new_post_appears_without_a_reload_and_search_works(server, browser, cfg, default_model):
    url, store, tmp_path = server
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    sign_in_by_keyboard(page, url, "ann")
    page.wait_for_timeout(700)                                   # the live connection is open
    started = time.monotonic()
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "new.jsonl", [
        record(300, "@kettlebird URGENT the lid of my kettle cracked and hot water went everywhere", handle="late")]))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    new = store._scalar("SELECT ac.id FROM actions ac JOIN posts p ON p.id = ac.post_id WHERE p.platform_id = '300'")
    page.wait_for_selector(f'#rows tr[data-action="{new}"]', timeout=2000)
    print(f"\nnew post shown {time.monotonic() - started:.1f} s after it was stored (no reload)")
    page.keyboard.press("/")
    page.keyboard.type("grinder")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    shown = page.eval_on_selector_all("#rows tr.item", "rows => rows.map(r => r.innerText)")
    assert shown and all("grinder" in s.lower() for s in shown)
    page.goto(url + "/?q=" + "マグが割れ")
    shown = page.eval_on_selector_all("#rows tr.item", "rows => rows.map(r => r.innerText)")
    assert len(shown) == 1 and "マグが割れていました" in shown[0]


def test_a_phone_screen_needs_no_sideways_scrolling(server, browser):
    url, store, _ = server
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in_by_keyboard(page, url, "ann")
    for path in ("/", f"/actions/{page.get_attribute('#rows tr.item', 'data-action')}", "/metrics"):
        page.goto(url + path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392)
            .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert wide <= 390, (path, wide, culprits)
    page.goto(url + "/")
    page.screenshot(path=str(ARTIFACTS / "inbox-390px.png"), full_page=True)
