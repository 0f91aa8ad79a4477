"""The approval state machine: nothing leaves without approval, nothing leaves twice."""

import json

import pytest

from taiwa.errors import InvalidTransition, ValidationError
from taiwa.listeners.replay import ReplayListener
from taiwa.models.sentiment import Sentiment
from taiwa.pipeline import listen
from taiwa.responders import approval, senders
from taiwa.store import STATES, TRANSITIONS

from .conftest import T0, record, write_jsonl


def _seed(tmp_path, store, texts):
    path = write_jsonl(tmp_path / "in.jsonl", [record(i, t, handle=f"u{i}") for i, t in enumerate(texts)])
    listen(store, [ReplayListener(path)])
    ids = [r["id"] for r in store._rows("SELECT id FROM posts ORDER BY id")]
    store.create_actions([{"post_id": pid, "kind": "reply", "text": f"Hi, reply {n}"} for n, pid in enumerate(ids)])
    return [r["id"] for r in store._rows("SELECT id FROM actions ORDER BY id")]


class Recorder:
    """A platform stand-in that records what reached it (the outbox sender writes a real file instead)."""

    def __init__(self, fail_with=None):
        self.calls, self.fail_with = [], fail_with

    def send(self, action):
        if self.fail_with:
            raise self.fail_with
        self.calls.append(action["id"])
        return f"ref-{action['id']}"


def test_nothing_is_sent_without_approval(tmp_path, store):
    ids = _seed(tmp_path, store, ["one", "two", "three"])
    rec = Recorder()
    report = senders.send_approved(store, lambda a: rec)
    assert rec.calls == [] and report.sent == 0
    approval.approve(store, ids[1], actor="kim")
    report = senders.send_approved(store, lambda a: rec)
    assert rec.calls == [ids[1]] and report.sent == 1
    assert store.action(ids[1])["state"] == "sent" and store.action(ids[1])["platform_ref"] == f"ref-{ids[1]}"
    assert {store.action(i)["state"] for i in (ids[0], ids[2])} == {"pending"}


def test_a_sent_action_is_never_sent_again(tmp_path, store):
    ids = _seed(tmp_path, store, ["one"])
    approval.approve(store, ids[0], actor="kim")
    rec = Recorder()
    senders.send_approved(store, lambda a: rec)
    senders.send_approved(store, lambda a: rec)
    assert rec.calls == [ids[0]]
    with pytest.raises(InvalidTransition):
        approval.approve(store, ids[0], actor="kim")
    with pytest.raises(InvalidTransition):
        store.transition(ids[0], "sending", actor="x")


def test_a_sender_that_died_mid_send_leaves_needs_check_and_no_resend(tmp_path, store):
    import datetime as dt

    ids = _seed(tmp_path, store, ["one"])
    approval.approve(store, ids[0], actor="kim")
    # The claim is committed before the platform call; simulate a process killed right after it.
    store.transition(ids[0], "sending", actor="taiwa", sending_since=(T0 - dt.timedelta(hours=1)).isoformat())
    rec = Recorder()
    report = senders.send_approved(store, lambda a: rec, now=T0)
    assert report.recovered == 1 and rec.calls == []
    assert store.action(ids[0])["state"] == "needs_check"
    senders.send_approved(store, lambda a: rec, now=T0)
    assert rec.calls == []                                   # still not re-sent by any code path
    approval.resolve_check(store, ids[0], actor="kim", was_sent=False)
    senders.send_approved(store, lambda a: rec, now=T0)
    assert rec.calls == [ids[0]]                             # only after a person decided


def test_a_refused_send_is_failed_not_retried(tmp_path, store):
    from taiwa.errors import SendError

    ids = _seed(tmp_path, store, ["one"])
    approval.approve(store, ids[0], actor="kim")
    report = senders.send_approved(store, lambda a: Recorder(SendError("403 forbidden")))
    assert report.failed == 1
    a = store.action(ids[0])
    assert a["state"] == "failed" and "403" in a["reason"]
    rec = Recorder()
    senders.send_approved(store, lambda a: rec)
    assert rec.calls == []


def test_reject_needs_a_reason_and_is_audited(tmp_path, store):
    ids = _seed(tmp_path, store, ["one"])
    with pytest.raises(ValidationError):
        approval.reject(store, ids[0], actor="kim", reason="  ")
    approval.reject(store, ids[0], actor="kim", reason="handled by phone")
    log = store.audit_log(ids[0])
    assert log[-1]["actor"] == "kim" and log[-1]["before"] == "pending" and log[-1]["after"] == "rejected"
    assert "handled by phone" in log[-1]["detail"]


def test_edit_then_approve_keeps_the_draft_and_audits_the_edit(tmp_path, store):
    ids = _seed(tmp_path, store, ["one"])
    approval.approve(store, ids[0], actor="lee", text="Hi! Edited by a person.")
    a = store.action(ids[0])
    assert a["text"] == "Hi! Edited by a person." and a["draft_text"] == "Hi, reply 0"
    assert a["approved_by"] == "lee"
    assert "text edited" in store.audit_log(ids[0])[-1]["detail"]


def test_too_long_or_empty_replies_cannot_be_approved(tmp_path, store):
    ids = _seed(tmp_path, store, ["one"])
    with pytest.raises(ValidationError) as e:
        approval.approve(store, ids[0], actor="kim", text="x" * 281)
    assert "281" in e.value.message and "280" in e.value.message
    with pytest.raises(ValidationError):
        approval.approve(store, ids[0], actor="kim", text="ありがとう" * 29)   # 145 chars, weighs 290 on X
    approval.approve(store, ids[0], actor="kim", text="ありがとう" * 28)      # 280
    assert store.action(ids[0])["state"] == "approved"


def test_x_counts_urls_as_23():
    from taiwa.responders.drafts import x_weighted_length

    assert x_weighted_length("see https://example.com/" + "a" * 200) == 4 + 23
    assert x_weighted_length("猫 cat") == 2 + 4
    assert x_weighted_length("see example.com/help") == 4 + 23                  # no scheme: still a link
    assert x_weighted_length("see https://x.com/a.") == 4 + 23 + 1              # the full stop is not the link's
    assert x_weighted_length("👨‍👩‍👧‍👦") == 2 and x_weighted_length("👍🏽") == 2      # one emoji sequence weighs 2


def test_mastodon_and_bluesky_count_graphemes():
    from taiwa.responders.drafts import reply_length

    family = "👨‍👩‍👧‍👦"                                     # 7 code points, one grapheme
    assert reply_length("mastodon", family + " hi @ann@example.social https://a.example/" + "x" * 80) == \
        (1 + 4 + 4 + 1 + 23, 500)
    assert reply_length("bluesky", family * 3) == (3, 300)


def test_the_outbox_sender_writes_what_was_approved(tmp_path, store):
    ids = _seed(tmp_path, store, ["one", "two"])
    approval.approve(store, ids[0], actor="kim", text="Thanks, fixed!")
    out = senders.OutboxSender(tmp_path / "outbox.jsonl")
    senders.send_approved(store, lambda a: out)
    lines = [json.loads(x) for x in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [(x["action_id"], x["text"], x["approved_by"]) for x in lines] == [(ids[0], "Thanks, fixed!", "kim")]


def test_every_state_has_a_path_and_sent_is_final():
    assert set(TRANSITIONS) == set(STATES)
    assert TRANSITIONS["sent"] == set()
    assert "sent" not in TRANSITIONS["approved"]      # never sent without the sending claim first
    assert "approved" not in TRANSITIONS["sending"]   # a claimed send is never silently retried


def test_a_human_correction_is_not_overwritten_by_the_model(tmp_path, store):
    ids = _seed(tmp_path, store, ["meh"])
    pid = store.action(ids[0])["post_id"]
    store.save_sentiments([(pid, Sentiment("positive", {"negative": .1, "neutral": .1, "positive": .8}, "m"))])
    store.correct_sentiment(pid, "negative", "kim")
    store.save_sentiments([(pid, Sentiment("positive", {"negative": .1, "neutral": .1, "positive": .8}, "m"))])
    assert store.post(pid)["label"] == "negative"
    assert store.sentiment_corrections() == [{"text": "meh", "label": "negative"}]


def _live_action(store, platform: str, n: int) -> int:
    """An approved reply to a post read by a live listener (not a replay), so the router picks that platform."""
    from taiwa.listeners.base import Author, Post

    store.ingest([Post(platform=platform, platform_id=f"{platform}-{n}", author=Author(f"a{n}", f"a{n}"),
                       text="the grinder broke", created_at=T0, raw={"uri": f"at://x/{n}", "cid": "c"})],
                 listener=f"{platform}:test", cursor=None)
    pid = store._scalar("SELECT id FROM posts WHERE platform_id = ?", [f"{platform}-{n}"])
    store.create_actions([{"post_id": pid, "kind": "reply", "text": "Sorry! DM us?"}])
    aid = store._scalar("SELECT id FROM actions WHERE post_id = ?", [pid])
    approval.approve(store, aid, actor="kim")
    return aid


def test_an_unreachable_platform_fails_only_its_own_actions(tmp_path, store, cfg, monkeypatch):
    import socket

    with socket.socket() as s:                     # a loopback port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg.sections["platforms.bluesky"].update(enabled=True, handle="brand.example", service=f"http://127.0.0.1:{port}",
                                             session_file=str(tmp_path / "bsky-session"))
    monkeypatch.setenv("TAIWA_BSKY_APP_PASSWORD", "app-pass-word")
    replay_ids = _seed(tmp_path, store, ["one", "two"])
    for i in replay_ids:
        approval.approve(store, i, actor="kim")
    blue = _live_action(store, "bluesky", 1)
    sender_for, problems = senders.router(cfg, store)
    report = senders.send_approved(store, sender_for)           # the real atproto client, refused connection
    assert report.sent == 2 and {store.action(i)["state"] for i in replay_ids} == {"sent"}
    assert store.action(blue)["state"] == "approved" and "bluesky" in problems   # waits for the platform
    assert "Bluesky could not be reached" in problems["bluesky"]


def test_a_sender_that_crashes_or_cannot_connect_marks_that_action_and_the_rest_go_on(tmp_path, store):
    import httpx

    ids = _seed(tmp_path, store, ["a", "b", "c"])
    for i in ids:
        approval.approve(store, i, actor="kim")
    ok = Recorder()
    behaviour = {ids[0]: Recorder(fail_with=httpx.ConnectError("connection refused")),
                 ids[1]: Recorder(fail_with=RuntimeError("bug in a client library")), ids[2]: ok}
    report = senders.send_approved(store, lambda a: behaviour[a["id"]])
    assert [store.action(i)["state"] for i in ids] == ["failed", "needs_check", "sent"]
    assert (report.sent, report.failed, report.uncertain) == (1, 1, 1) and ok.calls == [ids[2]]
    assert "nothing was posted" in store.action(ids[0])["reason"]
    assert any("needs_check" in p for p in report.problems)


def test_the_loser_of_a_send_claim_skips_the_action(tmp_path, store):
    from taiwa.store import Store

    ids = _seed(tmp_path, store, ["a", "b"])
    for i in ids:
        approval.approve(store, i, actor="kim")
    other = Store(store.database)                                   # the daemon, on its own connection
    rec = Recorder()

    def racing(action):
        if action["id"] == ids[0]:                              # the daemon claims it between our read and claim
            other.transition(ids[0], "sending", actor="daemon", expect=("approved",))
        return rec

    report = senders.send_approved(store, racing)
    assert report.taken == 1 and report.sent == 1 and rec.calls == [ids[1]]
    assert store.action(ids[0])["state"] == "sending"           # the daemon's to finish
    other.close()


def test_an_outbox_write_that_fails_leaves_no_torn_line(tmp_path):
    """The file size limit stands in for a full disk: the write fails part-way, the part is taken back, and the
    error says that nothing left this machine."""
    import subprocess
    import sys

    out = tmp_path / "outbox.jsonl"
    out.write_text('{"ref": "outbox:1"}\n', encoding="utf-8")
    code = f"""
import resource, signal, sys
from taiwa.responders.senders import OutboxSender
from taiwa.errors import TaiwaError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({out.stat().st_size} + 40, {out.stat().st_size} + 40))
try:
    OutboxSender({str(out)!r}).send({{"id": 2, "kind": "reply", "platform": "replay", "platform_id": "9",
        "handle": "amy", "text": "x" * 500, "approved_by": "kim"}})
except TaiwaError as e:
    print(e.message)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "could not be written on this machine" in r.stdout and "nothing was sent" in r.stdout, r.stderr
    assert out.read_text(encoding="utf-8") == '{"ref": "outbox:1"}\n'
