"""Bluesky through the atproto SDK: mentions/replies/quotes from notifications, keyword and hashtag search.

Login: the app password comes from the environment (TAIWA_BSKY_APP_PASSWORD) and is used only when there is no
saved session. The session string (access and refresh tokens, a secret) is kept in a file outside the
database — platforms.bluesky.session_file, created with mode 0600 — and refreshed sessions are saved back,
because Bluesky rate-limits logins.

Streams and cursors:
    bluesky:notifications   {"seen": ISO}   the newest notification stored; a run reads newest-first pages
                                            down to it (the API pages backwards only)
    bluesky:search:<q>      {"since": ISO}  searchPosts(sort=latest, since=…); within a run its own cursor
                                            pages backwards; the newest post seen becomes the next `since`
Rate limits (HTTP 429): ListenerPaused until the ratelimit-reset header; nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import clock
from ..errors import ListenerPaused, PlatformAuthError, TaiwaError
from .base import Author, Batch, Post, parse_time

PASSWORD_HINT = ("make an app password under Settings → Privacy and security → App passwords, then export "
                 "{env}=xxxx-xxxx-xxxx-xxxx and set platforms.bluesky.handle")
REASONS = {"mention", "reply", "quote"}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """atproto models are pydantic objects; recorded JSON is dicts. Read both the same way."""
    if isinstance(obj, dict):
        return obj.get(name, obj.get(_camel(name), default))
    return getattr(obj, name, default)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def post_view_to_post(view: Any, record: Any = None) -> Post:
    """A post (PostView, or a notification: uri, cid, author, record) → Post. raw keeps what a reply needs:
    the post's uri/cid (parent) and its thread root's uri/cid."""
    record = record if record is not None else _get(view, "record")
    author = _get(view, "author")
    uri, cid = str(_get(view, "uri")), str(_get(view, "cid"))
    handle = str(_get(author, "handle"))
    text = str(_get(record, "text") or "")
    reply = _get(record, "reply")
    root = _get(reply, "root") if reply else None
    parent = _get(reply, "parent") if reply else None
    created = parse_time(str(_get(record, "created_at")))
    langs = _get(record, "langs") or []
    tags = []
    for facet in _get(record, "facets") or []:
        for feature in _get(facet, "features") or []:
            if _get(feature, "tag"):
                tags.append(str(_get(feature, "tag")))
    rkey = uri.rsplit("/", 1)[-1]
    return Post(
        platform="bluesky", platform_id=uri,
        author=Author(platform_id=str(_get(author, "did")), handle=handle,
                      name=str(_get(author, "display_name") or "")),
        text=text, created_at=created, lang=str(langs[0]) if langs else "",
        url=f"https://bsky.app/profile/{handle}/post/{rkey}",
        conversation_id=str(_get(root, "uri")) if root else uri,
        in_reply_to_id=str(_get(parent, "uri")) if parent else "",
        likes=int(_get(view, "like_count") or 0), reposts=int(_get(view, "repost_count") or 0),
        replies=int(_get(view, "reply_count") or 0), hashtags=tags,
        # A thread gate (only mentioned accounts, followers, a list) is judged by Bluesky for the signed-in
        # account: viewer.replyDisabled says whether we may reply at all.
        can_reply=not bool(_get(_get(view, "viewer"), "reply_disabled")),
        raw={"uri": uri, "cid": cid, "root_uri": str(_get(root, "uri")) if root else uri,
             "root_cid": str(_get(root, "cid")) if root else cid, "text": text},
    )


def _call(fn: Callable[..., Any], what: str, now: dt.datetime, **kw) -> Any:
    from atproto_client.exceptions import (BadRequestError, NetworkError, RequestException, UnauthorizedError)

    try:
        return fn(**kw)
    except UnauthorizedError as e:
        raise PlatformAuthError(f"Bluesky refused the session for {what}: {e}",
                                "delete the session file and let taiwa log in again with the app password") from None
    except NetworkError:   # not a RequestException: no answer came at all
        raise TaiwaError(f"Bluesky could not be reached for {what}",
                         "check the network and platforms.bluesky.service; the next run tries again") from None
    except RequestException as e:
        resp = getattr(e, "response", None)
        if resp is not None and getattr(resp, "status_code", 0) == 429:
            reset = (getattr(resp, "headers", {}) or {}).get("ratelimit-reset")
            until = dt.datetime.fromtimestamp(int(reset), dt.timezone.utc) if reset else now + dt.timedelta(minutes=5)
            raise ListenerPaused(f"Bluesky rate limit reached on {what}", max(until, now),
                                 "taiwa asks again after the reset; nothing was lost") from None
        if isinstance(e, (BadRequestError,)):
            raise TaiwaError(f"Bluesky rejected {what}: {e}", "check platforms.bluesky in taiwa.toml") from None
        if isinstance(e, NetworkError):
            raise TaiwaError(f"Bluesky could not be reached for {what}", "the next run tries again") from None
        raise TaiwaError(f"Bluesky failed on {what}: {e}", "the next run tries again from the same cursor") from None


class NotificationsListener:
    name = "bluesky:notifications"

    def __init__(self, client: Any, *, page_size: int = 50, max_pages: int = 5,
                 now: Callable[[], dt.datetime] | None = None):
        self.client, self.page_size, self.max_pages = client, page_size, max_pages
        self.now = now or clock.system

    def read(self, cursor: str | None) -> Iterator[Batch]:
        seen = json.loads(cursor)["seen"] if cursor else None
        newest, page_cursor, posts, problems = seen, None, [], []
        for page in range(self.max_pages):
            params: dict[str, Any] = {"limit": self.page_size}
            if page_cursor:
                params["cursor"] = page_cursor
            resp = _call(self.client.app.bsky.notification.list_notifications, "notifications", self.now(),
                         params=params)
            items = list(_get(resp, "notifications") or [])
            done = False
            for n in items:
                indexed = str(_get(n, "indexed_at"))
                if seen and indexed <= seen:
                    done = True
                    break
                newest = max(newest or indexed, indexed)
                if _get(n, "reason") not in REASONS:
                    continue
                try:
                    posts.append(post_view_to_post(n))
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    problems.append(f"{self.name}: {_get(n, 'uri', '?')}: {e}")
            page_cursor = _get(resp, "cursor")
            if done or not page_cursor or not items or seen is None:
                break   # caught up (or a first run: the newest page only)
        # One batch: the cursor may only move once everything newer than `seen` is in hand.
        yield Batch(posts, json.dumps({"seen": newest}), problems, platform="bluesky")


class SearchListener:
    def __init__(self, client: Any, query: str, *, page_size: int = 100, max_pages: int = 5,
                 first_run_days: int = 3, now: Callable[[], dt.datetime] | None = None):
        self.client, self.query, self.page_size, self.max_pages = client, query, page_size, max_pages
        self.first_run_days = first_run_days
        self.now = now or clock.system
        self.name = f"bluesky:search:{query}"

    def read(self, cursor: str | None) -> Iterator[Batch]:
        state = json.loads(cursor) if cursor else {}
        since = state.get("since") or (self.now() - dt.timedelta(days=self.first_run_days)).isoformat()
        page_cursor, newest = state.get("cursor"), state.get("newest")
        for _ in range(self.max_pages):
            params: dict[str, Any] = {"q": self.query, "sort": "latest", "since": since, "limit": self.page_size}
            if page_cursor:
                params["cursor"] = page_cursor
            resp = _call(self.client.app.bsky.feed.search_posts, f"search {self.query!r}", self.now(),
                         params=params)
            posts, problems = [], []
            for view in _get(resp, "posts") or []:
                try:
                    p = post_view_to_post(view)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    problems.append(f"{self.name}: {_get(view, 'uri', '?')}: {e}")
                    continue
                posts.append(p)
                newest = max(newest or p.created_at.isoformat(), p.created_at.isoformat())
            page_cursor = _get(resp, "cursor")
            if page_cursor and posts:
                yield Batch(posts, json.dumps({"since": since, "cursor": page_cursor, "newest": newest}),
                            problems, platform="bluesky")
                continue
            yield Batch(posts, json.dumps({"since": newest or since}), problems, platform="bluesky")
            return


def make_client(config, *, env: dict | None = None, request=None):
    """A logged-in atproto Client: from the saved session string, or by logging in with the app password."""
    from atproto import Client, SessionEvent

    b = config.platform("bluesky")
    env = os.environ if env is None else env
    client = Client(base_url=b["service"] or None, request=request) if request else \
        Client(base_url=b["service"] or None)
    path = Path(b["session_file"]).expanduser() if b["session_file"] else None

    def save(event, session) -> None:
        if path and event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(session.encode())

    client.on_session_change(save)
    if path and path.exists():
        client.login(session_string=path.read_text().strip(), fetch_bsky_profile=False)
        return client
    password = env.get(b["app_password_env"])
    if not b["handle"] or not password:
        raise PlatformAuthError(f"no Bluesky login: set platforms.bluesky.handle and {b['app_password_env']}",
                                PASSWORD_HINT.format(env=b["app_password_env"]))
    _call(client.login, "login", config.clock(), login=b["handle"], password=password,
          fetch_bsky_profile=False)
    return client


def repo_of(client: Any, config=None) -> str:
    """The brand account's DID (from the session), for writing records."""
    session = getattr(client, "_session", None)
    did = getattr(session, "did", None)
    if did:
        return str(did)
    if config is not None and config.platform("bluesky")["handle"]:
        return config.platform("bluesky")["handle"]
    raise PlatformAuthError("Bluesky: not logged in", "check platforms.bluesky.handle and the app password")


def listeners_from_config(config, client=None, *, now: Callable[[], dt.datetime] | None = None) -> list:
    now = now or config.clock
    b = config.platform("bluesky")
    client = client or make_client(config)
    out: list = []
    if b["notifications"]:
        out.append(NotificationsListener(client, max_pages=b["max_pages_per_run"], now=now))
    if b["search"]:
        terms = [k for br in config.brands for k in br.keywords]
        terms += [f"#{h}" for c in config.campaigns if not c.platforms or "bluesky" in c.platforms
                  for h in c.hashtags]
        for q in dict.fromkeys(terms):
            out.append(SearchListener(client, q, max_pages=b["max_pages_per_run"], now=now))
    return out
