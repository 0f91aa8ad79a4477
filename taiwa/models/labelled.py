"""The real labelled posts (taiwa/data/real): tweets to ten brands, labelled by reading them (GUIDE.md there)
before any model read them. Parts by a hash of the text: `train` may train the intent head, `tune` chooses
thresholds and calibration, `blind` is never trained or tuned on."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

REAL_DIR = Path(str(resources.files("taiwa").joinpath("data/real")))
PARTS = ("train", "tune", "blind")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def real_posts(parts: Sequence[str] = ("blind",), brands: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The labelled posts of the given parts (and brands): id, brand, part, text, lang + the labels (intent,
    problem, sarcasm, reply, note)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    labels = {r["id"]: r for r in _jsonl(REAL_DIR / "labels.jsonl")}
    return [{**r, **labels[r["id"]], "lang": "en"} for r in _jsonl(REAL_DIR / "sample.jsonl")
            if r["part"] in parts and (brands is None or r["brand"] in brands)]
