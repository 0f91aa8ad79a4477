"""Replies and likes on Bluesky through the atproto SDK, at most once.

A reply needs its thread's root and its parent (uri + cid each); the listener stored both with the post. The
300-grapheme limit is checked at approval (drafts.reply_length) and again here.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import SendError, SendUncertain
from .drafts import reply_length


class BlueskySender:
    def __init__(self, client, store, *, repo: str):
        self.client, self.store, self.repo = client, store, repo

    def send(self, action: dict[str, Any]) -> str:
        from atproto import models
        from atproto_client.exceptions import NetworkError, RequestErrorBase

        raw = json.loads(self.store.post(action["post_id"])["raw"] or "{}")
        if not raw.get("uri") or not raw.get("cid"):
            raise SendError(f"action {action['id']}: the post has no uri/cid to answer", "reject it")
        parent = models.ComAtprotoRepoStrongRef.Main(uri=raw["uri"], cid=raw["cid"])
        try:
            if action["kind"] == "reply":
                length, limit = reply_length("bluesky", action["text"])
                if length > limit:
                    raise SendError(f"action {action['id']}: {length} graphemes is over Bluesky's {limit}")
                root = models.ComAtprotoRepoStrongRef.Main(uri=raw.get("root_uri") or raw["uri"],
                                                           cid=raw.get("root_cid") or raw["cid"])
                resp = self.client.send_post(text=action["text"], profile_identify=self.repo,
                                             reply_to=models.AppBskyFeedPost.ReplyRef(parent=parent, root=root))
                return str(resp.uri)
            record = models.AppBskyFeedLike.Record(created_at=self.client.get_current_time_iso(), subject=parent)
            return str(self.client.app.bsky.feed.like.create(self.repo, record).uri)
        except NetworkError as e:
            raise SendUncertain(f"Bluesky did not answer clearly ({e}); the reply may exist",
                                "look at the thread on Bluesky, then `taiwa check ID --sent` or `--not-sent`") from None
        except RequestErrorBase as e:
            status = getattr(getattr(e, "response", None), "status_code", 0)
            if status >= 500:
                raise SendUncertain(f"Bluesky answered {status}; the reply may exist",
                                    "look at the thread, then `taiwa check ID`") from None
            raise SendError(f"Bluesky refused: {e}", "approve it again after fixing what Bluesky says") from None


def sender_from_config(config, store, client=None) -> BlueskySender:
    from ..listeners.bluesky import make_client, repo_of

    client = client or make_client(config)
    return BlueskySender(client, store, repo=repo_of(client, config))
