"""Mastodon through Mastodon.py's real client, on API-shaped JSON served by `responses`. No network."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taiwa import pipeline
from taiwa.errors import PlatformAuthError
from taiwa.listeners import mastodon as md
from taiwa.responders import approval, senders
from taiwa.responders.drafts import reply_length

BASE = "https://social.example"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def status(i: int, content: str, *, acct: str = "mika", tags=(), reply_to=None, minutes=0, **extra) -> dict:
    return {
        "id": str(110000000000000000 + i), "uri": f"{BASE}/users/{acct}/statuses/{i}",
        "url": f"{BASE}/@{acct}/{i}", "created_at": (NOW - dt.timedelta(minutes=60 - minutes)).isoformat(),
        "content": content, "spoiler_text": "", "visibility": "public", "sensitive": False, "language": "ja",
        "in_reply_to_id": reply_to, "in_reply_to_account_id": None, "reblog": None,
        "replies_count": 0, "reblogs_count": 1, "favourites_count": 3, "mentions": [
            {"id": "1", "username": "kettlebird", "acct": "kettlebird", "url": f"{BASE}/@kettlebird"}],
        "tags": [{"name": t, "url": f"{BASE}/tags/{t}"} for t in tags], "emojis": [], "media_attachments": [],
        "account": {"id": str(500 + i), "username": acct.split("@")[0], "acct": acct, "display_name": acct.title(),
                    "followers_count": 120 + i, "following_count": 5, "statuses_count": 10, "bot": False,
                    "locked": False, "url": f"{BASE}/@{acct}", "created_at": "2023-01-01T00:00:00.000Z",
                    "note": "", "avatar": "", "header": "", "emojis": [], "fields": []},
        **extra}


def notification(n: int, s: dict) -> dict:
    return {"id": str(9000 + n), "type": "mention", "created_at": s["created_at"], "account": s["account"],
            "status": s}


MENTIONS = [notification(n, s) for n, s in enumerate([
    status(1, '<p><span class="h-card"><a href="https://social.example/@kettlebird" class="u-url mention">@<span>'
              'kettlebird</span></a></span> マグが割れて届きました😢 交換できますか？</p>', minutes=1),
    status(2, "<p>@kettlebird the grinder is <b>loud</b> &amp; slow.<br>Any fix?</p><p>Second paragraph "
              '<a href="https://example.com/very/long/link" rel="nofollow"><span class="invisible">https://</span>'
              '<span class="">example.com/very/long</span><span class="invisible">/link</span></a></p>',
           acct="sam@other.example", minutes=2, language="en"),
    status(3, "<p>@kettlebird love the new cups ☕☕ #WinterCupDesign</p>", acct="leo", tags=["WinterCupDesign"],
           minutes=3, language="en"),
])]


class FakeServer:
    """Notifications paged by min_id the way Mastodon pages them (the items just newer than min_id)."""

    def __init__(self, rsps, notifications: list[dict]):
        self.notifications, self.calls, self.limit_next = notifications, [], False
        rsps.add_callback(responses.GET, f"{BASE}/api/v1/notifications", callback=self.list)
        rsps.add_callback(responses.GET, re.compile(f"{BASE}/api/v1/timelines/tag/.*"), callback=self.tag)

    def list(self, request):
        q = parse_qs(urlparse(request.url).query)
        self.calls.append(q)
        if self.limit_next:
            # Relative to when the request is answered: a long suite may reach this test minutes after NOW.
            self.reset_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(minutes=7)
            reset = self.reset_at.isoformat()
            return 429, {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
                         "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())}, \
                json.dumps({"error": "Too many requests"})
        assert q["types[]"] == ["mention"]
        limit = int(q["limit"][0])
        items = sorted(self.notifications, key=lambda n: int(n["id"]))
        if "min_id" in q:
            items = [n for n in items if int(n["id"]) > int(q["min_id"][0])][:limit]
        else:
            items = items[-limit:]
        return 200, {}, json.dumps(list(reversed(items)))          # newest first, as Mastodon answers

    def tag(self, request):
        return 200, {}, json.dumps([])


def api():
    import mastodon

    return mastodon.Mastodon(access_token="tok-test", api_base_url=BASE, ratelimit_method="throw",
                             version_check_mode="none")


def mcfg(cfg, **kw):
    cfg.sections["platforms.mastodon"].update({"enabled": True, "api_base_url": BASE, "page_size": 2, **kw})
    return cfg


@responses.activate
def test_mentions_are_mapped_and_paged_forward_by_min_id(store, cfg):
    mcfg(cfg, hashtags=False)
    server = FakeServer(responses.mock, MENTIONS)
    lst = md.listeners_from_config(cfg, api())
    first = pipeline.listen(store, lst)
    assert first.new == 2                                          # a new stream takes the newest page only
    assert "min_id" not in server.calls[0]
    server.notifications = MENTIONS + [notification(7, status(7, "<p>@kettlebird 返品したいです</p>", minutes=9)),
                                       notification(8, status(8, "<p>@kettlebird thanks!</p>", minutes=10))]
    server.calls.clear()
    again = pipeline.listen(store, lst)
    assert again.new == 2 and server.calls[0]["min_id"] == ["9002"]
    p = store._one("SELECT p.*, a.handle FROM posts p JOIN authors a ON a.id = p.author_id "
                   "WHERE p.platform_id = '110000000000000002'")
    assert p["text"] == "@kettlebird the grinder is loud & slow.\nAny fix?\n\nSecond paragraph https://example.com/very/long/link"
    assert p["handle"] == "sam@other.example" and p["platform"] == "mastodon" and p["lang"] == "en"
    j = store._one("SELECT p.*, a.handle FROM posts p JOIN authors a ON a.id = p.author_id "
                   "WHERE p.platform_id = '110000000000000003'")
    assert j["handle"] == "leo@social.example" and json.loads(j["hashtags"]) == ["WinterCupDesign"]


@responses.activate
def test_a_rate_limit_pauses_the_stream_until_the_reset(store, cfg):
    mcfg(cfg, hashtags=False)
    server = FakeServer(responses.mock, MENTIONS)
    server.limit_next = True
    report = pipeline.listen(store, md.listeners_from_config(cfg, api()))
    assert "rate limit" in report.paused["mastodon:mentions"]
    until, _ = store.paused_until("mastodon:mentions")
    assert abs((until - server.reset_at).total_seconds()) < 5


def test_a_missing_token_or_server_is_explained(cfg, monkeypatch):
    monkeypatch.delenv("TAIWA_MASTODON_TOKEN", raising=False)
    cfg.sections["platforms.mastodon"].update(enabled=True)
    with pytest.raises(PlatformAuthError) as e:
        md.make_api(cfg)
    assert "api_base_url" in e.value.message
    cfg.sections["platforms.mastodon"].update(api_base_url=BASE)
    with pytest.raises(PlatformAuthError) as e:
        md.make_api(cfg)
    assert "TAIWA_MASTODON_TOKEN" in e.value.message and "write:statuses" in e.value.hint


@responses.activate
def test_reply_uses_the_action_id_as_idempotency_key_and_favourite_is_the_reaction(store, cfg, monkeypatch):
    mcfg(cfg, hashtags=False, page_size=40)
    FakeServer(responses.mock, MENTIONS)
    pipeline.listen(store, md.listeners_from_config(cfg, api()))
    ids = {r["platform_id"]: r["id"] for r in store._rows("SELECT id, platform_id FROM posts")}
    store.create_actions([
        {"post_id": ids["110000000000000001"], "kind": "reply", "text": "ご不便をおかけしました🙏 DMで注文番号を教えてください"},
        {"post_id": ids["110000000000000002"], "kind": "reply", "text": "@sam sorry! A fix is on the way."},
        {"post_id": ids["110000000000000003"], "kind": "like"}])
    actions = {r["platform_id"]: r["id"] for r in store._rows(
        "SELECT ac.id, p.platform_id FROM actions ac JOIN posts p ON p.id = ac.post_id")}
    for a in actions.values():
        approval.approve(store, a, actor="ann")
    posted = []

    def post_status(request):
        body = json.loads(request.body) if request.body and request.body[:1] in (b"{", "{") else \
            {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else
                                          request.body.decode()).items()}
        posted.append((request.headers.get("Idempotency-Key"), body))
        if len(posted) == 2:
            return 503, {}, json.dumps({"error": "Service Unavailable"})
        return 200, {}, json.dumps(status(99, "<p>ok</p>", acct="kettlebird"))

    responses.add_callback(responses.POST, f"{BASE}/api/v1/statuses", callback=post_status)
    responses.add(responses.POST, f"{BASE}/api/v1/statuses/110000000000000003/favourite",
                  json=status(3, "<p>x</p>", acct="leo", favourited=True))
    monkeypatch.setenv("TAIWA_MASTODON_TOKEN", "tok-test")
    sender_for, problems = senders.router(cfg, store)
    report = senders.send_approved(store, sender_for, actor="ann")
    assert (report.sent, report.uncertain) == (2, 1) and not problems
    first = store.action(actions["110000000000000001"])
    assert posted[0][0] == f"taiwa-action-{first['id']}"
    assert posted[0][1]["in_reply_to_id"] == "110000000000000001"
    assert posted[0][1]["status"].startswith("@mika@social.example ご不便")  # the author is mentioned
    assert posted[0][1]["visibility"] == "unlisted"
    assert first["platform_ref"] == "110000000000000099"
    second = store.action(actions["110000000000000002"])
    assert second["state"] == "needs_check" and posted[1][1]["status"] == "@sam sorry! A fix is on the way."
    assert store.action(actions["110000000000000003"])["platform_ref"] == "favourite:110000000000000003"


def test_mastodon_and_bluesky_lengths():
    assert reply_length("mastodon", "@bob@mastodon.social hi https://example.com/" + "x" * 200) == (31, 500)
    assert reply_length("bluesky", "👨‍👩‍👧‍👦" * 300) == (300, 300)       # one grapheme each
    assert reply_length("bluesky", "ありがとう🙏🏽") == (6, 300)


@responses.activate
def test_a_reply_is_never_more_visible_than_the_post_it_answers(store, cfg, monkeypatch):
    """Followers-only stays followers-only, a direct message is answered directly, unlisted stays unlisted; the
    configured visibility (here public) applies to public posts only."""
    mcfg(cfg, hashtags=False, page_size=40, reply_visibility="public")
    kinds = {"110000000000000011": "private", "110000000000000012": "direct", "110000000000000013": "unlisted",
             "110000000000000014": "public"}
    mentions = [notification(n, status(11 + n, f"<p>@kettlebird my order is late ({v})</p>", acct=f"p{n}",
                                       visibility=v, language="en", minutes=n))
                for n, v in enumerate(kinds.values())]
    mentions[0]["status"]["spoiler_text"] = "order trouble"          # a content warning changes nothing
    FakeServer(responses.mock, mentions)
    pipeline.listen(store, md.listeners_from_config(cfg, api()))
    stored = {r["platform_id"]: r for r in store._rows("SELECT id, platform_id, audience, can_reply FROM posts")}
    assert {pid: r["audience"] for pid, r in stored.items()} == kinds
    assert all(r["can_reply"] for r in stored.values())
    store.create_actions([{"post_id": r["id"], "kind": "reply", "text": "Sorry! Checking now."}
                          for r in stored.values()])
    for a in store._rows("SELECT id FROM actions"):
        approval.approve(store, a["id"], actor="ann")
    posted = {}

    def post_status(request):
        body = json.loads(request.body) if request.body and request.body[:1] in (b"{", "{") else \
            {k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str) else
                                          request.body.decode()).items()}
        posted[body["in_reply_to_id"]] = body["visibility"]
        return 200, {}, json.dumps(status(99 + len(posted), "<p>ok</p>", acct="kettlebird",
                                          visibility=body["visibility"]))

    responses.add_callback(responses.POST, f"{BASE}/api/v1/statuses", callback=post_status)
    monkeypatch.setenv("TAIWA_MASTODON_TOKEN", "tok-test")
    sender_for, _ = senders.router(cfg, store)
    assert senders.send_approved(store, sender_for, actor="ann").sent == 4
    assert posted == kinds


def test_the_configured_visibility_narrows_but_never_widens():
    from taiwa.responders.mastodon_sender import reply_visibility

    assert reply_visibility("unlisted", {"audience": "public"}) == "unlisted"
    assert reply_visibility("unlisted", {"audience": "private"}) == "private"
    assert reply_visibility("private", {"audience": "unlisted"}) == "private"
    assert reply_visibility("public", {"audience": "direct"}) == "direct"
