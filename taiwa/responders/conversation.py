"""From triaged posts to drafts, one conversation per customer.

While a reply to a customer still waits for a person, their new posts join it instead of opening a second or
third draft: the action now answers their newest post (where a reply belongs on every platform), lists the earlier
ones it also answers (`conversation`), and is redrafted for the strongest of them (a complaint outweighs "any
news?") — unless a person already edited it, in which case their text stays and the new post is listed beside it.
The customer is the person behind every account linked to them (`taiwa link`).

Each draft is composed by drafts.compose (template, the topic's ask, the knowledge base's answer, memory) and, when
`[drafts] backend = "llm"`, rewritten by a language model whose output is checked first (responders/llm.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..config import Config
from ..store import Store, parse_iso
from . import drafts

STRENGTH = {"complaint": 3, "negative": 2, "question": 1}


class Drafter:
    """Drafts for one triage run. `add` collects a post's actions; `flush` writes them (new drafts, and merges into
    drafts already stored) in the chunk's transaction."""

    def __init__(self, store: Store, config: Config, *, now: dt.datetime, answers: Any = None, topics: Any = None,
                 writer: Any = None):
        self.store, self.config, self.now = store, config, now
        self.answers, self.topics, self.writer = answers, topics, writer
        self.memory_days = config.get("responder", "memory_days")
        self.memory_n = config.get("responder", "memory_items")
        self.new: list[dict[str, Any]] = []
        self.merges: dict[int, dict[str, Any]] = {}
        self.open: dict[str, dict[str, Any]] = {}        # person → their open reply (new or stored) this run
        self.known: dict[int, dict[str, Any]] = {}       # this run's judgements of posts not yet stored
        self.persons: dict[str, str] = {}
        self._recent: dict[int, tuple[int, list[dict[str, Any]]]] = {}   # post → (how many asked, its history)

    def judged(self, post_id: int, **facts: Any) -> None:
        """What triage made of a post of this run (intent, topic, label): memory reads it before it is stored."""
        self.known[post_id] = facts

    def person(self, author_id: str) -> str:
        if author_id not in self.persons:
            self.persons[author_id] = self.store.person_of(author_id)
        return self.persons[author_id]

    def history(self, post: dict[str, Any], exclude: set[int], limit: int | None = None) -> list[dict[str, Any]]:
        rows = self._before(post, max(self.memory_n + len(exclude) + 5, limit or 0))
        out = []
        for h in rows:
            if h["id"] in exclude:
                continue
            if h["id"] in self.known:
                h = {**h, **{k: v for k, v in self.known[h["id"]].items() if v is not None}}
            out.append(h)
        return out[: limit or max(self.memory_n, 1)]

    def _before(self, post: dict[str, Any], n: int) -> list[dict[str, Any]]:
        """The author's n latest posts before this one (within memory_days), read once per post: a draft, its
        memory and its conversation all look at them."""
        cached = self._recent.get(post["id"])
        if cached is not None and (cached[0] >= n or len(cached[1]) < cached[0]):
            return cached[1]
        created = parse_iso(post["created_at"])
        rows = self.store.author_history(post["author_id"], created,
                                         since=created - dt.timedelta(days=self.memory_days), limit=n,
                                         exclude_post=post["id"])
        self._recent = {post["id"]: (n, rows)}
        return rows

    def add(self, post: dict[str, Any], *, kinds: list[str], template: str, intent: str, vector: Any = None,
            campaign: str = "", assign: str = "", unsure: list[str] = ()) -> None:
        """The post's like and/or reply; a reply joins the customer's open one when there is one. template "look"
        (unsure): a reply with no text, waiting for a person, with the reasons taiwa was unsure."""
        self._recent = {}
        if "like" in kinds:
            self.new.append({"post_id": post["id"], "kind": "like", "intent": intent,
                             "memory": drafts.memory_items(self.history(post, set())), "assigned_to": assign})
        if "reply" not in kinds:
            return
        person = self.person(post["author_id"])
        current = self.open.get(person)
        if current is None:
            stored = self.store.open_reply(post["author_id"])
            if stored is not None:
                current = {"id": stored["id"], "post_id": stored["post_id"], "stored": True,
                           "template": stored["template"].split(".")[0], "intent": stored["intent"],
                           "conversation": json.loads(stored["conversation"] or "[]"),
                           "topic": self.store.priority(stored["post_id"]).get("topic", "")}
        if current is not None:
            conversation = [*current["conversation"], current["post_id"]]
            if STRENGTH.get(current["template"], 0) > STRENGTH.get(template, 0):
                template, intent = current["template"], current["intent"]
            post = {**post, "topic": post.get("topic") or current.get("topic", "")}
        else:
            conversation = []
        if template == "look":   # no words are put in taiwa's mouth: a person reads it and decides
            row = {"post_id": post["id"], "kind": "reply", "intent": intent, "text": "", "template": "look",
                   "memory": drafts.memory_items(self.history(post, set(conversation))), "asks": "",
                   "assigned_to": assign, "answer": "", "answer_score": None, "needs_answer": False, "ask": "",
                   "recalled": "", "conversation": conversation, "backend": "templates", "unsure": list(unsure)}
        else:
            draft = self.compose(post, template, intent, vector, campaign, exclude=set(conversation))
            row = {"post_id": post["id"], "kind": "reply", "intent": intent, "text": draft.text,
                   "template": draft.template, "memory": drafts.memory_items(self.history(post, set(conversation))),
                   "asks": drafts.asks(draft.text, template), "assigned_to": assign, "answer": draft.answer,
                   "answer_score": draft.answer_score, "needs_answer": draft.needs_answer, "ask": draft.ask,
                   "recalled": draft.recalled, "conversation": conversation, "backend": draft.backend, "unsure": []}
        if current is None:
            self.new.append(row)
            self.open[person] = {"row": row, "post_id": post["id"], "stored": False, "template": template,
                                 "intent": intent, "conversation": [], "topic": post.get("topic", "")}
        elif current.get("stored"):
            self.merges[current["id"]] = row
            self.open[person] = {**current, "post_id": post["id"], "template": template, "intent": intent,
                                 "conversation": conversation, "topic": post.get("topic", "")}
        else:
            current["row"].update(row)
            current.update(post_id=post["id"], template=template, intent=intent, conversation=conversation,
                           topic=post.get("topic", ""))

    def compose(self, post: dict[str, Any], template: str, intent: str, vector: Any, campaign: str, *,
                exclude: set[int]) -> drafts.Draft:
        topic = self.topics.topic(post["topic"]) if self.topics is not None and post.get("topic") else None
        match = self.answers.best(post["text"], vector) if (
            template == "question" and self.answers is not None and vector is not None) else None
        answer = self.answers.answer(match.name) if match else None
        earlier = [h for h in self.history(post, set(), limit=len(exclude) + self.memory_n + 5) if h["id"] in exclude]
        draft = drafts.compose(self.config, template, post=post, topic=topic, answer=answer,
                               answer_score=match.score if match else None, history=self.history(post, exclude),
                               now=self.now, current_intent=intent, campaign=campaign, earlier=earlier)
        if self.writer is not None and template in ("complaint", "question", "negative", "praise"):
            draft = self.writer.rewrite(draft, post=post, store=self.store, topic=topic, answer=answer)
        return draft

    def flush(self) -> tuple[int, int]:
        """Write this chunk's drafts (call inside the chunk's transaction); (new replies and likes, merges)."""
        merged, own = 0, []
        for action_id, row in self.merges.items():
            fields = {k: v for k, v in row.items() if k not in ("kind", "asks", "assigned_to")}
            fields["draft_text"] = fields["text"]
            if self.store.merge_into(action_id, fields):
                merged += 1
            else:   # a person decided on that draft meanwhile (approved, rejected…): this post gets its own
                own.append({**row, "conversation": []})
        made = self.store.create_actions(self.new + own) if self.new or own else 0
        self.new, self.merges, self.known = [], {}, {}
        # The open conversations of this run are stored now: later chunks find them in the store.
        self.open = {}
        return made, merged
