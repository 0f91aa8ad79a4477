"""Mastodon through Mastodon.py: mentions (notifications), campaign hashtag timelines, keyword search.

Each stream is a listener with its own cursor {"min_id": ID}: the newest item already stored. A run asks for
the page just newer than it (min_id paging moves forward without gaps), commits the page with the new cursor,
and repeats until nothing newer is left or the page cap is reached. A new stream takes only the newest page.

Rate limits: Mastodon.py runs in "throw" mode; a 429 ends the run with ListenerPaused (the X-RateLimit-Reset
time, or 5 minutes), the pause is stored, and the next run honours it. Nothing sleeps inside a job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from html.parser import HTMLParser
from typing import Any, Callable, Iterator

from .. import clock
from ..errors import ListenerPaused, PlatformAuthError, TaiwaError
from .base import AUDIENCES, Author, Batch, Post, utc

TOKEN_HINT = ("create an application under Preferences → Development on your Mastodon server with the scopes "
              "read:notifications read:statuses write:statuses write:favourites, then export {env}=<its token>")


class _Text(HTMLParser):
    """Mastodon status HTML → plain text: paragraphs and <br> become line breaks; links keep their whole text
    (Mastodon hides the scheme and tail of long links in spans, but they are in the text, and kept)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


def _id(value: Any) -> str:
    return str(value)


def status_to_post(s: Any, *, server: str) -> Post:
    """A Mastodon status (dict-like, as Mastodon.py returns it) → Post."""
    acc = s["account"]
    acct = str(acc["acct"])
    if "@" not in acct:               # a local account: qualify it so handles are unique across servers
        acct = f"{acct}@{server}"
    created = s["created_at"]
    created = utc(created) if isinstance(created, dt.datetime) else dt.datetime.fromisoformat(
        str(created).replace("Z", "+00:00"))
    reblog = s.get("reblog")
    text = html_to_text(s.get("content") or "")
    if s.get("spoiler_text"):
        text = f"[CW: {s['spoiler_text']}] {text}"
    return Post(
        platform="mastodon", platform_id=_id(s["id"]),
        author=Author(platform_id=_id(acc["id"]), handle=acct, name=str(acc.get("display_name") or ""),
                      followers=int(acc.get("followers_count") or 0), verified=False),
        text=text or (html_to_text(reblog.get("content") or "") if reblog else ""),
        created_at=created, lang=str(s.get("language") or ""), url=str(s.get("url") or s.get("uri") or ""),
        conversation_id=_id(s.get("conversation_id") or s.get("in_reply_to_id") or s["id"]),
        in_reply_to_id=_id(s.get("in_reply_to_id") or ""),
        is_repost=bool(reblog), likes=int(s.get("favourites_count") or 0),
        reposts=int(s.get("reblogs_count") or 0), replies=int(s.get("replies_count") or 0),
        # A direct or followers-only post is answered in the same circle (the sender never widens it).
        audience=str(s.get("visibility") or "public") if s.get("visibility") in AUDIENCES else "public",
        hashtags=[str(t["name"]) for t in s.get("tags") or []],
        mentions=[str(m["acct"]).lower() for m in s.get("mentions") or []],
        raw={"id": _id(s["id"]), "uri": s.get("uri"), "visibility": s.get("visibility"), "acct": str(acc["acct"])},
    )


def _paused(api: Any, what: str, now: dt.datetime) -> ListenerPaused:
    reset = getattr(api, "ratelimit_reset", None)
    until = dt.datetime.fromtimestamp(reset, dt.timezone.utc) if reset and reset > now.timestamp() else \
        now + dt.timedelta(minutes=5)
    return ListenerPaused(f"Mastodon rate limit reached on {what}", until,
                          "taiwa asks again after the reset; nothing was lost")


def call(api: Any, fn: Callable[..., Any], what: str, env: str, now: Callable[[], dt.datetime], **kw) -> Any:
    import mastodon

    try:
        return fn(**kw)
    except mastodon.MastodonRatelimitError:
        raise _paused(api, what, now()) from None
    except mastodon.MastodonUnauthorizedError as e:
        raise PlatformAuthError(f"Mastodon refused the token for {what}: {e}", TOKEN_HINT.format(env=env)) from None
    except mastodon.MastodonNetworkError as e:
        raise TaiwaError(f"Mastodon could not be reached for {what}: {e}",
                         "the next run tries again from the same cursor") from None
    except mastodon.MastodonAPIError as e:
        raise TaiwaError(f"Mastodon refused {what}: {e}", "check platforms.mastodon in taiwa.toml") from None


class MastodonListener:
    """kind: "mentions" (notifications of type mention), "hashtag" (a tag timeline) or "search" (keywords)."""

    def __init__(self, api: Any, *, kind: str, server: str, tag: str = "", query: str = "", page_size: int = 40,
                 max_pages: int = 5, env: str = "TAIWA_MASTODON_TOKEN",
                 now: Callable[[], dt.datetime] | None = None):
        if kind not in ("mentions", "hashtag", "search"):
            raise ValueError(kind)
        self.api, self.kind, self.server, self.tag, self.query = api, kind, server, tag, query
        self.page_size, self.max_pages, self.env = page_size, max_pages, env
        self.now = now or clock.system
        self.name = {"mentions": "mastodon:mentions", "hashtag": f"mastodon:hashtag:{tag.lower()}",
                     "search": "mastodon:search"}[kind]

    def _page(self, min_id: str | None) -> tuple[list[Any], str | None, int]:
        """(statuses, the newest item id of the page — a notification id for mentions, items on the page)."""
        kw: dict[str, Any] = {"limit": self.page_size}
        if min_id:
            kw["min_id"] = min_id
        if self.kind == "mentions":
            items = call(self.api, self.api.notifications, "mentions", self.env, self.now, types=["mention"], **kw)
            statuses = [n["status"] for n in items if n.get("type") == "mention" and n.get("status")]
        elif self.kind == "hashtag":
            items = call(self.api, self.api.timeline_hashtag, f"#{self.tag}", self.env, self.now,
                         hashtag=self.tag, **kw)
            statuses = list(items)
        else:
            res = call(self.api, self.api.search_v2, "search", self.env, self.now, q=self.query,
                       result_type="statuses", resolve=False, **kw)
            items = statuses = list(res["statuses"])
        newest = max((int(_id(i["id"])) for i in items), default=None)
        return statuses, (str(newest) if newest is not None else None), len(items)

    def read(self, cursor: str | None) -> Iterator[Batch]:
        min_id = json.loads(cursor)["min_id"] if cursor else None
        first_run = min_id is None
        for _ in range(self.max_pages):
            statuses, newest, n_items = self._page(min_id)
            posts, problems = [], []
            for s in statuses:
                try:
                    posts.append(status_to_post(s, server=self.server))
                except (KeyError, TypeError, ValueError) as e:
                    problems.append(f"{self.name}: status {s.get('id', '?') if hasattr(s, 'get') else '?'}: {e}")
            if newest is None:
                return
            min_id = newest
            yield Batch(posts, json.dumps({"min_id": min_id}), problems, platform="mastodon")
            if first_run or n_items < self.page_size:
                return   # a new stream takes the newest page only; a short page means nothing newer is left


def make_api(config, env: dict | None = None, session=None):
    import mastodon

    m = config.platform("mastodon")
    env = os.environ if env is None else env
    token = env.get(m["access_token_env"])
    if not m["api_base_url"]:
        raise PlatformAuthError("platforms.mastodon.api_base_url is not set",
                                'set it to your server, e.g. api_base_url = "https://mastodon.social"')
    if not token:
        raise PlatformAuthError(f"no Mastodon token: {m['access_token_env']} is not set",
                                TOKEN_HINT.format(env=m["access_token_env"]))
    return mastodon.Mastodon(access_token=token, api_base_url=m["api_base_url"], ratelimit_method="throw",
                             version_check_mode="none", session=session, request_timeout=30)


def server_of(config) -> str:
    return re.sub(r"^https?://", "", config.platform("mastodon")["api_base_url"]).strip("/")


def listeners_from_config(config, api=None, *, now: Callable[[], dt.datetime] | None = None) -> list:
    now = now or config.clock
    m = config.platform("mastodon")
    api = api or make_api(config)
    common = dict(server=server_of(config), page_size=m["page_size"], max_pages=m["max_pages_per_run"],
                  env=m["access_token_env"], now=now)
    out: list = []
    if m["mentions"]:
        out.append(MastodonListener(api, kind="mentions", **common))
    if m["hashtags"]:
        tags = [h for c in config.campaigns if not c.platforms or "mastodon" in c.platforms for h in c.hashtags]
        for tag in dict.fromkeys(tags):
            out.append(MastodonListener(api, kind="hashtag", tag=tag, **common))
    if m["search"]:
        words = [k for b in config.brands for k in b.keywords]
        if words:
            out.append(MastodonListener(api, kind="search", query=" OR ".join(words), **common))
    return out

