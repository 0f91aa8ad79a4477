"""Topics from the brand's examples, across languages, on the real multilingual encoder; stored, shown, used by
rules. The brand here (Lumen Tea) and its phrasings are not the demo's, and none was used to set the threshold."""

from __future__ import annotations

import json

import pytest

from taiwa import config as config_mod
from taiwa.errors import ConfigError
from taiwa.models.sentiment import E5Encoder
from taiwa.models.topics import Topic, TopicDetector

EN_ONLY = (Topic("shipping", ("my tea order has not arrived", "the delivery is a week late")),
           Topic("website", ("I can't log in to my account on your website", "the checkout page shows an error")),
           Topic("taste", ("this tea tastes stale and bitter",)))
JA_ONLY = (Topic("shipping", ("注文したお茶が届かない", "配達が一週間遅れている")),
           Topic("website", ("サイトにログインできない", "決済ページでエラーが出る")),
           Topic("taste", ("このお茶は古くて苦い味がする",)))


THRESHOLD = config_mod.SECTIONS["triage"]["topic_threshold"].default


@pytest.fixture(scope="module")
def encoder():
    return E5Encoder()


def names(detector, posts):
    return [m.name if m else None for m in detector.detect(posts, [None] * len(posts))]


BRAND = ("Lumen Tea", "@lumentea")


def test_english_examples_catch_japanese_posts(encoder):
    d = TopicDetector(EN_ONLY, encoder, THRESHOLD, BRAND)
    assert names(d, ["まだお茶が届いていません。いつ発送されますか", "ログインしようとするとエラーになる",
                     "今朝は散歩してきた"]) == ["shipping", "website", None]


def test_japanese_examples_catch_english_posts(encoder):
    d = TopicDetector(JA_ONLY, encoder, THRESHOLD, BRAND)
    found = names(d, ["ordered the sencha two weeks ago, still nothing in my mailbox",
                      "your site keeps logging me out when I try to pay", "happy friday everyone"])
    # Japanese examples reach English posts less surely than the other way round (README, Topics): the late order
    # may stay without a topic, but it must never get a wrong one.
    assert found[1:] == ["website", None] and found[0] in ("shipping", None)


def test_keywords_are_extra_evidence_and_are_shown(encoder):
    d = TopicDetector((Topic("shipping", ("my tea order has not arrived",), keywords=("courier", "配達員")),), encoder,
                      THRESHOLD)
    [m] = d.detect(["The ＣＯＵＲＩＥＲ left my box in the rain"], [None])
    assert m and m.name == "shipping" and "courier" in m.evidence and m.reason().startswith("topic shipping")


def test_posts_reuse_the_vector_of_the_sentiment_pass(tmp_path, cfg, default_model):
    from taiwa import pipeline
    from taiwa.listeners.replay import ReplayListener
    from taiwa.store import Store

    from .conftest import T0, record, write_jsonl

    cfg.topics = EN_ONLY
    store = Store(cfg.database)
    posts = [record(1, "@kettlebird my order has not arrived and it's been ten days", handle="a"),
             # A leading @mention pulls a Japanese post's embedding towards English text and away from the topic
             # (README, Topics: a known limit); the brand named in the text is how most Japanese posts read.
             record(2, "ケトルバードで注文した豆がまだ届きません", handle="b", lang="ja"),
             record(3, "@kettlebird lovely morning with your beans", handle="c")]
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", posts))])
    pipeline.classify(store, default_model)
    assert store.count("posts") == 3 and store._scalar("SELECT count(*) FROM post_vectors") == 3

    from taiwa.models import topics as topics_mod

    detector = topics_mod.detector(tuple(cfg.topics), cfg.get("triage", "topic_threshold"), topics_mod.brand_words(cfg))
    embedded = []
    real = detector.encoder.embed
    detector.encoder.embed = lambda texts, *a, **k: embedded.append(list(texts)) or real(texts, *a, **k)
    try:
        pipeline.triage(store, cfg, now=T0)
    finally:
        detector.encoder.embed = real
    # No post was encoded a second time (the knowledge base's questions are, once per process, by whichever
    # test builds its index first).
    assert not [t for call in embedded for t in call if t in {p["text"] for p in posts}]
    got = {r["platform_id"]: r for r in store._rows(
        "SELECT p.platform_id, pr.topic, pr.topic_score, pr.topic_evidence, pr.reasons FROM priorities pr "
        "JOIN posts p ON p.id = pr.post_id")}
    assert got["1"]["topic"] == "shipping" and got["2"]["topic"] == "shipping" and got["3"]["topic"] == ""
    assert json.loads(got["2"]["topic_evidence"])[0] in EN_ONLY[0].examples
    assert any(r.startswith("topic shipping") for r in json.loads(got["2"]["reasons"]))
    store.close()


def test_a_topic_can_escalate_assign_and_drive_rules(tmp_path):
    p = tmp_path / "taiwa.toml"
    p.write_text('''
[[brands]]
name = "Lumen Tea"
[[topics]]
name = "safety"
examples = ["I found glass in my tea", "お茶に異物が入っていた"]
escalate = true
assign = "aiko"
[[rules]]
name = "shipping vip"
when = { topic = ["safety"], followers_at_least = 10 }
then = { tag = ["urgent"] }
''', encoding="utf-8")
    cfg = config_mod.load(p)
    assert cfg.topics[0].escalate and cfg.topics[0].assign == "aiko"
    out = cfg.rules.apply({"text": "x", "topic": "safety", "followers": 50}, intent="complaint", sentiment="negative")
    assert out.tags == ["urgent"]


@pytest.mark.parametrize("text, key, words", [
    ('[[topics]]\nexamples = ["a"]\n', "topics[0].name", "missing"),
    ('[[topics]]\nname = "a"\n', "topics[0].examples", "example phrases"),
    ('[[topics]]\nname = "a"\nexamples = []\n', "topics[0].examples", "example phrases"),
    ('[[topics]]\nname = "a"\nexamples = ["x"]\ncolour = "red"\n', "topics[0].colour", "unknown key"),
    ('[[topics]]\nname = "a"\nexamples = ["x"]\nask = { en = "DM us {order:d}" }\n', "topics[0].ask.en",
     "unknown template field"),
    ('[[topics]]\nname = "a"\nexamples = ["x"]\n[[topics]]\nname = "a"\nexamples = ["y"]\n', "topics[1].name",
     "two topics"),
    ('[[topics]]\nname = "a"\nexamples = ["x"]\nescalate = "yes"\n', "topics[0].escalate", "true or false"),
    ('[[rules]]\nname = "r"\nwhen = { topic = ["nope"] }\nthen = { tag = "t" }\n', "rules[0].when.topic",
     "unknown value"),
    ('[triage]\ntopic_threshold = 50.0\n', "triage.topic_threshold", "out of range"),
])
def test_topic_config_errors_name_file_and_key(tmp_path, text, key, words):
    p = tmp_path / "taiwa.toml"
    p.write_text('[[brands]]\nname = "Lumen Tea"\n' + text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.file == str(p) and e.value.key == key and words in e.value.problem, (e.value.key, e.value.problem)
