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


# Who can see a post, widest first. A reply never goes wider than the post it answers.
AUDIENCES = ("public", "unlisted", "private", "direct")


def narrowest(*audiences: str) -> str:
    """The most private of the given audiences ("private" of "unlisted" and "private")."""
    return max(audiences, key=AUDIENCES.index)


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
    audience: str = "public"      # who can see it: public | unlisted | private (followers only) | direct
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
    reserved: int = 0         # reads taken from the budget before the request (stored with the batch: reads - this)
    reserved_at: dt.datetime | None = None   # when they were taken: the difference is settled in that month


class Listener(Protocol):
    """A source of posts. `name` keys its cursor in the store; `read(cursor)` yields batches from there on."""

    name: str

    def read(self, cursor: str | None) -> Iterator[Batch]: ...


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# Times outside these years are refused by name: no post was written before the web, and a later one is a unit
# error (milliseconds read as seconds) that would sort above everything for ever.
EARLIEST_YEAR, LATEST_YEAR = 1990, 2200
# SQLite stores whole numbers in 64 bits; a count beyond that is a broken export, not a popular post.
MAX_COUNT = 2 ** 63 - 1


def parse_time(value: Any) -> dt.datetime:
    """ISO-8601 (with Z or offset) or a Unix timestamp → aware UTC datetime; ValueError names the value."""
    try:
        parsed = _parse_time(value)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None:
        raise ValueError(f"created_at {_show(value)} is not an ISO-8601 time or a Unix timestamp")
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise ValueError(f"created_at {_show(value)} is outside {EARLIEST_YEAR}–{LATEST_YEAR}")
    return parsed


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str) and value.strip():
        s = value.strip()
        if s.isdigit():
            return dt.datetime.fromtimestamp(int(s), dt.timezone.utc)
        return utc(dt.datetime.fromisoformat(s.replace("Z", "+00:00")))
    return None


def _show(value: Any, n: int = 60) -> str:
    r = repr(value)
    return r if len(r) <= n else r[: n - 1] + "…"


def post_problem(post: Post) -> str | None:
    """Why this post cannot be stored as it is (a count out of range, a time SQLite cannot order, text that is
    not valid Unicode), or None. Every listener's posts pass through this before they are stored, so one broken
    record is named and skipped instead of failing its whole batch."""
    for name in ("likes", "reposts", "replies"):
        value = getattr(post, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
            return f"{name} {_show(value)} is not a count between 0 and {MAX_COUNT:,}"
    followers = post.author.followers
    if not isinstance(followers, int) or isinstance(followers, bool) or not 0 <= followers <= MAX_COUNT:
        return f"author followers {_show(followers)} is not a count between 0 and {MAX_COUNT:,}"
    if not isinstance(post.created_at, dt.datetime) or post.created_at.tzinfo is None:
        return f"created_at {_show(post.created_at)} is not a time with a timezone"
    if not EARLIEST_YEAR <= post.created_at.year <= LATEST_YEAR:
        return f"created_at {post.created_at.isoformat()} is outside {EARLIEST_YEAR}–{LATEST_YEAR}"
    for name, value in (("text", post.text), ("id", post.platform_id), ("author handle", post.author.handle),
                        ("author name", post.author.name), ("author id", post.author.platform_id),
                        ("lang", post.lang), ("url", post.url), ("conversation_id", post.conversation_id),
                        ("in_reply_to_id", post.in_reply_to_id)):
        if not isinstance(value, str):
            return f"{name} must be text, got {type(value).__name__}"
        bad = _unencodable(value)
        if bad:
            return f"{name} {bad}"
    if post.audience not in AUDIENCES:
        return f"audience {_show(post.audience)} is not one of {', '.join(AUDIENCES)}"
    for name, values in (("hashtags", post.hashtags), ("mentions", post.mentions)):
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            return f"{name} must be a list of text, got {_show(values)}"
        for v in values:
            bad = _unencodable(v)
            if bad:
                return f"{name} {bad}"
    return None


def _unencodable(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return (f"holds U+{ord(value[e.start]):04X} at character {e.start + 1}, a lone surrogate that is not "
                "valid Unicode (a broken \\ud800-style escape in the export)")
    return None
