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
from ..names import greeting_name

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


# --------------------------------------------------------------------------- composing a reply
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
    """What the draft stores and the inbox shows: the customer's earlier posts and what we answered."""
    from .memory import kind_of

    return [{"post_id": h["id"], "at": h["created_at"], "text": h["text"][:280], "sentiment": h.get("label"),
             "intent": _intent_of(h), "kind": kind_of(h) or "", "topic": h.get("topic") or "",
             "our_reply": h.get("our_reply"), "reply_state": h.get("reply_state"), "platform": h.get("platform")}
            for h in history]


@dataclass
class Draft:
    """A reply as taiwa drafted it, with what it stands on (all stored with the action and shown in the inbox)."""

    text: str
    template: str                    # e.g. "complaint.en"
    lang: str
    ask: str = ""                    # "topic NAME" | "generic" | ""
    answer: str = ""                 # the [[answers]] entry used
    answer_score: float | None = None
    needs_answer: bool = False       # a question no answer fits: a person must add it
    recalled: dict[str, Any] | None = None
    backend: str = "templates"


def reply_language(config: Config, template: str, post_lang: str, answer: Any = None) -> str:
    """The post's language when a template (and the answer, if any) exists in it; otherwise English. Japanese only
    for Japanese: Korean, Chinese or Russian posts get English, never the Japanese template."""
    has_template = bool(config.templates.get(template, {}).get(post_lang))
    has_answer = answer is None or bool(answer.text(post_lang))
    return post_lang if has_template and has_answer else "en"


def compose(config: Config, template: str, *, post: dict[str, Any], topic: Any = None, answer: Any = None,
            answer_score: float | None = None, history: list[dict[str, Any]] = (), now: dt.datetime | None = None,
            current_intent: str = "", campaign: str = "", earlier: list[dict[str, Any]] = ()) -> Draft:
    """Draft one reply: the template in the reply's language, the topic's ask for a complaint (a generic one only
    without a topic), the knowledge base's answer for a question (or, without one, a promise to find out and the
    action marked "needs an answer" — never a stub), what the customer told us before, and (for a draft that also
    answers their earlier posts, `earlier`) that an earlier problem about something else is not forgotten."""
    from .memory import conversation_note, recall

    post_lang = intents.language(post.get("text", ""), post.get("lang", ""))
    lang = reply_language(config, template, post_lang, answer if template == "question" else None)
    ask_text, ask = "", ""
    if template in ("complaint", "negative"):
        topic_ask = (topic.ask.get(lang) if topic is not None and topic.ask else None)
        if topic_ask:
            ask_text, ask = topic_ask, f"topic {topic.name}"
        else:
            ask_text, ask = _template_text(config, "ask", lang), "generic"
    answer_text, needs = "", False
    if template == "question":
        if answer is not None:
            answer_text = answer.text(lang) or answer.text("en") or ""
        else:
            answer_text, needs = _template_text(config, "no_answer", lang), True
    remembered = recall(list(history), now=now or config.clock(), lang=lang,
                        current_intent=current_intent or template, current_topic=post.get("topic", ""),
                        product_of=lambda text: find_topic(text, config)) if history else None
    note = conversation_note(list(earlier), lang=lang, current_topic=post.get("topic", ""),
                             current_text=post.get("text", ""), product_of=lambda text: find_topic(text, config)) \
        if earlier else ""
    text = render(config, template, lang, post=post, memory=note + (remembered.sentence if remembered else ""),
                  campaign=campaign, ask=ask_text, answer=answer_text)
    return Draft(text, f"{template}.{lang}", lang, ask=ask, answer=answer.name if answer is not None else "",
                 answer_score=answer_score, needs_answer=needs,
                 recalled=remembered.as_dict() if remembered else None)


def _template_text(config: Config, name: str, lang: str) -> str:
    texts = config.templates[name]
    return texts.get(lang) or texts["en"]


OFFER = re.compile(r"\b(interested|would you like|want us to|shall we|like to try)\b|いかがですか|ご興味|よろしければ",
                   re.I)


def asks(text: str, template: str) -> str:
    """What a reply asks the customer, for follow-ups: 'offer' (yes / later / no), 'resolution' (a complaint we
    answered: check in if they go quiet), or ''."""
    if OFFER.search(text):
        return "offer"
    return "resolution" if template in ("complaint", "negative") else ""


def render(config: Config, template: str, lang: str, *, post: dict[str, Any], memory: str, campaign: str = "",
           brand: str = "", ask: str = "", answer: str = "") -> str:
    text_for_lang = config.templates[template].get(lang) or config.templates[template]["en"]
    # A display name carrying a link or a mention is cleaned; one that is just the handle again reads better as
    # the handle ("Hi @george_p").
    display = greeting_name(post.get("author_name") or "", post.get("handle") or "", lang=lang)
    fields = {"name": display,
              "handle": f"@{post.get('handle')}", "brand": brand or (config.brands[0].name if config.brands else ""),
              "memory": memory, "topic": find_topic(post.get("text", ""), config), "campaign": campaign,
              "ask": ask, "answer": answer}
    text = text_for_lang.format(**fields)
    return " ".join(text.split()) if lang != "ja" else text.replace("  ", " ").strip()
