"""Team metrics computed from what the store returns: time to first response (median, p90), overall and per group.
`taiwa status` and the inbox's metrics page both use these."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


TIERS = ("escalated", "complaint", "question", "other")


def tier(escalated: Any, intent: str | None) -> str:
    """The SLA tier of an item: escalated first, then by intent."""
    if escalated:
        return "escalated"
    return intent if intent in ("complaint", "question") else "other"


def response_metrics(rows: list[dict[str, Any]], sla_hours: dict[str, float] | None = None) -> dict[str, Any]:
    """Time to first response (hours) overall, per platform and per sentiment: count, median, p90; with SLA
    targets, the share answered within target per tier and overall."""
    def summary(hours: list[float]) -> dict[str, Any]:
        return {"n": len(hours), "median": statistics.median(hours), "p90": percentile(hours, 0.9)}

    hours = [(dt.datetime.fromisoformat(r["first_sent"]) - dt.datetime.fromisoformat(r["created_at"]))
             .total_seconds() / 3600 for r in rows]
    out: dict[str, Any] = {"overall": summary(hours) if hours else None, "platform": {}, "sentiment": {},
                           "hours": hours}
    for key, field in (("platform", "platform"), ("sentiment", "label")):
        groups: dict[str, list[float]] = {}
        for r, h in zip(rows, hours):
            groups.setdefault(r[field] or "unclassified", []).append(h)
        out[key] = {k: summary(v) for k, v in sorted(groups.items())}
    if sla_hours:
        met: dict[str, list[bool]] = {t: [] for t in TIERS}
        for r, h in zip(rows, hours):
            t = tier(r.get("escalated"), r.get("intent"))
            met[t].append(h <= sla_hours[t])
        out["sla"] = {t: {"target_hours": sla_hours[t], "n": len(v), "within": sum(v),
                          "share": sum(v) / len(v) if v else None} for t, v in met.items()}
        every = [x for v in met.values() for x in v]
        out["sla_overall"] = sum(every) / len(every) if every else None
    return out
