"""X through tweepy's real Client: hand-written v2 responses served at the HTTP edge by `responses`."""

import datetime as dt
import json
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from taiwa.errors import ConfigError, PlatformAuthError
from taiwa.listeners import x as xl
from taiwa.pipeline import listen
from taiwa.responders import approval, senders
from taiwa.responders.x_sender import sender_from_config

FIX = Path(__file__).parent / "fixtures" / "x"
API = "https://api.twitter.com/2"
SEARCH, USERS = f"{API}/tweets/search/recent", f"{API}/users/by"
TOKEN = "AAAA-test-bearer-token-never-logged"
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone.utc)
ENV = {"TAIWA_X_BEARER_TOKEN": TOKEN, "TAIWA_X_CONSUMER_KEY": "ck", "TAIWA_X_CONSUMER_SECRET": "cs",
       "TAIWA_X_ACCESS_TOKEN": "100-at", "TAIWA_X_ACCESS_TOKEN_SECRET": "ats"}


def fx(name):
    return json.loads((FIX / f"{name}.json").read_text(encoding="utf-8"))


def params(call):
    return {k: v[0] for k, v in parse_qs(urlparse(call.request.url).query).items()}


@pytest.fixture
def xcfg(cfg):
    cfg.sections["platforms.x"].update(enabled=True, mentions=False, page_size=100, max_pages_per_run=5)
    return cfg


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


def search_listener(cfg, store, **kw):
    [listener] = xl.listeners_from_config(cfg, store, env=ENV, sleep=kw.pop("sleep", lambda s: None),
                                          now=lambda: NOW)
    return listener


def test_query_is_built_from_the_config_and_its_length_checked(xcfg):
    q = xl.build_query(xcfg)
    assert q.startswith("(kettlebird OR ケトルバード OR @kettlebird OR @kettlebird_jp OR #MyKettleMorning")
    assert "#冬カップ" in q and "-from:kettlebird " in q and q.endswith("-is:retweet")
    xcfg.sections["platforms.x"]["languages"] = ["en", "ja"]
    assert xl.build_query(xcfg).endswith("-is:retweet (lang:en OR lang:ja)")
    xcfg.sections["platforms.x"]["query_max_length"] = 100
    with pytest.raises(ConfigError) as e:
        xl.build_query(xcfg)
    assert "allows 100" in e.value.problem and "1024" in e.value.fix


def test_two_pages_then_since_id_resume(xcfg, store, rsps):
    rsps.get(SEARCH, json=fx("search_page1"))
    rsps.get(SEARCH, json=fx("search_page2"))
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    calls = [params(c) for c in rsps.calls]
    assert "next_token" not in calls[0] and calls[1]["next_token"] == fx("search_page1")["meta"]["next_token"]
    assert calls[0]["expansions"] == "author_id" and "reply_settings" in calls[0]["tweet.fields"]
    assert "public_metrics" in calls[0]["user.fields"] and calls[0]["max_results"] == "100"
    assert "sort_order" not in calls[0]                     # relevancy would return no next_token
    assert report.new == 3 and store.count("posts") == 3
    assert json.loads(store.cursor("x:search")) == {"since_id": "1861000000000000005"}
    assert store.usage("x", NOW)["reads"] == 3
    # Emoji and Japanese survive; authors come from includes (kept by iterating pages, not flatten()).
    mika = store._one("SELECT p.text, p.hashtags, a.handle, a.followers FROM posts p JOIN authors a "
                      "ON a.id = p.author_id WHERE p.platform_id = '1861000000000000004'")
    assert mika["text"].startswith("朝の一杯☕️") and mika["handle"] == "mika_t" and mika["followers"] == 820
    assert json.loads(mika["hashtags"]) == ["MyKettleMorning", "朝活"]
    # reply_settings=mentionedUsers on a post that mentions @kettlebird: X lets the mentioned brand reply.
    # The withheld tweet is kept and reported.
    sarah = store._one("SELECT can_reply FROM posts WHERE platform_id = '1861000000000000003'")
    assert sarah["can_reply"] == 1
    assert any("withheld in DE" in p for p in report.problems)

    rsps.get(SEARCH, json=fx("search_new"))
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    assert params(rsps.calls[2])["since_id"] == "1861000000000000005"
    assert report.new == 1 and json.loads(store.cursor("x:search")) == {"since_id": "1861000000000000007"}


def test_a_crash_between_pages_resumes_from_the_next_token(xcfg, store, rsps):
    rsps.get(SEARCH, json=fx("search_page1"))
    listener = search_listener(xcfg, store)
    pages = listener.read(store.cursor(listener.name))
    first = next(pages)                                        # page 1 read and committed, then the process dies
    store.ingest(first.posts, listener=listener.name, cursor=first.cursor)
    assert json.loads(store.cursor("x:search"))["next_token"]
    rsps.get(SEARCH, json=fx("search_page2"))
    listen(store, [search_listener(xcfg, store)], now=NOW)
    assert params(rsps.calls[-1])["next_token"] == fx("search_page1")["meta"]["next_token"]
    assert store.count("posts") == 3                           # nothing lost, nothing twice
    assert json.loads(store.cursor("x:search")) == {"since_id": "1861000000000000005"}


def test_page_cap_keeps_the_token_for_the_next_run(xcfg, store, rsps):
    xcfg.sections["platforms.x"]["max_pages_per_run"] = 1
    rsps.get(SEARCH, json=fx("search_page1"))
    listen(store, [search_listener(xcfg, store)], now=NOW)
    cur = json.loads(store.cursor("x:search"))
    assert cur == {"since_id": None, "newest": "1861000000000000005",
                   "next_token": fx("search_page1")["meta"]["next_token"]}


def test_429_stops_cleanly_records_the_reset_and_the_next_run_waits(xcfg, store, rsps):
    reset = int((NOW + dt.timedelta(minutes=12)).timestamp())
    day_reset = int((NOW + dt.timedelta(hours=20)).timestamp())
    rsps.get(SEARCH, json=fx("search_page1"))
    rsps.get(SEARCH, json=fx("too_many_requests"), status=429,
             headers={"x-rate-limit-limit": "60", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset),
                      "x-user-limit-24hour-limit": "1000", "x-user-limit-24hour-remaining": "0",
                      "x-user-limit-24hour-reset": str(day_reset)})
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    assert report.new == 2                                       # page 1 kept
    until, reason = store.paused_until("x:search", NOW)
    assert until == dt.datetime.fromtimestamp(day_reset, dt.timezone.utc)   # the later of the two windows
    assert "rate limit" in reason
    n = len(rsps.calls)
    report = listen(store, [search_listener(xcfg, store)], now=NOW + dt.timedelta(hours=1))
    assert len(rsps.calls) == n and "x:search" in report.paused  # not asked again before the reset


def test_401_names_the_env_var_and_never_logs_the_token(xcfg, store, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.get(SEARCH, json=fx("unauthorized"), status=401)
    report = listen(store, [search_listener(xcfg, store)], now=NOW)     # recorded, not raised: others go on
    failure = report.failed["x:search"]
    assert "401" in failure and "TAIWA_X_BEARER_TOKEN" in failure
    assert TOKEN not in caplog.text and TOKEN not in failure
    assert store.listener_states()[0]["errors"] == 1 and "401" in store.listener_states()[0]["last_error"]


def test_missing_bearer_token_is_a_clear_error(xcfg, store):
    with pytest.raises(PlatformAuthError) as e:
        xl.listeners_from_config(xcfg, store, env={})
    assert "TAIWA_X_BEARER_TOKEN is not set" in e.value.message


def test_server_errors_are_retried_with_backoff_then_succeed(xcfg, store, rsps):
    slept = []
    rsps.get(SEARCH, json=fx("server_error"), status=503)
    rsps.get(SEARCH, json=fx("server_error"), status=503)
    rsps.get(SEARCH, json=fx("search_page2"))
    listen(store, [search_listener(xcfg, store, sleep=slept.append)], now=NOW)
    assert slept == [1, 2] and store.count("posts") == 1


def test_a_since_id_older_than_seven_days_resets_the_cursor(xcfg, store, rsps):
    store.ingest([], listener="x:search", cursor=json.dumps({"since_id": "1700000000000000000"}))
    rsps.get(SEARCH, json=fx("since_id_too_old"), status=400)
    rsps.get(SEARCH, json=fx("search_page2"))
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    assert "since_id" not in params(rsps.calls[1])
    assert any("older than the API's window" in p for p in report.problems)
    assert json.loads(store.cursor("x:search")) == {"since_id": "1861000000000000003"}


def test_the_read_budget_stops_before_it_is_spent(xcfg, store, rsps):
    xcfg.sections["platforms.x"]["monthly_read_budget"] = 140
    rsps.get(SEARCH, json=fx("search_page1"))
    rsps.get(SEARCH, json=fx("search_page2"))
    store.add_usage("x", reads=40, at=NOW)
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    assert len(rsps.calls) == 1     # 40 used + a page of 100 fits 140; after 2 more, another page would not
    assert "read budget" in report.paused["x:search"]
    assert store.paused_until("x:search", NOW)[0] == dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def test_mentions_of_each_brand_handle_with_a_deleted_referenced_tweet(xcfg, store, rsps):
    xcfg.sections["platforms.x"].update(search=False, mentions=True)
    rsps.get(USERS, json=fx("users_lookup"))
    rsps.get(f"{API}/users/100/mentions", json={"meta": {"result_count": 0}})
    rsps.get(f"{API}/users/101/mentions", json=fx("mentions_page"))
    listeners = xl.listeners_from_config(xcfg, store, env=ENV, now=lambda: NOW)
    assert [lst.name for lst in listeners] == ["x:mentions:kettlebird", "x:mentions:kettlebird_jp"]
    report = listen(store, listeners, now=NOW)
    assert report.new == 1
    assert any("Not Found Error" in p for p in report.problems)
    post = store._one("SELECT text, in_reply_to_id FROM posts WHERE platform_id = '1861000000000000006'")
    assert post["text"] == "@kettlebird_jp 届いたマグが割れていました😢" and post["in_reply_to_id"] == "1861000000000000001"
    # The handle → id lookup is remembered: a second run does not ask again.
    xl.listeners_from_config(xcfg, store, env=ENV, now=lambda: NOW)
    assert sum(1 for c in rsps.calls if c.request.url.startswith(USERS)) == 1


def _approved(store, kind, text=""):
    from taiwa.listeners.base import Author, Post

    store.ingest([Post("x", "1861000000000000005", Author("2244994945", "dan_brews"), "grinder broke", NOW)],
                 listener="x:search", cursor=None)
    pid = store._scalar("SELECT id FROM posts")
    store.create_actions([{"post_id": pid, "kind": kind, "text": text}])
    aid = store._scalar("SELECT id FROM actions")
    approval.approve(store, aid, actor="kim")
    return aid


def test_an_approved_reply_is_posted_once_as_a_reply(xcfg, store, rsps):
    aid = _approved(store, "reply", "Hi Dan, sorry about the grinder. DM us your order number?")
    rsps.post(f"{API}/tweets", json=fx("create_tweet"), status=201)
    sender = sender_from_config(xcfg, store, env=ENV)
    report = senders.send_approved(store, lambda a: sender)
    body = json.loads(rsps.calls[0].request.body)
    assert body == {"text": "Hi Dan, sorry about the grinder. DM us your order number?",
                    "reply": {"in_reply_to_tweet_id": "1861000000000000005"}}
    assert "OAuth" in rsps.calls[0].request.headers["Authorization"]      # user context, not the app token
    assert report.sent == 1 and store.action(aid)["platform_ref"] == "1861000000000009999"
    senders.send_approved(store, lambda a: sender)
    assert len(rsps.calls) == 1 and store.usage("x")["writes"] == 1


def test_an_approved_like_is_sent_for_the_authenticated_user(xcfg, store, rsps):
    aid = _approved(store, "like")
    rsps.post(f"{API}/users/100/likes", json=fx("like"))       # OAuth 1.0a user id = the access token's prefix
    sender = sender_from_config(xcfg, store, env=ENV)
    senders.send_approved(store, lambda a: sender)
    assert json.loads(rsps.calls[0].request.body) == {"tweet_id": "1861000000000000005"}
    assert store.action(aid)["state"] == "sent"


def test_a_refused_reply_fails_and_a_5xx_while_posting_needs_a_person(xcfg, store, rsps):
    aid = _approved(store, "reply", "Hi!")
    rsps.post(f"{API}/tweets", json=fx("forbidden_reply"), status=403)
    sender = sender_from_config(xcfg, store, env=ENV)
    senders.send_approved(store, lambda a: sender)
    a = store.action(aid)
    assert a["state"] == "failed" and "not allowed to reply" in a["reason"]
    approval.approve(store, aid, actor="kim")
    rsps.replace(responses.POST, f"{API}/tweets", json=fx("server_error"), status=503)
    report = senders.send_approved(store, lambda a: sender)
    assert report.uncertain == 1 and store.action(aid)["state"] == "needs_check"
    senders.send_approved(store, lambda a: sender)
    assert len(rsps.calls) == 2                                  # never re-sent without a person


def test_posting_without_user_context_keys_names_them(xcfg, store):
    with pytest.raises(Exception) as e:
        sender_from_config(xcfg, store, env={"TAIWA_X_BEARER_TOKEN": TOKEN})
    assert "TAIWA_X_CONSUMER_KEY" in str(e.value) and "Read and Write" in e.value.hint


def _project(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from taiwa.cli import cli

    CliRunner().invoke(cli, ["init", str(tmp_path / "taiwa.toml")])
    toml = (tmp_path / "taiwa.toml").read_text(encoding="utf-8")
    toml = toml.replace("[platforms.x]\nenabled = false", "[platforms.x]\nenabled = true\nmentions = false")
    (tmp_path / "taiwa.toml").write_text(toml, encoding="utf-8")
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return CliRunner(), cli, ["-c", str(tmp_path / "taiwa.toml")]


def test_cli_listen_platform_x_and_status_show_usage(tmp_path, monkeypatch, rsps):
    runner, cli, c = _project(tmp_path, monkeypatch)
    rsps.get(SEARCH, json=fx("search_page1"))
    rsps.get(SEARCH, json=fx("search_page2"))
    r = runner.invoke(cli, [*c, "listen", "--platform", "x", "--no-process"], catch_exceptions=False)
    assert r.exit_code == 0 and "3 new posts" in r.output
    r = runner.invoke(cli, [*c, "status"], catch_exceptions=False)
    assert "X this month: 3 of 10000 posts read, 0 of 500 written" in r.output
    assert "listener x:search" in r.output and "ok, 3 posts" in r.output


def test_doctor_says_which_credentials_work_without_printing_them(tmp_path, monkeypatch, rsps):
    runner, cli, c = _project(tmp_path, monkeypatch)
    rsps.get(USERS, json=fx("users_lookup"))
    rsps.get(f"{API}/users/me", json={"data": {"id": "100", "name": "Kettlebird Coffee", "username": "kettlebird"}})
    r = runner.invoke(cli, [*c, "doctor"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "TAIWA_X_BEARER_TOKEN set" in r.output and "the bearer token works" in r.output
    assert "posting: as @kettlebird" in r.output and TOKEN not in r.output
    monkeypatch.delenv("TAIWA_X_ACCESS_TOKEN")
    rsps.replace(responses.GET, USERS, json=fx("unauthorized"), status=401)
    r = runner.invoke(cli, [*c, "doctor"])
    assert r.exit_code != 0 and "TAIWA_X_ACCESS_TOKEN not set" in r.output and "401" in r.output


def test_a_long_post_is_stored_whole_from_note_tweet(xcfg, store, rsps):
    page = fx("search_page1")
    long_text = "@kettlebird " + "the grinder jams every morning and support never answers. " * 8 + "#fixit"
    tweet = page["data"][0]
    tweet["text"] = long_text[:280]                       # what `text` holds for a long post
    tweet["note_tweet"] = {"text": long_text, "entities": {"hashtags": [{"start": 0, "end": 6, "tag": "fixit"}]}}
    page["data"], page["meta"] = [tweet], {"result_count": 1, "newest_id": tweet["id"], "oldest_id": tweet["id"]}
    rsps.get(SEARCH, json=page)
    listen(store, [search_listener(xcfg, store)], now=NOW)
    assert "note_tweet" in params(rsps.calls[0])["tweet.fields"]
    stored = store._one("SELECT text, hashtags FROM posts WHERE platform_id = ?", [tweet["id"]])
    assert stored["text"] == long_text and len(stored["text"]) > 280 and json.loads(stored["hashtags"]) == ["fixit"]


def test_no_network_is_a_named_failure_not_a_traceback(xcfg, store, rsps):
    import requests

    rsps.get(SEARCH, body=requests.ConnectionError("Failed to resolve 'api.twitter.com'"))
    report = listen(store, [search_listener(xcfg, store)], now=NOW)
    assert report.failed["x:search"].startswith("X could not be reached for")
    assert "check the network" in report.failed["x:search"]


def test_who_may_reply_follows_the_authors_reply_settings():
    """mentionedUsers: the brand may reply when the post mentions one of its accounts (the mentions stream);
    following, subscribers, verified: never assumed."""
    page = fx("search_page2")
    tweet, users = page["data"][0], {u["id"]: u for u in page["includes"]["users"]}
    own = frozenset({"kettlebird", "kettlebird_jp"})
    assert xl.tweet_to_post(tweet, users, own).can_reply
    assert not xl.tweet_to_post(tweet, users, frozenset({"other_brand"})).can_reply
    quiet = {**tweet, "text": "Is the drip kettle OK on induction?", "entities": {}}
    assert not xl.tweet_to_post(quiet, users, own).can_reply
    for setting in ("following", "subscribers", "verified"):
        assert not xl.tweet_to_post({**tweet, "reply_settings": setting}, users, own).can_reply
    assert xl.tweet_to_post({**tweet, "reply_settings": "everyone"}, users, own).can_reply
