"""One item of the inbox: its page, and every decision on it. After approve, reject, snooze or done the next open
item of the same filtered list opens (the triage flow); an approval or edit of an item someone changed since it was
loaded is refused with what changed (a version check, never last-write-wins)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import incidents as incidents_mod
from ..errors import StaleAction, TaiwaError
from ..models.intent import CLASSES as INTENTS
from ..responders import approval, saved
from ..responders.drafts import reply_length
from ..store import ROLES, Store
from .util import MAX_ID, MAX_SNOOZE_HOURS, Refused, age, due_phrase, local_path

Do = Callable[[Store, dict[str, Any], Any, int], str]


class ItemPages:
    """Mixed into Inbox (app.py)."""

    @staticmethod
    def _action_id(request: Request) -> int:
        action_id = request.path_params["action_id"]
        if not 0 < action_id <= MAX_ID:
            raise Refused(404, f"No action #{action_id}.")
        return action_id

    @staticmethod
    def _version(form: Any) -> int | None:
        raw = str(form.get("version", ""))
        return int(raw) if raw.isdigit() and len(raw) < 19 else None

    def list_ids(self, store: Store, back: str, user: dict[str, Any]) -> list[int]:
        """The items of the list the person came from, in the order it shows them (an incident's together)."""
        query = back.split("?", 1)[1] if "?" in back else ""
        rows = incidents_mod.group_rows(store.inbox(**self.list_kwargs(self.filters_of(query), user)))
        return [r["id"] for r in rows if r["kind"]]

    def neighbours(self, store: Store, action_id: int, back: str, user: dict[str, Any]) -> tuple[int | None, ...]:
        """(previous, next) open items of the list the person came from, around this one."""
        ids = self.list_ids(store, back, user)
        if action_id in ids:
            i = ids.index(action_id)
            return (ids[i - 1] if i else None), (ids[i + 1] if i + 1 < len(ids) else None)
        return None, (ids[0] if ids else None)

    def next_page(self, store: Store, action_id: int, back: str, user: dict[str, Any],
                  seen: list[int] | None = None) -> str:
        """Where the triage flow goes after a decision: the row after this one in the list as the person saw it
        (seen, read before the decision; the list may re-sort after it) that is still open, else the list."""
        now = self.list_ids(store, back, user)
        still = set(now)
        after = seen[seen.index(action_id) + 1:] if seen and action_id in seen else []
        nxt = next((i for i in after if i in still and i != action_id), None)
        if nxt is None:
            nxt = next((i for i in now if i != action_id), None) if not after else None
        return f"/actions/{nxt}?back={quote(back, safe='')}" if nxt else back

    async def detail(self, request: Request) -> Response:
        user = self.user(request)
        action_id = self._action_id(request)
        back = local_path(request.query_params.get("back", "/"))
        store = self.store()
        try:
            a = store.action(action_id)
            post = store.post(a["post_id"])
            thread = store.thread(post)
            history = store.author_overview(a["author_id"], exclude_post=a["post_id"])
            audit = store.audit_log(action_id)
            team = [u["name"] for u in store.users() if not u["disabled"]]
            accounts = store.linked_accounts(a["author_id"])
            conversation = [p for p in (store.post_or_none(i) for i in json.loads(a.get("conversation") or "[]"))
                            if p]
            choices = saved.choices(store, self.config, a) if a["kind"] == "reply" else []
            store.touch_presence(action_id, user["name"], now=self.clock())
            here = [u for u in store.present([action_id], now=self.clock()).get(action_id, []) if u != user["name"]]
            person = store.subject_for("person", a["author_id"])
            subjects = [f"action:{action_id}", person]
            notes = store.notes(subjects)
            labels = store.labels(subjects)
            prev_id, next_id = self.neighbours(store, action_id, back, user)
            priority = store.priority(a["post_id"])
            since = store.last_change()
        except TaiwaError as e:
            raise Refused(404, e.message) from e
        finally:
            store.close()
        length, limit = reply_length(a["platform"], a["text"]) if a["kind"] == "reply" else (0, 0)
        a["why"] = self._why({**a, "campaigns": ""})
        due = store_due(a, priority, self.config.sla_hours)
        due_text, overdue = due_phrase(due, self.clock())
        return self.render(request, "action.html", user=user, a=a, post=post, thread=thread, history=history,
                           audit=audit, team=team, length=length, limit=limit, accounts=accounts,
                           conversation=conversation, choices=choices, here=here, notes=notes,
                           action_labels=labels[f"action:{action_id}"], person_labels=labels[person],
                           prev_id=prev_id, next_id=next_id, since=since, due=due_text, overdue=overdue,
                           intents=INTENTS, topics=[t.name for t in self.config.topics],
                           intent=priority.get("intent", ""), topic=priority.get("topic", ""),
                           recalled=json.loads(a["recalled"]) if a.get("recalled") else None,
                           memory=json.loads(a["memory"] or "[]"), age=age(a["post_created_at"], self.clock()),
                           back=back, edit=request.query_params.get("edit") == "1", error="")

    async def _act(self, request: Request, role: str, do: Do, *, then: str = "next") -> Response:
        """Run one change for the signed-in user; errors come back as a message on the item, nothing half-done.
        then: "next" (the next open item of the list), "here" (this item again) or "back" (the list).
        The list's keys (a, d, s, r) ask for JSON (Accept: application/json): the answer they show in place."""
        user = self.user(request, role)
        form = await self.form(request, user)
        action_id = self._action_id(request)
        back = self._back(form)
        wants_json = request.headers.get("accept", "").startswith("application/json")

        def work() -> tuple[str, str]:
            # Off the event loop: the database and the length count (twitter-text) must never hold up other
            # people's pages, /login included.
            store = self.store()
            try:
                seen = self.list_ids(store, back, user) if then == "next" and not wants_json else None
                message = do(store, user, form, action_id)
                if wants_json:
                    return message, ""
                target = (self.next_page(store, action_id, back, user, seen) if then == "next" else
                          f"/actions/{action_id}?back={quote(back, safe='')}" if then == "here" else back)
                return message, target
            finally:
                store.close()

        try:
            message, target = await run_in_threadpool(work)
            if wants_json:
                return JSONResponse({"ok": True, "message": message})
        except TaiwaError as e:
            if wants_json:
                return JSONResponse({"ok": False, "message": f"#{action_id} not done: {e.message}"},
                                    status_code=409)
            if isinstance(e, StaleAction):
                return self.redirect(f"/actions/{action_id}?back={quote(back, safe='')}&stale=1",
                                     flash=f"Not done: {e.message}. The page now shows the current version; your "
                                           "text is kept below it to paste back.")
            return self.redirect(f"/actions/{action_id}?back={quote(back, safe='')}",
                                 flash=f"Not done: {e.message}" + (f" — {e.hint}" if e.hint else ""))
        return self.redirect(target, flash=message)

    async def approve(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            text = form.get("text")
            current = store.action(action_id)
            edited = text is not None and str(text) != current["text"]
            approval.approve(store, action_id, actor=user["name"], text=str(text) if edited else None,
                             version=self._version(form))
            return f"Approved #{action_id}" + (" (edited)" if edited else "") + "."
        return await self._act(request, "approver", do)

    async def save(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            store.edit_text(action_id, str(form.get("text", "")), user["name"], version=self._version(form))
            return f"Saved your edit of #{action_id}; it still needs approval."
        return await self._act(request, "responder", do, then="here")

    async def reject(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            approval.reject(store, action_id, actor=user["name"], reason=str(form.get("reason", "")),
                            version=self._version(form))
            return f"Rejected #{action_id}."
        return await self._act(request, "approver", do)

    async def done(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            approval.done(store, action_id, actor=user["name"], reason=str(form.get("reason", "")),
                          version=self._version(form))
            return f"#{action_id} done, no reply needed."
        return await self._act(request, "responder", do)

    async def reopen(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            approval.reopen(store, action_id, actor=user["name"])
            return f"#{action_id} is pending again."
        return await self._act(request, "approver", do, then="here")

    async def snooze(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            try:
                hours = float(form.get("hours", ""))
            except ValueError:
                raise Refused(400, "Snooze needs a number of hours.") from None
            if not math.isfinite(hours) or not 0 <= hours <= MAX_SNOOZE_HOURS:
                raise Refused(400, f"Snooze for 0 to {MAX_SNOOZE_HOURS} hours (30 days), not {hours!r}.")
            until = self.clock() + dt.timedelta(hours=hours) if hours > 0 else None
            store.snooze(action_id, until, user["name"])
            return f"Snoozed #{action_id} until {until:%Y-%m-%d %H:%M} UTC." if until else f"#{action_id} is back."
        return await self._act(request, "responder", do)

    async def assign(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            who = str(form.get("user", ""))
            store.assign(action_id, who, user["name"])
            return f"#{action_id} assigned to {who}." if who else f"#{action_id} is unassigned."
        return await self._act(request, "responder", do, then="here")

    async def check(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            was_sent = form.get("was_sent") == "yes"
            approval.resolve_check(store, action_id, actor=user["name"], was_sent=was_sent,
                                   platform_ref=str(form.get("ref", "")))
            return f"#{action_id} marked " + ("sent." if was_sent else "not sent, and approved again.")
        return await self._act(request, "approver", do, then="here")

    async def use_saved(self, request: Request) -> Response:
        """A saved reply picked for the draft: an answer, or a topic's ask (stays pending for approval)."""
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            kind, _, name = str(form.get("choice", "")).partition(":")
            if kind not in ("answer", "ask") or not name:
                raise Refused(400, "Pick a saved reply from the list.")
            saved.use(store, self.config, action_id, actor=user["name"], answer=name if kind == "answer" else None,
                      ask=name if kind == "ask" else None)
            return f"#{action_id} now uses the saved {kind} {name!r}; check it and approve."
        return await self._act(request, "responder", do, then="here")

    async def link(self, request: Request) -> Response:
        """Their other account: the same customer, so drafts remember across both."""
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            ref = str(form.get("account", "")).strip()
            platform, _, handle = ref.rpartition(":")
            found = store.find_authors(handle, platform or None)
            if len(found) != 1:
                raise Refused(400, f"No single account {ref!r} in the database; write platform:handle.")
            a = store.action(action_id)
            accounts = store.link_authors(a["author_id"], found[0]["id"], actor=user["name"])
            return "One customer: " + ", ".join(f"{x['platform']}:@{x['handle']}" for x in accounts) + "."
        return await self._act(request, "responder", do, then="here")

    def _subject(self, store: Store, form: Any, action_id: int) -> str:
        about = str(form.get("about", "action"))
        action = store.action(action_id)        # NotFound for an item that does not exist: nothing is planted
        if about == "customer":
            return store.subject_for("person", action["author_id"])
        if about == "action":
            return f"action:{action_id}"
        raise Refused(400, "A note or tag is about this item (action) or the customer.")

    async def note(self, request: Request) -> Response:
        """An internal note on the item or the customer: for the team, never sent. Audited."""
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            store.add_note(self._subject(store, form, action_id), user["name"], str(form.get("text", "")),
                           action_id=action_id)
            return "Note added (the team sees it; it is never sent)."
        return await self._act(request, "responder", do, then="here")

    async def tag(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            subject, tag = self._subject(store, form, action_id), str(form.get("tag", ""))
            if form.get("remove") == "yes":
                store.remove_label(subject, tag, user["name"], action_id=action_id)
                return f"Tag {tag!r} removed."
            store.add_label(subject, tag, user["name"], action_id=action_id)
            return f"Tagged {tag!r}."
        return await self._act(request, "responder", do, then="here")

    async def correct(self, request: Request) -> Response:
        """A person's sentiment, intent or topic for the post (kept for retraining)."""
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            field, value = str(form.get("field", "")), str(form.get("value", ""))
            post_id = store.action(action_id)["post_id"]
            if field == "sentiment" and value in ("negative", "neutral", "positive"):
                store.correct_sentiment(post_id, value, user["name"])
            elif field == "intent" and value in INTENTS:
                store.correct(post_id, "intent", value, user["name"])
            elif field == "topic" and (value == "" or value in {t.name for t in self.config.topics}):
                store.correct(post_id, "topic", value, user["name"])
            else:
                raise Refused(400, f"Cannot set {field or 'that'} to {value!r}.")
            return f"The {field} of #{action_id} is now {value or 'none'}; kept for retraining."
        return await self._act(request, "responder", do, then="here")

    async def here(self, request: Request) -> Response:
        """The item's page says it is still open (every few seconds); the answer says who else has it open and
        whether it changed since the page was loaded."""
        user = self.user(request)
        form = await self.form(request, user)
        action_id = self._action_id(request)
        store = self.store()
        try:
            a = store.action(action_id)             # NotFound (404) before anything is written
            if form.get("leave") == "yes":
                store.leave(action_id, user["name"])
                return JSONResponse({"ok": True})
            store.touch_presence(action_id, user["name"], now=self.clock())
            here = [u for u in store.present([action_id], now=self.clock()).get(action_id, []) if u != user["name"]]
        except TaiwaError as e:
            raise Refused(404, e.message) from e
        finally:
            store.close()
        return JSONResponse({"here": here, "version": a["version"], "state": a["state"]})

    # ------------------------------------------------------------------ incidents
    async def incident(self, request: Request) -> Response:
        return self._incident_page(request, self.user(request), request.path_params["incident_id"])

    def _incident_page(self, request: Request, user: dict[str, Any], incident_id: int, text: str | None = None
                       ) -> Response:
        store = self.store()
        try:
            if not 0 < incident_id <= MAX_ID:
                raise Refused(404, f"No incident #{incident_id}.")
            info = store.incident(incident_id)
            members = store.incident_members(incident_id)
            actions = {a["post_id"]: a for a in store.incident_actions(incident_id) if a["kind"] == "reply"}
        except TaiwaError as e:
            raise Refused(404, e.message) from e
        finally:
            store.close()
        open_drafts = [a for a in actions.values() if a["state"] in ("pending", "failed")]
        # The box starts from the shared text ({name} for each person), never from one person's draft.
        suggestion = text if text is not None else incidents_mod.shared_text(open_drafts[0]) if open_drafts else ""
        for m in members:
            m["action"] = a = actions.get(m["post_id"])
            if a is not None and a["state"] in ("pending", "failed"):
                m["name"] = incidents_mod.personalise("{name}", a)
                m["handle_text"] = incidents_mod.personalise("{handle}", a)
                m["preview"] = incidents_mod.personalise(suggestion, a)
        return self.render(request, "incident.html", user=user, i=info, members=members, open=len(open_drafts),
                           suggestion=suggestion, back=local_path(request.query_params.get("back", "/")))

    async def incident_reply(self, request: Request) -> Response:
        """One reply for every open draft of an incident, personalised; "approve" also approves them."""
        incident_id = request.path_params["incident_id"]
        user = self.user(request, "responder")
        form = await self.form(request, user)
        if not 0 < incident_id <= MAX_ID:
            raise Refused(404, f"No incident #{incident_id}.")
        if form.get("approve") == "preview":   # what each person would receive, nothing changed
            return self._incident_page(request, user, incident_id, text=str(form.get("text", "")))
        approve = form.get("approve") == "yes"
        if approve and ROLES.index(user["role"]) < ROLES.index("approver"):
            raise Refused(403, "Approving needs the approver role; save the reply for an approver instead.")
        text = str(form.get("text", ""))
        if not text.strip():
            return self.redirect(f"/incidents/{incident_id}", flash="Not done: the reply is empty.")
        store = self.store()
        try:
            done = incidents_mod.reply_to_all(store, incident_id, text, actor=user["name"], approve=approve)
        except TaiwaError as e:
            return self.redirect(f"/incidents/{incident_id}", flash=f"Not done: {e.message}")
        finally:
            store.close()
        verb = "set and approved" if approve else "saved for an approver"
        return self.redirect(f"/incidents/{incident_id}",
                             flash=f"{len(done['set'])} replies {verb}; {len(done['skipped'])} left as they were.")


def store_due(action: dict[str, Any], priority: dict[str, Any], sla_hours: dict[str, float]) -> str | None:
    """The item's response deadline: posted + its tier's target (escalated, complaint, question, other)."""
    from ..metrics import tier

    if action["state"] not in ("pending", "failed", "needs_check") or action["kind"] != "reply":
        return None
    hours = sla_hours[tier(priority.get("escalated"), action.get("intent"))]
    return (dt.datetime.fromisoformat(action["post_created_at"]) + dt.timedelta(hours=hours)).isoformat()
