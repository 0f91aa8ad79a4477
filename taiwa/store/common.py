"""What every part of the store shares: the approval states, time stamps, JSON helpers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

# One encoder for every row: json.dumps with non-default options builds a new encoder per call (slow in bulk).
_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode

# The approval state machine. Every change goes through Store.transition (compare-and-set + audit row).
STATES = ("pending", "approved", "rejected", "sending", "sent", "failed", "needs_check", "done")
TRANSITIONS: dict[str, set[str]] = {
    "pending": {"approved", "rejected", "done"},
    "done": {"pending"},                      # closed with no reply needed; can be reopened
    "approved": {"sending", "rejected", "pending"},
    "rejected": {"pending"},
    "sending": {"sent", "failed", "needs_check"},
    "failed": {"approved", "rejected"},
    # A person looked at the platform: it was sent after all, or it was not and may be approved again.
    "needs_check": {"sent", "approved", "rejected"},
    "sent": set(),
}
OPEN_STATES = ("pending", "approved", "failed", "needs_check")
# What waits for a person (the inbox's default view); approved-but-unsent has a view of its own.
WAITING_STATES = ("pending", "failed", "needs_check")
# Team roles, each allowed everything the ones before it are.
ROLES = ("viewer", "responder", "approver", "admin")
SESSION_HOURS = 12


def now_iso(t: dt.datetime) -> str:
    """An instant as stored: UTC, to the second. The time itself comes from the store's clock (Store.stamp)."""
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def parse_iso(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def _raw_json(raw: Any) -> str:
    """The platform's record as JSON text; a lone surrogate somewhere in it is kept escaped (\\ud800), since
    SQLite only takes valid UTF-8."""
    text = _to_json(raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(raw, ensure_ascii=True, default=str)
    return text


def _split_problem(problem: str) -> tuple[str, str]:
    location, _, reason = problem.partition(": ")
    return (location, reason) if reason else ("", problem)
