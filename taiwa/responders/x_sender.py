"""Send approved replies and likes to X through tweepy (user context: OAuth 1.0a tokens from the environment).

Only `responders.senders.send_approved` calls this, after the action is claimed (`sending`). A refusal raises
SendError (→ failed; a person may approve again). A server error or dropped connection while posting raises
SendUncertain (→ needs_check): the reply may exist, so nothing re-sends it without a person looking.
"""

from __future__ import annotations

from typing import Any

from ..errors import SendError, SendUncertain, TaiwaError
from .drafts import reply_length

POST_LEVEL = ("posting needs user-context OAuth 1.0a keys with Read and Write permission: export "
              "{keys} (from your app's Keys and tokens page, after setting the app to Read and Write)")


class XSender:
    def __init__(self, client, budget, *, env_names: list[str]):
        self.client, self.budget, self.env_names = client, budget, env_names

    def send(self, action: dict[str, Any]) -> str:
        reservation = self.budget.reserve_write()
        try:
            return self._send(action)
        except SendError as e:
            if not isinstance(e, SendUncertain):
                self.budget.release_write(reservation)     # refused: nothing was written, nothing is billed
            raise

    def _send(self, action: dict[str, Any]) -> str:
        import requests
        import tweepy

        try:
            if action["kind"] == "reply":
                length, limit = reply_length("x", action["text"])
                if length > limit:   # approval checks this too; a hand-edited database must not slip through
                    raise SendError(f"action {action['id']}: {length} characters is over X's {limit}")
                resp = self.client.create_tweet(text=action["text"], in_reply_to_tweet_id=action["platform_id"],
                                                user_auth=True)
                ref = str(resp["data"]["id"])
            else:
                resp = self.client.like(action["platform_id"], user_auth=True)
                if not resp.get("data", {}).get("liked"):
                    raise SendError(f"X did not confirm the like of {action['platform_id']}")
                ref = f"like:{action['platform_id']}"
        except tweepy.TooManyRequests as e:
            raise SendError(f"X rate limit on posting (resets at {e.reset_time})",
                            "approve it again after the reset; it was not sent") from None
        except (tweepy.Unauthorized, tweepy.Forbidden) as e:
            detail = "; ".join(e.api_messages) or str(e.response.status_code)
            raise SendError(f"X refused to post: {detail}",
                            POST_LEVEL.format(keys=", ".join(self.env_names))) from None
        except tweepy.BadRequest as e:
            raise SendError(f"X rejected the post: {'; '.join(e.api_messages)}") from None
        except (tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout) as e:
            raise SendUncertain(f"X did not answer clearly while posting ({type(e).__name__}); the post may exist",
                                "look at the conversation on X, then `taiwa check ID --sent` or `--not-sent`"
                                ) from None
        except TypeError as e:   # tweepy: user-context keys missing
            raise SendError(f"X user-context credentials are missing ({e})",
                            POST_LEVEL.format(keys=", ".join(self.env_names))) from None
        return ref


def sender_from_config(config, store, client=None, env: dict | None = None, now=None) -> XSender:
    import os

    from ..listeners.x import Budget, make_client

    x = config.platform("x")
    names = [x["consumer_key_env"], x["consumer_secret_env"], x["access_token_env"], x["access_token_secret_env"]]
    env = os.environ if env is None else env
    if client is None:
        missing = [n for n in names if not env.get(n)]
        if missing:
            raise TaiwaError(f"cannot post to X: {', '.join(missing)} not set", POST_LEVEL.format(keys=", ".join(names)))
        client = make_client(env, bearer_env=x["bearer_token_env"], consumer_key_env=names[0],
                             consumer_secret_env=names[1], access_token_env=names[2],
                             access_token_secret_env=names[3])
    budget = Budget(store, reads=x["monthly_read_budget"], writes=x["monthly_write_budget"], now=now or store.clock)
    return XSender(client, budget, env_names=names)
