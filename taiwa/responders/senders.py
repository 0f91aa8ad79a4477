"""Senders: the only code that talks to a platform on the brand's behalf, and only for approved actions.

At most once: an action is moved `approved → sending` (committed) *before* the platform call, and
`sending → sent` with the platform's id after. A sender that dies in between leaves `sending`; `recover()`
moves such actions to `needs_check`, where only a person can decide. Nothing re-sends them automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from ..errors import SendError, SendUncertain, TaiwaError
from ..store import Store, now_iso

SENDING_LEASE = dt.timedelta(minutes=10)


class Sender(Protocol):
    def send(self, action: dict[str, Any]) -> str:
        """Perform the action on the platform; return the platform's id for it. Raise SendError if refused."""


class OutboxSender:
    """For replayed posts: approved replies and likes are appended to a JSONL outbox a person can act on."""

    def __init__(self, path: str | Path, *, note: str = ""):
        self.path = Path(path)
        self.note = note   # e.g. "instagram: by hand" — the platform cannot take it from us

    def send(self, action: dict[str, Any]) -> str:
        ref = f"outbox:{action['id']}" + (":by-hand" if self.note else "")
        record = {"ref": ref, "action_id": action["id"], "kind": action["kind"], "platform": action["platform"],
                  "in_reply_to": action["platform_id"], "to": action["handle"], "url": action.get("url", ""),
                  "text": action["text"] if action["kind"] == "reply" else "", "approved_by": action["approved_by"],
                  "written_at": now_iso(), **({"note": self.note} if self.note else {})}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return ref


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    recovered: int = 0
    skipped: int = 0
    uncertain: int = 0


def recover(store: Store, *, now: dt.datetime | None = None, lease: dt.timedelta = SENDING_LEASE,
            actor: str = "taiwa") -> int:
    """Actions stuck in `sending` longer than the lease → `needs_check` (a person decides; never re-sent)."""
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - lease
    ids = store.stale_sending(cutoff)
    for action_id in ids:
        store.transition(action_id, "needs_check", actor=actor, expect=("sending",),
                         detail="the sender stopped between claiming and confirming; check the platform")
    return len(ids)


def send_approved(store: Store, sender_for: Callable[[dict[str, Any]], Sender | None], *, actor: str = "taiwa",
                  limit: int = 100, now: dt.datetime | None = None) -> SendReport:
    """Send every approved action, each at most once."""
    report = SendReport(recovered=recover(store, now=now))
    for row in store.actions_in_state("approved")[:limit]:
        action = store.action(row["id"])
        sender = sender_for(action)
        if sender is None:
            report.skipped += 1
            continue
        claimed = store.transition(action["id"], "sending", actor=actor, expect=("approved",),
                                   sending_since=now_iso(now))
        try:
            ref = sender.send(claimed)
        except SendUncertain as e:
            store.transition(action["id"], "needs_check", actor=actor, expect=("sending",), reason=str(e),
                             detail="the platform did not answer clearly; a person must look before any resend")
            report.uncertain += 1
            continue
        except (SendError, TaiwaError, OSError) as e:
            store.transition(action["id"], "failed", actor=actor, expect=("sending",), reason=str(e))
            report.failed += 1
            continue
        store.transition(action["id"], "sent", actor=actor, expect=("sending",), sent_at=now_iso(now),
                         platform_ref=ref)
        report.sent += 1
    return report


def router(config, store: Store) -> tuple[Callable[[dict[str, Any]], Sender | None], dict[str, str]]:
    """Which sender takes an action: replayed posts → the outbox file; live X posts → X (built on first use);
    Instagram comment replies → the Graph API when a token is set; other Instagram actions → the outbox,
    marked "by hand".

    Returns the chooser and a dict that collects, per platform, why its sender could not be built (those
    actions stay approved and wait)."""
    outbox = OutboxSender(config.outbox)
    by_hand = OutboxSender(config.outbox, note="instagram: by hand")
    live: dict[str, Sender] = {}
    problems: dict[str, str] = {}

    def built(platform: str, build: Callable[[], Sender], when_missing: str = "") -> Sender | None:
        """The platform's sender, built on first use; a failure to build is remembered in `problems`."""
        if platform not in live and platform not in problems:
            try:
                live[platform] = build()
            except TaiwaError as e:
                problems[platform] = str(e) + when_missing
        return live.get(platform)

    def sender_for(action: dict[str, Any]) -> Sender | None:
        if action["source"].startswith("replay"):
            return outbox
        platform = action["platform"]
        if platform == "x":
            from .x_sender import sender_from_config as x_sender

            return built("x", lambda: x_sender(config, store))
        if platform == "mastodon":
            from .mastodon_sender import sender_from_config as md_sender

            return built("mastodon", lambda: md_sender(config))
        if platform == "bluesky":
            from .bluesky_sender import sender_from_config as bs_sender

            return built("bluesky", lambda: bs_sender(config, store))
        if platform == "instagram":
            from .instagram_sender import graph_can_send, sender_from_config as ig_sender

            graph = built("instagram", lambda: ig_sender(config),
                          " — approved replies go to the outbox, marked by hand") if graph_can_send(action) else None
            return graph or by_hand
        return None

    return sender_for, problems
