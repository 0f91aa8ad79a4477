"""The inbox list: filters, search, SLA, presence, bulk actions, sending, live updates (SSE), metrics, audit."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse

from ..errors import TaiwaError
from ..metrics import response_metrics
from ..responders import approval, senders
from ..store import OPEN_STATES, STATES, WAITING_STATES, Store
from .util import LIMIT, MAX_ID, MAX_SNOOZE_HOURS, SESSION_COOKIE, Refused, age, due_phrase, histogram_svg

FILTERS = ("platform", "brand", "campaign", "sentiment", "state", "kind", "assigned", "snoozed", "topic", "incident",
           "needs", "view", "q", "tag")
VIEWS = {"waiting": WAITING_STATES, "approved": ("approved",), "open": OPEN_STATES, "closed": ("rejected", "done")}
MAX_SEARCH_WORDS = 30
EVENT_POLL_SECONDS = 0.5
EVENT_STREAM_SECONDS = 300      # a stream ends after this; the browser's EventSource reconnects by itself


class ListPages:
    """Mixed into Inbox (app.py): the list of what waits, and the pages about the whole team's work."""

    def filters_of(self, query: str | dict[str, str]) -> dict[str, str]:
        q = dict(parse_qsl(query)) if isinstance(query, str) else query
        f = {k: str(q.get(k, "")).replace("\x00", "") for k in FILTERS}
        if len(f["q"].split()) > MAX_SEARCH_WORDS or len(f["q"]) > 500:
            raise Refused(400, f"Search with at most {MAX_SEARCH_WORDS} words (500 characters).")
        return f

    def list_kwargs(self, f: dict[str, str], user: dict[str, Any]) -> dict[str, Any]:
        """store.inbox() arguments for a filtered list, checked: a bad value is a 400, never a 500."""
        if f["state"] and f["state"] not in STATES:
            raise Refused(400, f"Unknown state {f['state']!r}; use one of {', '.join(STATES)}.")
        if f["view"] and f["view"] not in VIEWS:
            raise Refused(400, f"Unknown view {f['view']!r}; use one of {', '.join(VIEWS)}.")
        if f["incident"] and not (f["incident"].isdigit() and 0 < int(f["incident"]) <= MAX_ID):
            raise Refused(400, f"Unknown incident {f['incident']!r}.")
        brand = next((b for b in self.config.brands if b.name == f["brand"]), None)
        terms = [*brand.keywords, *(f"@{h}" for h in brand.handles), brand.name] if brand else []
        states = (f["state"],) if f["state"] else VIEWS[f["view"] or "waiting"]
        return dict(states=states, platform=f["platform"] or None, kind=f["kind"] or None,
                    sentiment=f["sentiment"] or None, campaign=f["campaign"] or None, terms=terms,
                    assigned_to=user["name"] if f["assigned"] == "me" else (f["assigned"] or None),
                    snoozed=True if f["snoozed"] == "only" else (None if f["snoozed"] == "all" else False),
                    now=self.clock(), limit=LIMIT, topic=f["topic"] or None,
                    incident=int(f["incident"]) if f["incident"] else None,
                    needs_answer=True if f["needs"] == "answer" else None, search=f["q"] or None,
                    tag=f["tag"] or None, sla_hours=self.config.sla_hours)

    def list_rows(self, store: Store, f: dict[str, str], user: dict[str, Any]) -> tuple[list, dict]:
        from .. import incidents as incidents_mod

        rows = incidents_mod.group_rows(store.inbox(**self.list_kwargs(f, user)))
        groups = {r["incident"]: store.incident(r["incident"]) for r in rows if r["incident_first"]}
        present = store.present([r["id"] for r in rows], now=self.clock())
        labels = store.labels([f"action:{r['id']}" for r in rows] + [f"person:{r['person']}" for r in rows])
        now = self.clock()
        for r in rows:
            r["why"] = self._why(r)
            r["age"] = age(r["post_created_at"], now)
            r["due"], r["overdue"] = due_phrase(r.get("due_at"), now)
            r["here"] = [u for u in present.get(r["id"], []) if u != user["name"]]
            r["labels"] = labels.get(f"action:{r['id']}", []) + labels.get(f"person:{r['person']}", [])
        return rows, groups

    async def inbox(self, request: Request) -> Response:
        user = self.user(request)
        f = self.filters_of(dict(request.query_params))
        store = self.store()
        try:
            rows, groups = self.list_rows(store, f, user)
            counts = store.state_counts()
            platforms = store.platforms()
            alerts = store.alerts()
            team = [u["name"] for u in store.users() if not u["disabled"]]
            since = store.last_change()
            mine = len(store.inbox(states=WAITING_STATES, assigned_to=user["name"], limit=LIMIT))
        finally:
            store.close()
        return self.render(request, "inbox.html", user=user, rows=rows, f=f, counts=counts, platforms=platforms,
                           brands=[b.name for b in self.config.brands], groups=groups, team=team, since=since,
                           topics=[t.name for t in self.config.topics], mine=mine,
                           campaigns=[c.name for c in self.config.campaigns], alerts=alerts,
                           query=request.url.query, limit=LIMIT, views=list(VIEWS))

    async def rows(self, request: Request) -> Response:
        """The list's rows alone, for the page to swap in when something changed (live updates)."""
        user = self.user(request)
        f = self.filters_of(dict(request.query_params))
        store = self.store()
        try:
            rows, groups = self.list_rows(store, f, user)
        finally:
            store.close()
        back = "/?" + urlencode({k: v for k, v in f.items() if v})
        html = self.env.get_template("rows.html").render(rows=rows, groups=groups, user=user, query=back[2:],
                                                         f=f)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def events(self, request: Request) -> Response:
        """Server-Sent Events: one event whenever anything changes (a new draft, a state change, an assignment, a
        note), with what changed; the page then refreshes its rows."""
        user = self.user(request)
        raw = request.query_params.get("since", "0")
        since = int(raw) if raw.isdigit() and len(raw) < 19 else 0

        cookie = request.cookies.get(SESSION_COOKIE, "")

        def poll(after: int) -> tuple[int, list[dict[str, Any]]] | None:
            store = self.store()
            try:
                # The session is checked at every poll: a disabled account or a signed-out session stops at once.
                if store.session(cookie, now=self.clock()) is None:
                    return None
                last = store.last_change()
                return last, store.changes_since(after) if last > after else []
            finally:
                store.close()

        async def stream():
            nonlocal since
            yield f": hello {user['name']}\n\n"
            waited = 0.0
            while waited < EVENT_STREAM_SECONDS:
                if await request.is_disconnected():
                    return
                polled = await run_in_threadpool(poll, since)
                if polled is None:
                    yield "event: signed-out\ndata: {}\n\n"
                    return
                last, changes = polled
                if changes:
                    since = last
                    payload = {"since": last, "changes": [
                        {"action": c["action_id"], "event": c["event"], "by": c["actor"]} for c in changes]}
                    yield f"id: {last}\nevent: change\ndata: {json.dumps(payload)}\n\n"
                await asyncio.sleep(EVENT_POLL_SECONDS)
                waited += EVENT_POLL_SECONDS
                if int(waited) % 15 == 0 and waited == int(waited):
                    yield ": still here\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @staticmethod
    def _why(r: dict[str, Any]) -> list[str]:
        why = list(json.loads(r.get("reasons") or "[]"))  # priority.py's reasons: sentiment, words, reach, age
        if not why and r.get("label"):
            why.append(f"{r['label']} {r.get('negative') or 0:.2f}")
        if r.get("campaigns"):
            why.append(f"campaign: {r['campaigns']}")
        return list(dict.fromkeys(why))

    async def bulk(self, request: Request) -> Response:
        """One decision for every selected item: approve, reject (with a reason), assign, snooze or done."""
        user = self.user(request, "responder")
        form = await self.form(request, user)
        what = str(form.get("do", ""))
        needs = {"approve": "approver", "reject": "approver", "assign": "responder", "snooze": "responder",
                 "done": "responder"}
        if what not in needs:
            raise Refused(400, "Pick what to do with the selected items.")
        self.require(user, needs[what])
        ids, seen = picked(form, versions=what in ("approve", "reject", "done"))
        hours = 0.0
        if what == "snooze":
            try:
                hours = float(form.get("hours", "4"))
            except ValueError:
                raise Refused(400, "Snooze needs a number of hours.") from None
            if not 0 < hours <= MAX_SNOOZE_HOURS:
                raise Refused(400, f"Snooze for up to {MAX_SNOOZE_HOURS} hours.")
        done, problems = 0, []
        store = self.store()
        try:
            for action_id in ids:
                try:
                    if what == "approve":
                        approval.approve(store, action_id, actor=user["name"], version=seen[action_id])
                    elif what == "reject":
                        approval.reject(store, action_id, actor=user["name"], reason=str(form.get("reason", "")),
                                        version=seen[action_id])
                    elif what == "done":
                        approval.done(store, action_id, actor=user["name"], reason=str(form.get("reason", "")),
                                      version=seen[action_id])
                    elif what == "assign":
                        store.assign(action_id, str(form.get("user", "")), user["name"])
                    else:
                        import datetime as dt

                        store.snooze(action_id, self.clock() + dt.timedelta(hours=hours), user["name"])
                    done += 1
                except TaiwaError as e:
                    problems.append(f"#{action_id}: {e.message}")
        finally:
            store.close()
        verb = {"approve": "Approved", "reject": "Rejected", "assign": "Assigned", "snooze": "Snoozed",
                "done": "Closed (no reply needed)"}[what]
        msg = f"{verb} {done} of {len(ids)}." + (" Not done: " + "; ".join(problems) if problems else "")
        return self.redirect(self._back(form), flash=msg if ids else "Select some items first (x, or the boxes).")

    async def approve_likes(self, request: Request) -> Response:
        user = self.user(request, "approver")
        form = await self.form(request, user)
        ids, seen = picked(form, versions=True)
        done, problems = 0, []
        store = self.store()
        try:
            for action_id in ids:
                try:
                    if store.action(action_id)["kind"] != "like":
                        problems.append(f"#{action_id} is a reply: approve replies one by one")
                        continue
                    approval.approve(store, action_id, actor=user["name"], version=seen[action_id])
                    done += 1
                except TaiwaError as e:
                    problems.append(e.message)
        finally:
            store.close()
        msg = f"Approved {done} like{'s' if done != 1 else ''}." + (f" Not done: {'; '.join(problems)}"
                                                                   if problems else "")
        return self.redirect(self._back(form), flash=msg if ids else "Select some likes first.")

    async def send(self, request: Request) -> Response:
        """Every approved action, escalated first then by priority, each at most once; the answer says how many
        went, failed, and are left, and why."""
        user = self.user(request, "approver")
        form = await self.form(request, user)

        def work() -> str:
            store = self.store()
            try:
                sender_for, problems = senders.router(self.config, store)
                rep = senders.send_approved(store, sender_for, actor=user["name"])
            finally:
                store.close()
            msg = rep.summary().capitalize() + "."
            return msg + "".join(f" {p}." for p in rep.problems) + "".join(f" {p}: {why}." for p, why in problems.items())
        return self.redirect(self._back(form), flash=await run_in_threadpool(work))

    async def metrics(self, request: Request) -> Response:
        user = self.user(request)
        store = self.store()
        try:
            rt = response_metrics(store.response_times(), self.config.sla_hours)
            decisions = store.approval_counts()
            counts = store.state_counts()
        finally:
            store.close()
        decided = decisions["approved"] + decisions["rejected"]
        rate = decisions["approved"] / decided if decided else None
        return self.render(request, "metrics.html", user=user, rt=rt, decisions=decisions, rate=rate,
                           counts=counts, chart=histogram_svg(rt["hours"]) if rt["hours"] else "")

    async def audit(self, request: Request) -> Response:
        user = self.user(request)
        raw = request.query_params.get("action", "")
        if raw and not (raw.isascii() and raw.isdigit() and int(raw) <= MAX_ID):
            raise Refused(400, f"action must be an action's number, not {raw!r}")
        store = self.store()
        try:
            rows = store.audit_log(int(raw)) if raw else store.audit_log(limit=300)
        finally:
            store.close()
        return self.render(request, "audit.html", user=user, rows=rows, action=raw)


def picked(form, *, versions: bool) -> tuple[list[int], dict[int, int | None]]:
    """The items a bulk form selected. Each box carries the version of the row the person saw ("12:3"), so a
    teammate's change since the list was loaded refuses that item, exactly as a single approval does; a
    decision (versions=True) without them is refused whole."""
    ids, seen = [], {}
    for raw in form.getlist("ids"):
        number, _, version = str(raw).partition(":")
        if not (number.isascii() and number.isdigit() and 0 < int(number) <= MAX_ID) \
                or (version and not (version.isascii() and version.isdigit() and len(version) < 12)):
            raise Refused(400, f"Not an action number: {raw!r}.")
        ids.append(int(number))
        seen[int(number)] = int(version) if version else None
    if versions and any(v is None for v in seen.values()):
        raise Refused(400, "Reload the list and try again: the selection did not say which version of each item "
                           "you saw.")
    return ids, seen
