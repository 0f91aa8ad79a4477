"""People's display names as they may appear in a reply the brand posts.

A display name is written by its owner, not by the brand: "Shop https://evil.example", "@support", a right-to-left
override or a zero-width space would be posted under the brand's name if copied into a reply verbatim. Before a
name enters a draft it is cleaned of links, bare domains, mentions, hashtags and invisible or control characters;
what is left of it (or, if nothing is, the handle) greets the person.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 40
LINK = re.compile(r"(?:https?://|www\.)\S*|\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?", re.I)
MENTION_OR_TAG = re.compile(r"[@＠#＃]\S*")


def clean_name(name: str) -> str:
    """The display name without links, domains, @mentions, #hashtags, control or invisible characters; at most
    MAX_NAME characters; "" when nothing readable is left."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in name or "")
    text = unicodedata.normalize("NFKC", text)
    text = LINK.sub(" ", text)
    text = MENTION_OR_TAG.sub(" ", text)
    text = " ".join(text.split())
    text = text.strip(" -–—|:;,.·•")
    if len(text) > MAX_NAME:
        text = text[:MAX_NAME].rsplit(" ", 1)[0] or text[:MAX_NAME]
    return text if any(ch.isalnum() for ch in text) else ""


def greeting_name(display: str, handle: str, *, lang: str = "en") -> str:
    """How a reply addresses someone: their cleaned display name, or the handle (with @ outside Japanese)."""
    name = clean_name(display)
    handle = handle.lstrip("@")
    if not name or name.lower() == handle.lower():
        return handle if lang == "ja" else f"@{handle}"
    return name
