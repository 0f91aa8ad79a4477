"""Bluesky through the atproto SDK's real client, on API-shaped JSON served by an httpx mock transport."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat

import httpx
import pytest

from taiwa import pipeline
from taiwa.errors import PlatformAuthError
from taiwa.listeners import bluesky as bs
from taiwa.responders import approval, senders
from taiwa.responders.bluesky_sender import BlueskySender

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
BRAND = "did:plc:kettlebirdbrand"


def jwt(kind: str) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    exp = int((NOW + dt.timedelta(hours=2)).timestamp())
    return f"{enc({'alg': 'ES256K', 'typ': 'JWT'})}.{enc({'scope': kind, 'sub': BRAND, 'exp': exp, 'iat': exp - 7200})}.sig"


def iso(minutes_ago: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def author(n: int, handle: str) -> dict:
    return {"did": f"did:plc:user{n}", "handle": handle, "displayName": handle.split(".")[0].title(),
            "avatar": "https://cdn.bsky.app/a.jpg", "labels": [], "createdAt": "2024-01-01T00:00:00Z"}


def note(n: int, reason: str, text: str, minutes_ago: float, *, reply_root: str | None = None) -> dict:
    uri = f"at://did:plc:user{n}/app.bsky.feed.post/3lbx{n:04d}"
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(minutes_ago), "langs": ["ja"]}
    if reply_root:
        ref = {"uri": reply_root, "cid": "bafyroot"}
        record["reply"] = {"root": ref, "parent": ref}
    return {"uri": uri, "cid": f"bafycid{n}", "author": author(n, f"user{n}.bsky.social"), "reason": reason,
            "record": record, "isRead": False, "indexedAt": iso(minutes_ago), "labels": []}


ROOT = f"at://{BRAND}/app.bsky.feed.post/3brandpost"
NOTES = [note(1, "mention", "@kettlebird.bsky.social ボトルが漏れます😢 交換できますか？", 5),
         note(2, "reply", "still waiting on my refund", 8, reply_root=ROOT),
         note(3, "like", "", 9),
         note(4, "quote", "this cup design 👨‍👩‍👧 #WinterCupDesign", 12),
         note(5, "mention", "older mention", 30)]


class FakePDS:
    def __init__(self, notes):
        self.notes, self.calls, self.created, self.rate_limited, self.logins = notes, [], [], False, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((path, dict(request.url.params)))
        if self.rate_limited:
            reset = str(int((NOW + dt.timedelta(minutes=4)).timestamp()))
            return httpx.Response(429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                  headers={"ratelimit-reset": reset, "ratelimit-remaining": "0"})
        if path.endswith("com.atproto.server.createSession"):
            self.logins += 1
            return httpx.Response(200, json={"accessJwt": jwt("com.atproto.appPass"), "refreshJwt": jwt("refresh"),
                                             "handle": "kettlebird.bsky.social", "did": BRAND, "active": True})
        if path.endswith("app.bsky.notification.listNotifications"):
            limit = int(request.url.params.get("limit", 50))
            start = int(request.url.params.get("cursor", 0))
            page = self.notes[start:start + 2]      # a small server page, to exercise paging
            more = start + 2 < len(self.notes)
            body = {"notifications": page[:limit], **({"cursor": str(start + 2)} if more else {})}
            return httpx.Response(200, json=body)
        if path.endswith("app.bsky.feed.searchPosts"):
            assert request.url.params["sort"] == "latest" and request.url.params["since"]
            posts = [{**{k: v for k, v in note(20 + i, "", f"#WinterCupDesign cup {i} ☕", 3 + i).items()
                         if k in ("uri", "cid", "author", "record", "indexedAt", "labels")},
                      "likeCount": i, "repostCount": 0, "replyCount": 0}
                     for i in range(3)]
            return httpx.Response(200, json={"posts": posts, "hitsTotal": 3})
        if path.endswith("com.atproto.identity.resolveHandle"):
            handle = request.url.params["handle"]
            if handle == "aiko.bsky.social":
                return httpx.Response(200, json={"did": "did:plc:aiko"})
            return httpx.Response(400, json={"error": "InvalidRequest", "message": "Unable to resolve handle"})
        if path.endswith("com.atproto.repo.createRecord"):
            body = json.loads(request.content)
            self.created.append(body)
            return httpx.Response(200, json={"uri": f"at://{BRAND}/{body['collection']}/3new{len(self.created)}",
                                             "cid": f"bafynew{len(self.created)}", "validationStatus": "valid"})
        return httpx.Response(404, json={"error": "NotFound", "message": path})


def bcfg(cfg, tmp_path, **kw):
    cfg.sections["platforms.bluesky"].update({"enabled": True, "handle": "kettlebird.bsky.social",
                                              "session_file": str(tmp_path / "bsky-session"), **kw})
    return cfg


def client_for(cfg, pds, monkeypatch):
    from atproto_client.request import Request

    monkeypatch.setenv("TAIWA_BSKY_APP_PASSWORD", "abcd-efgh-ijkl-mnop")
    return bs.make_client(cfg, request=Request(transport=httpx.MockTransport(pds)))


def test_login_once_then_reuse_the_saved_session(cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path)
    pds = FakePDS(NOTES)
    client_for(cfg, pds, monkeypatch)
    session_file = tmp_path / "bsky-session"
    assert pds.logins == 1 and session_file.exists()
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    assert "abcd-efgh" not in session_file.read_text()            # the password is never written
    client_for(cfg, pds, monkeypatch)
    assert pds.logins == 1                                         # the second client reused the session
    monkeypatch.delenv("TAIWA_BSKY_APP_PASSWORD")
    session_file.unlink()
    with pytest.raises(PlatformAuthError) as e:
        bs.make_client(cfg)
    assert "TAIWA_BSKY_APP_PASSWORD" in e.value.message


def test_notifications_keep_mentions_replies_quotes_with_their_thread(store, cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path, search=False)
    pds = FakePDS(NOTES)
    lst = bs.listeners_from_config(cfg, client_for(cfg, pds, monkeypatch))
    first = pipeline.listen(store, lst)
    assert first.new == 2                                          # a first run takes the newest page only
    second = pipeline.listen(store, lst)
    assert second.new == 0                                         # nothing newer
    pds.notes = [note(9, "mention", "@kettlebird.bsky.social new one 🙏🏽", 1)] + NOTES
    third = pipeline.listen(store, lst)
    assert third.new == 1
    reply = store._one("SELECT * FROM posts WHERE platform_id LIKE '%3lbx0002'")
    assert reply["conversation_id"] == ROOT and reply["in_reply_to_id"] == ROOT
    assert json.loads(reply["raw"])["root_cid"] == "bafyroot"
    m = store._one("SELECT p.*, a.handle FROM posts p JOIN authors a ON a.id = p.author_id "
                   "WHERE p.platform_id LIKE '%3lbx0001'")
    assert m["text"] == "@kettlebird.bsky.social ボトルが漏れます😢 交換できますか？"
    assert m["url"] == "https://bsky.app/profile/user1.bsky.social/post/3lbx0001" and m["platform"] == "bluesky"


def test_search_uses_a_stored_since_and_cursor(store, cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path, notifications=False)
    cfg.brands[0].keywords[:] = []
    cfg.campaigns[:] = [c for c in cfg.campaigns if c.name == "WinterCupDesign"]
    cfg.campaigns[0].platforms.append("bluesky")
    pds = FakePDS(NOTES)
    lst = bs.listeners_from_config(cfg, client_for(cfg, pds, monkeypatch))
    names = [x.name for x in lst]
    assert names == ["bluesky:search:#WinterCupDesign", "bluesky:search:#冬カップ"]
    report = pipeline.listen(store, lst[:1])
    assert report.new == 3
    cursor = json.loads(store.cursor("bluesky:search:#WinterCupDesign"))
    assert cursor["since"] == iso(3).replace("Z", "+00:00")        # the newest post seen: next run starts there
    pipeline.listen(store, lst[:1])
    assert [c[1]["since"] for c in pds.calls if c[0].endswith("searchPosts")][-1] == cursor["since"]


def test_rate_limit_pauses_until_the_reset(store, cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path, search=False)
    pds = FakePDS(NOTES)
    lst = bs.listeners_from_config(cfg, client_for(cfg, pds, monkeypatch))
    pds.rate_limited = True
    report = pipeline.listen(store, lst)
    assert "rate limit" in report.paused["bluesky:notifications"]
    until, _ = store.paused_until("bluesky:notifications")
    assert until == NOW + dt.timedelta(minutes=4)


def test_reply_carries_root_and_parent_and_like_is_the_reaction(store, cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path, search=False)
    pds = FakePDS(NOTES)
    client = client_for(cfg, pds, monkeypatch)
    lst = bs.listeners_from_config(cfg, client)
    pipeline.listen(store, lst)
    pipeline.listen(store, lst)
    ids = {r["platform_id"].rsplit("/", 1)[-1]: r["id"] for r in store._rows("SELECT id, platform_id FROM posts")}
    store.create_actions([{"post_id": ids["3lbx0002"], "kind": "reply", "text": "So sorry! DM us your order 🙏🏽"},
                          {"post_id": ids["3lbx0001"], "kind": "like"}])
    actions = {r["platform_id"].rsplit("/", 1)[-1]: r["id"] for r in store._rows(
        "SELECT ac.id, p.platform_id FROM actions ac JOIN posts p ON p.id = ac.post_id")}
    for a in actions.values():
        approval.approve(store, a, actor="ann")
    report = senders.send_approved(store, lambda a: BlueskySender(client, store, repo=bs.repo_of(client)))
    assert report.sent == 2
    post, like = pds.created
    assert post["collection"] == "app.bsky.feed.post" and post["repo"] == BRAND
    root = post["record"]["reply"]["root"]
    assert (root["uri"], root["cid"]) == (ROOT, "bafyroot")
    assert post["record"]["reply"]["parent"]["uri"].endswith("3lbx0002")
    assert post["record"]["text"] == "So sorry! DM us your order 🙏🏽"
    assert like["collection"] == "app.bsky.feed.like" and like["record"]["subject"]["cid"] == "bafycid1"
    assert store.action(actions["3lbx0002"])["platform_ref"].startswith(f"at://{BRAND}/app.bsky.feed.post/")


def test_a_reply_over_300_graphemes_cannot_be_approved(store, cfg, tmp_path, monkeypatch):
    from taiwa.errors import ValidationError

    bcfg(cfg, tmp_path, search=False)
    pds = FakePDS(NOTES)
    pipeline.listen(store, bs.listeners_from_config(cfg, client_for(cfg, pds, monkeypatch)))
    post_id = store._rows("SELECT id FROM posts")[0]["id"]
    store.create_actions([{"post_id": post_id, "kind": "reply", "text": "ok"}])
    action_id = store.actions_in_state("pending")[0]["id"]
    approval.approve(store, action_id, actor="ann", text="👨‍👩‍👧‍👦" * 300)    # 300 graphemes (2,100 code points)
    store.transition(action_id, "pending", actor="ann", expect=("approved",))
    with pytest.raises(ValidationError) as e:
        approval.approve(store, action_id, actor="ann", text="ありがとう" * 61)  # 305 graphemes
    assert "305" in e.value.message and "300" in e.value.message


def test_a_japanese_reply_is_tagged_ja_and_its_links_mentions_and_tags_are_facets(store, cfg, tmp_path, monkeypatch):
    bcfg(cfg, tmp_path, search=False)
    pds = FakePDS(NOTES)
    client = client_for(cfg, pds, monkeypatch)
    pipeline.listen(store, bs.listeners_from_config(cfg, client))
    pid = store._scalar("SELECT id FROM posts ORDER BY id LIMIT 1")
    text = "ご不便をおかけしました。詳しくは https://kettlebird.example/help. をご覧ください @aiko.bsky.social @nobody.example #冬カップ"
    store.create_actions([{"post_id": pid, "kind": "reply", "text": text}])
    aid = store._scalar("SELECT id FROM actions")
    approval.approve(store, aid, actor="ann")
    assert senders.send_approved(store, lambda a: BlueskySender(client, store, repo=bs.repo_of(client))).sent == 1
    record = pds.created[0]["record"]
    assert record["langs"] == ["ja"]                               # not the SDK's default ['en']
    raw = text.encode()
    spans = {f["features"][0]["$type"].rsplit("#", 1)[-1]: raw[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode()
             for f in record["facets"]}
    assert spans == {"link": "https://kettlebird.example/help", "mention": "@aiko.bsky.social", "tag": "#冬カップ"}
    mention = next(f for f in record["facets"] if f["features"][0]["$type"].endswith("#mention"))
    assert mention["features"][0]["did"] == "did:plc:aiko"        # @nobody.example did not resolve: plain text
