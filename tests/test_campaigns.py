"""Campaign figures on a fixture whose expected numbers are worked out by hand below."""

import csv
import datetime as dt
import json

from taiwa import campaigns
from taiwa.config import Campaign
from taiwa.listeners.replay import ReplayListener
from taiwa.models.sentiment import Sentiment
from taiwa.pipeline import listen, triage
from taiwa.responders import approval, senders

from .conftest import T0, record, write_jsonl

TAG = "#TestCamp"


def _sent(label):
    p = {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
    p[label] = 1.0
    return Sentiment(label, p, "fixture")


def setup(tmp_path, store, cfg):
    cfg.campaigns.append(Campaign("TestCamp", ["TestCamp"], dt.date(2026, 11, 20), dt.date(2026, 11, 22),
                                  goals={"entries": 8, "participants": 3, "unique_reach": 2300}))
    posts = [
        record(1, f"love it {TAG}", handle="amy", followers=100, likes=3, reposts=1, replies=0),
        record(2, f"meh {TAG}", handle="bob", followers=1000, hours=1),
        record(3, f"again {TAG}", handle="amy", followers=100, hours=24, likes=1),
        record(4, "before the campaign, about the grinder", handle="cat", followers=50, hours=-48),
        record(5, f"broken lid {TAG}", handle="cat", followers=50, hours=26, likes=2, reposts=2, replies=1),
        record(6, f"RT @amy: love it {TAG}", handle="dan", followers=7, hours=2, is_repost=True),
        record(7, f"too late {TAG}", handle="eve", followers=900, hours=24 * 5),       # after the end
        record(8, "off topic #Other", handle="fay", followers=10, hours=3),
        record(9, f"Join {TAG} and win a kettle!", handle="kettlebird", followers=48000, hours=4),   # our own
        record(10, f"Earn $500/day with crypto, DM me https://spam.example {TAG}", handle="bot", hours=5),
    ]
    listen(store, [ReplayListener(write_jsonl(tmp_path / "a.jsonl", posts))])
    # The same post 1 arrives again from a second query/file: it must count once.
    listen(store, [ReplayListener(write_jsonl(tmp_path / "b.jsonl", [posts[0]]))])
    labels = {"1": "positive", "2": "neutral", "3": "positive", "4": "neutral", "5": "negative", "6": "positive",
              "7": "positive", "8": "neutral", "9": "positive", "10": "neutral"}
    ids = {r["platform_id"]: r["id"] for r in store._rows("SELECT id, platform_id FROM posts")}
    store.save_sentiments([(ids[k], _sent(v)) for k, v in labels.items()])
    triage(store, cfg, now=T0 + dt.timedelta(days=3))
    return ids


def test_figures_match_the_hand_count(tmp_path, store, cfg):
    ids = setup(tmp_path, store, cfg)
    # The team liked post 1 (approved and sent); waiting: the likes proposed for posts 2 and 3 (every entry is
    # someone to thank, a lukewarm one too) and the reply drafted for post 5 ("broken lid" is a complaint).
    like1 = store._scalar("SELECT id FROM actions WHERE post_id = ? AND kind = 'like'", [ids["1"]])
    approval.approve(store, like1, actor="kim")
    senders.send_approved(store, lambda a: senders.OutboxSender(tmp_path / "out.jsonl"))
    r = campaigns.build(store, campaigns.find(cfg, "TestCamp"), own_handles=cfg.brand_handles)
    # entries: posts 1, 2, 3, 5 (6 is a repost, 7 after the end, 8 another tag, 9 ours, 10 spam;
    # 1 seen twice counts once)
    assert r.entries == 4 and r.reposts == 1 and r.excluded == {"own_posts": 1, "spam": 1}
    summary = {c["name"]: c for c in store.campaign_summary(cfg.brand_handles)}["TestCamp"]
    assert (summary["entries"], summary["participants"], summary["positive"]) == (4, 3, 2)   # the table agrees
    # participants amy, bob, cat; cat posted before her first entry → returning
    assert (r.participants, r.new_participants, r.returning_participants) == (3, 2, 1)
    assert r.reach == 100 + 1000 + 100 + 50 and r.unique_reach == 100 + 1000 + 50
    assert r.engagement == {"likes": 3 + 0 + 1 + 2, "reposts": 1 + 0 + 0 + 2, "replies": 1, "total": 10}
    assert r.sentiment == {"negative": 1, "neutral": 1, "positive": 2}
    assert r.reacted == 1 and r.reacted_share == 0.25 and r.reactions_waiting == 3
    assert r.goals == {"entries": {"goal": 8, "actual": 4, "progress": 0.5},
                       "participants": {"goal": 3, "actual": 3, "progress": 1.0},
                       "unique_reach": {"goal": 2300, "actual": 1150, "progress": 0.5}}
    assert [p["handle"] for p in r.top_posts[:2]] == ["cat", "amy"]        # engagement 5, then 4
    assert r.top_participants[0] == {"handle": "amy", "entries": 2, "followers": 100, "returning": False}
    assert r.timeline == [{"date": "2026-11-20", "negative": 0, "neutral": 1, "positive": 1},
                          {"date": "2026-11-21", "negative": 1, "neutral": 0, "positive": 1},
                          {"date": "2026-11-22", "negative": 0, "neutral": 0, "positive": 0}]


def test_positive_entries_get_one_proposed_like_each(tmp_path, store, cfg):
    ids = setup(tmp_path, store, cfg)
    likes = {r["post_id"] for r in store._rows("SELECT post_id FROM actions WHERE kind = 'like'")}
    assert {ids["1"], ids["3"]} <= likes and ids["6"] not in likes     # never for a repost
    triage(store, cfg, now=T0 + dt.timedelta(days=3))
    assert store._scalar("SELECT count(*) FROM actions WHERE kind = 'like' AND post_id = ?", [ids["1"]]) == 1


def test_report_files(tmp_path, store, cfg):
    setup(tmp_path, store, cfg)
    c = campaigns.find(cfg, "#testcamp")
    paths = campaigns.write(campaigns.build(store, c, own_handles=cfg.brand_handles), tmp_path / "rep",
                            store.campaign_entries(c.name), cfg.brand_handles)
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert summary["entries"] == 4 and summary["unique_reach"] == 1150
    rows = list(csv.DictReader(paths["csv"].open(encoding="utf-8")))
    assert len(rows) == 7                                                   # the export keeps every row
    assert sorted(r["excluded"] for r in rows) == ["", "", "", "", "own post", "repost", "spam"]
    page = paths["html"].read_text(encoding="utf-8")
    assert "<svg" in page and "#TestCamp" in page and "unique reach" in page


def test_post_text_is_escaped_in_the_html(tmp_path, store, cfg):
    cfg.campaigns.append(Campaign("X1", ["X1"], dt.date(2026, 11, 20), dt.date(2026, 11, 22)))
    listen(store, [ReplayListener(write_jsonl(tmp_path / "x.jsonl",
                                              [record(1, "<script>alert(1)</script> #X1", handle="h")]))])
    store.save_sentiments([(1, _sent("positive"))])
    triage(store, cfg, now=T0)
    page = campaigns.render_html(campaigns.build(store, campaigns.find(cfg, "X1")))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_spikes_raise_one_inbox_alert_per_hour(tmp_path, store, cfg):
    cfg.campaigns.append(Campaign("Burst", ["Burst"], dt.date(2026, 11, 19), dt.date(2026, 11, 22)))
    quiet = [record(i, f"hi #Burst {i}", handle=f"q{i}", hours=-30 + i) for i in range(24)]        # 1 an hour
    burst = [record(100 + i, f"wow #Burst {i}", handle=f"b{i}", hours=0.1 + i * 0.01) for i in range(8)]
    listen(store, [ReplayListener(write_jsonl(tmp_path / "s.jsonl", quiet + burst))])
    store.save_sentiments([(r["id"], _sent("neutral")) for r in store._rows("SELECT id FROM posts")])
    triage(store, cfg, now=T0 + dt.timedelta(hours=2))
    r = campaigns.build(store, campaigns.find(cfg, "Burst"))
    assert [s["hour"] for s in r.spikes] == [T0.isoformat()] and r.spikes[0]["entries"] == 8
    assert campaigns.raise_spike_alerts(store, cfg) == 1
    assert campaigns.raise_spike_alerts(store, cfg) == 0                     # once per hour, not per run
    [alert] = store.alerts()
    assert "8 entries" in alert["detail"] and alert["subject"] == "Burst"
    store.acknowledge_alert(alert["id"], "kim")
    assert store.alerts() == []


def test_hourly_spike_rule():
    h = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    steady = {h + dt.timedelta(hours=i): 4 for i in range(30)}
    assert campaigns.hourly_spikes(steady) == [] or campaigns.hourly_spikes(steady)[0]["hour"] == h.isoformat()
    steady[h + dt.timedelta(hours=30)] = 12                                 # 3× the baseline of 4
    assert [s["hour"] for s in campaigns.hourly_spikes(steady)][-1] == (h + dt.timedelta(hours=30)).isoformat()
    steady[h + dt.timedelta(hours=30)] = 11
    assert all(s["hour"] != (h + dt.timedelta(hours=30)).isoformat() for s in campaigns.hourly_spikes(steady))


def test_a_campaigns_days_are_its_own_time_zones():
    """An entry at 08:00 in Tokyo on the first day is the first day's (23:00 UTC the day before)."""
    import datetime as dt

    from taiwa.config import Campaign

    c = Campaign("Sakura", ["sakura"], dt.date(2027, 4, 1), dt.date(2027, 4, 7), timezone="Asia/Tokyo")
    morning = dt.datetime(2027, 3, 31, 23, 0, tzinfo=dt.timezone.utc)
    assert c.covers("x", morning) and c.day_of(morning) == dt.date(2027, 4, 1)
    assert not Campaign("Sakura", ["sakura"], dt.date(2027, 4, 1), dt.date(2027, 4, 7)).covers("x", morning)
    assert not c.covers("x", dt.datetime(2027, 4, 7, 15, 0, tzinfo=dt.timezone.utc))   # 00:00 on 8 April JST
