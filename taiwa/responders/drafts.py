"""Decide what a post wants (reply, like, nothing) and draft it, recalling what the author told us before.

A draft never goes anywhere by itself: it is stored `pending` and waits for a person (see approval.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..models import intent as intents

# Per platform: the most a reply may hold. X weighs characters (most CJK count 2) and counts every URL as 23.
LIMITS = {"x": 280, "instagram": 2200, "mastodon": 500, "bluesky": 300, "replay": 280}
URL = re.compile(r"https?://\S+")
MENTION_OR_TAG = re.compile(r"[@#＃][\w.]+")
X_URL_LENGTH = 23
MASTODON_MENTION = re.compile(r"@(\w+)@[\w.-]+\w")


def x_weighted_length(text: str) -> int:
    """Length as X counts it, by twitter-text's own rules (config v3: URLs with or without a scheme 23, emoji
    sequences 2, CJK 2) through the twitter-text-parser port; a rough count of our own if it cannot be loaded."""
    parse = _twitter_text()
    if parse is not None:
        return parse(text).weightedLength
    n = X_URL_LENGTH * len(URL.findall(text))
    for ch in URL.sub("", text):
        cp = ord(ch)
        light = cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247
        n += 1 if light else 2
    return n


@functools.cache
def _twitter_text():
    try:
        import warnings

        with warnings.catch_warnings():   # it imports pkg_resources, which warns of its own deprecation
            warnings.simplefilter("ignore")
            from twitter_text import parse_tweet
        return parse_tweet
    except ImportError:
        return None


def _graphemes(text: str) -> int:
    import regex

    return len(regex.findall(r"\X", text))


def reply_length(platform: str, text: str) -> tuple[int, int]:
    """(length as the platform counts it, the platform's limit)."""
    limit = LIMITS.get(platform, 280)
    if platform in ("x", "replay"):
        return x_weighted_length(text), limit
    if platform == "mastodon":
        # Mastodon counts grapheme clusters, every URL as 23 and a remote mention by its local part (@user@host).
        return _graphemes(URL.sub("x" * X_URL_LENGTH, MASTODON_MENTION.sub(r"@\1", text))), limit
    if platform == "bluesky":
        return _graphemes(text), limit   # Bluesky counts graphemes (an emoji family is one)
    return len(text), limit


@dataclass
class Decision:
    kinds: list[str]              # "reply", "like"
    template: str = ""            # the template intent for a reply
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def decide(post: dict[str, Any], intent: str, config: Config, campaigns: list[str]) -> Decision:
    """Reply, like, or nothing — first matching rule wins."""
    handle = (post.get("handle") or "").lower()
    if handle in config.brand_handles:
        return Decision([], why="our own post")
    if post.get("is_repost"):
        return Decision([], why="repost")
    if intent == "spam":
        return Decision([], why="spam")
    like = bool(config.get("responder", "like_positive"))
    can_reply = bool(post.get("can_reply", 1))
    label = post.get("label")
    if intent in ("complaint", "question") or label == "negative":
        template = intent if intent in ("complaint", "question") else "negative"
        if not can_reply:
            return Decision([], why="the author does not allow our replies")
        return Decision(["reply"], template=template)
    if label == "positive":
        kinds = ["like"] if like else []
        if config.get("responder", "reply_to_praise") and can_reply:
            kinds.append("reply")
        return Decision(kinds, template="campaign" if campaigns else "praise")
    return Decision([], why="neutral, nothing asked")


# --------------------------------------------------------------------------- memory
def when_phrase(then: dt.datetime, now: dt.datetime, lang: str) -> str:
    days = (now.date() - then.date()).days
    weekday_en = then.strftime("%A")
    if lang == "ja":
        if days <= 0:
            return "本日"
        if days == 1:
            return "昨日"
        if days < 7:
            return "先日"
        if days < 14:
            return "先週"
        return f"{then.month}月{then.day}日に"
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"on {weekday_en}"
    if days < 14:
        return "last week"
    return f"on {then.strftime('%b')} {then.day}"


def find_topic(text: str, config: Config) -> str:
    """The first product word (from [[brands]].products) the text mentions, or ''.

    Mentions and brand names are removed first ("@kettlebird" is not a kettle); Latin words match whole."""
    low = MENTION_OR_TAG.sub(" ", text.lower())
    for brand in config.brands:
        for word in [brand.name, *brand.keywords]:
            low = low.replace(word.lower(), " ")
    for brand in config.brands:
        for product in sorted(brand.products, key=len, reverse=True):
            p = product.lower()
            if p.isascii():
                if re.search(rf"\b{re.escape(p)}s?\b", low):
                    return product
            elif p in low:
                return product
    return ""


def _intent_of(item: dict[str, Any]) -> str:
    # Posts triaged in the same batch have no stored intent yet: work it out the same way.
    return item.get("intent") or intents.detect(item["text"], item.get("label") or "").name


def memory_items(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the draft stores and the inbox shows: the author's earlier posts and what we answered."""
    return [{"post_id": h["id"], "at": h["created_at"], "text": h["text"][:280], "sentiment": h.get("label"),
             "intent": _intent_of(h), "our_reply": h.get("our_reply"), "reply_state": h.get("reply_state")}
            for h in history]


def _is_problem(item: dict[str, Any]) -> bool:
    return _intent_of(item) == "complaint" or item.get("label") == "negative"


def memory_sentence(history: list[dict[str, Any]], now: dt.datetime, lang: str, config: Config,
                    current_intent: str, current_text: str = "") -> str:
    """One sentence recalling the author's history ("Last week you told us about your grinder too, ...").

    For a complaint, the most recent earlier *problem* is recalled (a repeat problem matters most);
    otherwise the most recent earlier post."""
    if not history:
        return ""
    repeat = current_intent in ("complaint", "negative")
    last = next((h for h in history if _is_problem(h)), history[0]) if repeat else history[0]
    when = when_phrase(dt.datetime.fromisoformat(last["created_at"]), now, lang)
    topic = find_topic(last["text"], config)
    same_topic = bool(topic) and topic == find_topic(current_text, config)
    earlier = _intent_of(last)
    problem = _is_problem(last)
    if repeat and not problem:
        # A complaint after friendly posts: recall the kind words, never chit-chat.
        if last.get("label") != "positive":
            return ""
        return f"{when}は温かいお言葉をいただいたのに、申し訳ありません。" if lang == "ja" else \
            f"You had kind words for us {when}, so we're sorry to let you down now. "
    if lang == "ja":
        about = f"{topic}の件" if topic else "お話しいただいた件"
        if problem and repeat and not same_topic and topic:
            return f"{when}の{about}に続き、またご不便をおかけして申し訳ありません。"
        if problem and repeat:
            return f"{when}ご連絡いただいた{about}に続き、重ねてご不便をおかけしております。"
        if problem:
            return f"{when}の{about}、その後いかがでしょうか。"
        if earlier == "question":
            return f"{when}のご質問（{about}）もありがとうございました。"
        if last.get("label") == "positive":
            return f"{when}も温かいお言葉をありがとうございました。"
        return f"{when}も投稿いただきありがとうございました。"
    about = f"your {topic}" if topic else "a problem"
    when_cap = when[0].upper() + when[1:]
    if problem and repeat and same_topic:
        return f"{when_cap} you told us about {about} too, and we're sorry it's still not right. "
    if problem and repeat and topic:
        return f"{when_cap} you also had trouble with {about}; we're sorry to let you down twice. "
    if problem and repeat:
        return f"{when_cap} you told us about a problem too, and we're sorry it's happening again. "
    if problem:
        return f"Hope things are better since {about} trouble {when}. " if topic else \
            f"Hope things are better since you told us about a problem {when}. "
    if earlier == "question":
        return f"Thanks for your question {when} too. "
    if last.get("label") == "positive":
        return f"Thanks for the kind words {when} too! "
    return f"Good to hear from you again (last time {when}). "


OFFER = re.compile(r"\b(interested|would you like|want us to|shall we|like to try)\b|いかがですか|ご興味|よろしければ",
                   re.I)


def asks(text: str, template: str) -> str:
    """What a reply asks the customer, for follow-ups: 'offer' (yes / later / no), 'resolution' (a complaint we
    answered: check in if they go quiet), or ''."""
    if OFFER.search(text):
        return "offer"
    return "resolution" if template in ("complaint", "negative") else ""


def render(config: Config, template: str, lang: str, *, post: dict[str, Any], memory: str, campaign: str = "",
           brand: str = "") -> str:
    text_for_lang = config.templates[template].get(lang) or config.templates[template]["en"]
    handle = post.get("handle") or ""
    display = post.get("author_name") or ""
    # A display name that is just the handle again reads better as the handle ("Hi @george_p").
    if not display or display.lower().lstrip("@") == handle.lower():
        display = handle if lang == "ja" else f"@{handle}"
    fields = {"name": display,
              "handle": f"@{post.get('handle')}", "brand": brand or (config.brands[0].name if config.brands else ""),
              "memory": memory, "topic": find_topic(post.get("text", ""), config), "campaign": campaign}
    text = text_for_lang.format(**fields)
    return " ".join(text.split()) if lang != "ja" else text.replace("  ", " ").strip()
