"""Instagram: instaloader's real request and iteration code (get_json, RateController, NodeIterator freeze/thaw,
Post, PostComment) on recorded GraphQL-shaped JSON served by `responses`. No network."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taiwa import campaigns, pipeline
from taiwa.errors import PlatformAuthError
from taiwa.listeners import instagram
from taiwa.responders import approval, senders
from taiwa.store import Store

from .conftest import T0

FIX = Path(__file__).parent / "fixtures" / "instagram"
GRAPHQL = re.compile(r"https://www\.instagram\.com/graphql/query/?.*")
WEB_INFO = re.compile(r"https://i\.instagram\.com/api/v1/tags/web_info/.*")
HASHTAG_HASH = "9b498c08113f1e09617a1703c22b2f32"
TAGGED_HASH = "e31a871f7301132ceaab56507a66bbb7"


def load(name: str):
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def loader():
    """A logged-in Instaloader (session cookies as `instaloader --login` saves them), never sleeping."""
    L = instagram.make_loader(session_file=None, username="", sleep=lambda s: None, polite_pauses=False)
    L.context.load_session("kettlebird", {"sessionid": "abc", "csrftoken": "tok", "ds_user_id": "77"})
    return L


class FakeInstagram:
    """Serves the recorded pages by query hash and `after` cursor; `fail` maps a cursor to an HTTP answer."""

    def __init__(self, rsps, pages: dict[str | None, str], *, query_hash: str = HASHTAG_HASH):
        self.pages, self.query_hash, self.fail, self.calls = pages, query_hash, {}, []
        rsps.add_callback(responses.GET, WEB_INFO, callback=lambda r: (
            200, {}, json.dumps(load("hashtag_mykettlemorning_web_info.json"))))
        rsps.add_callback(responses.GET, GRAPHQL, callback=self.graphql)

    def graphql(self, request):
        q = parse_qs(urlparse(request.url).query)
        variables = json.loads(q["variables"][0])
        after = variables.get("after")
        self.calls.append((q["query_hash"][0], after))
        if after in self.fail:
            status, body = self.fail[after]
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        if q["query_hash"][0] != self.query_hash or after not in self.pages:
            return 404, {}, json.dumps({"message": "not found", "status": "fail"})
        return 200, {"Content-Type": "application/json"}, json.dumps(load(self.pages[after]))


PAGES = {None: "hashtag_mykettlemorning_page1.json", "QVFD2": "hashtag_mykettlemorning_page2.json",
         "QVFD3": "hashtag_mykettlemorning_page3.json"}


def only_hashtags(cfg):
    ig = cfg.sections["platforms.instagram"]
    ig.update(enabled=True, tagged=False, comments=False)
    cfg.campaigns[:] = [c for c in cfg.campaigns if c.name == "MyKettleMorning"]
    return cfg


def listen(store, cfg, L, now=T0):
    return pipeline.listen(store, instagram.listeners_from_config(cfg, L, now=lambda: now), now=now)


@responses.activate
def test_hashtag_stream_maps_posts_and_reports_a_broken_one(store, cfg):
    only_hashtags(cfg)
    ig = FakeInstagram(responses.mock, PAGES)
    report = listen(store, cfg, loader())
    assert report.new == 29
    assert len(report.problems) == 1 and "has no owner" in report.problems[0]     # node 17: owner missing
    assert [c[1] for c in ig.calls] == [None, "QVFD2", "QVFD3"]
    p = store._one("SELECT * FROM posts WHERE platform_id = 'DKm00000xq'")
    assert p["platform"] == "instagram" and p["url"] == "https://www.instagram.com/p/DKm00000xq/"
    assert p["text"] == "朝の一杯、最高でした☕️✨ #MyKettleMorning #朝活 #コーヒー"
    assert json.loads(p["hashtags"]) == ["MyKettleMorning", "朝活", "コーヒー"]
    assert p["likes"] == 10 and p["created_at"] == (T0 - dt.timedelta(hours=1)).isoformat()
    assert store._one("SELECT can_reply FROM posts WHERE platform_id = 'DKm00005xq'")["can_reply"] == 0
    newest = int((T0 - dt.timedelta(hours=1)).timestamp())
    assert json.loads(store.cursor("instagram:hashtag:mykettlemorning")) == {"stop_at": newest}


@responses.activate
def test_an_interrupted_run_resumes_where_it_stopped(store, cfg):
    only_hashtags(cfg)
    ig = FakeInstagram(responses.mock, PAGES)
    ig.fail["QVFD3"] = (500, {"message": "server trouble", "status": "fail"})
    failed = listen(store, cfg, loader()).failed                     # recorded; other listeners would go on
    assert "Instagram failed" in failed["instagram:hashtag:mykettlemorning"]
    assert store.count("posts") == 23                              # pages 1 and 2 kept (one bad node)
    cursor = json.loads(store.cursor("instagram:hashtag:mykettlemorning"))
    assert cursor["frozen"]["remaining_data"]["page_info"]["end_cursor"] == "QVFD3"
    del ig.fail["QVFD3"]
    ig.calls.clear()
    report = listen(store, cfg, loader())
    # instaloader's NodeIterator fetches page 1 when it is built; after thaw() it goes on at page 3: page 2 is
    # not asked for again.
    assert [c[1] for c in ig.calls] == [None, "QVFD3"]
    assert store.count("posts") == 29 and report.new == 6
    assert store._scalar("SELECT count(DISTINCT platform_id) FROM posts") == 29


@responses.activate
def test_the_per_run_cap_continues_next_run_and_a_finished_stream_reads_only_what_is_new(store, cfg):
    only_hashtags(cfg)
    cfg.sections["platforms.instagram"]["max_posts_per_run"] = 15
    ig = FakeInstagram(responses.mock, PAGES)
    first = listen(store, cfg, loader())
    assert store.count("posts") == 15 and any("cap of 15" in p for p in first.problems)
    listen(store, cfg, loader())
    listen(store, cfg, loader())
    assert store.count("posts") == 29
    assert "frozen" not in json.loads(store.cursor("instagram:hashtag:mykettlemorning"))
    # New posts arrive: the next run reads page 1 only, down to what it already had.
    ig.pages = {None: "hashtag_mykettlemorning_newer_page1.json", "QVFDnew2": "hashtag_mykettlemorning_page2.json"}
    ig.calls.clear()
    report = listen(store, cfg, loader())
    assert report.new == 3 and [c[1] for c in ig.calls] == [None]


@responses.activate
def test_429_ends_the_run_cleanly_and_the_next_run_honours_the_wait(store, cfg):
    only_hashtags(cfg)
    ig = FakeInstagram(responses.mock, PAGES)
    ig.fail["QVFD2"] = (429, {"message": "Please wait a few minutes before you try again.", "status": "fail"})
    report = listen(store, cfg, loader())
    assert store.count("posts") == 12                              # page 1 kept
    name = "instagram:hashtag:mykettlemorning"
    assert "429" in report.paused[name]
    until, why = store.paused_until(name, T0)
    assert until >= T0 + dt.timedelta(minutes=15) and "429" in why
    calls = len(ig.calls)
    again = listen(store, cfg, loader(), now=T0 + dt.timedelta(minutes=5))
    assert name in again.paused and len(ig.calls) == calls          # not asked at all while paused
    del ig.fail["QVFD2"]
    listen(store, cfg, loader(), now=until + dt.timedelta(seconds=1))
    assert store.count("posts") == 29


@responses.activate
def test_please_wait_a_few_minutes_pauses_the_stream(store, cfg):
    only_hashtags(cfg)
    ig = FakeInstagram(responses.mock, PAGES)
    ig.fail["QVFD2"] = (401, {"message": "Please wait a few minutes before you try again.", "status": "fail"})
    report = listen(store, cfg, loader())
    assert "wait a few minutes" in report.paused["instagram:hashtag:mykettlemorning"]
    until, _ = store.paused_until("instagram:hashtag:mykettlemorning", T0)
    assert until == T0 + dt.timedelta(minutes=30)


@responses.activate
def test_tagged_posts_stream(store, cfg):
    from instaloader import NodeIterator, Post

    FakeInstagram(responses.mock, {None: "tagged_kettlebird_page1.json"}, query_hash=TAGGED_HASH)
    L = loader()
    # The tagged listing's own NodeIterator (query hash, extractor, variables as Profile.get_tagged_posts builds).
    make = lambda: NodeIterator(L.context, TAGGED_HASH, lambda d: d["data"]["user"]["edge_user_to_photos_of_you"],
                                lambda n: Post(L.context, n), {"id": 77}, "https://www.instagram.com/kettlebird/")
    lst = instagram.NodeStreamListener("instagram:tagged:kettlebird", make, max_posts=100,
                                       floor=T0 - dt.timedelta(days=14))
    report = pipeline.listen(store, [lst], now=T0)
    assert report.new == 5
    p = store._one("SELECT p.*, a.handle, a.name FROM posts p JOIN authors a ON a.id = p.author_id "
                   "WHERE p.text LIKE '%マグ%'")
    assert p["handle"] == "tagger_0" and p["name"] == "Tagger 0" and json.loads(p["mentions"]) == ["kettlebird_jp"]


@responses.activate
def test_comments_on_own_posts_with_answers_and_a_removed_post(store, cfg):
    from instaloader import Post

    FakeInstagram(responses.mock, {})                              # any comment query → 404 (the removed post)
    L = loader()
    own = [Post(L.context, n) for n in load("own_posts_kettlebird.json")]
    lst = instagram.CommentsListener("instagram:comments:kettlebird", lambda: own, posts_checked=6,
                                     max_posts=100)
    report = pipeline.listen(store, [lst], now=T0)
    assert report.new == 5                                         # 3 comments + 2 answers
    assert any("DKm00301xq is gone or private" in p for p in report.problems)
    c = store._one("SELECT * FROM posts WHERE platform_id = '17900000000000001'")
    assert c["text"] == "ボトルの蓋が閉まりにくいです😢 交換できますか？"
    assert c["conversation_id"] == "DKm00300xq" and c["in_reply_to_id"] == "DKm00300xq"
    assert c["url"] == "https://www.instagram.com/p/DKm00300xq/c/17900000000000001/"
    answer = store._one("SELECT * FROM posts WHERE platform_id = '17900000000000004'")
    assert answer["in_reply_to_id"] == "17900000000000002"
    # A second run only takes comments newer than what it saw.
    again = pipeline.listen(store, [lst], now=T0)
    assert again.new == 0


def test_login_is_required_and_explained(cfg, tmp_path):
    cfg.sections["platforms.instagram"].update(enabled=True, session_file="")
    with pytest.raises(PlatformAuthError) as e:
        instagram.listeners_from_config(cfg)
    assert "need a login" in e.value.message and "instaloader --login" in e.value.hint
    cfg.sections["platforms.instagram"].update(session_file=str(tmp_path / "nope"), username="kettlebird")
    with pytest.raises(PlatformAuthError) as e:
        instagram.listeners_from_config(cfg)
    assert "does not exist" in e.value.message
    # A real session file, as instaloader writes it, loads; the password never appears anywhere.
    L = loader()
    L.save_session_to_file(str(tmp_path / "session-kettlebird"))
    cfg.sections["platforms.instagram"]["session_file"] = str(tmp_path / "session-kettlebird")
    streams = instagram.listeners_from_config(cfg)
    assert {s.name for s in streams} >= {"instagram:hashtag:mykettlemorning", "instagram:hashtag:wintercupdesign",
                                         "instagram:tagged:kettlebird", "instagram:comments:kettlebird"}


@responses.activate
def test_instagram_entries_count_in_campaign_reports_beside_x(tmp_path, cfg, default_model):
    from taiwa.listeners.replay import ReplayListener

    only_hashtags(cfg)
    FakeInstagram(responses.mock, PAGES)
    store = Store(cfg.database)
    x_posts = tmp_path / "x.jsonl"
    x_posts.write_text("\n".join(json.dumps({
        "id": str(i), "platform": "x", "text": f"morning brew {i} #MyKettleMorning",
        "created_at": (T0 - dt.timedelta(hours=i + 1)).isoformat(),
        "author": {"id": f"x{i}", "handle": f"xer{i}", "followers": 50}}) for i in range(4)) + "\n")
    pipeline.listen(store, [ReplayListener(x_posts)])
    listen(store, cfg, loader())
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    report = campaigns.build(store, cfg.campaigns[0], own_handles=cfg.brand_handles)
    assert report.platforms == {"instagram": 29, "x": 4} and report.entries == 33


@responses.activate
def test_instagram_replies_go_through_the_graph_api_or_the_outbox(tmp_path, cfg, monkeypatch, store):
    from instaloader import Post

    FakeInstagram(responses.mock, {})
    L = loader()
    own = [Post(L.context, n) for n in load("own_posts_kettlebird.json")[:1]]
    pipeline.listen(store, [instagram.CommentsListener("instagram:comments:kettlebird", lambda: own,
                                                       posts_checked=6, max_posts=100)])
    ids = {r["platform_id"]: r["id"] for r in store._rows("SELECT id, platform_id FROM posts")}
    store.create_actions([{"post_id": ids["17900000000000001"], "kind": "reply", "text": "ご不便をおかけしました。DMください🙏"},
                          {"post_id": ids["17900000000000005"], "kind": "like"},
                          {"post_id": ids["17900000000000002"], "kind": "reply", "text": "So sorry Sam"}])
    actions = {r["platform_id"]: r["id"] for r in store._rows(
        "SELECT ac.id, p.platform_id FROM actions ac JOIN posts p ON p.id = ac.post_id")}
    for a in actions.values():
        approval.approve(store, a, actor="ann")
    graph = re.compile(r"https://graph\.facebook\.com/v21\.0/(\d+)/replies")
    seen = []

    def reply(request):
        cid = graph.match(request.url).group(1)
        body = parse_qs(request.body)
        seen.append((cid, body["message"][0], body["access_token"][0]))
        if cid == "17900000000000002":
            return 400, {}, json.dumps({"error": {"message": "Invalid parameter", "code": 100}})
        return 200, {}, json.dumps({"id": "17999999999999999"})

    responses.add_callback(responses.POST, graph, callback=reply)
    monkeypatch.setenv("TAIWA_IG_GRAPH_TOKEN", "EAAG-test-token")
    sender_for, problems = senders.router(cfg, store)
    report = senders.send_approved(store, sender_for, actor="ann")
    assert (report.sent, report.failed) == (2, 1) and not problems
    assert seen[0] == ("17900000000000001", "ご不便をおかけしました。DMください🙏", "EAAG-test-token")
    assert store.action(actions["17900000000000001"])["platform_ref"] == "17999999999999999"
    failed = store.action(actions["17900000000000002"])
    assert failed["state"] == "failed" and "Invalid parameter" in failed["reason"]
    like = store.action(actions["17900000000000005"])
    assert like["state"] == "sent" and like["platform_ref"].endswith(":by-hand")
    line = json.loads(cfg.outbox.read_text(encoding="utf-8").splitlines()[-1])
    assert line["note"] == "instagram: by hand" and line["kind"] == "like"
    # Without a token, a reply waits in the outbox too, marked by hand.
    monkeypatch.delenv("TAIWA_IG_GRAPH_TOKEN")
    approval.approve(store, failed["id"], actor="ann", text="So sorry Sam, DM us?")
    sender_for, problems = senders.router(cfg, store)
    senders.send_approved(store, sender_for, actor="ann")
    assert store.action(failed["id"])["platform_ref"].endswith(":by-hand") and "instagram" in problems


@responses.activate
def test_taiwa_listen_platform_instagram_on_recorded_data(tmp_path, default_model, monkeypatch):
    from click.testing import CliRunner

    from taiwa import config as config_mod
    from taiwa.cli import cli

    FakeInstagram(responses.mock, PAGES)
    loader().save_session_to_file(str(tmp_path / "session-kettlebird"))
    toml = config_mod.sample_config_text()
    toml = toml.replace('platforms = ["x", "instagram"]', 'platforms = ["x"]')
    toml = toml.replace('[platforms.instagram]\nenabled = false\nsession_file = ""',
                        '[platforms.instagram]\nenabled = true\nsession_file = "session-kettlebird"\n'
                        'username = "kettlebird"\ntagged = false\ncomments = false\n')
    assert 'session_file = "session-kettlebird"' in toml
    (tmp_path / "taiwa.toml").write_text(toml, encoding="utf-8")
    # Polite pauses between requests are instaloader's; the recorded data needs none.
    monkeypatch.setattr("instaloader.InstaloaderContext.do_sleep", lambda self: None)
    monkeypatch.setattr("taiwa.models.sentiment.load_default", lambda **kw: default_model)
    res = CliRunner().invoke(cli, ["-c", str(tmp_path / "taiwa.toml"), "listen", "--platform", "instagram"])
    assert res.exit_code == 0, res.output
    store = Store(tmp_path / "taiwa.db")
    assert store._scalar("SELECT count(*) FROM posts WHERE platform = 'instagram'") == 29
    assert store.count("sentiments") == 29
    assert store._scalar("SELECT count(*) FROM campaign_posts") >= 29
