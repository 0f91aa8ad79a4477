"""The reply policy: what a post gets (a reply, a like, "needs a look", or nothing), decided on evidence a person
can read, with the costly mistakes ruled out first.

Mistakes do not cost the same. An apology to a happy customer, a heart under a sarcastic complaint and a draft
that claims a problem nobody reported each do more harm than leaving a post to a person. So:

- an apology (a complaint or "negative" draft) needs a sign of a problem in the post itself: problem words, a
  clearly negative tone, or sarcasm with a grievance. The intent head alone never makes one; when it reads a
  complaint that nothing in the post shows, the post waits as "needs a look", with the reasons;
- praise and campaign entries are people to thank: a proposed like (never under sarcasm);
- a question gets a reply (the knowledge base's answer, or a promise to find out);
- a strongly negative post addressed to the brand that the head does not read as a complaint, and a post the
  head is torn about between a complaint and praise, wait as "needs a look";
- everything else (news, chatter, other people's conversations) gets nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..models import intent as intents

NEGATIVE = 0.6        # a tone this negative counts as a sign of a problem
STRONG_NEGATIVE = 0.8  # … and this negative is enough on its own to answer a complaint with an apology
SURE = 0.8            # the intent head this sure of a complaint, with problem words: an apology
LOOK_NEGATIVE = 0.7   # a post addressed to the brand this negative, not read as a complaint: a person's look
POSITIVE = 0.6        # happy enough to thank with a like
TORN = 0.25           # the head's second choice this close to its first (complaint vs praise): a person decides


@dataclass
class Decision:
    kinds: list[str]                       # "reply", "like"
    template: str = ""                     # complaint | question | negative | praise | campaign | look
    why: str = ""                          # why nothing (our own post, a repost, spam, …)
    unsure: list[str] = field(default_factory=list)   # "needs a look": the reasons, in words


def problem_signs(post: dict[str, Any], it: intents.Intent) -> list[str]:
    """What in the post shows a problem, in words a person can check."""
    signs = []
    words = intents.evidence_for("complaint", post.get("text") or "")
    if words:
        signs.append("problem words " + ", ".join(repr(w) for w in words[:3]))
    negative = float(post.get("negative") or 0.0)
    if negative >= NEGATIVE:
        signs.append(f"negative tone {negative:.2f}")
    if it.sarcasm and (words or it.evidence):
        signs.append("sarcasm with a grievance")
    return signs


def addressed(post: dict[str, Any], config: Config) -> bool:
    """Whether the post speaks to the brand: it mentions one of its accounts or names it."""
    raw = post.get("mentions") or "[]"
    mentions = {m.lower().lstrip("@") for m in (json.loads(raw) if isinstance(raw, str) else raw)}
    text = (post.get("text") or "").lower()
    handles = config.brand_handles
    return bool(mentions & handles) or any(f"@{h}" in text for h in handles) or any(
        k.lower() in text for b in config.brands for k in (b.name, *b.keywords) if k)


def decide(post: dict[str, Any], it: intents.Intent, config: Config, campaigns: list[str]) -> Decision:
    handle = (post.get("handle") or "").lower()
    if handle in config.brand_handles:
        return Decision([], why="our own post")
    if post.get("is_repost"):
        return Decision([], why="repost")
    if it.name == "spam":
        return Decision([], why="spam")
    can_reply = bool(post.get("can_reply", 1))
    like_ok = bool(config.get("responder", "like_positive"))
    signs = problem_signs(post, it)
    probs = it.probs or {}

    def reply(template: str) -> Decision:
        if not can_reply:
            return Decision([], why="the author does not allow our replies")
        return Decision(["reply"], template=template)

    def look(reasons: list[str]) -> Decision:
        if not can_reply:
            return Decision([], why="the author does not allow our replies")
        return Decision(["reply"], template="look", unsure=reasons)

    words = intents.evidence_for("complaint", post.get("text") or "")
    negative = float(post.get("negative") or 0.0)
    sure = float(probs.get("complaint", it.confidence or 0.0))
    if it.name == "complaint":
        # Two signs that agree make an apology; one alone leaves it to a person.
        if (words and (negative >= 0.4 or sure >= 0.5)) or (sure >= 0.6 and negative >= NEGATIVE) or \
                negative >= STRONG_NEGATIVE or (it.sarcasm and (words or it.evidence)):
            return reply("complaint")
        if signs:
            return look([f"may be a complaint ({sure:.2f}), but only one sign of a problem: " + "; ".join(signs)])
        return look([f"read as a complaint ({sure:.2f}) but nothing in the post shows a problem "
                     "(no problem words, the tone is not negative): reply, like or close it"])
    if it.name == "question":
        return reply("question")
    positive = float(post.get("positive") or 0.0)
    if it.name in ("praise", "campaign") or campaigns:
        torn = probs.get("complaint", 0.0)
        marks = [m.group(0) for m in intents.SARCASM.finditer(post.get("text") or "")]
        if it.sarcasm or (marks and (words or negative >= 0.3)):
            # Praise words with a grievance beside them: sarcasm. Never a like.
            if words or it.evidence:
                return reply("complaint")
            return look([f"praise words that may be sarcasm ({', '.join(repr(m) for m in marks[:2])}), "
                         f"tone {negative:.2f} negative"])
        if words and negative >= 0.5:
            return reply("complaint")   # problem words and a negative tone agree, whatever the head says
        if signs and (torn >= TORN or negative >= NEGATIVE):
            return look([f"praise or a complaint? the head gives complaint {torn:.2f}; "
                         + "; ".join(signs)])
        if not campaigns and it.name != "campaign" and not addressed(post, config):
            return Decision([], why="praise of something else, not said to the brand")
        kinds = ["like"] if like_ok else []
        if config.get("responder", "reply_to_praise") and can_reply:
            kinds.append("reply")
        return Decision(kinds, template="campaign" if campaigns else "praise",
                        why="" if kinds else "likes are turned off")
    # other
    if words and addressed(post, config):
        if negative >= 0.4 or probs.get("complaint", 0.0) >= 0.3:
            return reply("complaint")
        return look([f"problem words ({', '.join(repr(w) for w in words[:3])}) in a post to the brand that was "
                     "not read as a complaint"])
    if negative >= LOOK_NEGATIVE and addressed(post, config):
        return look([f"negative ({negative:.2f}) and addressed to the brand, but not read as a complaint"
                     + (": " + "; ".join(signs) if signs else "")])
    if positive >= POSITIVE and like_ok and addressed(post, config):
        return Decision(["like"], template="praise")
    return Decision([], why="nothing asked")
