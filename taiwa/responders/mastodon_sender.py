"""Replies and favourites on Mastodon through Mastodon.py, at most once.

Every reply is posted with `idempotency_key = "taiwa-action-<id>"`: the server answers a repeat of the same key
with the status it already made, so even a retry after an unclear answer cannot double-post. taiwa still moves
an unclear outcome to needs_check (a person looks); approving it again is then safe.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import SendError, SendUncertain
from ..listeners.base import narrowest
from .drafts import reply_length


def idempotency_key(action: dict[str, Any]) -> str:
    return f"taiwa-action-{action['id']}"


def reply_visibility(configured: str, action: dict[str, Any]) -> str:
    """Never wider than the post answered: a followers-only post gets a followers-only reply, a direct message a
    direct one; the configured visibility applies to public posts (and narrows any other)."""
    return narrowest(configured, action.get("audience") or "public")


class MastodonSender:
    def __init__(self, api, *, visibility: str = "unlisted"):
        self.api, self.visibility = api, visibility

    def send(self, action: dict[str, Any]) -> str:
        import mastodon

        try:
            if action["kind"] == "reply":
                text = action["text"]
                handle = action["handle"].split("@")[0]
                if f"@{handle}".lower() not in text.lower():
                    text = f"@{action['handle']} {text}"   # Mastodon notifies only the accounts a reply mentions
                length, limit = reply_length("mastodon", text)
                if length > limit:
                    raise SendError(f"action {action['id']}: {length} characters is over Mastodon's {limit}")
                status = self.api.status_post(text, in_reply_to_id=action["platform_id"],
                                              visibility=reply_visibility(self.visibility, action),
                                              idempotency_key=idempotency_key(action))
                return str(status["id"])
            self.api.status_favourite(action["platform_id"])
            return f"favourite:{action['platform_id']}"
        except mastodon.MastodonRatelimitError:
            raise SendError("Mastodon rate limit on posting", "approve it again later; it was not sent") from None
        except mastodon.MastodonNotFoundError:
            raise SendError(f"the post {action['platform_id']} is gone from Mastodon",
                            "reject this action") from None
        except mastodon.MastodonUnauthorizedError as e:
            raise SendError(f"Mastodon refused the token: {e}", "the token needs write:statuses and "
                            "write:favourites") from None
        except (mastodon.MastodonServerError, mastodon.MastodonNetworkError) as e:
            raise SendUncertain(f"Mastodon did not answer clearly ({type(e).__name__}); the reply may exist",
                                "look at the thread, then `taiwa check ID --sent` or `--not-sent` (a resend "
                                "within an hour reuses the same idempotency key)") from None
        except mastodon.MastodonAPIError as e:
            raise SendError(f"Mastodon refused: {e}") from None


def sender_from_config(config, api=None, env: dict | None = None) -> MastodonSender:
    from ..listeners.mastodon import make_api

    if api is None:
        api = make_api(config, env=os.environ if env is None else env)
    return MastodonSender(api, visibility=config.platform("mastodon")["reply_visibility"])



