"""Every way to approve refuses an action whose send may have reached the platform (needs_check), and a bulk
approval refuses an item a teammate changed after the list was loaded."""

import subprocess
import sys

import pytest

from taiwa.errors import InvalidTransition
from taiwa.responders import approval, senders
from taiwa.store import Store
from taiwa.web.app import create_app

from .test_web_teamwork import signed_in
from .web_helpers import action_id, clock, fill


class Once:
    """A platform that takes the reply, then the connection drops before it answers."""

    def __init__(self):
        self.posted = []

    def send(self, action):
        from taiwa.errors import SendUncertain

        self.posted.append(action["id"])
        raise SendUncertain("the connection dropped after the request was sent")


def _needs_check(store, aid) -> Once:
    approval.approve(store, aid, actor="ann")
    platform = Once()
    senders.send_approved(store, lambda a: platform)
    assert store.action(aid)["state"] == "needs_check" and platform.posted == [aid]
    return platform


@pytest.fixture
def web(tmp_path, cfg, default_model):
    store = fill(tmp_path, cfg, default_model)
    yield create_app(cfg, clock=clock), store, cfg
    store.close()


def test_the_library_refuses_and_says_what_to_do(web):
    _, store, _ = web
    aid = action_id(store, "dan")
    platform = _needs_check(store, aid)
    with pytest.raises(InvalidTransition) as e:
        approval.approve(store, aid, actor="ann")
    assert "may already be on" in e.value.message and "taiwa check" in e.value.hint
    senders.send_approved(store, lambda a: platform)
    assert platform.posted == [aid]                                  # nothing posted twice


def test_the_item_page_the_list_and_the_likes_route_refuse_it(web):
    app, store, _ = web
    aid = action_id(store, "dan")
    platform = _needs_check(store, aid)
    ann, token = signed_in(app, "ann")
    version = store.action(aid)["version"]
    r = ann.post(f"/actions/{aid}/approve", data={"csrf": token, "version": version, "back": "/"})
    assert "may already be on" in r.text
    r = ann.post("/bulk", data={"csrf": token, "do": "approve", "ids": [f"{aid}:{version}"], "back": "/"})
    assert "Approved 0 of 1" in r.text and "may already be on" in r.text
    r = ann.post("/likes/approve", data={"csrf": token, "ids": [f"{aid}:{version}"], "back": "/"})
    assert store.action(aid)["state"] == "needs_check"
    senders.send_approved(store, lambda a: platform)
    assert platform.posted == [aid]
    # Only "Not there" (a person looked) lets it go again.
    ann.post(f"/actions/{aid}/check", data={"csrf": token, "sent": "no", "back": "/"})
    assert store.action(aid)["state"] == "approved"


def test_the_command_line_refuses_it(web, tmp_path):
    _, store, cfg = web
    aid = action_id(store, "dan")
    _needs_check(store, aid)
    toml = tmp_path / "taiwa.toml"
    toml.write_text(f'[taiwa]\ndatabase = "{cfg.database}"\n\n[[brands]]\nname = "K"\nhandles = ["kettlebird"]\n')
    r = subprocess.run([sys.executable, "-m", "taiwa", "-c", str(toml), "approve", str(aid), "--as", "ann"],
                       capture_output=True, text=True)
    assert r.returncode == 5 and "may already be on" in r.stderr and f"taiwa check {aid}" in r.stderr
    assert Store(cfg.database).action(aid)["state"] == "needs_check"


def test_a_bulk_approval_refuses_what_a_teammate_changed_after_the_list_was_loaded(web):
    app, store, _ = web
    ann, token = signed_in(app, "ann")
    rob, rtoken = signed_in(app, "rob")
    dan, lena = action_id(store, "dan"), action_id(store, "lena")
    seen = {i: store.action(i)["version"] for i in (dan, lena)}          # the list ann loaded
    item = rob.get(f"/actions/{dan}")
    assert item.status_code == 200
    r = rob.post(f"/actions/{dan}/save", data={"csrf": rtoken, "text": "Call us at 555-0100 about it",
                                               "version": seen[dan], "back": "/"})
    assert store.action(dan)["text"] == "Call us at 555-0100 about it"
    r = ann.post("/bulk", data={"csrf": token, "do": "approve", "back": "/",
                                "ids": [f"{dan}:{seen[dan]}", f"{lena}:{seen[lena]}"]})
    assert "Approved 1 of 2" in r.text
    assert store.action(dan)["state"] == "pending" and store.action(lena)["state"] == "approved"
    # A selection that does not say what was seen is refused whole.
    r = ann.post("/bulk", data={"csrf": token, "do": "approve", "ids": [str(dan)], "back": "/"},
                 follow_redirects=False)
    assert r.status_code == 400 and store.action(dan)["state"] == "pending"
