"""The normalized post every listener yields, and the listener protocol.

Platform JSON stays inside each listener module; what leaves it is a Post (a handful of typed fields plus `raw`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

HASHTAG = re.compile(r"[#＃]([^\s#＃.,!?;:、。！？「」()（）\[\]\"'…]+)")
MENTION = re.compile(r"@([A-Za-z0-9_]{1,30})")


@dataclass
class Author:
    platform_id: str
    handle: str
    name: str = ""
    followers: int = 0
    verified: bool = False


@dataclass
class Post:
    platform: str                 # x | instagram | replay | ...
    platform_id: str              # the platform's id for the post (tweet id, shortcode, comment id)
    author: Author
    text: str
    created_at: dt.datetime       # always timezone-aware UTC
    lang: str = ""
    url: str = ""
    conversation_id: str = ""
    in_reply_to_id: str = ""
    is_repost: bool = False
    likes: int = 0
    reposts: int = 0
    replies: int = 0
    can_reply: bool = True
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.hashtags:
            self.hashtags = extract_hashtags(self.text)
        if not self.mentions:
            self.mentions = [m.lower() for m in MENTION.findall(self.text)]


def extract_hashtags(text: str) -> list[str]:
    seen: list[str] = []
    for tag in HASHTAG.findall(text):
        if tag.lower() not in (s.lower() for s in seen):
            seen.append(tag)
    return seen


@dataclass
class Batch:
    """What one read of a source produced: posts, the cursor to store *with* them, and the lines it skipped."""

    posts: list[Post]
    cursor: str
    problems: list[str] = field(default_factory=list)
    reads: int = 0            # posts the platform bills for this batch (0 for files)
    platform: str = ""


class Listener(Protocol):
    """A source of posts. `name` keys its cursor in the store; `read(cursor)` yields batches from there on."""

    name: str

    def read(self, cursor: str | None) -> Iterator[Batch]: ...


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def parse_time(value: Any) -> dt.datetime:
    """ISO-8601 (with Z or offset) or a Unix timestamp → aware UTC datetime; ValueError names the value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str) and value.strip():
        s = value.strip()
        if s.isdigit():
            return dt.datetime.fromtimestamp(int(s), dt.timezone.utc)
        try:
            return utc(dt.datetime.fromisoformat(s.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"created_at {value!r} is not an ISO-8601 time or a Unix timestamp")
