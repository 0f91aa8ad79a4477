"""Replay listener: posts from files — taiwa JSONL, CSV, or X API v2 pages (`data` + `includes.users`).

Streaming (one record in memory at a time, `.json` arrays too) and resumable: the cursor is the byte offset and
line (or array item) after the last record handed out, stored with the posts it produced, together with the
file's identity (device, inode) and a fingerprint of its first bytes. A file replaced by another export is
noticed and read again from its start. A malformed record is reported as `file:line: reason` and skipped; every
good record is kept, and the cursor moves past the bad one. Line ends may be LF, CRLF or CR; a UTF-8 byte-order
mark is ignored.

A file that is still being written may end mid-line (buffered writers flush in blocks): an unfinished last line
(no line end yet, and for JSONL not a whole JSON value) or a CSV record whose quoted field is still open at the
end is left for the next run, and the cursor stops before it. If the next run finds the file exactly as it was,
the writer has finished: the last line is then read as it stands (a file whose last line has no line end).

taiwa's record (JSONL object or CSV columns):
    id*, text*, created_at* (ISO-8601 or Unix seconds), author_handle* (or author.handle), author_id,
    author_name, author_followers, author_verified, platform (default "replay"), lang, url, conversation_id,
    in_reply_to_id, is_repost, likes, reposts, replies, hashtags (list, or space-separated in CSV)
JSONL may nest the author as {"author": {"id", "handle", "name", "followers", "verified"}}.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..config import KNOWN_PLATFORMS
from ..errors import TaiwaError
from .base import MAX_COUNT, Author, Batch, Post, parse_time, post_problem
from .x import is_api_page, page_to_posts

BATCH = 1000
FIELDS = {"id", "text", "created_at", "author_handle", "author_id", "author_name", "author_followers",
          "author_verified", "author", "platform", "lang", "url", "conversation_id", "in_reply_to_id",
          "is_repost", "likes", "reposts", "replies", "hashtags", "mentions", "audience"}


SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
# One record (a JSONL line, a CSV record, a .json array item) may hold at most this many bytes: far above any
# post (MAX_TEXT characters), low enough that a file without line breaks cannot exhaust memory.
MAX_RECORD_BYTES = 8 * 1024 * 1024
# A quoted CSV field may span at most this many lines; an opening quote never closed within them is a stray one.
MAX_CSV_SPAN = 200
HEAD_BYTES = 4096          # the fingerprint covers this much of the file's start
BOM = b"\xef\xbb\xbf"


class RecordError(ValueError):
    pass


class ReplayFileError(TaiwaError):
    """The file as a whole cannot be read (missing, a folder, unreadable, an unsupported type)."""


def _int(record: dict[str, Any], key: str, value: Any) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise RecordError(f"field {key!r} must be a whole number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= MAX_COUNT:
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
    raise RecordError(f"field {key!r} must be a whole number from 0 to {MAX_COUNT:,}, got {shown}")


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
    post = Post(
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
        audience=_str("audience", record.get("audience")) or "public",
    )
    problem = post_problem(post)
    if problem:
        raise RecordError(problem)
    return post


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise RecordError("JSON nested too deeply to be a post") from None


def _record_or_page(obj: Any, where: str, problems: list[str], own_handles: frozenset[str] = frozenset()
                    ) -> list[Post]:
    """A JSON value → posts: an X API v2 page (each bad tweet named) or one taiwa record."""
    if is_api_page(obj):
        got, bad = page_to_posts(obj, own_handles)
        problems += [f"{where}: {b}" for b in bad]
        return got
    return [record_to_post(obj)]


_BLANK = object()   # a blank line: skipped silently (JSON's null is a record, and a bad one)
_WAIT = object()    # an unfinished record at the end of a growing file: stop before it, read it next run
EOL = re.compile(rb"\r\n?|\n")


@dataclass(frozen=True)
class _Partial:
    """The file's last line, with no line end yet: it may be a writer's half-flushed record."""

    data: bytes


@dataclass(frozen=True)
class _Overlong:
    """Stands for a line longer than MAX_RECORD_BYTES: only its length is kept."""

    size: int


def _lines(fh, *, hold_tail: bool = False) -> Iterator[bytes | _Overlong | _Partial]:
    """Physical lines with their ends (LF, CRLF or a lone CR), read in blocks; a line over MAX_RECORD_BYTES comes
    out as an _Overlong carrying its size, never held in memory whole. hold_tail: a last line without a line end
    comes out as a _Partial (the file may still be growing)."""
    buf, skipped, eof = b"", 0, False
    while not eof:
        block = fh.read(1 << 20)
        eof = not block
        scan_from = max(0, len(buf) - 1)
        buf += block
        start = 0
        for m in EOL.finditer(buf, scan_from):
            if m.group() == b"\r" and m.end() == len(buf) and not eof:
                break   # a CR at the block's end may be the first half of a CRLF
            if skipped or m.end() - start > MAX_RECORD_BYTES:
                yield _Overlong(skipped + m.end() - start)
                skipped = 0
            else:
                yield buf[start:m.end()]
            start = m.end()
        buf = buf[start:]
        if len(buf) > MAX_RECORD_BYTES:
            skipped += len(buf)
            buf = b""
    if skipped:
        yield _Overlong(skipped + len(buf))
    elif buf:
        yield _Partial(buf) if hold_tail else buf


class ReplayListener:
    """Reads one file. `name` is "replay:<absolute path>", the key of its cursor."""

    def __init__(self, path: str | Path, *, batch_size: int = BATCH, own_handles: frozenset[str] = frozenset()):
        self.path = Path(path)
        self.own_handles = own_handles   # the brand's accounts: X pages' "mentionedUsers" posts that name them
        self.name = f"replay:{self.path.resolve()}"
        self.batch_size = batch_size
        suffix = self.path.suffix.lower()
        self.kind = {"ndjson": "jsonl"}.get(suffix[1:], suffix[1:])

    def _check(self) -> os.stat_result:
        """The file can be read as a replay file, or ReplayFileError says why and what to do."""
        if self.path.suffix.lower() not in SUFFIXES:
            raise ReplayFileError(f"{self.path}: unsupported file type {self.path.suffix or '(none)'!r}",
                                  "replay reads .jsonl (or .ndjson), .json and .csv files; rename or convert it")
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise ReplayFileError(f"{self.path}: no such file",
                                  "check platforms.replay.paths in taiwa.toml (relative to its folder)") from None
        except OSError as e:
            raise ReplayFileError(f"{self.path}: cannot be read ({e.strerror})", "check the path") from None
        if self.path.is_dir():
            raise ReplayFileError(f"{self.path} is a folder", "list the files inside it in platforms.replay.paths")
        if not os.access(self.path, os.R_OK):
            raise ReplayFileError(f"{self.path}: permission denied",
                                  f"let taiwa's user read it (chmod o+r {self.path}) or copy it elsewhere")
        return st

    def read(self, cursor: str | None) -> Iterator[Batch]:
        st = self._check()
        try:
            fh = open(self.path, "rb")
        except OSError as e:
            raise ReplayFileError(f"{self.path}: cannot be opened ({e.strerror})", "check its permissions") from None
        with fh:
            head = fh.read(HEAD_BYTES)
            fh.seek(0)
            _whole_file_problem(self.path, head)
            ident = {"dev": st.st_dev, "ino": st.st_ino, "head": hashlib.sha256(head).hexdigest()[:32],
                     "head_len": len(head)}
            pos, problems = self._resume(cursor, st.st_size, head, ident)
            if self.kind == "json":
                yield from self._read_json(fh, pos, problems, ident)
            else:
                # The last run stopped before an unfinished last line; the file has not changed since: it is
                # finished as it stands.
                finished = pos.get("tail") == st.st_size
                yield from self._read_lines(fh, pos, problems, ident, hold_tail=not finished)

    def _resume(self, cursor: str | None, size: int, head: bytes, ident: dict) -> tuple[dict, list[str]]:
        start = {"offset": 0, "line": 0, "item": 0}
        if not cursor:
            return start, []
        try:
            pos = {**start, **json.loads(cursor)}
        except (ValueError, TypeError):
            return start, [f"{self.path}: the stored position could not be read; reading the file from its start "
                           "(posts already stored are not duplicated)"]
        why = ""
        if pos["offset"] > size:
            why = f"the file is shorter than where we stopped ({pos['offset']:,} > {size:,} bytes)"
        elif "ino" in pos and (pos["ino"], pos["dev"]) != (ident["ino"], ident["dev"]):
            why = "the file was replaced by another one (a new export under the same name)"
        elif "head" in pos and hashlib.sha256(head[:pos["head_len"]]).hexdigest()[:32] != pos["head"]:
            why = "the file's first lines changed (it was rewritten, not appended to)"
        if why:
            return start, [f"{self.path}: {why}; reading it again from the start "
                           "(posts already stored are not duplicated)"]
        return pos, []

    def _cursor(self, ident: dict, **pos: int) -> str:
        return json.dumps({**pos, **ident})

    # ---------------------------------------------------------------- JSONL and CSV
    def _read_lines(self, fh, pos: dict, problems: list[str], ident: dict, *, hold_tail: bool = False
                    ) -> Iterator[Batch]:
        offset, line_no = pos["offset"], pos["line"]
        header: list[str] | None = None
        posts: list[Post] = []
        lines = _lines(fh, hold_tail=hold_tail)
        if self.kind == "csv":
            first = next(lines, b"")
            try:
                if isinstance(first, _Overlong):
                    raise RecordError("the header line is too long")
                header = next(csv.reader([_decode(first.removeprefix(BOM)).rstrip("\r\n")]))
            except (RecordError, StopIteration, csv.Error) as e:
                problems.append(f"{self.path}:1: cannot read the CSV header ({e or 'the file is empty'})")
                yield Batch([], self._cursor(ident, offset=0, line=0), problems)
                return
            unknown = [h for h in header if h not in FIELDS]
            if unknown:
                problems.append(f"{self.path}:1: unknown CSV column(s) {unknown}; they are ignored")
            if offset == 0:
                offset, line_no = len(first), 1
            else:
                fh.seek(offset)
                lines = _lines(fh, hold_tail=hold_tail)
        elif offset:
            fh.seek(offset)
            lines = _lines(fh, hold_tail=hold_tail)
        records = self._csv_records(lines, line_no, header, growing=hold_tail) if header is not None \
            else self._jsonl(lines, line_no)
        tail: dict[str, int] = {}
        for start_line, end_line, nbytes, parsed in records:
            if parsed is _WAIT:
                tail = {"tail": fh.tell()}   # where the file ended: unchanged next run means it is finished
                break
            offset += nbytes
            line_no = end_line
            where = f"{self.path}:{start_line}"
            try:
                if isinstance(parsed, RecordError):
                    raise parsed
                if parsed is _BLANK:
                    continue
                if header is not None:
                    posts.append(record_to_post({k: v for k, v in zip(header, parsed) if k in FIELDS}))
                else:
                    posts += _record_or_page(parsed, where, problems, self.own_handles)
            except RecordError as e:
                problems.append(f"{where}: {e}")
            if len(posts) >= self.batch_size:
                yield Batch(posts, self._cursor(ident, offset=offset, line=line_no), problems)
                posts, problems = [], []
        yield Batch(posts, self._cursor(ident, offset=offset, line=line_no, **tail), problems)

    def _jsonl(self, lines: Iterator[bytes | _Overlong], line_no: int) -> Iterator[tuple[int, int, int, Any]]:
        """(line, line, bytes, JSON value | _BLANK | RecordError) per physical line."""
        for raw in lines:
            line_no += 1
            if isinstance(raw, _Partial):
                # No line end yet. A whole JSON value is a finished record (the writer just has not ended the
                # line); anything else waits for the rest of the line.
                try:
                    value = json.loads(_decode(raw.data.removeprefix(BOM) if line_no == 1 else raw.data))
                except (RecordError, ValueError, RecursionError):
                    yield line_no, line_no, 0, _WAIT
                    return
                yield line_no, line_no, len(raw.data), value if isinstance(value, (dict, list)) else _WAIT
                return
            if isinstance(raw, _Overlong):
                yield line_no, line_no, raw.size, RecordError(
                    f"the line is {raw.size:,} bytes; a record may hold at most {MAX_RECORD_BYTES:,}")
                continue
            body = raw.removeprefix(BOM) if line_no == 1 else raw
            if not body.strip():
                yield line_no, line_no, len(raw), _BLANK
                continue
            try:
                value: Any = _json(_decode(body))
            except RecordError as e:
                value = e
            yield line_no, line_no, len(raw), value

    def _csv_records(self, lines: Iterator[bytes | _Overlong | _Partial], line_no: int, header: list[str], *,
                     growing: bool = False) -> Iterator[tuple[int, int, int, Any]]:
        """(first line, last line, bytes, values | _BLANK | RecordError) per CSV record.

        A record whose quotes do not balance on its line may be a quoted field that spans lines, or a stray
        quote (`my 27" monitor`). The line alone is taken when it already has the header's columns; otherwise
        following lines are joined until the quotes balance. A quote still open after MAX_CSV_SPAN lines, or
        at the end of the file, marks only its own line as bad: the lines after it are read again as records."""
        width = len(header)
        back: deque[tuple[int, bytes]] = deque()
        numbered = ((n, raw) for n, raw in enumerate(lines, start=line_no + 1))

        def take() -> tuple[int, bytes] | None:
            return back.popleft() if back else next(numbered, None)

        while (first := take()) is not None:
            n, raw = first
            if isinstance(raw, _Partial):   # a row may be cut anywhere, even inside its last field: wait
                yield n, n, 0, _WAIT
                return
            if isinstance(raw, _Overlong):
                yield n, n, raw.size, RecordError(
                    f"the line is {raw.size:,} bytes; a record may hold at most {MAX_RECORD_BYTES:,}")
                continue
            if not raw.strip():
                yield n, n, len(raw), _BLANK
                continue
            try:
                text = _decode(raw)
            except RecordError as e:
                yield n, n, len(raw), e
                continue
            values = _csv_row(text)
            if text.count('"') % 2 == 0 or (isinstance(values, list) and len(values) == width
                                             and not _opens_quote(text)):
                if isinstance(values, list) and len(values) != width:
                    values = RecordError(f"expected {width} CSV columns, got {len(values)}")
                yield n, n, len(raw), values
                continue
            parts, quotes, size = [first], text.count('"'), len(raw)
            joined = None
            while len(parts) < MAX_CSV_SPAN and size < MAX_RECORD_BYTES:
                nxt = take()
                if nxt is None:
                    if growing and not _all_rows(parts[1:], width):
                        # The end of a file still being written, inside a quoted field whose lines so far are
                        # not records of their own: its closing quote may come with the next write.
                        yield n, n, 0, _WAIT
                        return
                    break
                if isinstance(nxt[1], _Partial):   # the quoted field may close in the part not written yet
                    yield n, n, 0, _WAIT
                    return
                parts.append(nxt)
                if isinstance(nxt[1], _Overlong):
                    break
                size += len(nxt[1])
                quotes += nxt[1].count(b'"')
                if quotes % 2 == 0:
                    try:
                        joined = _csv_row(b"".join(p[1] for p in parts).decode("utf-8"))
                    except UnicodeDecodeError:
                        joined = None
                    break
            if isinstance(joined, list) and len(joined) == width:
                yield n, parts[-1][0], size, joined
                continue
            back.extendleft(reversed(parts[1:]))
            yield n, n, len(raw), RecordError(
                'a quoted field opens on this line and is never closed (a stray " ?); the lines after it were read '
                "on their own")


    # ---------------------------------------------------------------- .json documents
    def _read_json(self, fh, pos: dict, problems: list[str], ident: dict) -> Iterator[Batch]:
        """A .json file: one X API page or record, or an array of them, streamed item by item."""
        done, posts, item = pos["item"], [], 0
        if pos["offset"] and not done:
            return   # a single document, read before
        for item, value in _json_items(fh):
            if item <= done:
                continue
            where = f"{self.path}: item {item}"
            try:
                if isinstance(value, RecordError):
                    raise value
                posts += _record_or_page(value, where, problems, self.own_handles)
            except RecordError as e:
                problems.append(f"{where}: {e}")
            if len(posts) >= self.batch_size:
                yield Batch(posts, self._cursor(ident, offset=1, line=0, item=item), problems)
                posts, problems = [], []
        yield Batch(posts, self._cursor(ident, offset=1, line=0, item=max(item, done)), problems)


def _whole_file_problem(path: Path, head: bytes) -> None:
    """A file that is not UTF-8 text at all gets one clear error instead of a complaint about every line."""
    if head[:2] == b"\x1f\x8b":
        raise ReplayFileError(f"{path}: the file is gzip-compressed", f"decompress it first: gunzip -k {path}")
    if head[:4] in (b"PK\x03\x04",):
        raise ReplayFileError(f"{path}: the file is a zip archive", "unzip it and list the files inside")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) > 3 and head[1:4:2] == b"\x00\x00"):
        raise ReplayFileError(f"{path}: the file is UTF-16 text; replay files are UTF-8",
                              f"convert it: iconv -f UTF-16 -t UTF-8 {path} > {path.stem}.utf8{path.suffix}")


def _all_rows(parts: list[tuple[int, bytes]], width: int) -> bool:
    """True when every line after an opening quote is a whole record by itself: the quote was a stray one."""
    if not parts:
        return False
    for _, raw in parts:
        try:
            row = _csv_row(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return False
        if not isinstance(row, list) or len(row) != width:
            return False
    return True


def _csv_row(text: str) -> list[str] | RecordError:
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        return RecordError(f"not valid CSV ({e})")
    if len(rows) != 1:
        return RecordError("not valid CSV (a record must be one row)")
    return rows[0]


def _opens_quote(text: str) -> bool:
    """Whether some field of the line starts with a quote (a quoted field), rather than holding a stray one."""
    return bool(re.search(r'(^|,)\s*"', text))


_JSON_VALUE_END = re.compile(r"\s*([,\]])")
_WS = re.compile(r"\s*")


def _json_items(fh) -> Iterator[tuple[int, Any]]:
    """(1-based item number, value or RecordError) for each item of a top-level JSON array, read in blocks; a
    document that is not an array is one item. An item that cannot be parsed is skipped by bracket matching."""
    decoder = json.JSONDecoder()
    buf = ""
    raw_tail = b""
    eof = False

    def more() -> bool:
        nonlocal buf, raw_tail, eof
        block = fh.read(1 << 20)
        if not block:
            eof = True
            return False
        data = raw_tail + block
        try:
            text = data.decode("utf-8")
            raw_tail = b""
        except UnicodeDecodeError as e:
            if e.start >= len(data) - 3:   # a character split across blocks
                text, raw_tail = data[:e.start].decode("utf-8"), data[e.start:]
            else:
                text, raw_tail = data.decode("utf-8", errors="replace"), b""
        buf += text.lstrip("\ufeff") if not buf else text
        return True

    while not buf.strip() and more():
        pass
    i = _WS.match(buf).end()
    if i >= len(buf):
        return
    if buf[i] != "[":   # one document: an X API page or a record
        while more():
            if len(buf) > MAX_RECORD_BYTES * 8:
                yield 1, RecordError("a single JSON document over 64 MB; export it as JSONL (one record a line) "
                                     "or as an array")
                return
        try:
            yield 1, _json(buf)
        except RecordError as e:
            yield 1, e
        return
    i += 1
    n = 0

    def grow() -> bool:
        """Drop what was read (so memory stays at about one block), then read another block."""
        nonlocal buf, i
        buf, i = buf[i:], 0
        return more()

    while True:
        i = _WS.match(buf, i).end()
        while i >= len(buf) and grow():
            i = _WS.match(buf, i).end()
        if i >= len(buf):
            if n:
                yield n + 1, RecordError("the array is not closed (the file ends early)")
            return
        if buf[i] == "]":
            return
        n += 1
        while True:
            try:
                value, end = decoder.raw_decode(buf, i)
                m = _JSON_VALUE_END.match(buf, end)
                if m is None and not eof and len(buf) - end < 64:
                    raise ValueError("need more")
            except RecursionError:
                value, end = RecordError("JSON nested too deeply to be a post"), None
            except ValueError as e:
                if not eof and len(buf) - i < MAX_RECORD_BYTES and grow():
                    continue
                value, end = RecordError(f"not valid JSON ({getattr(e, 'msg', e)})"), None
            break
        if end is None:   # skip the broken item: to the end of its brackets, or give up on the rest
            end = _skip_value(buf, i)
            if end is None:
                yield n, RecordError(str(value) + "; the rest of the file cannot be read: fix this item or export "
                                     "as JSONL")
                return
        yield n, value
        m = _JSON_VALUE_END.match(buf, end)
        if m is None:
            yield n + 1, RecordError("expected , or ] after an item; the rest of the file cannot be read")
            return
        if m.group(1) == "]":
            return
        i = m.end()


_STRUCT = re.compile(r'["\[\]{}]')
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.S)


def _skip_value(buf: str, i: int) -> int | None:
    """The end of the bracketed value starting at buf[i] (strings respected), or None if it does not close."""
    if buf[i] not in "[{":
        m = re.compile(r"[^,\]]*").match(buf, i)
        return m.end()
    depth = 0
    while True:
        m = _STRUCT.search(buf, i)
        if m is None:
            return None
        c = m.group()
        if c == '"':
            s = _STRING_END.match(buf, m.end())
            if s is None:
                return None
            i = s.end()
            continue
        depth += 1 if c in "[{" else -1
        i = m.end()
        if depth == 0:
            return i
