"""The reply policy: an apology needs a sign of a problem, praise and campaign entries get a like (never under
sarcasm), an unclear post waits as "needs a look" with its reasons and cannot be approved without words."""

import pytest

from taiwa.errors import ValidationError
from taiwa.models.intent import Intent
from taiwa.responders import approval, policy


def post(text, *, negative=0.05, positive=0.5, handle="amy", **extra):
    return {"text": text, "negative": negative, "positive": positive, "neutral": 1 - negative - positive,
            "handle": handle, "mentions": "[]", "can_reply": 1, "is_repost": 0, **extra}


def head(name, p=0.9, **kw):
    return Intent(name, confidence=p, probs={name: p, **kw.pop("probs", {})}, **kw)


def test_a_complaint_the_post_does_not_show_is_never_apologised_to(cfg):
    happy = post("@kettlebird my cat insists on supervising the brew", positive=0.8)
    d = policy.decide(happy, head("complaint", 0.94), cfg, [])
    assert d.template == "look" and "nothing in the post shows a problem" in d.unsure[0]
    real = post("@kettlebird my grinder arrived broken and nobody answers", negative=0.93, positive=0.01)
    assert policy.decide(real, head("complaint", 0.9), cfg, []).template == "complaint"
    one_sign = post("@kettlebird the lid is missing", negative=0.3, positive=0.1)
    assert policy.decide(one_sign, head("complaint", 0.45), cfg, []).template == "look"


def test_praise_and_campaign_entries_get_a_like_and_sarcasm_never_does(cfg):
    d = policy.decide(post("Breakfast with my favourite mug #MyKettleMorning", positive=0.9), head("praise"), cfg,
                      ["MyKettleMorning"])
    assert d.kinds == ["like"] and d.template == "campaign"
    sarcastic = post("@kettlebird love waiting 40 minutes for a latte, great job", negative=0.2, positive=0.7)
    d = policy.decide(sarcastic, head("complaint", 0.92, sarcasm=True, evidence=("great job",)), cfg, [])
    assert "like" not in d.kinds and d.template == "complaint"


def test_news_and_chatter_get_nothing_and_spam_is_never_answered(cfg):
    assert policy.decide(post("Kettlebird opens a shop in Osaka next month"), head("other"), cfg, []).kinds == []
    assert policy.decide(post("free followers dm me"), head("spam"), cfg, []).why == "spam"


def test_a_post_left_for_a_look_cannot_be_approved_without_words(store):
    from taiwa.listeners.base import Author, Post
    import datetime as dt

    store.ingest([Post("x", "1", Author("9", "amy"), "hmm @kettlebird", dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc))],
                 listener="t", cursor=None)
    store.create_actions([{"post_id": 1, "kind": "reply", "text": "", "template": "look",
                           "unsure": ["read as a complaint but nothing shows a problem"]}])
    aid = store._scalar("SELECT id FROM actions")
    with pytest.raises(ValidationError) as e:
        approval.approve(store, aid, actor="ann")
    assert "needs a look" in e.value.message
    approval.approve(store, aid, actor="ann", text="Hi Amy! Anything we can help with?")
    assert store.action(aid)["state"] == "approved"
