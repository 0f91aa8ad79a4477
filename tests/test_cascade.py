"""The cascade of the default model: e5 reads every post once, MiniLM only the Latin-script posts e5 is unsure of;
its threshold is the one the model card reports, and it gives (nearly) the labels of both heads on every post."""

from __future__ import annotations

import numpy as np
import pytest

from taiwa.models import cascade
from taiwa.models.sentiment import HEADS_DIR, Head, load_default, needs_multilingual

MIXED = [
    "Love the new grinder, it is quiet and fast",
    "My order has not arrived and nobody answers",
    "ok I guess",
    "is the store open on sunday?",
    "great, another delay. just what I needed",
    "注文した豆がまだ届きません！",
    "このマグカップ、本当に素敵です。大好き！",
    "배송이 너무 늦어요",
    "the app crashed twice at checkout, whatever",
    "Thanks for the quick reply yesterday",
]


class Spy:
    """Wraps a real encoder and records which texts it was asked to embed."""

    def __init__(self, encoder):
        self.encoder, self.name, self.dim, self.seen = encoder, encoder.name, encoder.dim, []

    def embed(self, texts, progress=None):
        self.seen.extend(texts)
        return self.encoder.embed(texts, progress)


@pytest.fixture()
def spied(default_model, monkeypatch):
    route = default_model.english
    e5, minilm = Spy(route.e5.encoder), Spy(route.minilm.encoder)
    monkeypatch.setattr(route.e5, "encoder", e5)
    monkeypatch.setattr(route.minilm, "encoder", minilm)
    return default_model, e5, minilm


def test_e5_reads_every_post_once_and_minilm_only_unsure_latin_posts(spied):
    model, e5, minilm = spied
    route = model.english
    assert 0.5 <= route.below < 1, "the shipped heads carry a tuned threshold"
    out = model.classify(MIXED)
    assert sorted(e5.seen) == sorted(MIXED)                     # one e5 pass, every script together
    e5_probs = route.e5.head.probs(route.e5.encoder.encoder.embed(MIXED))
    expected = {t for t, p in zip(MIXED, e5_probs) if p.max() < route.below and not needs_multilingual(t)}
    assert set(minilm.seen) == expected and len(minilm.seen) == len(expected)
    assert not any(needs_multilingual(t) for t in minilm.seen)
    both = (e5_probs + route.minilm.head.probs(route.minilm.encoder.encoder.embed(MIXED))) / 2
    for t, s, p5, pb in zip(MIXED, out, e5_probs, both):
        want = pb if t in expected else p5
        assert np.allclose([s.scores[k] for k in ("negative", "neutral", "positive")], want, atol=1e-5), t
        assert s.vector is not None and s.vector.shape == (384,)     # topics and answers reuse it
        assert s.model_id == (model.multilingual.model_id if needs_multilingual(t) else route.model_id)


def test_without_the_cascade_every_latin_post_goes_through_both_heads(default_model):
    plain = load_default(device="cpu", cascade=False)
    assert plain.english.below == 1.0
    spy = Spy(plain.english.minilm.encoder)
    plain.english.minilm.encoder = spy
    plain.classify(MIXED)
    assert sorted(spy.seen) == sorted(t for t in MIXED if not needs_multilingual(t))


@pytest.fixture(scope="module")
def held_out():
    """A fixed sample of the held-out tweets (both parts) with each shipped head's probabilities, as the default
    computes them (e5 fp32, MiniLM int8 on ONNX Runtime)."""
    from taiwa.models.sentiment import make_e5, make_minilm
    from taiwa.models.train import split_corpus

    held = sorted(split_corpus().test, key=lambda e: e.text)[::17][:400]
    texts, gold = [e.text for e in held], [e.label for e in held]
    return texts, gold, {
        "e5": Head.load(HEADS_DIR / "e5.safetensors").probs(make_e5().embed(texts)),
        "minilm": Head.load(HEADS_DIR / "minilm.safetensors").probs(make_minilm(int8=True).embed(texts))}


def test_the_cascade_keeps_both_heads_labels_on_held_out_tweets(default_model, held_out):
    """On the final part (nothing was chosen on it) the cascade agrees with averaging both heads on nearly every
    tweet, and its macro-F1 is within the card's tolerance of theirs (plus sampling slack)."""
    from taiwa.models.train import TUNE_PERCENT, bucket, metrics

    texts, gold, probs = held_out
    final = np.array([bucket(t) >= TUNE_PERCENT for t in texts])
    casc, unsure = cascade.route(probs["e5"], probs["minilm"], default_model.english.below)
    both = (probs["e5"] + probs["minilm"]) / 2
    labels = lambda p: [("negative", "neutral", "positive")[i] for i in p[final].argmax(axis=1)]   # noqa: E731
    gold_f = [g for g, f in zip(gold, final) if f]
    assert (casc[final].argmax(1) == both[final].argmax(1)).mean() >= 0.93
    assert metrics(gold_f, labels(casc))["macro_f1"] >= metrics(gold_f, labels(both))["macro_f1"] - 0.03
    assert 0.05 < unsure[final].mean() < 0.6          # MiniLM is skipped for most tweets, consulted for some


def test_choose_takes_the_lowest_threshold_within_tolerance(held_out):
    """On the shipped heads' own probabilities for the tune part: the chosen threshold meets the tolerance and
    the grid step below it does not (so it is the cheapest that does)."""
    from taiwa.models.train import TUNE_PERCENT, bucket

    texts, gold, probs = held_out
    tune = np.array([bucket(t) < TUNE_PERCENT for t in texts])
    p5, pm, gold = probs["e5"][tune], probs["minilm"][tune], [g for g, t in zip(gold, tune) if t]
    for tol in (0.0, 0.01, 0.03):
        c = cascade.choose(p5, pm, gold, tolerance=tol)
        assert c["f1"] >= c["both_f1"] - tol - 1e-9
        i = cascade.GRID.index(c["below"]) if c["below"] in cascade.GRID else len(cascade.GRID)
        if i > 0:
            below = cascade.GRID[i - 1]
            assert cascade.judge(p5, pm, gold, below)["f1"] < c["both_f1"] - tol
        probs_c, unsure = cascade.route(p5, pm, c["below"])
        assert np.array_equal(unsure, p5.max(axis=1) < c["below"])


def test_the_model_card_reports_the_shipped_threshold():
    meta = Head.load(HEADS_DIR / "minilm.safetensors").meta
    card = (HEADS_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    c = meta["cascade"]
    assert meta["cascade_below"] == c["tune"]["below"]
    assert f"below **{meta['cascade_below']:g}**" in card
    assert c["final"]["f1"] >= c["final"]["both_f1"] - c["tolerance"]      # judged on posts it was not chosen on


def test_tune_writes_the_threshold_the_model_then_uses(tmp_path, held_out):
    """What `taiwa model train` does after fitting: choose on the tune part, judge on the final part, store it in
    the MiniLM head; load_default reads it back and the card shows it."""
    import shutil

    for name in ("minilm.safetensors", "e5.safetensors"):
        shutil.copy(HEADS_DIR / name, tmp_path / name)
    texts, gold, probs = held_out
    c = cascade.tune(tmp_path, probs, texts, gold)
    assert c["tune"]["n"] + c["final"]["n"] == len(texts) and c["tune"]["n"] > 50
    model = load_default(device="cpu", heads_dir=tmp_path)
    assert model.english.below == c["tune"]["below"]
    lines = "\n".join(cascade.card_lines(c))
    assert f"below **{c['tune']['below']:g}**" in lines and f"| final (judged here) | {c['final']['n']} |" in lines
