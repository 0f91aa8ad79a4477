"""The inbox in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): sign in, approve one
draft, edit and approve another, read the audit log. Screenshots land in test-artifacts/ for a person to look at.

Without Chromium this test is skipped with the install command; CI sets TAIWA_REQUIRE_BROWSER=1, which turns the
skip into a failure."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from taiwa.web.app import create_app

from .web_helpers import PASSWORDS, action_id, clock, fill
from tests.support.waiting import pause

CHROMIUM = os.environ.get("TAIWA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _browser_or_skip():
    missing = []
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        missing.append("Chromium (sudo apt-get install chromium)")
    if missing:
        why = "browser test needs " + " and ".join(missing)
        if os.environ.get("TAIWA_REQUIRE_BROWSER"):
            pytest.fail(why + " — TAIWA_REQUIRE_BROWSER is set, so this is a failure")
        pytest.skip(why)


@pytest.fixture
def server(tmp_path, cfg, default_model):
    import uvicorn

    store = fill(tmp_path, cfg, default_model)
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
    yield f"http://127.0.0.1:{port}", store
    srv.should_exit = True
    thread.join(timeout=10)
    store.close()


def test_sign_in_approve_edit_and_audit_in_a_real_browser(server):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    url, store = server
    first, second, hostile = action_id(store, "dan"), action_id(store, "lena"), action_id(store, "mallory")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        page.goto(url + "/")                                    # not signed in: sent to the sign-in page
        assert "/login" in page.url
        page.fill("#name", "ann")
        page.fill("#password", PASSWORDS["ann"])
        page.click("button[type=submit]")
        page.wait_for_selector("#inbox")
        page.screenshot(path=str(ARTIFACTS / "inbox.png"))
        # A post whose text is HTML and script is shown as text and runs nothing.
        assert page.evaluate("window.pwned") is None
        assert "<script>window.pwned = 1</script>" in page.inner_text(f'tr[data-action="{hostile}"]')

        # 1. Approve one draft as written.
        page.click(f'tr[data-action="{first}"] a')
        page.wait_for_selector("#reply-text")
        page.screenshot(path=str(ARTIFACTS / "draft.png"), full_page=True)
        page.click("#approve")
        page.wait_for_selector("#flash")
        assert f"Approved #{first}" in page.inner_text("#flash")

        # 2. Edit another: the counter follows the typing and blocks an over-long reply; then approve.
        page.goto(f"{url}/actions/{second}")
        page.fill("#reply-text", "ケトル" * 100)                # 300 CJK characters weigh 600 on X
        assert page.inner_text("#counter") == "600 / 280" and page.is_disabled("#approve")
        edited = "Hi Lena! Yes, Shibuya is open on Sundays, 9:00–18:00. See you there ☕"
        page.fill("#reply-text", edited)
        assert not page.is_disabled("#approve")
        assert page.inner_text("#counter") == f"{len(edited) + 1} / 280"   # the cup emoji weighs 2
        page.click("#approve")
        page.wait_for_selector("#flash")

        # 3. The audit log shows both, with who did it.
        page.goto(url + "/audit")
        log = page.inner_text("#audit-log")
        page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)
        assert f"#{first}" in log and f"#{second}" in log and "ann" in log and "text edited" in log
        browser.close()
    assert store.action(first)["state"] == "approved" and store.action(first)["approved_by"] == "ann"
    b = store.action(second)
    assert b["state"] == "approved" and b["text"] == edited
    assert not errors, errors
    print(f"screenshots: {ARTIFACTS}/inbox.png, draft.png, audit.png")
