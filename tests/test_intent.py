"""Intent from the encoder: sarcasm read as a complaint (never liked), the same in Japanese, spam still by rules,
and the training data kept apart from the evaluation set and the demo."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from taiwa import pipeline
from taiwa.listeners.replay import ReplayListener
from taiwa.models import intent as intents
from taiwa.store import Store

from .conftest import T0, record, write_jsonl


def _norm(text: str) -> str:
    return " ".join(re.sub(r"@\w+|https?://\S+|[^\w\s]", " ", text.lower()).split())


def _texts(path: str) -> list[str]:
    raw = resources.files("taiwa").joinpath(path).read_text(encoding="utf-8")
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


def test_training_posts_share_nothing_with_the_evaluation_set_or_the_demo():
    train = {_norm(t) for t in _texts("data/intent_train.jsonl") + _texts("data/intent_train_voices.jsonl")}
    held_out = [_norm(t) for t in _texts("data/eval/nami_posts.jsonl") + _texts("data/dev/lumo_posts.jsonl")
                + _texts("data/eval/kirara_posts.jsonl") + _texts("data/eval/uminomori_posts.jsonl")
                + _texts("data/sample_posts.jsonl")]
    assert len(train) >= 600
    assert not train & set(held_out)
    assert not any(w in t for t in train for w in ("namiramen", "nami ramen", "ナミラーメン", "kettlebird", "ケトルバード",
                                                   "kirara", "きらら電", "umi no mori", "海の森"))


@pytest.mark.parametrize("text, lang", [("Best customer service ever: 4 emails, zero replies. Amazing.", "en"),
                                        ("さすがの対応ですね。問い合わせて2週間、返事ゼロ", "ja")])
def test_sarcasm_is_a_complaint_that_never_gets_a_like(tmp_path, cfg, default_model, text, lang):
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", [
        record(1, f"@kettlebird {text}", handle="ivy", lang=lang),
        record(2, "@kettlebird your beans made my morning, thank you!", handle="sam")]))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    rows = {r["platform_id"]: r for r in store.judgements()}
    assert rows["1"]["intent"] == "complaint" and not rows["1"]["like_proposed"] and rows["1"]["reply_id"]
    assert rows["2"]["intent"] == "praise" and rows["2"]["like_proposed"]
    why = json.loads(store.priority(rows["1"]["post_id"])["reasons"])
    assert any(w.startswith("complaint 0.") for w in why)          # the head's confidence is in the why
    store.close()


def test_spam_stays_with_the_rules_and_a_lone_odd_post_is_not_spam(default_model):
    from taiwa.models.sentiment import shared_e5

    model = intents.load()
    texts = ["Earn $500 a day with crypto, DM me http://x.example", "<code>hello()</code> #Launch"]
    got = model.classify(texts, shared_e5().embed(texts), ["neutral", "neutral"])
    assert got[0].name == "spam" and "crypto" in got[0].evidence
    assert got[1].name != "spam"


def test_without_the_head_the_rules_decide(tmp_path):
    intents.load.cache_clear()
    try:
        assert intents.load(tmp_path) is None
    finally:
        intents.load.cache_clear()
    assert intents.detect("my mug arrived cracked", "negative").name == "complaint"


@pytest.mark.parametrize("text, hint, lang", [("안녕하세요 주문이 안 왔어요", "", "ko"), ("我的订单还没到", "", "zh"),
                                              ("Мой заказ не пришёл", "", "ru"), ("注文した豆が届かない", "", "ja"),
                                              ("hello", "", "en"), ("hola, mi pedido no llegó", "es", "es"),
                                              ("whatever", "und", "en")])
def test_language_is_told_apart_by_script_or_the_platforms_tag(text, hint, lang):
    assert intents.language(text, hint) == lang


def test_the_intent_head_is_reproducible_from_the_packaged_posts(tmp_path):
    from taiwa.models import train_intent

    import numpy as np

    from taiwa.models.sentiment import HEADS_DIR, Head

    figures = train_intent.train(tmp_path, lobo=False)     # the leave-one-brand-out fits do not change the head
    assert figures["examples"] >= 1000 and figures["blind_accuracy"] >= 0.75
    assert (tmp_path / "intent.safetensors").exists()
    assert "Blind part" in (tmp_path / "INTENT_CARD.md").read_text(encoding="utf-8")
    assert intents.load(tmp_path) is not None
    shipped, rebuilt = Head.load(HEADS_DIR / "intent.safetensors"), Head.load(tmp_path / "intent.safetensors")
    assert all(np.allclose(a, b, atol=1e-4) and np.allclose(c, d, atol=1e-4)
               for (a, c), (b, d) in zip(shipped.layers, rebuilt.layers))   # the shipped head, reproduced


def test_intent_corrections_from_the_inbox_feed_the_intent_head(tmp_path, cfg, default_model):
    from click.testing import CliRunner

    from taiwa.cli import cli

    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", [
        record(1, "@kettlebird is this thing on", handle="q")]))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    store.correct(store._scalar("SELECT id FROM posts"), "intent", "question", "rob")
    store.close()
    out = tmp_path / "heads"
    r = CliRunner().invoke(cli, ["--db", str(cfg.database), "--demo", "model", "train-intent", "--corrections",
                                 "--no-lobo", "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert r.exit_code == 0, r.output
    card = (out / "INTENT_CARD.md").read_text(encoding="utf-8")
    assert (out / "intent.safetensors").exists() and "accuracy" in card
    from taiwa.models.sentiment import Head

    assert Head.load(out / "intent.safetensors").meta["figures"]["corrections"] == 1
