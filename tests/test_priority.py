"""Priority on a small hand-built set: the order a social team would choose, and reasons it can read."""

import datetime as dt

from taiwa.models import intent
from taiwa.models.priority import score

from .conftest import T0

W = {"sentiment": 0.35, "intent": 0.30, "reach": 0.15, "recency": 0.15, "campaign": 0.05}


def rank(posts):
    scored = []
    for name, text, neg, label, followers, hours_old, campaigns in posts:
        it = intent.detect(text, label)
        p = score(negative=neg, intent=it.name, evidence=it.evidence, followers=followers,
                  created_at=T0 - dt.timedelta(hours=hours_old), now=T0, campaigns=campaigns, weights=W,
                  ignore="spam" if it.name == "spam" else "")
        scored.append((p.score, name, p))
    return sorted(scored, key=lambda s: -s[0])


def test_complaints_first_then_questions_then_praise_spam_last():
    posts = [
        ("praise", "love my new mug", 0.02, "positive", 500, 1, []),
        ("complaint", "my mug arrived cracked, second time", 0.85, "negative", 300, 3, []),
        ("old complaint", "refund still not here", 0.80, "negative", 300, 96, []),
        ("question", "is the kettle dishwasher safe?", 0.10, "neutral", 200, 2, []),
        ("spam", "earn $500 a day with crypto https://x.example", 0.05, "neutral", 10, 0, []),
        ("entry", "sunrise coffee #MyKettleMorning", 0.01, "positive", 900, 1, ["MyKettleMorning"]),
        ("influencer complaint", "worst service ever", 0.9, "negative", 180_000, 5, []),
    ]
    order = [name for _, name, _ in rank(posts)]
    assert order[:3] == ["influencer complaint", "complaint", "old complaint"]
    assert order.index("question") < order.index("entry") < order.index("praise")
    assert order[-1] == "spam"


def test_reasons_explain_the_score():
    [(s, _, p)] = rank([("c", "the lid is leaking and the app crashed", 0.9, "negative", 12_300, 3,
                        ["WinterCupDesign"])])
    assert "negative 0.90" in p.reasons
    assert any(r.startswith("complaint: 'leaking'") for r in p.reasons)
    assert "12.3k followers" in p.reasons and "3h old" in p.reasons and "#WinterCupDesign" in p.reasons
    expected = sum(W[k] * v for k, v in p.components.items())
    assert abs(s - expected) < 1e-3


def test_sarcasm_with_a_complaint_word_is_a_complaint():
    assert intent.detect("Oh great, my bottle leaked all over my bag. Love that for me.", "positive").name == \
        "complaint"
    assert intent.detect("さすが、3回連続の配送遅延。もはや芸術", "positive").name == "complaint"


def test_japanese_intents():
    assert intent.detect("マグは食洗機で洗えますか？", "neutral").name == "question"
    assert intent.detect("副業で月30万稼げる！今すぐLINE追加 https://lin.ee/x", "neutral").name == "spam"
    assert intent.language("届いたマグが割れていました") == "ja"
    assert intent.language("the mug arrived") == "en"
