"""Replies to Instagram comments through the Instagram Graph API (business and creator accounts).

instaloader reads; it cannot write. What the Graph API allows a brand: replying to a comment on its own media
(POST /{ig-comment-id}/replies). Everything else on Instagram (a like, a comment on someone else's post that
used the campaign hashtag) is written to the outbox for a person to do by hand, and marked "instagram: by
hand" there — as is every approved Instagram action when no Graph API token is configured.

Like the X sender, this is only called after the action was claimed (`sending`): a refusal raises SendError
(→ failed), an unclear outcome SendUncertain (→ needs_check, never re-sent automatically).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import SendError, SendUncertain, TaiwaError
from .drafts import reply_length

GRAPH = "https://graph.facebook.com"
TOKEN_HINT = ("replies on Instagram need a Graph API access token of the business account with "
              "instagram_manage_comments: export {env}=...")


def graph_can_send(action: dict[str, Any]) -> bool:
    """A reply to a comment (numeric comment id) is what the Graph API can post for us."""
    return action["kind"] == "reply" and str(action["platform_id"]).isdigit()


class InstagramGraphSender:
    def __init__(self, token: str, *, version: str = "v21.0", session=None, timeout: float = 20.0):
        import requests

        self.token, self.version, self.timeout = token, version, timeout
        self.http = session or requests.Session()

    def send(self, action: dict[str, Any]) -> str:
        import requests

        if not graph_can_send(action):
            raise SendError(f"action {action['id']}: the Graph API can only reply to comments",
                            "this one belongs in the outbox; approve it again to write it there")
        length, limit = reply_length("instagram", action["text"])
        if length > limit:
            raise SendError(f"action {action['id']}: {length} characters is over Instagram's {limit}")
        url = f"{GRAPH}/{self.version}/{action['platform_id']}/replies"
        try:
            resp = self.http.post(url, data={"message": action["text"], "access_token": self.token},
                                  timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise SendUncertain(f"Instagram did not answer while replying ({type(e).__name__}); the reply may "
                                "exist", "look under the comment on Instagram, then `taiwa check ID --sent` "
                                "or `--not-sent`") from None
        if resp.status_code >= 500:
            raise SendUncertain(f"Instagram answered {resp.status_code} while replying; the reply may exist",
                                "look under the comment on Instagram, then `taiwa check ID`")
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or "id" not in body:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            msg = err.get("message") or f"HTTP {resp.status_code}"
            hint = TOKEN_HINT.format(env="TAIWA_IG_GRAPH_TOKEN") if resp.status_code in (401, 403) or \
                err.get("code") in (190, 10, 200) else "fix what Instagram says and approve it again"
            raise SendError(f"Instagram refused the reply: {msg}", hint)
        return str(body["id"])


def sender_from_config(config, env: dict | None = None, session=None) -> InstagramGraphSender:
    ig = config.platform("instagram")
    env = os.environ if env is None else env
    token = env.get(ig["graph_token_env"])
    if not token:
        raise TaiwaError(f"no Instagram Graph API token: {ig['graph_token_env']} is not set",
                         TOKEN_HINT.format(env=ig["graph_token_env"]))
    return InstagramGraphSender(token, version=ig["graph_api_version"], session=session)
