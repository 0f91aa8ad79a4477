"""Follow-ups: the conversation continues after our reply, and every next step again waits for a person.

When a sent reply asked the customer something, it is tracked:
    offer       ("interested?") — their next post in the conversation is read as yes / later / no:
                yes → a reply with the details is drafted; later → a reminder draft once followups.reminder_days
                have passed; no → nothing more (their answer is respected). No answer in followups.wait_days:
                nothing more either.
    resolution  (a complaint we answered) — if they go quiet for followups.checkin_hours, a check-in draft
                ("did we sort this out?") is made; if they answer, their post goes through triage like any other
                (a complaint again gets a reply that remembers the first one).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..models import intent as intents
from ..store import Store, parse_iso
from . import drafts

LATER = re.compile(r"\b(later|not now|not yet|next (?:week|month)|remind me|maybe later|busy right now)\b|"
                   r"後で|あとで|また今度|今度|来週|来月|落ち着いたら", re.I)
NO = re.compile(r"\b(no|nope|not interested|no thanks|no thank you|stop)\b|いいえ|結構です|興味(?:が)?ありません|不要|"
                r"遠慮", re.I)
YES = re.compile(r"\b(yes|yeah|yep|sure|interested|sounds good|please do|i'?d love|count me in)\b|はい|ぜひ|是非|"
                 r"お願いします|興味あります|欲しい", re.I)


def read_answer(text: str) -> str:
    """yes / later / no / other. "Yes, but later" is later; "no thanks" is no."""
    if LATER.search(text):
        return "later"
    if NO.search(text):
        return "no"
    if YES.search(text):
        return "yes"
    return "other"


@dataclass
class FollowupReport:
    tracked: int = 0
    answered: int = 0
    drafted: int = 0
    closed: int = 0


def _draft(store: Store, config: Config, *, reply_to: dict[str, Any], template: str, followup_of: int) -> int | None:
    post = store.post(reply_to["id"])
    lang = intents.language(post["text"], post["lang"])
    text = drafts.render(config, template, lang, post=post, memory="")
    made = store.create_actions([{"post_id": post["id"], "kind": "reply", "intent": f"followup:{template}",
                                  "text": text, "template": f"{template}.{lang}", "followup_of": followup_of,
                                  "asks": "offer" if template == "reminder" else ""}])
    if not made:
        return None
    return store.followup_action(post["id"], followup_of)


def run(store: Store, config: Config, *, now: dt.datetime | None = None) -> FollowupReport:
    """One pass: track newly sent questions, read answers, draft what is due. Idempotent."""
    now = now or store.clock()
    f = config.sections["followups"]
    report = FollowupReport()
    for r in store.sent_replies_without_followup():
        sent = parse_iso(r["sent_at"])
        wait = dt.timedelta(hours=f["checkin_hours"]) if r["asks"] == "resolution" else dt.timedelta(
            days=f["wait_days"])
        store.add_followup(r["id"], r["author_id"], r["asks"], sent + wait)
        report.tracked += 1
    for fu in store.waiting_followups():
        due = parse_iso(fu["due_at"]) if fu["due_at"] else None
        if fu["state"] == "answered":     # "later": the reminder waits for its day
            if due and due <= now:
                ref = _draft(store, config, reply_to=store.post(fu["answer_post_id"]), template="reminder",
                             followup_of=fu["action_id"])
                store.update_followup(fu["id"], state="drafted", draft_action_id=ref)
                report.drafted += 1
            continue
        answer = store.next_post_by(fu["author_id"], fu["sent_at"], fu["conversation_id"])
        if answer and parse_iso(answer["created_at"]) <= now:
            report.answered += 1
            said = read_answer(answer["text"])
            if fu["asks"] == "offer" and said == "yes":
                ref = _draft(store, config, reply_to=answer, template="yes", followup_of=fu["action_id"])
                store.update_followup(fu["id"], state="drafted", answer=said, answer_post_id=answer["id"],
                                      draft_action_id=ref)
                report.drafted += 1
            elif fu["asks"] == "offer" and said == "later":
                remind = parse_iso(answer["created_at"]) + dt.timedelta(days=f["reminder_days"])
                store.update_followup(fu["id"], state="answered", answer=said, answer_post_id=answer["id"],
                                      due_at=remind.isoformat(timespec="seconds"))
            else:
                # no: respected. A complaint answered: their post is triaged like any other.
                store.update_followup(fu["id"], state="closed", answer=said, answer_post_id=answer["id"])
                report.closed += 1
            continue
        if due and due <= now:
            if fu["asks"] == "resolution":
                ref = _draft(store, config, reply_to=store.post(fu["replied_post_id"]), template="checkin",
                             followup_of=fu["action_id"])
                store.update_followup(fu["id"], state="drafted", draft_action_id=ref)
                report.drafted += 1
            else:
                store.update_followup(fu["id"], state="closed", answer="none")
                report.closed += 1
    return report
