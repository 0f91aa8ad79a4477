"""Replies and likes on Bluesky through the atproto SDK, at most once.

A reply needs its thread's root and its parent (uri + cid each); the listener stored both with the post. The
300-grapheme limit is checked at approval (drafts.reply_length) and again here.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from ..errors import SendError, SendUncertain
from .drafts import reply_length


# Links, @mentions (handles with a dot) and #tags in a reply become rich-text facets, so they are clickable on
# Bluesky; offsets are UTF-8 byte positions, as the lexicon requires.
FACET_URL = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]」』）]")
FACET_MENTION = re.compile(r"(?<![\w@])@([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z]{2,})")
FACET_TAG = re.compile(r"(?<![\w#])[#＃]([^\s#＃.,!?;:、。！？「」()（）\[\]\"'…]+)")


def reply_lang(text: str, post_lang: str = "") -> str:
    """The language tag for a reply, from its own script (a Japanese reply is tagged ja, not the SDK's en)."""
    if re.search(r"[\u3040-\u30ff]", text):
        return "ja"
    if re.search(r"[\uac00-\ud7af]", text):
        return "ko"
    if re.search(r"[\u4e00-\u9fff]", text):
        return "zh"
    if re.search(r"[\u0400-\u04ff]", text):
        return "ru"
    return post_lang if post_lang and post_lang not in ("ja", "ko", "zh", "ru") else "en"


def facets(text: str, resolve_did: Callable[[str], str | None]) -> list:
    from atproto import models

    def span(m, group=0):
        start = len(text[:m.start(group)].encode())
        return models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=start + len(m.group(group).encode()))

    out = []
    for m in FACET_URL.finditer(text):
        out.append(models.AppBskyRichtextFacet.Main(index=span(m), features=[
            models.AppBskyRichtextFacet.Link(uri=m.group())]))
    for m in FACET_MENTION.finditer(text):
        did = resolve_did(m.group(1))
        if did:
            start = len(text[:m.start()].encode())
            index = models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=start + len(m.group().encode()))
            out.append(models.AppBskyRichtextFacet.Main(index=index, features=[
                models.AppBskyRichtextFacet.Mention(did=did)]))
    for m in FACET_TAG.finditer(text):
        start = len(text[:m.start()].encode())
        index = models.AppBskyRichtextFacet.ByteSlice(byte_start=start, byte_end=start + len(m.group().encode()))
        out.append(models.AppBskyRichtextFacet.Main(index=index, features=[
            models.AppBskyRichtextFacet.Tag(tag=m.group(1))]))
    return out


class BlueskySender:
    def __init__(self, client, store, *, repo: str):
        self.client, self.store, self.repo = client, store, repo

    def _did(self, handle: str) -> str | None:
        """The account behind a mentioned handle; a handle that does not resolve stays plain text."""
        try:
            return self.client.resolve_handle(handle).did
        except Exception:  # noqa: BLE001 - a mention without a link is better than no reply
            return None

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
                                             reply_to=models.AppBskyFeedPost.ReplyRef(parent=parent, root=root),
                                             langs=[reply_lang(action["text"], action.get("lang", ""))],
                                             facets=facets(action["text"], self._did) or None)
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
