"""Senders: the only code that talks to a platform on the brand's behalf, and only for approved actions.

At most once: an action is moved `approved → sending` (committed) *before* the platform call, and
`sending → sent` with the platform's id after. A sender that dies in between leaves `sending`; `recover()`
moves such actions to `needs_check`, where only a person can decide. Nothing re-sends them automatically.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from .. import clock as clock_mod
from ..clock import Clock
from ..errors import InvalidTransition, NotFound, SendError, SendUncertain, TaiwaError
from ..store import Store, now_iso

SENDING_LEASE = dt.timedelta(minutes=10)


class Sender(Protocol):
    def send(self, action: dict[str, Any]) -> str:
        """Perform the action on the platform; return the platform's id for it. Raise SendError if refused."""


class OutboxSender:
    """For replayed posts: approved replies and likes are appended to a JSONL outbox a person can act on."""

    def __init__(self, path: str | Path, *, note: str = "", clock: Clock = clock_mod.system):
        self.path = Path(path)
        self.note = note   # e.g. "instagram: by hand" — the platform cannot take it from us
        self.clock = clock

    def send(self, action: dict[str, Any]) -> str:
        ref = f"outbox:{action['id']}" + (":by-hand" if self.note else "")
        record = {"ref": ref, "action_id": action["id"], "kind": action["kind"], "platform": action["platform"],
                  "in_reply_to": action["platform_id"], "to": action["handle"], "url": action.get("url", ""),
                  "text": action["text"] if action["kind"] == "reply" else "", "approved_by": action["approved_by"],
                  "written_at": now_iso(self.clock()), **({"note": self.note} if self.note else {})}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutboxError(self.path, e) from None
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
                os.fsync(fd)
            except OSError as e:
                # Whole lines or nothing: a torn line would glue itself to the next record.
                try:
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                raise OutboxError(self.path, e) from None
        finally:
            os.close(fd)
        return ref


class OutboxError(TaiwaError):
    """The outbox file could not be written here (disk full, permissions): nothing left this machine."""

    def __init__(self, path: Path, e: OSError):
        super().__init__(f"the outbox file {path} could not be written on this machine ({e.strerror or e}); "
                         "nothing was sent and the file was left as it was",
                         "free disk space or fix the file's permissions, then approve it again")


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    recovered: int = 0
    skipped: int = 0        # no sender for the platform now (it waits, approved)
    uncertain: int = 0
    taken: int = 0          # another sender (the daemon, another person) claimed it first: theirs to send
    left: int = 0           # still approved after this run (no sender yet, or over `limit`)
    problems: list[str] = field(default_factory=list)   # one line per action that failed or needs a check

    def summary(self) -> str:
        parts = [f"sent {self.sent}", f"failed {self.failed}", f"uncertain (needs_check) {self.uncertain}",
                 f"waiting for a sender {self.skipped}", f"left approved {self.left}"]
        if self.taken:
            parts.append(f"already being sent by another sender {self.taken}")
        if self.recovered:
            parts.append(f"moved to needs_check {self.recovered}")
        return ", ".join(parts)


def recover(store: Store, *, now: dt.datetime | None = None, lease: dt.timedelta = SENDING_LEASE,
            actor: str = "taiwa") -> int:
    """Actions stuck in `sending` longer than the lease → `needs_check` (a person decides; never re-sent)."""
    cutoff = (now or store.clock()) - lease
    moved = 0
    for action_id in store.stale_sending(cutoff):
        try:
            store.transition(action_id, "needs_check", actor=actor, expect=("sending",),
                             detail="the sender stopped between claiming and confirming; check the platform")
            moved += 1
        except InvalidTransition:
            pass   # another sender settled it meanwhile
    return moved


def _never_connected(e: BaseException) -> bool:
    """True when the error (or what caused it) says no connection was ever made: nothing can have been posted.
    Anything else may have reached the platform, so it goes to needs_check, never to a silent retry."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (ConnectionRefusedError, socket.gaierror)) or type(e).__name__ in _NO_CONNECTION:
            return True
        e = e.__cause__ or e.__context__
    return False


# Client libraries' names for "could not connect" (httpx, urllib3, requests): raised before any byte is sent.
_NO_CONNECTION = {"ConnectError", "NewConnectionError", "NameResolutionError", "ConnectTimeout",
                  "ConnectTimeoutError"}


def _local_file_error(e: BaseException) -> bool:
    """The outbox file could not be written (disk full, permissions): nothing left this machine."""
    return type(e) is OSError or isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError))


def send_approved(store: Store, sender_for: Callable[[dict[str, Any]], Sender | None], *, actor: str = "taiwa",
                  limit: int | None = None, now: dt.datetime | None = None) -> SendReport:
    """Send every approved action, each at most once, in priority order (escalated first, then by score). One
    action's failure (a refused post, an unreachable platform, a bug in one sender) stays that action's: it is
    marked and reported, and the rest go on. `limit` caps one run on purpose (the report says how many are left);
    by default every approved action is tried."""
    report = SendReport(recovered=recover(store, now=now))
    queue = store.actions_in_state("approved", by_priority=True)
    for row in queue if limit is None else queue[:limit]:
        try:
            action = store.action(row["id"])
        except NotFound:
            continue   # erased (taiwa forget) since the list was read
        try:
            sender = sender_for(action)
        except Exception as e:  # noqa: BLE001 - a sender that cannot even be chosen must not stop the others
            report.skipped += 1
            report.problems.append(f"#{action['id']} ({action['platform']}): no sender: {e}")
            continue
        if sender is None:
            report.skipped += 1
            continue
        try:
            claimed = store.transition(action["id"], "sending", actor=actor, expect=("approved",),
                                       sending_since=store.stamp(now))
        except InvalidTransition:
            report.taken += 1   # the daemon or a teammate claimed it between our read and our claim
            continue
        try:
            ref = sender.send(claimed)
        except SendUncertain as e:
            _settle(store, action["id"], "needs_check", actor, report, reason=str(e),
                    detail="the platform did not answer clearly; a person must look before any resend")
            continue
        except (SendError, TaiwaError) as e:
            _settle(store, action["id"], "failed", actor, report, reason=str(e))
            continue
        except Exception as e:  # noqa: BLE001 - unreachable platform, client-library bug: this action only
            why = f"{type(e).__name__}: {e}"
            if _never_connected(e) or _local_file_error(e):
                _settle(store, action["id"], "failed", actor, report,
                        reason=f"{action['platform']} could not be reached ({why}); nothing was posted")
            else:
                _settle(store, action["id"], "needs_check", actor, report, reason=why,
                        detail="the sender failed after the call may have reached the platform; check it")
            continue
        store.transition(action["id"], "sent", actor=actor, expect=("sending",), sent_at=store.stamp(now),
                         platform_ref=ref)
        report.sent += 1
    report.left = len(store.actions_in_state("approved"))
    return report


def _settle(store: Store, action_id: int, to: str, actor: str, report: SendReport, *, reason: str,
            detail: str = "") -> None:
    store.transition(action_id, to, actor=actor, expect=("sending",), reason=reason, detail=detail)
    if to == "failed":
        report.failed += 1
    else:
        report.uncertain += 1
    report.problems.append(f"#{action_id}: {to}: {reason.splitlines()[0]}")


def router(config, store: Store) -> tuple[Callable[[dict[str, Any]], Sender | None], dict[str, str]]:
    """Which sender takes an action: replayed posts → the outbox file; live X posts → X (built on first use);
    Instagram comment replies → the Graph API when a token is set; other Instagram actions → the outbox,
    marked "by hand".

    Returns the chooser and a dict that collects, per platform, why its sender could not be built (those
    actions stay approved and wait)."""
    outbox = OutboxSender(config.outbox, clock=store.clock)
    by_hand = OutboxSender(config.outbox, note="instagram: by hand", clock=store.clock)
    live: dict[str, Sender] = {}
    problems: dict[str, str] = {}

    def built(platform: str, build: Callable[[], Sender], when_missing: str = "") -> Sender | None:
        """The platform's sender, built on first use; a failure to build is remembered in `problems`."""
        if platform not in live and platform not in problems:
            try:
                live[platform] = build()
            except TaiwaError as e:
                problems[platform] = str(e) + when_missing
            except Exception as e:  # noqa: BLE001 - e.g. the platform is unreachable while signing in
                detail = f"{type(e).__name__}: {e}" if str(e).strip() else type(e).__name__
                problems[platform] = f"{platform} could not be reached ({detail})" + when_missing
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
