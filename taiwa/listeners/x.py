"""X (Twitter) through tweepy's v2 Client: recent search and brand mentions, and the v2 → Post mapping.

Platform JSON stays in this module. The replay listener uses `page_to_posts` for exported API pages
(`data` + `includes.users`); the live listeners below use the same mapping on what tweepy returns.

Each stream (the search query; each brand account's mentions) is its own listener with its own cursor:
    {"since_id": S}                                   caught up: next run asks only for posts newer than S
    {"since_id": S, "newest": N, "next_token": T}     mid-way down the pages of a run (crash or page cap):
                                                      the next run continues paging from T, then moves to N
Each page is committed with the cursor that follows it, so a crash neither loses nor duplicates posts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import requests

from .. import clock
from ..errors import ConfigError, ListenerPaused, PlatformAuthError, TaiwaError
from .base import Author, Batch, Post, parse_time

log = logging.getLogger(__name__)
# tweepy logs request headers (the bearer token) at DEBUG: keep its logger above that whatever the app sets.
logging.getLogger("tweepy").setLevel(logging.INFO)

TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang",
                "public_metrics", "entities", "reply_settings", "withheld", "note_tweet"]
USER_FIELDS = ["username", "name", "public_metrics", "verified"]
READ_LEVEL = ("reading needs an app bearer token (Basic access or above for recent search and mentions): "
              "export {env}=... from your app's Keys and tokens page")

# reply_settings values under which a brand account that was not mentioned may not reply.
RESTRICTED_REPLY_SETTINGS = {"mentionedUsers", "following", "subscribers", "verified"}


def _table(value: Any, what: str) -> dict[str, Any]:
    """A JSON object the API promises, or ValueError naming what came instead (an export of the wrong shape)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _count(metrics: dict[str, Any], key: str) -> int:
    value = metrics.get(key, 0) or 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"public_metrics.{key} must be a number, got {value!r}")
    return int(value)


def user_to_author(user: dict[str, Any] | None, author_id: str) -> Author:
    if not user:
        return Author(platform_id=str(author_id), handle=str(author_id))
    metrics = _table(user.get("public_metrics"), "user public_metrics")
    return Author(platform_id=str(user.get("id", author_id)), handle=str(user.get("username", author_id)),
                  name=str(user.get("name", "")), followers=_count(metrics, "followers_count"),
                  verified=bool(user.get("verified", False)))


def _names(items: Any, key: str, what: str) -> list[str]:
    """entities.hashtags[].tag / entities.mentions[].username as text; anything else is named."""
    if not isinstance(items, list):
        raise ValueError(f"entities.{what} must be a list, got {type(items).__name__}")
    out = []
    for item in items:
        value = item.get(key) if isinstance(item, dict) else None
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"entities.{what}[].{key} must be text, got {value!r}")
        out.append(value)
    return out


def tweet_to_post(tweet: dict[str, Any], users: dict[str, dict[str, Any]], own_handles: frozenset[str] = frozenset()
                  ) -> Post:
    """One v2 tweet object (+ the expanded users by id) → Post. ValueError names what is missing or misshapen.

    A long post (over 280 characters) carries its whole text in `note_tweet` (asked for in TWEET_FIELDS); `text`
    then holds only the first 280, so the note's text and entities win.

    own_handles: the brand's accounts (lower case). A post whose author lets only the accounts it mentions reply
    (reply_settings "mentionedUsers") may be answered when it mentions one of them, as mentions of the brand do."""
    if not isinstance(tweet, dict):
        raise ValueError(f"a tweet must be an object, got {type(tweet).__name__}")
    for key in ("id", "text", "author_id", "created_at"):
        if key not in tweet:
            raise ValueError(f"tweet is missing {key!r} (ask for tweet.fields=created_at,author_id)")
    author = user_to_author(users.get(str(tweet["author_id"])), str(tweet["author_id"]))
    refs_raw = tweet.get("referenced_tweets") or []
    if not isinstance(refs_raw, list) or not all(isinstance(r, dict) for r in refs_raw):
        raise ValueError("referenced_tweets must be a list of objects")
    refs = {r.get("type"): str(r.get("id")) for r in refs_raw}
    metrics = _table(tweet.get("public_metrics"), "public_metrics")
    note = _table(tweet.get("note_tweet"), "note_tweet")
    text = note.get("text") if isinstance(note.get("text"), str) and note.get("text") else tweet["text"]
    if not isinstance(text, str):
        raise ValueError(f"text must be text, got {type(text).__name__}")
    entities = _table(note.get("entities") if note.get("entities") else tweet.get("entities"), "entities")
    post = Post(
        platform="x",
        platform_id=str(tweet["id"]),
        author=author,
        text=text,
        created_at=parse_time(tweet["created_at"]),
        lang=str(tweet.get("lang", "") or ""),
        url=f"https://x.com/{author.handle}/status/{tweet['id']}",
        conversation_id=str(tweet.get("conversation_id", "") or ""),
        in_reply_to_id=refs.get("replied_to", ""),
        is_repost="retweeted" in refs,
        likes=_count(metrics, "like_count"),
        reposts=_count(metrics, "retweet_count") + _count(metrics, "quote_count"),
        replies=_count(metrics, "reply_count"),
        can_reply=tweet.get("reply_settings", "everyone") not in RESTRICTED_REPLY_SETTINGS,
        hashtags=_names(entities.get("hashtags", []), "tag", "hashtags"),
        mentions=[m.lower() for m in _names(entities.get("mentions", []), "username", "mentions")],
        raw=tweet,
    )
    if tweet.get("reply_settings") == "mentionedUsers" and own_handles & set(post.mentions):
        post.can_reply = True
    return post


def is_api_page(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("data"), list)


def page_to_posts(page: dict[str, Any], own_handles: frozenset[str] = frozenset()) -> tuple[list[Post], list[str]]:
    """A v2 response page → (posts, problems). A bad tweet or user is reported by position; the others are kept."""
    problems: list[str] = []
    includes = page.get("includes") or {}
    if not isinstance(includes, dict):
        problems.append(f"includes must be an object, got {type(includes).__name__}; authors are unknown")
        includes = {}
    user_list = includes.get("users") or []
    if not isinstance(user_list, list):
        problems.append(f"includes.users must be a list, got {type(user_list).__name__}; authors are unknown")
        user_list = []
    users = {}
    for i, u in enumerate(user_list):
        if isinstance(u, dict) and "id" in u:
            users[str(u["id"])] = u
        else:
            problems.append(f"includes.users #{i} is not a user object ({type(u).__name__}); skipped")
    posts = []
    for i, tweet in enumerate(page["data"]):
        try:
            posts.append(tweet_to_post(tweet, users, own_handles))
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            problems.append(f"tweet #{i} (id {tweet.get('id', '?') if isinstance(tweet, dict) else '?'}): {e}")
    return posts, problems


# --------------------------------------------------------------------------- query
def build_query(config) -> str:
    """The recent-search query from taiwa.toml: keywords, @handles, #hashtags; own posts and retweets out.

    ConfigError when it is longer than the access level allows (512 characters; 1024 on Pro)."""
    x = config.platform("x")
    terms: list[str] = []
    for b in config.brands:
        terms += [f'"{k}"' if " " in k else k for k in b.keywords]
        terms += [f"@{h.lstrip('@')}" for h in b.handles]
    for c in config.campaigns:
        if not c.platforms or "x" in c.platforms:
            terms += [f"#{h}" for h in c.hashtags]
    terms = list(dict.fromkeys(terms))
    if not terms:
        raise ConfigError(str(config.path or "taiwa.toml"), "brands", "nothing to search for on X",
                          "add keywords or handles to [[brands]], or hashtags to [[campaigns]]")
    query = "(" + " OR ".join(terms) + ")" if len(terms) > 1 else terms[0]
    query += "".join(f" -from:{h.lstrip('@')}" for b in config.brands for h in b.handles)
    if x["exclude_retweets"]:
        query += " -is:retweet"
    if x["languages"]:
        langs = [f"lang:{lang}" for lang in x["languages"]]
        query += " " + ("(" + " OR ".join(langs) + ")" if len(langs) > 1 else langs[0])
    limit = x["query_max_length"]
    if len(query) > limit:
        raise ConfigError(str(config.path or "taiwa.toml"), "platforms.x",
                          f"the search query is {len(query)} characters; your access level allows {limit}",
                          "drop keywords or hashtags, or set platforms.x.query_max_length = 1024 on Pro access")
    return query


# --------------------------------------------------------------------------- budget and errors
@dataclass(frozen=True)
class Reservation:
    """Reads or writes taken from one month's budget: what is given back goes back to that month, whatever
    the clock says by then (a page reserved at 23:59:59 on the 30th and settled after midnight)."""

    n: int
    at: dt.datetime


class Budget:
    """The month's read/write allowance for X (it bills per post read and per post written)."""

    def __init__(self, store, *, reads: int, writes: int, now: Callable[[], dt.datetime] | None = None):
        self.store, self.max_reads, self.max_writes = store, reads, writes
        self.now = now or clock.system

    def _next_month(self) -> dt.datetime:
        n = self.now()
        return dt.datetime(n.year + (n.month == 12), n.month % 12 + 1, 1, tzinfo=dt.timezone.utc)

    # Reservations are atomic (store.reserve_usage): workers on several machines share one month's budget, and
    # two of them checking "40 of 50 used" at once must not both read a page of 10.
    def reserve_read(self, want: int) -> Reservation:
        """Take a page's worth of reads before asking for it; the batch gives back what the page did not use
        (Batch.reserved, in the reservation's month), and a failed request gives it all back (release_read)."""
        at = self.now()
        if self.store.reserve_usage("x", "reads", want, self.max_reads, at) is None:
            used = self.store.usage("x", at)["reads"]
            raise ListenerPaused(f"X read budget: {used} of {self.max_reads} posts read this month",
                                 self._next_month(), "raise platforms.x.monthly_read_budget to read more")
        return Reservation(want, at)

    def release_read(self, r: Reservation) -> None:
        if r.n:
            self.store.add_usage("x", reads=-r.n, at=r.at)

    def reserve_write(self) -> Reservation:
        at = self.now()
        if self.store.reserve_usage("x", "writes", 1, self.max_writes, at) is None:
            used = self.store.usage("x", at)["writes"]
            raise TaiwaError(f"X write budget: {used} of {self.max_writes} posts written this month",
                             "raise platforms.x.monthly_write_budget, or wait for next month")
        return Reservation(1, at)

    def release_write(self, r: Reservation) -> None:
        self.store.add_usage("x", writes=-r.n, at=r.at)


def _reset_from(headers: Any, fallback: dt.datetime) -> dt.datetime:
    """When a 429 lifts: the endpoint window, or the 24-hour user/app window when that one is spent."""
    resets = []
    for key in ("x-rate-limit-reset",):
        if headers.get(key):
            resets.append(int(headers[key]))
    for scope in ("user", "app"):
        if headers.get(f"x-{scope}-limit-24hour-remaining") == "0" and headers.get(f"x-{scope}-limit-24hour-reset"):
            resets.append(int(headers[f"x-{scope}-limit-24hour-reset"]))
    return dt.datetime.fromtimestamp(max(resets), dt.timezone.utc) if resets else fallback


def call_x(fn: Callable[..., Any], *, what: str, env: str, sleep: Callable[[float], None] = time.sleep,
           now: Callable[[], dt.datetime] | None = None, retries: int = 3, **params) -> dict:
    """One X API call through tweepy, with its errors made human. 5xx: bounded retries with backoff (seconds,
    never minutes); 429 → ListenerPaused with the reset time; 401/403 → PlatformAuthError naming `env`."""
    import tweepy

    now = now or clock.system
    for attempt in range(retries + 1):
        try:
            return fn(**params)
        except tweepy.TooManyRequests as e:
            until = _reset_from(e.response.headers, now() + dt.timedelta(minutes=15))
            raise ListenerPaused(f"X rate limit reached on {what}", until,
                                 "taiwa asks again after the reset time; nothing was lost") from None
        except tweepy.Unauthorized:
            raise PlatformAuthError(f"X refused the credentials for {what} (401 Unauthorized)",
                                    f"check {env}: " + READ_LEVEL.format(env=env)) from None
        except tweepy.Forbidden as e:
            detail = "; ".join(e.api_messages) or "403 Forbidden"
            raise PlatformAuthError(f"X does not allow {what} with these credentials: {detail}",
                                    f"{env} needs an access level that includes this endpoint "
                                    "(recent search and mentions: Basic or above)") from None
        except (requests.ConnectionError, requests.Timeout) as e:
            if attempt == retries:
                raise TaiwaError(f"X could not be reached for {what} ({type(e).__name__})",
                                 "check the network; the next run tries again from the same cursor") from None
            sleep(2 ** attempt)
        except tweepy.TwitterServerError as e:
            if attempt == retries:
                raise TaiwaError(f"X kept failing on {what} ({e.response.status_code} after {retries + 1} tries)",
                                 "X is having trouble; the next run tries again from the same cursor") from None
            sleep(2 ** attempt)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- listeners
class XListener:
    """One X stream: `kind` "search" (recent search for a query) or "mentions" (of one account id)."""

    def __init__(self, client, *, kind: str, budget: Budget, query: str = "", user_id: str = "",
                 handle: str = "", page_size: int = 100, max_pages: int = 5, env: str = "TAIWA_X_BEARER_TOKEN",
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], dt.datetime] | None = None,
                 own_handles: frozenset[str] = frozenset()):
        if kind not in ("search", "mentions"):
            raise ValueError(kind)
        self.own_handles = own_handles
        self.client, self.kind, self.budget = client, kind, budget
        self.query, self.user_id, self.handle = query, user_id, handle
        self.page_size, self.max_pages, self.env, self.sleep = page_size, max_pages, env, sleep
        self.now = now or clock.system
        self.name = "x:search" if kind == "search" else f"x:mentions:{handle or user_id}"

    def _request(self, since_id: str | None, token: str | None) -> dict:
        params: dict[str, Any] = {"max_results": self.page_size, "expansions": ["author_id"],
                                  "tweet_fields": TWEET_FIELDS, "user_fields": USER_FIELDS}
        if since_id:
            params["since_id"] = since_id
        if self.kind == "search":
            # sort_order=relevancy would return no next_token: taiwa always pages by recency (the default).
            if token:
                params["next_token"] = token
            return call_x(self.client.search_recent_tweets, what="recent search", env=self.env, sleep=self.sleep,
                          now=self.now, query=self.query, **params)
        if token:
            params["pagination_token"] = token
        return call_x(self.client.get_users_mentions, what=f"mentions of @{self.handle}", env=self.env,
                      sleep=self.sleep, now=self.now, id=self.user_id, **params)

    def read(self, cursor: str | None) -> Iterator[Batch]:
        import tweepy

        state = json.loads(cursor) if cursor else {}
        since_id, newest, token = state.get("since_id"), state.get("newest"), state.get("next_token")
        for _ in range(self.max_pages):
            reserved = self.budget.reserve_read(self.page_size)
            problems: list[str] = []
            try:
                try:
                    page = self._request(since_id, token)
                except tweepy.BadRequest as e:
                    if since_id and any("since_id" in m for m in e.api_messages):
                        # Recent search and mentions only reach back so far; an old since_id is refused outright.
                        problems.append(f"{self.name}: since_id {since_id} is older than the API's window "
                                        "(recent search covers 7 days); starting again from the newest posts")
                        since_id, newest, token = None, None, None
                        page = self._request(None, None)
                    else:
                        raise TaiwaError(f"X rejected the {self.kind} request: {'; '.join(e.api_messages)}",
                                         "check platforms.x settings (query, languages)") from None
            except BaseException:
                self.budget.release_read(reserved)   # nothing came back, nothing is billed
                raise
            posts, bad = page_to_posts(page, self.own_handles) if isinstance(page.get("data"), list) else ([], [])
            problems += [f"{self.name}: {b}" for b in bad]
            problems += [f"{self.name}: {err.get('title', 'error')}: {err.get('detail', '')}"
                         for err in page.get("errors", []) if isinstance(err, dict)]
            problems += [f"{self.name}: tweet {p.platform_id} is withheld in "
                         f"{','.join(p.raw['withheld'].get('country_codes', [])) or 'some countries'}"
                         for p in posts if isinstance(p.raw.get("withheld"), dict)]
            meta = page.get("meta", {})
            if newest is None and meta.get("newest_id"):
                newest = meta["newest_id"]   # the first page of a run holds the newest posts
            token = meta.get("next_token")
            if token:
                next_cursor = {"since_id": since_id, "newest": newest, "next_token": token}
            else:
                next_cursor = {"since_id": newest or since_id}
            yield Batch(posts, json.dumps(next_cursor), problems, reads=len(page.get("data") or []),
                        platform="x", reserved=reserved.n, reserved_at=reserved.at)
            if not token:
                return


def make_client(env: dict | None = None, *, bearer_env: str = "TAIWA_X_BEARER_TOKEN", consumer_key_env: str = "",
                consumer_secret_env: str = "", access_token_env: str = "", access_token_secret_env: str = ""):
    """A tweepy Client from environment variables (never from files). wait_on_rate_limit is off: a 429 must
    end the run, not sleep a worker for 15 minutes."""
    import tweepy

    env = os.environ if env is None else env
    return tweepy.Client(bearer_token=env.get(bearer_env) or None,
                         consumer_key=env.get(consumer_key_env) or None,
                         consumer_secret=env.get(consumer_secret_env) or None,
                         access_token=env.get(access_token_env) or None,
                         access_token_secret=env.get(access_token_secret_env) or None,
                         return_type=dict, wait_on_rate_limit=False)


def listeners_from_config(config, store, client=None, *, env: dict | None = None,
                          sleep: Callable[[float], None] = time.sleep,
                          now: Callable[[], dt.datetime] | None = None) -> list[XListener]:
    """The search listener and one mentions listener per brand handle, as taiwa.toml asks."""
    now = now or config.clock
    x = config.platform("x")
    env = os.environ if env is None else env
    bearer_env = x["bearer_token_env"]
    if client is None:
        if not env.get(bearer_env):
            raise PlatformAuthError(f"no X bearer token: the environment variable {bearer_env} is not set",
                                    READ_LEVEL.format(env=bearer_env))
        client = make_client(env, bearer_env=bearer_env)
    budget = Budget(store, reads=x["monthly_read_budget"], writes=x["monthly_write_budget"], now=now)
    common = dict(budget=budget, page_size=x["page_size"], max_pages=x["max_pages_per_run"], env=bearer_env,
                  sleep=sleep, now=now, own_handles=frozenset(config.brand_handles))
    out: list[XListener] = []
    if x["search"]:
        out.append(XListener(client, kind="search", query=build_query(config), **common))
    if x["mentions"]:
        handles = [h.lstrip("@") for b in config.brands for h in b.handles]
        for handle, user_id in resolve_user_ids(client, store, handles, env=bearer_env).items():
            out.append(XListener(client, kind="mentions", user_id=user_id, handle=handle, **common))
    return out


def resolve_user_ids(client, store, handles: list[str], *, env: str) -> dict[str, str]:
    """Brand handles → X user ids, looked up once and kept in the store (cursor 'x:user-ids')."""
    known = json.loads(store.cursor("x:user-ids") or "{}")
    missing = [h for h in handles if h.lower() not in known]
    if missing:
        resp = call_x(client.get_users, what="user lookup", env=env, usernames=missing)
        for u in resp.get("data", []):
            known[u["username"].lower()] = u["id"]
        store.ingest([], listener="x:user-ids", cursor=json.dumps(known))
    unknown = [h for h in handles if h.lower() not in known]
    if unknown:
        raise ConfigError("taiwa.toml", "brands.handles", f"X has no account named {', '.join(unknown)}",
                          "check the spelling of the handles in [[brands]]")
    return {h: known[h.lower()] for h in handles}
