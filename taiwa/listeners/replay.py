"""Replay listener: posts from files — taiwa JSONL, CSV, or X API v2 pages (`data` + `includes.users`).

Streaming (one line in memory at a time) and resumable: the cursor is the byte offset and line number after
the last line handed out, stored with the posts it produced. A malformed line is reported as `file:line: reason`
and skipped; every good line is kept.

taiwa's record (JSONL object or CSV columns):
    id*, text*, created_at* (ISO-8601 or Unix seconds), author_handle* (or author.handle), author_id,
    author_name, author_followers, author_verified, platform (default "replay"), lang, url, conversation_id,
    in_reply_to_id, is_repost, likes, reposts, replies, hashtags (list, or space-separated in CSV)
JSONL may nest the author as {"author": {"id", "handle", "name", "followers", "verified"}}.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from ..config import KNOWN_PLATFORMS
from .base import Author, Batch, Post, parse_time
from .x import is_api_page, page_to_posts

BATCH = 1000
FIELDS = {"id", "text", "created_at", "author_handle", "author_id", "author_name", "author_followers",
          "author_verified", "author", "platform", "lang", "url", "conversation_id", "in_reply_to_id",
          "is_repost", "likes", "reposts", "replies", "hashtags", "mentions"}


class RecordError(ValueError):
    pass


def _int(record: dict[str, Any], key: str, value: Any) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise RecordError(f"field {key!r} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise RecordError(f"field {key!r} must be a whole number, got {value!r}")


def _bool(key: str, value: Any) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise RecordError(f"field {key!r} must be true or false, got {value!r}")


# Posts longer than this are refused by name (the longest any platform allows is 25,000 characters on X).
MAX_TEXT = 100_000


def _str(key: str, value: Any, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise RecordError(f"missing field {key!r}")
        return ""
    if isinstance(value, (dict, list, bool)):
        raise RecordError(f"field {key!r} must be text, got {type(value).__name__}")
    return str(value)


def record_to_post(record: Any) -> Post:
    """taiwa's documented record → Post; RecordError names the field that is wrong."""
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    unknown = set(record) - FIELDS
    if unknown:
        raise RecordError(f"unknown field(s) {sorted(unknown)}")
    nested = record.get("author")
    if nested is not None and not isinstance(nested, dict):
        raise RecordError("field 'author' must be an object with id, handle, name, followers")
    nested = nested or {}
    missing = [k for k, v in (("id", record.get("id")), ("text", record.get("text")),
                              ("created_at", record.get("created_at")),
                              ("author_handle", nested.get("handle", record.get("author_handle"))))
               if v is None or v == ""]
    if missing:
        raise RecordError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    handle = _str("author_handle", nested.get("handle", record.get("author_handle")), required=True).lstrip("@")
    author = Author(
        platform_id=_str("author_id", nested.get("id", record.get("author_id"))) or handle.lower(),
        handle=handle,
        name=_str("author_name", nested.get("name", record.get("author_name"))),
        followers=_int(record, "author_followers", nested.get("followers", record.get("author_followers"))),
        verified=_bool("author_verified", nested.get("verified", record.get("author_verified"))),
    )
    text = _str("text", record.get("text"), required=True)
    if len(text) > MAX_TEXT:
        raise RecordError(f"field 'text' is {len(text):,} characters; a post may hold at most {MAX_TEXT:,} here "
                          "(no platform allows more)")
    platform = _str("platform", record.get("platform")) or "replay"
    if platform not in KNOWN_PLATFORMS:
        raise RecordError(f"unknown platform {platform!r}; use one of: {', '.join(KNOWN_PLATFORMS)}")
    try:
        created = parse_time(record.get("created_at"))
    except ValueError as e:
        raise RecordError(str(e) if record.get("created_at") not in (None, "") else "missing field 'created_at'")
    tags = record.get("hashtags") or []
    if isinstance(tags, str):
        tags = [t.lstrip("#") for t in tags.split()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RecordError("field 'hashtags' must be a list of text")
    return Post(
        platform=platform,
        platform_id=_str("id", record.get("id"), required=True),
        author=author, text=text, created_at=created,
        lang=_str("lang", record.get("lang")), url=_str("url", record.get("url")),
        conversation_id=_str("conversation_id", record.get("conversation_id")),
        in_reply_to_id=_str("in_reply_to_id", record.get("in_reply_to_id")),
        is_repost=_bool("is_repost", record.get("is_repost")),
        likes=_int(record, "likes", record.get("likes")), reposts=_int(record, "reposts", record.get("reposts")),
        replies=_int(record, "replies", record.get("replies")),
        hashtags=[t.lstrip("#") for t in tags], raw=record,
    )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None


class ReplayListener:
    """Reads one file. `name` is "replay:<absolute path>", the key of its cursor."""

    def __init__(self, path: str | Path, *, batch_size: int = BATCH):
        self.path = Path(path)
        self.name = f"replay:{self.path.resolve()}"
        self.batch_size = batch_size
        suffix = self.path.suffix.lower()
        if suffix not in (".jsonl", ".ndjson", ".json", ".csv"):
            raise RecordError(f"{self.path}: unsupported file type {suffix!r}; use .jsonl, .json or .csv")
        self.kind = {"ndjson": "jsonl"}.get(suffix[1:], suffix[1:])

    def read(self, cursor: str | None) -> Iterator[Batch]:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file")
        pos = json.loads(cursor) if cursor else {"offset": 0, "line": 0}
        size = self.path.stat().st_size
        restart = []
        if pos["offset"] > size:
            restart = [f"{self.path}: the file is shorter than where we stopped ({pos['offset']} > {size} bytes); "
                       "reading it again from the start (posts already stored are not duplicated)"]
            pos = {"offset": 0, "line": 0}
        if self.kind == "json":
            yield from self._read_json(pos, restart)
        else:
            yield from self._read_lines(pos, restart)

    def _read_json(self, pos: dict, problems: list[str]) -> Iterator[Batch]:
        # A single API response document: small (≤ 100 tweets a page), read whole.
        raw = self.path.read_bytes()
        if pos["offset"] >= len(raw) and pos["offset"] > 0:
            return
        where = f"{self.path}:1"
        posts: list[Post] = []
        try:
            doc = json.loads(_decode(raw))
            pages = doc if isinstance(doc, list) else [doc]
            for n, page in enumerate(pages):
                if is_api_page(page):
                    got, bad = page_to_posts(page)
                    posts += got
                    problems += [f"{where}: page {n + 1}, {b}" for b in bad]
                else:
                    try:
                        posts.append(record_to_post(page))
                    except RecordError as e:
                        problems.append(f"{where}: record {n + 1}: {e}")
        except (RecordError, json.JSONDecodeError) as e:
            problems.append(f"{where}: {e}")
        yield Batch(posts, json.dumps({"offset": len(raw), "line": 1}), problems)

    def _read_lines(self, pos: dict, problems: list[str]) -> Iterator[Batch]:
        offset, line_no = pos["offset"], pos["line"]
        header: list[str] | None = None
        posts: list[Post] = []
        with open(self.path, "rb") as fh:
            if self.kind == "csv":
                first = fh.readline()
                try:
                    header = next(csv.reader([_decode(first).lstrip("\ufeff")]))
                except (RecordError, StopIteration) as e:
                    problems.append(f"{self.path}:1: cannot read the CSV header ({e})")
                    yield Batch([], json.dumps({"offset": 0, "line": 0}), problems)
                    return
                unknown = [h for h in header if h not in FIELDS]
                if unknown:
                    problems.append(f"{self.path}:1: unknown CSV column(s) {unknown}; they are ignored")
                if offset == 0:
                    offset, line_no = fh.tell(), 1
            fh.seek(offset)
            for start_line, chunk in self._chunks(fh, line_no):
                offset += len(chunk)
                line_no = start_line + chunk.count(b"\n") - (1 if chunk.endswith(b"\n") else 0)
                if not chunk.strip():
                    continue
                where = f"{self.path}:{start_line}"
                try:
                    text = _decode(chunk)
                    if header is not None:
                        values = next(csv.reader(io.StringIO(text)))
                        if len(values) != len(header):
                            raise RecordError(f"expected {len(header)} CSV columns, got {len(values)}")
                        record = {k: v for k, v in zip(header, values) if k in FIELDS}
                        posts.append(record_to_post(record))
                    else:
                        obj = json.loads(text)
                        if is_api_page(obj):
                            got, bad = page_to_posts(obj)
                            posts += got
                            problems += [f"{where}: {b}" for b in bad]
                        else:
                            posts.append(record_to_post(obj))
                except json.JSONDecodeError as e:
                    problems.append(f"{where}: not valid JSON ({e.msg} at column {e.colno})")
                except (RecordError, ValueError) as e:
                    problems.append(f"{where}: {e}")
                if len(posts) >= self.batch_size:
                    yield Batch(posts, json.dumps({"offset": offset, "line": line_no}), problems)
                    posts, problems = [], []
        yield Batch(posts, json.dumps({"offset": offset, "line": line_no}), problems)

    def _chunks(self, fh, line_no: int) -> Iterator[tuple[int, bytes]]:
        """Yield (first line number, bytes) per record: a line, or for CSV, lines until quotes balance.

        A final line without a newline is held back (it may still be being written) unless the file ends there
        for good: we take it, since replay files are complete exports."""
        pending, start = b"", line_no + 1
        for raw in fh:
            line_no += 1
            if not pending:
                start = line_no
            pending += raw
            if self.kind == "csv" and pending.count(b'"') % 2 == 1:
                continue  # a quoted field spans lines
            yield start, pending
            pending = b""
        if pending:
            yield start, pending
