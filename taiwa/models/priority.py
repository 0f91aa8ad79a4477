"""An explainable priority score: what needs a person first.

    score = Σ weight_c × component_c     (components in [0, 1], weights from [priority.weights])

    sentiment  P(negative) from the sentiment model
    intent     complaint 1.0, question 0.7, other 0
    reach      log10(followers + 1) / log10(reach_full_at_followers + 1), capped at 1
    recency    0.5 ** (age_hours / recency_half_life_hours)
    campaign   1 if the post entered a campaign

Spam, reposts and the brand's own posts score 0. Every component is stored beside the score, with reasons
a person can read ("complaint: 'cracked'", "12.3k followers", "3h old").
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

INTENT_VALUE = {"complaint": 1.0, "question": 0.7, "praise": 0.0, "other": 0.0, "spam": 0.0}


@dataclass
class Priority:
    score: float
    components: dict[str, float]
    reasons: list[str] = field(default_factory=list)


def human_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def human_age(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))}m old"
    if hours < 48:
        return f"{round(hours)}h old"
    return f"{round(hours / 24)}d old"


def score(*, negative: float, intent: str, evidence: tuple[str, ...] = (), followers: int,
          created_at: dt.datetime, now: dt.datetime, campaigns: list[str], weights: dict[str, float],
          half_life_hours: float = 24.0, reach_full_at: int = 100_000, ignore: str = "", boost: float = 0.0,
          escalated: bool = False, rule_reasons: list[str] = (), intent_reason: str = "",
          sarcasm_positive: float | None = None) -> Priority:
    """Score one post. `ignore` (a reason such as 'spam' or 'own post') forces the score to 0. Rules add their
    `boost` to the score and their reasons to the why; an escalated post ranks above every other (the inbox sorts
    on escalation first), and says so first in its why. `sarcasm_positive`: the post is a complaint the sentiment
    model read as positive; its P(positive) × the intent head's confidence in "complaint" then counts as negativity
    (a confident sarcasm reads as negative; praise the head half-mistook for a complaint does not jump the queue)."""
    age_h = max(0.0, (now - created_at).total_seconds() / 3600)
    comps = {
        "sentiment": max(0.0, min(1.0, negative + (sarcasm_positive or 0.0))),
        "intent": INTENT_VALUE.get(intent, 0.0),
        "reach": min(1.0, math.log10(max(0, followers) + 1) / math.log10(reach_full_at + 1)),
        "recency": 0.5 ** (age_h / half_life_hours) if half_life_hours > 0 else 1.0,
        "campaign": 1.0 if campaigns else 0.0,
    }
    total = sum(weights.get(k, 0.0) * v for k, v in comps.items()) + boost
    if ignore:
        return Priority(0.0, comps, [f"ignored: {ignore}"])
    reasons = (["escalated"] if escalated else []) + list(rule_reasons)
    if boost:
        reasons.append(f"boost {boost:+.2f}")
    if comps["sentiment"] >= 0.5:
        reasons.append(f"negative {comps['sentiment']:.2f}" + (" (sarcasm)" if sarcasm_positive else ""))
    if intent in ("complaint", "question"):
        reasons.append(intent_reason or (f"{intent}: " + ", ".join(repr(e) for e in evidence[:3]) if evidence
                                         else intent))
    if followers >= 1000:
        reasons.append(f"{human_count(followers)} followers")
    reasons.append(human_age(age_h))
    reasons += [f"#{c}" for c in campaigns]
    return Priority(round(total, 4), comps, reasons)
