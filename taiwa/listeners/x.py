"""X (Twitter) API v2 shapes → normalized Post.

The replay listener uses `page_to_posts` for exported API pages (`data` + `includes.users`); the live
listener on tweepy's Client will use the same mapping.
"""

from __future__ import annotations

from typing import Any

from .base import Author, Post, parse_time

# reply_settings values under which a brand account that was not mentioned may not reply.
RESTRICTED_REPLY_SETTINGS = {"mentionedUsers", "following", "subscribers", "verified"}


def user_to_author(user: dict[str, Any] | None, author_id: str) -> Author:
    if not user:
        return Author(platform_id=str(author_id), handle=str(author_id))
    metrics = user.get("public_metrics") or {}
    return Author(platform_id=str(user.get("id", author_id)), handle=str(user.get("username", author_id)),
                  name=str(user.get("name", "")), followers=int(metrics.get("followers_count", 0) or 0),
                  verified=bool(user.get("verified", False)))


def tweet_to_post(tweet: dict[str, Any], users: dict[str, dict[str, Any]]) -> Post:
    """One v2 tweet object (+ the expanded users by id) → Post. KeyError/ValueError name what is missing."""
    for key in ("id", "text", "author_id", "created_at"):
        if key not in tweet:
            raise ValueError(f"tweet is missing {key!r} (ask for tweet.fields=created_at,author_id)")
    author = user_to_author(users.get(str(tweet["author_id"])), str(tweet["author_id"]))
    refs = {r.get("type"): str(r.get("id")) for r in tweet.get("referenced_tweets") or []}
    metrics = tweet.get("public_metrics") or {}
    entities = tweet.get("entities") or {}
    return Post(
        platform="x",
        platform_id=str(tweet["id"]),
        author=author,
        text=str(tweet["text"]),
        created_at=parse_time(tweet["created_at"]),
        lang=str(tweet.get("lang", "") or ""),
        url=f"https://x.com/{author.handle}/status/{tweet['id']}",
        conversation_id=str(tweet.get("conversation_id", "") or ""),
        in_reply_to_id=refs.get("replied_to", ""),
        is_repost="retweeted" in refs,
        likes=int(metrics.get("like_count", 0) or 0),
        reposts=int(metrics.get("retweet_count", 0) or 0) + int(metrics.get("quote_count", 0) or 0),
        replies=int(metrics.get("reply_count", 0) or 0),
        can_reply=tweet.get("reply_settings", "everyone") not in RESTRICTED_REPLY_SETTINGS,
        hashtags=[h["tag"] for h in entities.get("hashtags", []) if "tag" in h],
        mentions=[m["username"].lower() for m in entities.get("mentions", []) if "username" in m],
        raw=tweet,
    )


def is_api_page(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("data"), list)


def page_to_posts(page: dict[str, Any]) -> tuple[list[Post], list[str]]:
    """A v2 response page → (posts, problems). A bad tweet is reported by id; the others are kept."""
    users = {str(u["id"]): u for u in (page.get("includes") or {}).get("users", []) if "id" in u}
    posts, problems = [], []
    for i, tweet in enumerate(page["data"]):
        try:
            posts.append(tweet_to_post(tweet, users))
        except (KeyError, ValueError, TypeError) as e:
            problems.append(f"tweet #{i} (id {tweet.get('id', '?') if isinstance(tweet, dict) else '?'}): {e}")
    return posts, problems
