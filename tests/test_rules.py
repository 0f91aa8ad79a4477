"""Rules: each condition and action, the built-ins, config errors, escalation order, the inbox's JSON."""

from __future__ import annotations

import json

import pytest

from taiwa import config as config_mod
from taiwa.errors import ConfigError
from taiwa.models.rules import BUILTIN, parse_rules

BRAND = '[[brands]]\nname = "Lumen Tea"\nhandles = ["lumentea"]\n'


def rules_from(toml: str, builtin=()):
    import tomllib

    return parse_rules(tomllib.loads(toml).get("rules"), list(builtin), "t.toml")


def post(text="hello", **kw):
    return {"text": text, "followers": 10, "verified": 0, "reposts": 0, "platform": "x", "lang": "en",
            "handle": "someone", **kw}


@pytest.mark.parametrize("when, hit, miss", [
    ("followers_at_least = 50000", post(followers=185_000), post(followers=49_999)),
    ("verified = true", post(verified=1), post(verified=0)),
    ("reposts_at_least = 100", post(reposts=250), post(reposts=3)),
    ('platform = ["mastodon"]', post(platform="mastodon"), post(platform="x")),
    ('lang = ["ja"]', post(lang="ja"), post(lang="en")),
    ('handles = ["@Coffee_Critic"]', post(handle="coffee_critic"), post(handle="coffee_fan")),
    ('keywords = ["refund", "返金"]', post("I want a REFUND now"), post("refunded happily? no: refundable")),
    ('keywords = ["返金"]', post("返金してください"), post("返事ください")),
    ('keywords = ["ｒｅｆｕｎｄ"]', post("Refund please"), post("fun")),          # width-insensitive
])
def test_each_condition(when, hit, miss):
    rs = rules_from(f'[[rules]]\nname = "r"\nwhen = {{ {when} }}\nthen = {{ tag = "t" }}\n')
    assert rs.apply(hit, intent="other", sentiment="neutral").names == ["r"]
    assert rs.apply(miss, intent="other", sentiment="neutral").names == []


def test_intent_and_sentiment_conditions_and_all_must_hold():
    rs = rules_from('[[rules]]\nname = "angry question"\nwhen = { intent = ["question"], sentiment = "negative", '
                    'followers_at_least = 1000 }\nthen = { boost = 0.2 }\n')
    assert rs.apply(post(followers=5000), intent="question", sentiment="negative").boost == 0.2
    assert rs.apply(post(followers=5000), intent="question", sentiment="neutral").names == []
    assert rs.apply(post(followers=10), intent="question", sentiment="negative").names == []


def test_every_action_and_their_combination():
    rs = rules_from('''
[[rules]]
name = "vip"
when = { followers_at_least = 10000 }
then = { escalate = true, boost = 0.1, assign = "aiko", tag = ["vip", "press"] }
[[rules]]
name = "competitor"
when = { keywords = ["brewco"] }
then = { hide = true, no_like = true, tag = "competitor", boost = 0.05 }
''')
    out = rs.apply(post("brewco is better", followers=20_000), intent="other", sentiment="neutral")
    assert out.escalate and out.assign == "aiko" and out.hide == "competitor" and out.no_like
    assert out.tags == ["vip", "press", "competitor"] and out.boost == pytest.approx(0.15)
    assert out.reasons() == ["rule vip: '20,000 followers'", "rule competitor: 'brewco'"]


@pytest.mark.parametrize("text, rule", [
    ("If this isn't fixed I'm calling my lawyer", "legal threat"),
    ("See you in small claims court", "legal threat"),
    ("このままなら訴えます", "legal threat"),
    ("Thinking about cancelling my subscription after this", "churn threat"),
    ("もう解約します", "churn threat"),
    ("My son had an allergic reaction to the new syrup", "safety"),
    ("Found a piece of glass in my pastry", "safety"),
    ("カップに異物が入っていました", "safety"),
])
def test_builtin_rules_escalate_legal_churn_and_safety_in_english_and_japanese(text, rule):
    rs = parse_rules(None, list(BUILTIN), "t.toml")
    out = rs.apply(post(text), intent="complaint", sentiment="negative")
    assert out.escalate and rule in out.names


@pytest.mark.parametrize("text", ["this issue is annoying", "新品のタンブラーに最初から欠けがある", "my cold brew is on fire today 🔥",
                                  "I'd never go back to instant coffee"])
def test_builtin_rules_do_not_fire_on_look_alikes(text):
    assert parse_rules(None, list(BUILTIN), "t.toml").apply(post(text), intent="other", sentiment="neutral").names == []


def test_builtins_can_be_turned_off_and_unknown_ones_are_refused(tmp_path):
    p = tmp_path / "taiwa.toml"
    p.write_text(BRAND + '[triage]\nbuiltin_rules = ["safety"]\n', encoding="utf-8")
    cfg = config_mod.load(p)
    assert [r.name for r in cfg.rules.rules] == ["safety"]
    p.write_text(BRAND + '[triage]\nbuiltin_rules = ["lawyers"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.key == "triage.builtin_rules" and "legal_threat" in e.value.fix


@pytest.mark.parametrize("text, key, words", [
    ('[[rules]]\nwhen = { verified = true }\nthen = { escalate = true }\n', "rules[0].name", "missing"),
    ('[[rules]]\nname = "a"\nwhen = { followers_more_than = 5 }\nthen = { escalate = true }\n',
     "rules[0].when.followers_more_than", "unknown key"),
    ('[[rules]]\nname = "a"\nwhen = { verified = true }\nthen = { shout = true }\n', "rules[0].then.shout",
     "unknown key"),
    ('[[rules]]\nname = "a"\nwhen = { followers_at_least = "many" }\nthen = { escalate = true }\n',
     "rules[0].when.followers_at_least", "expected int"),
    ('[[rules]]\nname = "a"\nwhen = { intent = ["rant"] }\nthen = { escalate = true }\n', "rules[0].when.intent",
     "unknown value"),
    ('[[rules]]\nname = "a"\nwhen = { verified = true }\nthen = { boost = nan }\n', "rules[0].then.boost",
     "expected float"),
    ('[[rules]]\nname = "a"\nthen = { escalate = true }\n', "rules[0].when", "at least one condition"),
    ('[[rules]]\nname = "a"\nwhen = { verified = true }\n', "rules[0].then", "at least one action"),
    ('[[rules]]\nname = "a"\nwhen = { verified = true }\nthen = { hide = true }\n[[rules]]\nname = "a"\n'
     'when = { verified = true }\nthen = { hide = true }\n', "rules[1].name", "two rules"),
])
def test_rule_config_errors_name_file_and_key(tmp_path, text, key, words):
    p = tmp_path / "taiwa.toml"
    p.write_text(BRAND + text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        config_mod.load(p)
    assert e.value.file == str(p) and e.value.key == key and words in e.value.problem, (e.value.key, e.value.problem)


def test_escalated_posts_rank_first_with_the_rule_in_their_why_and_the_json_fields(tmp_path, cfg, default_model):
    from click.testing import CliRunner

    from taiwa import pipeline
    from taiwa.cli import cli
    from taiwa.listeners.replay import ReplayListener
    from taiwa.store import Store

    from .conftest import T0, record, write_jsonl

    cfg.rules = parse_rules([{"name": "critic", "when": {"followers_at_least": 100_000}, "then": {"escalate": True,
                                                                                               "tag": ["press"]}},
                             {"name": "rivals", "when": {"keywords": ["brewco"]}, "then": {"hide": True}}],
                            list(BUILTIN), "t.toml")
    posts = [record(1, "@kettlebird my order is late again and nobody answers, refund please", handle="angry",
                    hours=-1),
             record(2, "Review of @kettlebird coming Friday. Mixed feelings so far.", handle="coffee_critic",
                    followers=185_000, hours=-20),
             record(3, "@kettlebird my daughter had an allergic reaction to the oat latte", handle="parent",
                    hours=-30),
             record(4, "brewco beats @kettlebird, sorry not sorry", handle="troll", hours=-2)]
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", posts))])
    pipeline.classify(store, default_model)
    report = pipeline.triage(store, cfg, now=T0)
    assert report.ignored.get("hidden by rule rivals") == 1
    top = store.inbox(limit=10)
    assert {r["handle"] for r in top[:2]} == {"parent", "coffee_critic"}      # both escalated, above "angry"
    assert all(r["escalated"] for r in top[:2]) and not top[2]["escalated"]
    assert "troll" not in [r["handle"] for r in top]
    parent = next(r for r in top if r["handle"] == "parent")
    reasons = json.loads(parent["reasons"])
    assert reasons[0] == "escalated" and "rule safety: 'allergic reaction'" in reasons
    r = CliRunner().invoke(cli, ["--db", str(cfg.database), "--demo", "inbox", "--json"])
    rows = [json.loads(line) for line in r.output.splitlines()]
    critic = next(x for x in rows if x["handle"] == "coffee_critic")
    assert critic["escalated"] is True and set(critic["rules"]) == {"critic", "big account"} and critic["tags"] == ["press"]
    assert critic["platform_id"] == "2"
    store.close()


def test_a_keyword_with_too_many_wildcards_is_refused_at_load(tmp_path):
    """Eight `*` in one keyword took 6 s a post (200 hung `listen`): refused with what to do instead."""
    import pytest

    from taiwa import config as config_mod
    from taiwa.errors import ConfigError

    raw = {"brands": [{"name": "B", "handles": ["b"]}],
           "rules": [{"name": "greedy", "when": {"keywords": ["a * b * c * d * e * f * g * h *"]},
                      "then": {"escalate": True}}]}
    with pytest.raises(ConfigError) as e:
        config_mod.parse(raw, base_dir=tmp_path)
    assert "wildcards" in e.value.problem and e.value.key.endswith("keywords")
