"""Instagram through instaloader (4.x): campaign hashtags, posts that tag the brand, comments on the brand's posts.

Streams, each a listener with its own cursor in the store:
    instagram:hashtag:<tag>      Hashtag.get_posts_resumable()      (a NodeIterator)
    instagram:tagged:<handle>    Profile.get_tagged_posts()         (a NodeIterator)
    instagram:comments:<handle>  comments on the brand's newest own posts (Profile.get_posts → Post.get_comments)

Resuming. A NodeIterator stream's cursor is JSON:
    {"stop_at": T}                              caught up: the next run reads newest-first down to time T
    {"stop_at": T, "newest": N, "frozen": {…}}  mid-way (interrupted, or the per-run cap was reached): the next
                                                run thaws instaloader's frozen iterator and goes on from there
Each batch is committed with the cursor that follows it. instaloader's freeze() re-yields the last item on
thaw; the store upserts on (platform, id), so that item is stored once.

Politeness. instaloader's RateController keeps its per-query sliding windows; taiwa's subclass lets it sleep
only briefly and turns a long wait, a 429, or Instagram's "Please wait a few minutes" into ListenerPaused:
the run ends cleanly with what it read, the store records until when to wait, and the next run honours it.
Posts per run are capped (platforms.instagram.max_posts_per_run).

Login: a session file made by `instaloader --login YOUR_ACCOUNT` (named in taiwa.toml); taiwa never sees or
stores the password. Hashtag and tagged listings need it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .. import clock
from ..errors import ConfigError, ListenerPaused, PlatformAuthError, TaiwaError
from .base import Author, Batch, Post, extract_hashtags

LOGIN_HINT = ("make a session file once with `instaloader --login YOUR_ACCOUNT` (it asks for the password and "
              "keeps only the session cookie), then set platforms.instagram.session_file and username")
WAIT_A_FEW_MINUTES = "please wait a few minutes"
BATCH = 12  # instaloader's GraphQL page length: one batch per page


class MustWait(Exception):
    """Raised inside instaloader (not a ConnectionException, so it is never retried there)."""

    def __init__(self, seconds: float, why: str):
        super().__init__(why)
        self.seconds, self.why = seconds, why


def polite_rate_controller(max_sleep: float, sleep: Callable[[float], None] = time.sleep):
    """instaloader's RateController, allowed to sleep at most `max_sleep` seconds; anything longer (and every
    429) ends the run with the time to wait."""
    from instaloader import RateController

    class Polite(RateController):
        def sleep(self, secs: float) -> None:
            if secs > max_sleep:
                raise MustWait(secs, f"instaloader's rate control asks to wait {secs / 60:.0f} minutes")
            sleep(secs)

        def handle_429(self, query_type: str) -> None:
            wait = self.query_waittime(query_type, time.monotonic(), True)
            raise MustWait(max(wait, 15 * 60), "Instagram answered 429 Too Many Requests")

    return Polite


def make_loader(*, session_file: str | Path | None, username: str, max_sleep: float = 30.0,
                sleep: Callable[[float], None] = time.sleep, polite_pauses: bool = True):
    """An Instaloader that downloads nothing, keeps quiet, and loads the session file when one is named."""
    import instaloader

    controller = polite_rate_controller(max_sleep, sleep)
    loader = instaloader.Instaloader(
        sleep=polite_pauses, quiet=True, download_pictures=False, download_videos=False,
        download_video_thumbnails=False, download_geotags=False, download_comments=False,
        save_metadata=False, compress_json=False, max_connection_attempts=2,
        rate_controller=lambda ctx: controller(ctx))
    if session_file:
        path = Path(session_file).expanduser()
        if not path.exists():
            raise PlatformAuthError(f"the Instagram session file {path} does not exist", LOGIN_HINT)
        if not username:
            raise ConfigError("taiwa.toml", "platforms.instagram.username", "a session file needs its account name",
                              "set username to the account you logged in with")
        try:
            loader.load_session_from_file(username, str(path))
        except Exception as e:  # noqa: BLE001 - pickle errors of every kind: the file is not a session
            raise PlatformAuthError(f"cannot read the Instagram session file {path}: {e}", LOGIN_HINT) from None
    return loader


# --------------------------------------------------------------------------- mapping
def _count(node: dict[str, Any], *keys: str) -> int:
    for k in keys:
        v = node.get(k)
        if isinstance(v, dict) and isinstance(v.get("count"), int):
            return v["count"]
        if isinstance(v, int):
            return v
    return 0


def post_to_post(p: Any) -> Post:
    """An instaloader Post → Post, from the node it already holds (no extra request per post).

    Hashtag listings often carry only the owner's id; the handle is then "user<id>" until a later stream
    (tagged posts, comments) brings the name."""
    node = p._node  # the GraphQL node instaloader was given; reading it never triggers a request
    owner = node.get("owner") or {}
    owner_id = str(owner.get("id") or owner.get("pk") or "")
    if not owner_id:
        raise ValueError(f"post {node.get('shortcode', '?')} has no owner (private or removed?)")
    handle = str(owner.get("username") or f"user{owner_id}")
    caption = p.caption or ""
    taken = node.get("taken_at_timestamp") or node.get("taken_at")
    if not isinstance(taken, (int, float)):
        raise ValueError(f"post {p.shortcode} has no taken_at_timestamp")
    return Post(
        platform="instagram", platform_id=p.shortcode,
        author=Author(platform_id=owner_id, handle=handle, name=str(owner.get("full_name") or ""),
                      followers=_count(owner, "edge_followed_by", "follower_count"),
                      verified=bool(owner.get("is_verified"))),
        text=caption, created_at=dt.datetime.fromtimestamp(taken, dt.timezone.utc),
        url=f"https://www.instagram.com/p/{p.shortcode}/", conversation_id=p.shortcode,
        likes=_count(node, "edge_liked_by", "edge_media_preview_like", "like_count"),
        replies=_count(node, "edge_media_to_comment", "edge_media_to_parent_comment", "comment_count"),
        can_reply=not node.get("comments_disabled", False),
        hashtags=extract_hashtags(caption), raw={"kind": "media", "id": str(node.get("id", "")), **_slim(node)})


def _slim(node: dict[str, Any]) -> dict[str, Any]:
    """The node without its heavy, re-fetchable parts (thumbnails, comment pages)."""
    drop = {"display_resources", "thumbnail_resources", "edge_media_to_parent_comment", "edge_media_to_comment",
            "edge_sidecar_to_children", "iphone_struct"}
    return {k: v for k, v in node.items() if k not in drop}


def comment_to_post(c: Any, post: Any, *, parent_id: str = "") -> Post:
    """A PostComment (or an answer to one) → Post. It carries the post it belongs to (conversation_id) and,
    for an answer, the comment it answers (in_reply_to_id)."""
    owner = c.owner
    node = getattr(owner, "_node", {}) or {}
    text = c.text or ""
    created = c.created_at_utc.replace(tzinfo=dt.timezone.utc)
    return Post(
        platform="instagram", platform_id=str(c.id),
        author=Author(platform_id=str(node.get("id") or node.get("pk") or owner.username),
                      handle=str(owner.username), name=str(node.get("full_name") or ""),
                      verified=bool(node.get("is_verified"))),
        text=text, created_at=created,
        url=f"https://www.instagram.com/p/{post.shortcode}/c/{c.id}/",
        conversation_id=post.shortcode, in_reply_to_id=parent_id or post.shortcode,
        likes=int(getattr(c, "likes_count", 0) or 0), hashtags=extract_hashtags(text),
        raw={"kind": "comment", "id": str(c.id), "post": post.shortcode, "parent": parent_id, "text": text})


# --------------------------------------------------------------------------- errors
def _translate(e: BaseException, what: str, now: dt.datetime) -> TaiwaError | None:
    """instaloader's exceptions → taiwa's. None: not ours to translate."""
    import instaloader.exceptions as ie

    if isinstance(e, MustWait):
        return ListenerPaused(f"Instagram: {e.why} on {what}", now + dt.timedelta(seconds=e.seconds),
                              "taiwa asks again after that; what was read so far is kept")
    if isinstance(e, ie.LoginRequiredException):
        return PlatformAuthError(f"Instagram needs a login for {what}", LOGIN_HINT)
    if isinstance(e, ie.ConnectionException) and WAIT_A_FEW_MINUTES in str(e).lower():
        return ListenerPaused(f"Instagram asked us to wait a few minutes on {what}",
                              now + dt.timedelta(minutes=30), "taiwa asks again in 30 minutes; nothing was lost")
    if isinstance(e, ie.TooManyRequestsException):
        return ListenerPaused(f"Instagram answered 429 Too Many Requests on {what}",
                              now + dt.timedelta(minutes=15), "taiwa asks again later; nothing was lost")
    if isinstance(e, (ie.AbortDownloadException,)):
        return PlatformAuthError(f"Instagram stopped {what}: {e}",
                                 "log in to the account in a browser, settle any checkpoint, then make a new "
                                 "session file with `instaloader --login`")
    if isinstance(e, ie.ConnectionException):
        return TaiwaError(f"Instagram failed on {what}: {e}", "the next run tries again from the same cursor")
    return None


# --------------------------------------------------------------------------- listeners
class NodeStreamListener:
    """A hashtag or tagged-posts stream over an instaloader NodeIterator, resumable by freeze/thaw."""

    def __init__(self, name: str, make_iterator: Callable[[], Any], *, max_posts: int,
                 floor: dt.datetime | None = None, now: Callable[[], dt.datetime] | None = None):
        self.name, self.make_iterator, self.max_posts = name, make_iterator, max_posts
        self.floor = floor.timestamp() if floor else None   # a new stream reads back to here, not further
        self.now = now or clock.system

    def read(self, cursor: str | None) -> Iterator[Batch]:
        from instaloader import FrozenNodeIterator
        from instaloader.exceptions import InvalidArgumentException

        state = json.loads(cursor) if cursor else {"stop_at": self.floor}
        stop_at, newest = state.get("stop_at"), state.get("newest")
        problems: list[str] = []
        try:
            it = self.make_iterator()
            if state.get("frozen"):
                try:
                    it.thaw(FrozenNodeIterator(**state["frozen"]))
                except (InvalidArgumentException, TypeError) as e:
                    problems.append(f"{self.name}: could not resume ({e}); starting again from the newest posts")
                    it = self.make_iterator()
            posts: list[Post] = []
            read = 0
            for p in it:
                read += 1
                taken = p._node.get("taken_at_timestamp") or p._node.get("taken_at") or 0
                if newest is None or taken > newest:
                    newest = taken
                if stop_at is not None and taken <= stop_at:
                    break   # reached what an earlier run already read (the listing is newest first)
                try:
                    posts.append(post_to_post(p))
                except (ValueError, KeyError, TypeError) as e:
                    problems.append(f"{self.name}: {e}")
                if len(posts) + len(problems) >= BATCH:
                    yield Batch(posts, json.dumps({"stop_at": stop_at, "newest": newest,
                                                   "frozen": it.freeze()._asdict()}), problems,
                                platform="instagram")
                    posts, problems = [], []
                if read >= self.max_posts:
                    # The cap: stop here, and continue from this point next run.
                    yield Batch(posts, json.dumps({"stop_at": stop_at, "newest": newest,
                                                   "frozen": it.freeze()._asdict()}),
                                problems + [f"{self.name}: stopped at the cap of {self.max_posts} posts per run; "
                                            "the next run goes on from here"], platform="instagram")
                    return
            yield Batch(posts, json.dumps({"stop_at": newest if newest is not None else stop_at}), problems,
                        platform="instagram")
        except Exception as e:  # noqa: BLE001 - instaloader raises many kinds; translated or re-raised
            err = _translate(e, self.name, self.now())
            if err is None:
                raise
            raise err from None


class CommentsListener:
    """Comments (and answers) on the brand's newest own posts: the mentions that most need replies there."""

    def __init__(self, name: str, own_posts: Callable[[], Iterable[Any]], *, posts_checked: int, max_posts: int,
                 now: Callable[[], dt.datetime] | None = None):
        self.name, self.own_posts, self.posts_checked, self.max_posts = name, own_posts, posts_checked, max_posts
        self.now = now or clock.system

    def read(self, cursor: str | None) -> Iterator[Batch]:
        import instaloader.exceptions as ie

        seen: dict[str, float] = json.loads(cursor)["seen"] if cursor else {}
        total = 0
        try:
            for i, post in enumerate(self.own_posts()):
                if i >= self.posts_checked:
                    break
                posts, problems = [], []
                since = seen.get(post.shortcode, 0.0)
                newest = since
                try:
                    for c in post.get_comments():
                        items = [(c, "")] + [(a, str(c.id)) for a in (c.answers or [])]
                        for item, parent in items:
                            ts = item.created_at_utc.replace(tzinfo=dt.timezone.utc).timestamp()
                            if ts <= since:
                                continue
                            newest = max(newest, ts)
                            try:
                                posts.append(comment_to_post(item, post, parent_id=parent))
                            except (ValueError, KeyError, TypeError, AttributeError) as e:
                                problems.append(f"{self.name}: comment {getattr(item, 'id', '?')} on "
                                                f"{post.shortcode}: {e}")
                except (ie.QueryReturnedNotFoundException, ie.PrivateProfileNotFollowedException) as e:
                    problems.append(f"{self.name}: post {post.shortcode} is gone or private ({e}); skipped")
                seen[post.shortcode] = newest
                total += len(posts)
                # Keep the cursor small: only the posts still being watched.
                yield Batch(posts, json.dumps({"seen": seen}), problems, platform="instagram")
                if total >= self.max_posts:
                    return
        except Exception as e:  # noqa: BLE001
            err = _translate(e, self.name, self.now())
            if err is None:
                raise
            raise err from None


def listeners_from_config(config, loader=None, *, own_posts: Callable[[str], Iterable[Any]] | None = None,
                          now: Callable[[], dt.datetime] | None = None) -> list:
    """The streams taiwa.toml asks for: one per campaign hashtag (campaigns for Instagram), tagged posts and
    comments for each brand handle."""
    now = now or config.clock
    from instaloader import Hashtag, Profile

    ig = config.platform("instagram")
    if loader is None:
        if not ig["session_file"]:
            raise PlatformAuthError("Instagram hashtag and tagged listings need a login: "
                                    "platforms.instagram.session_file is not set", LOGIN_HINT)
        loader = make_loader(session_file=config.resolve(ig["session_file"]), username=ig["username"])
    ctx = loader.context
    cap = ig["max_posts_per_run"]
    today = (now or config.clock)()
    back = today - dt.timedelta(days=ig["first_run_days"])
    out: list = []
    if ig["hashtags"]:
        starts: dict[str, dt.datetime] = {}
        for c in config.campaigns:
            if c.platforms and "instagram" not in c.platforms:
                continue
            start = c.starts_at.astimezone(dt.timezone.utc)
            for tag in (h.lower().lstrip("#") for h in c.hashtags):
                starts[tag] = min(starts.get(tag, start), start)
        for tag, start in starts.items():
            out.append(NodeStreamListener(f"instagram:hashtag:{tag}",
                                          lambda tag=tag: Hashtag.from_name(ctx, tag).get_posts_resumable(),
                                          max_posts=cap, floor=start, now=now))
    handles = ig["handles"] or [h.lstrip("@") for b in config.brands for h in b.handles]
    for handle in handles:
        if ig["tagged"]:
            out.append(NodeStreamListener(f"instagram:tagged:{handle}",
                                          lambda h=handle: Profile.from_username(ctx, h).get_tagged_posts(),
                                          max_posts=cap, floor=back, now=now))
        if ig["comments"]:
            lister = (lambda h=handle: own_posts(h)) if own_posts else \
                (lambda h=handle: Profile.from_username(ctx, h).get_posts())
            out.append(CommentsListener(f"instagram:comments:{handle}", lister,
                                        posts_checked=ig["own_posts_checked"], max_posts=cap,
                                        now=now))
    return out
