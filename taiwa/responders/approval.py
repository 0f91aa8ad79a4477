"""The approval state machine, as people use it. Nothing is sent unless a person approved it.

    pending ──approve──▶ approved ──send──▶ sending ──▶ sent
       │                    │                  ├──────▶ failed ──approve again──▶ approved
       ├──reject──▶ rejected ◀──────────────────┘       └─(crash)─▶ needs_check ──person──▶ sent | approved | rejected
       └──done (no reply needed)──▶ done

Every arrow is Store.transition: a compare-and-set on the state it read, written with an audit row.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..errors import InvalidTransition
from ..store import Store
from .drafts import reply_length


def check_sendable(action: dict[str, Any], text: str) -> None:
    """Refuse an approval the platform would reject: empty text, over the length limit, replies not allowed."""
    if action["kind"] == "reply":
        if not text.strip():
            if action.get("template") == "look":
                raise ValidationError(f"action {action['id']}: taiwa left this post to a person (needs a look) and "
                                      "proposed no words", "write the reply (--text, or a saved reply), or close it "
                                      "with `taiwa done` if nothing is needed")
            raise ValidationError(f"action {action['id']}: the reply is empty", "write the reply with --text")
        length, limit = reply_length(action["platform"], text)
        if length > limit:
            raise ValidationError(
                f"action {action['id']}: the reply is {length} characters as {action['platform']} counts them; "
                f"the limit is {limit}",
                f"shorten it by {length - limit} (URLs count as 23, Japanese characters as 2 on X) and approve "
                f"with --text")
        if not action.get("can_reply", 1):
            raise ValidationError(f"action {action['id']}: the author does not allow replies from us",
                                  "reject it, or like the post instead")


def approve(store: Store, action_id: int, *, actor: str, text: str | None = None,
            version: int | None = None) -> dict[str, Any]:
    """version: the version the person saw (the inbox sends it); a change since then refuses the approval."""
    action = store.action(action_id)
    if action["state"] == "needs_check":
        # The send may have reached the platform: only a person who looked there settles it (resolve_check).
        raise InvalidTransition(
            f"action {action_id} may already be on {action['platform']} (its send did not confirm), so it "
            "cannot be approved again",
            f"look on the platform, then mark it: taiwa check {action_id} --sent, or --not-sent to approve it "
            "again (the inbox: 'It was sent' / 'Not there')")
    final = action["text"] if text is None else text
    check_sendable(action, final)
    fields: dict[str, Any] = {"approved_by": actor, "approved_at": store.stamp()}
    if text is not None:
        fields["text"] = text
    expect = ("pending", "failed")
    return store.transition(action_id, "approved", actor=actor, expect=expect, version=version, **fields)


def reject(store: Store, action_id: int, *, actor: str, reason: str, version: int | None = None) -> dict[str, Any]:
    if not reason.strip():
        raise ValidationError("a rejection needs a reason", 'add --reason "…" (it is kept in the audit log)')
    return store.transition(action_id, "rejected", actor=actor, reason=reason, detail=reason, version=version)


def done(store: Store, action_id: int, *, actor: str, reason: str = "", version: int | None = None
         ) -> dict[str, Any]:
    """Closed with no reply needed (answered elsewhere, nothing to say): not a rejection of a draft, so it does not
    count against the approval rate. The reason is optional and kept in the audit log."""
    why = reason.strip() or "no reply needed"
    return store.transition(action_id, "done", actor=actor, expect=("pending",), reason=why, detail=why,
                            version=version)


def reopen(store: Store, action_id: int, *, actor: str) -> dict[str, Any]:
    """Back to pending: an approval taken back before sending, a rejection or a "done" reconsidered."""
    return store.transition(action_id, "pending", actor=actor, expect=("approved", "rejected", "done"))


def resolve_check(store: Store, action_id: int, *, actor: str, was_sent: bool, platform_ref: str = ""
                  ) -> dict[str, Any]:
    """A person looked on the platform after a crash: the reply is there (sent) or not (approved again)."""
    if was_sent:
        return store.transition(action_id, "sent", actor=actor, expect=("needs_check",), sent_at=store.stamp(),
                                platform_ref=platform_ref, detail="confirmed on the platform by a person")
    return store.transition(action_id, "approved", actor=actor, expect=("needs_check",), approved_by=actor,
                            approved_at=store.stamp(), detail="not on the platform; approved again by a person")
