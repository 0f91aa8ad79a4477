"""Where the Latin-script route may skip MiniLM: the cascade's threshold, chosen on held-out tweets.

The e5 head reads every post (its embedding is needed for topics, intent, incidents and answers anyway). The
average of the e5 and MiniLM heads is the more accurate, but MiniLM costs as much again. Where e5's top
probability is high the average rarely disagrees with e5 alone, so MiniLM is consulted only below a threshold.

The threshold is the lowest on a grid whose macro-F1 on the *tune* quarter of the held-out tweets stays within
`TOLERANCE` of averaging both heads for every post; it is then judged on the *final* three quarters, which nothing
was chosen on. `taiwa model train` runs this after fitting the heads and stores the result in the MiniLM head's
metadata (`cascade_below`), which load_default reads; MODEL_CARD.md reports both parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .sentiment import LABELS, Head

GRID = tuple(round(0.5 + 0.025 * i, 3) for i in range(20))   # 0.5 … 0.975
TOLERANCE = 0.01   # macro-F1 points the cascade may give up on the tune part (the budget: one point)


def route(p_e5: np.ndarray, p_minilm: np.ndarray, below: float) -> tuple[np.ndarray, np.ndarray]:
    """The cascade's probabilities and which rows went to MiniLM, given both heads' probabilities."""
    unsure = p_e5.max(axis=1) < below
    return np.where(unsure[:, None], (p_e5 + p_minilm) / 2, p_e5), unsure


def _f1(gold: Sequence[str], probs: np.ndarray) -> float:
    from .train import metrics

    return metrics(list(gold), [LABELS[i] for i in probs.argmax(axis=1)])["macro_f1"]


def choose(p_e5: np.ndarray, p_minilm: np.ndarray, gold: Sequence[str], tolerance: float = TOLERANCE) -> dict:
    """The lowest threshold of GRID within `tolerance` of both heads everywhere (1.0, both always, when none is)."""
    for below in GRID:
        result = judge(p_e5, p_minilm, gold, below)
        if result["f1"] >= result["both_f1"] - tolerance:
            return result
    return judge(p_e5, p_minilm, gold, 1.0)


def judge(p_e5: np.ndarray, p_minilm: np.ndarray, gold: Sequence[str], below: float) -> dict:
    probs, unsure = route(p_e5, p_minilm, below)
    return {"below": below, "routed": float(unsure.mean()), "f1": _f1(gold, probs),
            "both_f1": _f1(gold, (p_e5 + p_minilm) / 2), "e5_f1": _f1(gold, p_e5), "n": len(gold)}


def tune(heads_dir: Path, probs: dict[str, np.ndarray], test_texts: Sequence[str], gold: Sequence[str]) -> dict:
    """Choose the threshold on the tune part of the held-out probabilities, judge it on the final part, and write
    it into heads_dir/minilm.safetensors' metadata. `probs` holds each head's probabilities over `test_texts`."""
    from .train import TUNE_PERCENT, bucket

    tune_rows = np.array([bucket(t) < TUNE_PERCENT for t in test_texts])
    gold = np.asarray(gold)
    p5, pm = probs["e5"], probs["minilm"]
    chosen = choose(p5[tune_rows], pm[tune_rows], list(gold[tune_rows]))
    final = judge(p5[~tune_rows], pm[~tune_rows], list(gold[~tune_rows]), chosen["below"])
    path = heads_dir / "minilm.safetensors"
    head = Head.load(path)
    head.meta["cascade_below"] = chosen["below"]
    head.meta["cascade"] = {"tune": chosen, "final": final, "tolerance": TOLERANCE}
    head.save(path)
    return head.meta["cascade"]


def card_lines(c: dict) -> list[str]:
    t, f = c["tune"], c["final"]
    return [
        "## Cascade (Latin-script posts)",
        "",
        f"The e5 head reads every post; MiniLM's head joins (the two averaged) only where e5's top probability is "
        f"below **{t['below']:g}**.",
        f"Chosen on the tune quarter of the held-out tweets ({t['n']} posts): the lowest threshold of "
        f"{GRID[0]:g}–{GRID[-1]:g} whose macro-F1 is within {c['tolerance'] * 100:g} point of averaging both heads "
        "for every post.",
        "",
        "| part | posts | MiniLM consulted | cascade macro-F1 | both heads always | e5 alone |",
        "|---|---|---|---|---|---|",
        f"| tune (chosen here) | {t['n']} | {t['routed']:.0%} | {t['f1']:.3f} | {t['both_f1']:.3f} | {t['e5_f1']:.3f} |",
        f"| final (judged here) | {f['n']} | {f['routed']:.0%} | {f['f1']:.3f} | {f['both_f1']:.3f} | {f['e5_f1']:.3f} |",
        "",
        "`[model] cascade = false` averages both heads for every Latin-script post.",
        "",
    ]
