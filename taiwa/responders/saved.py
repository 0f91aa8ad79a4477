"""Saved replies: the team picks a knowledge-base answer or a topic's ask for a draft (web picker, or
`taiwa approve ID --answer NAME` / `--ask TOPIC`), and the draft is rewritten around it, in the reply's language,
keeping what it recalled of the customer."""

from __future__ import annotations

import json
from typing import Any

from ..config import Config
from ..errors import NotFound, ValidationError
from ..store import Store
from . import answers as answers_mod
from . import drafts


def _lang(action: dict[str, Any]) -> str:
    return (action.get("template") or "").split(".")[-1] if "." in (action.get("template") or "") else "en"


def choices(store: Store, config: Config, action: dict[str, Any]) -> list[dict[str, Any]]:
    """What can be picked for this draft: answers (closest to the post first) and topics' asks (its own topic
    first), each in the reply's language, or English where that is all there is."""
    lang = _lang(action)
    out: list[dict[str, Any]] = []
    index = answers_mod.index(config)
    order = {a.name: i for i, a in enumerate(config.answers)}
    if index is not None:
        vector = store.vectors([action["post_id"]]).get(action["post_id"])
        if vector is not None:
            order = {m.name: i for i, m in enumerate(index.scores(action.get("post_text", ""), vector))}
    for a in sorted(config.answers, key=lambda a: order.get(a.name, 10 ** 6)):
        text = a.text(lang) or a.text("en")
        if text:
            out.append({"kind": "answer", "name": a.name, "text": text, "lang": lang if a.text(lang) else "en"})
    topic = action.get("topic") or ""
    for t in sorted(config.topics, key=lambda t: t.name != topic):
        text = t.ask.get(lang) or t.ask.get("en")
        if text:
            out.append({"kind": "ask", "name": t.name, "text": text, "lang": lang if t.ask.get(lang) else "en"})
    return out


def draft_with(store: Store, config: Config, action_id: int, *, answer: str | None = None,
               ask: str | None = None) -> dict[str, Any]:
    """The draft rewritten around a chosen answer or ask: {'text', 'answer', 'ask', 'template'} (not stored)."""
    action = store.action(action_id)
    if action["kind"] != "reply":
        raise ValidationError(f"action {action_id} is a like", "saved replies are for replies")
    post = {**store.post(action["post_id"]), "topic": action.get("topic", "")}
    remembered = json.loads(action["recalled"]) if action.get("recalled") else None
    memory = remembered.get("sentence", "") if remembered else ""
    if answer is not None:
        found = next((a for a in config.answers if a.name == answer), None)
        if found is None:
            raise NotFound(f"no answer called {answer!r}",
                           "the [[answers]] names: " + (", ".join(a.name for a in config.answers) or "(none yet)"))
        lang = drafts.reply_language(config, "question", _lang(action), found)
        text = drafts.render(config, "question", lang, post=post, memory=memory,
                             answer=found.text(lang) or found.text("en") or "")
        return {"text": text, "answer": found.name, "ask": "", "template": f"question.{lang}"}
    if ask is not None:
        topic = next((t for t in config.topics if t.name == ask), None)
        if topic is None or not topic.ask:
            raise NotFound(f"no topic {ask!r} with an ask",
                           "topics with an ask: " + (", ".join(t.name for t in config.topics if t.ask) or "(none)"))
        template = action["template"].split(".")[0]
        template = template if template in ("complaint", "negative") else "complaint"
        lang = drafts.reply_language(config, template, _lang(action))
        text = drafts.render(config, template, lang, post=post, memory=memory,
                             ask=topic.ask.get(lang) or topic.ask.get("en", ""))
        return {"text": text, "answer": "", "ask": f"topic {topic.name}", "template": f"{template}.{lang}"}
    raise ValidationError("pick an answer or an ask", "--answer NAME or --ask TOPIC")


def use(store: Store, config: Config, action_id: int, *, actor: str, answer: str | None = None,
        ask: str | None = None) -> dict[str, Any]:
    """Rewrite a pending draft around the chosen answer or ask; audited. Returns the new draft basis."""
    basis = draft_with(store, config, action_id, answer=answer, ask=ask)
    store.use_saved(action_id, basis["text"], actor, answer=basis["answer"], ask=basis["ask"])
    return basis
