"""What a draft remembers about the customer: the earlier post that mattered, named right, and whether we settled it.

Only the customer's own earlier posts that mattered are recalled — a problem, a question, or praise, each only when
the signs agree (see kind_of) — across every account linked to them. Never a repost or a retweet (of our giveaway or anyone
else's), never chit-chat, never spam. The earlier post is named by the product it mentions ("your grinder") or
its topic ("the delivery problem"); whether it was settled is read from the store: our reply went out (and, better,
they spoke again after it or its follow-up closed) or it did not. The wording follows: a settled problem is not an
open wound, an open one is not forgotten, praise is remembered as praise ("You loved the cold brew last week").

For a complaint the most recent earlier problem is recalled (the same topic first), else praise; for a question or
praise, the most recent problem, else what else mattered.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

from ..models import intent as intents

RETWEET = re.compile(r"^\s*(?:RT|QT)\s+@\w+", re.I)


@dataclass
class Recall:
    post_id: int
    kind: str            # problem | question | praise
    about: str           # the product or topic it was about ('' when neither is known)
    settled: bool        # our reply to it went out
    status: str          # open | replied | answered (they spoke again after our reply, or its follow-up closed)
    at: str
    sentence: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(item: dict[str, Any]) -> str | None:
    """problem / question / praise for an earlier post that mattered; None for the rest.

    A draft says it to the customer's face, so a problem or praise needs two signs that agree: a complaint that
    the sentiment model reads as negative or that has complaint words (or a negative post that asks nothing),
    praise that reads as positive. Anything less is left unsaid."""
    if item.get("is_repost") or RETWEET.match(item.get("text") or ""):
        return None
    text, label = item.get("text") or "", item.get("label") or ""
    intent = item.get("intent") or intents.detect(text, label).name
    if intent == "complaint" and (label == "negative" or intents.evidence_for("complaint", text)):
        return "problem"
    if label == "negative" and intent not in ("praise", "question", "spam", "complaint"):
        return "problem"
    if intent == "question":
        return "question"
    if intent == "praise" and label == "positive":
        return "praise"
    return None


def status_of(item: dict[str, Any], later: list[dict[str, Any]]) -> str:
    if not item.get("replied_at"):
        return "open"
    if item.get("followup_state") == "closed" or any(p["created_at"] > item["replied_at"] for p in later):
        return "answered"
    return "replied"


def choose(history: list[dict[str, Any]], current_intent: str, current_topic: str = ""
           ) -> tuple[dict[str, Any], str] | None:
    """The earlier post to recall (newest first in `history`) and its kind, or None."""
    mattered = [(h, k) for h in history if (k := kind_of(h))]
    if not mattered:
        return None

    def first(kind: str, same_topic: bool = False):
        return next(((h, k) for h, k in mattered if k == kind and (not same_topic or (
            current_topic and h.get("topic") == current_topic))), None)

    if current_intent in ("complaint", "negative"):
        order = [first("problem", True), first("problem"), first("praise")]
    else:
        order = [first("problem"), first("question"), first("praise")]
    return next((o for o in order if o), None)


def when_phrase(then: dt.datetime, now: dt.datetime, lang: str) -> str:
    days = (now.date() - then.date()).days
    if lang == "ja":
        if days <= 0:
            return "本日"
        if days == 1:
            return "昨日"
        if days < 7:
            return "先日"
        if days < 14:
            return "先週"
        return f"{then.month}月{then.day}日"
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"on {then.strftime('%A')}"
    if days < 14:
        return "last week"
    return f"on {then.strftime('%b')} {then.day}"


def recall(history: list[dict[str, Any]], *, now: dt.datetime, lang: str, current_intent: str,
           current_topic: str = "", product_of=lambda text: "") -> Recall | None:
    """The sentence that recalls the customer's history for this draft, with what it recalled; None when nothing
    earlier mattered. `history` is newest first (Store.author_history); `product_of` finds a product word."""
    picked = choose(history, current_intent, current_topic)
    if picked is None:
        return None
    item, kind = picked
    later = [h for h in history if h["created_at"] > item["created_at"]]
    status = status_of(item, later)
    product = product_of(item.get("text") or "")
    about = product or item.get("topic") or ""
    r = Recall(int(item["id"]), kind, about, status != "open", status, item["created_at"])
    when = when_phrase(dt.datetime.fromisoformat(item["created_at"]), now, lang)
    r.sentence = (_japanese if lang == "ja" else _english)(r, when, current_intent, bool(product),
                                                           same_topic=bool(current_topic) and
                                                           item.get("topic") == current_topic)
    return r


def _english(r: Recall, when: str, current: str, is_product: bool, *, same_topic: bool) -> str:
    When = when[0].upper() + when[1:]
    thing = (f"your {r.about}" if is_product else f"the {r.about} problem") if r.about else ""
    complaint = current in ("complaint", "negative")
    if r.kind == "problem":
        if complaint:
            if r.status == "open":
                if same_topic or not thing:
                    return (f"{When} you told us about {thing or 'a problem'} too, and we're sorry it's still not "
                            "right. ")
                return f"{When} you also had trouble with {thing}; we're sorry to let you down twice. "
            return f"We looked into {thing or 'your last problem'} {when}, and we're sorry to let you down again. "
        if r.status == "open":
            return f"We haven't forgotten {thing or 'the problem you told us about'} {when}. "
        since = when[3:] if when.startswith("on ") else when
        return (f"Hope things have been fine since {thing} {when}! " if thing else
                f"Hope things have been fine since {since}! ") if current == "question" else \
            f"Glad to hear from you after {thing or 'the trouble'} {when}! "
    if r.kind == "praise":
        liked = (f"your {r.about}" if is_product else f"the {r.about}") if r.about else ""
        if complaint:
            return (f"You loved {liked} {when}, so we're sorry to let you down now. " if liked else
                    f"You had kind words for us {when}, so we're sorry to let you down now. ")
        return f"Glad you enjoyed {liked} {when} too! " if liked else f"Thanks for the kind words {when} too! "
    return f"Thanks for your question {when} too. "


def _japanese(r: Recall, when: str, current: str, is_product: bool, *, same_topic: bool) -> str:
    about = f"{r.about}の件" if r.about else "お知らせいただいた件"
    complaint = current in ("complaint", "negative")
    if r.kind == "problem":
        if complaint:
            if r.status == "open":
                return f"{when}ご連絡いただいた{about}に続き、重ねてご不便をおかけしております。"
            return f"{when}の{about}に続き、またご迷惑をおかけして申し訳ありません。"
        if r.status == "open":
            return f"{when}の{about}も引き続き確認しております。"
        return f"{when}の{about}、その後いかがでしょうか。"
    if r.kind == "praise":
        if complaint:
            return (f"{when}は{r.about}を気に入っていただけたのに、申し訳ありません。" if r.about else
                    f"{when}は温かいお言葉をいただいたのに、申し訳ありません。")
        return f"{when}も温かいお言葉をありがとうございました。"
    return f"{when}のご質問もありがとうございました。"


def conversation_note(earlier: list[dict[str, Any]], *, lang: str, current_topic: str = "", current_text: str = "",
                      product_of=lambda text: "") -> str:
    """For a draft that also answers the customer's earlier posts: one sentence that their earlier problem, if it
    was about something else, is not forgotten ("We haven't forgotten your grinder either.")."""
    now_about = product_of(current_text) or current_topic
    for item in earlier:                      # newest first
        if kind_of(item) != "problem":
            continue
        product = product_of(item.get("text") or "")
        about = product or item.get("topic") or ""
        if not about or about == now_about:
            continue
        if lang == "ja":
            return f"{about}の件も引き続き確認しております。"
        return f"We haven't forgotten your {about} either. " if product else \
            f"We haven't forgotten the {about} problem either. "
    return ""
