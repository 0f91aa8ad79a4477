"""What each labelled post got from the pipeline, and the figures that judge it.

Costs are not symmetric, so the figures name each costly mistake apart instead of folding them into one accuracy:
an apology to someone with no problem, a like under sarcasm, a complaint left without a draft. "Needs a look"
(taiwa was unsure and left the post to a person, with its reasons) is counted on its own: it is the cheap answer
to an unclear post, and too many of them would make the inbox useless.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable

from ..store import Store

INTENTS = ("complaint", "question", "praise", "campaign", "other", "spam")
SENTIMENTS = ("negative", "neutral", "positive")
APOLOGY_TEMPLATES = ("complaint", "negative")


@dataclass
class Got:
    """What one post got: its outcome, whether a like was proposed, and what taiwa read."""

    outcome: str          # apology | reply | look | like | nothing
    like: bool
    intent: str
    sentiment: str
    template: str = ""


def got(store: Store, post_id: int, judged: dict[str, Any]) -> Got:
    reply = store.reply_for_post(post_id)
    like = any(a["kind"] == "like" for a in store.actions_for_post(post_id))
    if reply is not None and reply.get("unsure"):
        outcome = "look"
    elif reply is not None:
        outcome = "apology" if reply["template"].split(".")[0] in APOLOGY_TEMPLATES else "reply"
    else:
        outcome = "like" if like else "nothing"
    return Got(outcome, like, judged.get("intent") or "", judged.get("label") or "",
               reply["template"] if reply else "")


def ratio(hits: int, total: int) -> tuple[int, int]:
    return (int(hits), int(total))


def macro_f1(pairs: Iterable[tuple[str, str]], classes: tuple[str, ...] = SENTIMENTS) -> float | None:
    pairs = list(pairs)
    if not pairs:
        return None
    f1s = []
    for c in classes:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        fp = sum(1 for t, p in pairs if t != c and p == c)
        fn = sum(1 for t, p in pairs if t == c and p != c)
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return round(sum(f1s) / len(f1s), 3) if f1s else None


def confusion(pairs: list[tuple[str, str]], classes: tuple[str, ...] = INTENTS) -> dict[str, dict[str, int]]:
    """Rows: the label; columns: what taiwa read."""
    c = Counter(pairs)
    return {t: {p: c[(t, p)] for p in classes} for t in classes if any(c[(t, p)] for p in classes)}


def judge(items: list[tuple[dict[str, Any], Got]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """items: (label, what the post got) → (figures, misses). A label has intent, and where the set has them
    problem, reply (reply | like | nothing), sarcasm, sentiment, lang, id."""
    f: dict[str, Any] = {"posts": len(items)}
    misses: dict[str, list[str]] = {}

    def tally(key: str, rows: list[tuple[bool, str]]) -> None:
        f[key] = ratio(sum(ok for ok, _ in rows), len(rows))
        misses[key] = [why for ok, why in rows if not ok]

    def problem(lab: dict[str, Any]) -> bool:
        return bool(lab["problem"]) if "problem" in lab else lab["intent"] == "complaint"

    scored = [(lab, g) for lab, g in items if lab["intent"] != "spam"]
    tally("intent", [(g.intent == lab["intent"], f"{lab['id']}: {g.intent} ≠ {lab['intent']}") for lab, g in items])
    for lang in sorted({lab.get("lang", "en") for lab, _ in items}):
        pick = [(lab, g) for lab, g in items if lab.get("lang", "en") == lang]
        tally(f"intent_{lang}", [(g.intent == lab["intent"], f"{lab['id']}: {g.intent} ≠ {lab['intent']}")
                                 for lab, g in pick])
        f[f"confusion_{lang}"] = confusion([(lab["intent"], g.intent) for lab, g in pick])
        with_sentiment = [(lab["sentiment"], g.sentiment) for lab, g in pick if lab.get("sentiment")]
        if with_sentiment:
            f[f"sentiment_f1_{lang}"] = macro_f1(with_sentiment)
            f[f"sentiment_n_{lang}"] = len(with_sentiment)
    # An apology (a complaint or "negative" draft) to someone who reported no problem.
    tally("no_apology", [(g.outcome != "apology", f"{lab['id']}: apology ({lab['intent']})")
                         for lab, g in scored if not problem(lab)])
    f["apology_no_problem"] = ratio(f["no_apology"][1] - f["no_apology"][0], f["no_apology"][1])
    # Every complaint gets a written draft (a person may still edit it), not a like, not nothing.
    tally("complaints_drafted", [(g.outcome in ("apology", "reply"), f"{lab['id']}: {g.outcome}")
                                 for lab, g in scored if problem(lab)])
    tally("praise_liked", [(g.like, f"{lab['id']}: {g.outcome}") for lab, g in scored
                           if lab["intent"] in ("praise", "campaign") and not lab.get("sarcasm")])
    sarcastic = [(lab, g) for lab, g in items if lab.get("sarcasm")]
    f["sarcasm_liked"] = ratio(sum(g.like for _, g in sarcastic), len(sarcastic))
    misses["sarcasm_liked"] = [lab["id"] for lab, g in sarcastic if g.like]
    f["look"] = ratio(sum(g.outcome == "look" for _, g in items), len(items))
    misses["look"] = [f"{lab['id']}: {lab['intent']}" for lab, g in items if g.outcome == "look"]
    with_reply = [(lab, g) for lab, g in items if lab.get("reply")]
    if with_reply:
        want = {"reply": ("apology", "reply"), "like": ("like",), "nothing": ("nothing",)}
        tally("reply_kind", [(g.outcome in want[lab["reply"]], f"{lab['id']}: {g.outcome} ≠ {lab['reply']}")
                             for lab, g in with_reply])
    return f, misses


def share(pair: tuple[int, int]) -> float | None:
    hits, total = pair
    return hits / total if total else None
