"""An optional language-model backend for drafts: `[drafts] backend = "llm"`.

Any OpenAI-compatible chat API works (Ollama, vLLM, llama.cpp's server, `transformers serve`, or a hosted one):

    [drafts]
    backend = "llm"
    endpoint = "http://127.0.0.1:11434/v1"
    model = "llama3.2"
    api_key_env = ""          # the *name* of an env var holding a key, when the endpoint needs one

The prompt carries what the template draft stands on: the post, its thread, what the customer told us before (the
memory sentence), the topic's ask, the matched answer, the brand's voice, and the language to write in. What comes
back is checked before it can replace the template draft: it must fit the platform's length, be in the right
language, and bring in no order number, link or price that the post, the answer and the ask do not already
contain. A failure of any kind (refused, unreachable, too slow, a bad answer) keeps the template draft, and the
action says why in `backend` ("templates (llm: too long)"); a draft the model wrote says "llm".
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from .drafts import Draft, reply_length

ORDER_NUMBER = re.compile(r"order (?:number|no\.?|#)|注文番号|#\s?\d{4,}|\b\d{6,}\b", re.I)
URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|io|co|jp|example)\b\S*", re.I)
PRICE = re.compile(r"[$€£¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:円|dollars?|usd|eur|yen)\b", re.I)
KANA = re.compile(r"[\u3040-\u30ff]")


class LLMError(Exception):
    pass


def check(text: str, *, platform: str, lang: str, sources: str) -> str:
    """'' when the reply may stand in for the template; otherwise what is wrong with it."""
    t = (text or "").strip()
    if not t:
        return "empty"
    length, limit = reply_length(platform, t)
    if length > limit:
        return f"too long ({length} of {limit})"
    if lang == "ja" and not KANA.search(t):
        return "not in Japanese"
    if lang != "ja" and KANA.search(t):
        return "in Japanese for a non-Japanese post"
    for name, pattern in (("an order number", ORDER_NUMBER), ("a link", URL), ("a price", PRICE)):
        for m in pattern.finditer(t):
            if m.group(0).lower() not in sources.lower() and not (name == "an order number" and
                                                                   ORDER_NUMBER.search(sources)):
                return f"{name} the facts do not contain ({m.group(0)!r})"
    return ""


class Writer:
    """Rewrites template drafts through an OpenAI-compatible chat completions endpoint."""

    def __init__(self, endpoint: str, model: str, *, api_key: str = "", timeout: float = 20.0, voice: str = "",
                 brand: str = ""):
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout, self.voice, self.brand = model, api_key, timeout, voice, brand

    def prompt(self, draft: Draft, *, post: dict[str, Any], thread: list[dict[str, Any]], topic: Any,
               answer: Any) -> list[dict[str, str]]:
        language = {"ja": "Japanese", "en": "English"}.get(draft.lang, draft.lang)
        facts = [f"Customer @{post.get('handle')} wrote: {post.get('text')}"]
        facts += [f"Earlier in the thread, @{t['handle']}: {t['text']}" + (f" (we replied: {t['our_reply']})"
                                                                        if t.get("our_reply") else "")
                  for t in thread[-4:]]
        if draft.recalled:
            facts.append(f"What they told us before (mention it naturally): {draft.recalled.get('sentence', '')}")
        if topic is not None and topic.ask:
            facts.append(f"What to ask them for: {topic.ask.get(draft.lang) or topic.ask.get('en')}")
        if answer is not None:
            facts.append(f"The answer to their question: {answer.text(draft.lang) or answer.text('en')}")
        if draft.needs_answer:
            facts.append("We do not know the answer yet: say the team will find out; do not guess.")
        system = (f"You write one reply from {self.brand or 'the brand'} to a customer on social media. Voice: "
                  f"{self.voice}. Write in {language}. Use only the facts given; no order numbers, links or prices "
                  "unless the facts contain them. One short paragraph, no hashtags. Reply with the text only.")
        return [{"role": "system", "content": system},
                {"role": "user", "content": "\n".join(facts) + f"\n\nA draft to improve on:\n{draft.text}"}]

    def complete(self, messages: list[dict[str, str]]) -> str:
        import requests

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            r = requests.post(self.url, json={"model": self.model, "messages": messages, "temperature": 0,
                                              "max_tokens": 200, "stream": False},
                              headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise LLMError(f"no answer within {self.timeout:g} s") from None
        except requests.RequestException as e:
            raise LLMError(f"unreachable ({type(e).__name__})") from None
        if r.status_code != 200:
            raise LLMError(f"HTTP {r.status_code}")
        try:
            return str(r.json()["choices"][0]["message"]["content"]).strip()
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError("an answer that is not a chat completion") from None

    def rewrite(self, draft: Draft, *, post: dict[str, Any], store: Any = None, topic: Any = None,
                answer: Any = None) -> Draft:
        thread = store.thread(post) if store is not None else []
        try:
            text = self.complete(self.prompt(draft, post=post, thread=thread, topic=topic, answer=answer))
        except LLMError as e:
            return replace(draft, backend=f"templates (llm: {e})")
        sources = " ".join(filter(None, [post.get("text", ""), draft.text,
                                         answer.text(draft.lang) if answer is not None else "",
                                         (topic.ask.get(draft.lang, "") if topic is not None and topic.ask else "")]))
        problem = check(text, platform=post.get("platform", ""), lang=draft.lang, sources=sources)
        if problem:
            return replace(draft, backend=f"templates (llm: {problem})")
        return replace(draft, text=text, backend="llm")


def writer(config: Any) -> Writer | None:
    """The configured language-model writer, or None for the template backend."""
    d = config.sections["drafts"]
    if d["backend"] != "llm":
        return None
    key = os.environ.get(d["api_key_env"], "") if d["api_key_env"] else ""
    return Writer(d["endpoint"], d["model"], api_key=key, timeout=d["timeout_seconds"], voice=d["voice"],
                  brand=config.brands[0].name if config.brands else "")
