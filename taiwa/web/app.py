"""The approval inbox: `taiwa serve`. A small Starlette app over the same Store the CLI and daemon use.

Security model, in order:
  * every page needs a signed-in session (cookie holding a random token; the database keeps only its hash);
    the one exception is the sign-in page itself;
  * every POST carries the session's CSRF token (the sign-in form: a double-submit cookie);
  * roles: viewer < responder (edit, snooze, assign) < approver (approve, reject, send) < admin;
  * everything shown is escaped by Jinja's autoescape, and a Content-Security-Policy allows only this
    response's own inline script and style (nonce), so a post's text can never run as code;
  * state changes go through approval.py / Store.transition: compare-and-set, audited with the user's name.
Sending stays at-most-once: the "send" button calls the same senders.send_approved as `taiwa send`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import json
import math
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.concurrency import run_in_threadpool

from .. import incidents as incidents_mod
from ..config import Config
from ..errors import TaiwaError
from ..metrics import response_metrics
from ..responders import approval, saved, senders
from ..responders.drafts import LIMITS, X_URL_LENGTH, reply_length
from ..store import OPEN_STATES, ROLES, STATES, Store

SESSION_COOKIE, LOGIN_CSRF_COOKIE, FLASH_COOKIE = "taiwa_session", "taiwa_login_csrf", "taiwa_flash"
TEMPLATES = Path(__file__).parent / "templates"
LIMIT = 200  # rows per inbox page: the highest priorities; filters narrow it down
SNOOZE_CHOICES = [(1, "1 hour"), (4, "4 hours"), (24, "1 day"), (72, "3 days")]


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# Sent with every response, pages and redirects and errors alike; pages add their own CSP with a nonce.
BASE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
                "X-Frame-Options": "DENY"}
BASE_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
# SQLite's integers are 64-bit: a longer id in a URL is simply not found.
MAX_ID = 2 ** 63 - 1
MAX_SNOOZE_HOURS = 24 * 30


def web_url(url: str | None) -> str:
    """A post's link only if it is an http(s) address: a `javascript:` or `data:` URL from a platform or an export
    is never rendered as a link."""
    url = (url or "").strip()
    return url if url.lower().startswith(("https://", "http://")) else ""


class SecurityHeaders:
    """ASGI middleware: the base security headers on every response, including 404s and redirects."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in BASE_HEADERS.items()
                         if k.lower().encode() not in names]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", BASE_CSP.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInThrottle:
    """Failed sign-ins per account and per address. After `free` failures in `window`, that account (or address)
    waits before any password is even checked: 30 s, doubling with each further failure, at most 15 minutes.
    A right password during the wait is refused too (that is the point); a success clears the account."""

    def __init__(self, *, free_per_account: int = 5, free_per_address: int = 20, window: float = 900,
                 now: Callable[[], float] = time.monotonic):
        self.free = {"account": free_per_account, "address": free_per_address}
        self.window, self.now = window, now
        self.failures: dict[tuple[str, str], list[float]] = {}
        self.lock = threading.Lock()

    def wait(self, account: str, address: str) -> float:
        """Seconds to wait before this sign-in may be tried (0: go ahead)."""
        now = self.now()
        with self.lock:
            longest = 0.0
            for key in (("account", account.lower()), ("address", address)):
                times = [t for t in self.failures.get(key, []) if now - t < self.window]
                self.failures[key] = times
                over = len(times) - self.free[key[0]]
                if over >= 0 and times:
                    longest = max(longest, times[-1] + min(30 * 2 ** over, 900) - now)
            return max(0.0, longest)

    def failed(self, account: str, address: str) -> None:
        with self.lock:
            for key in (("account", account.lower()), ("address", address)):
                self.failures.setdefault(key, []).append(self.now())

    def succeeded(self, account: str) -> None:
        with self.lock:
            self.failures.pop(("account", account.lower()), None)


def local_path(url: str, default: str = "/") -> str:
    """A redirect target on this site only: a path, never another host (not "https://…", not "//host")."""
    return url if url.startswith("/") and not url.startswith("//") else default


def _age(iso: str | None, now: dt.datetime) -> str:
    if not iso:
        return ""
    seconds = (now - dt.datetime.fromisoformat(iso)).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


BUCKETS = [(1, "< 1 h"), (4, "1–4 h"), (12, "4–12 h"), (24, "12–24 h"), (72, "1–3 days"), (float("inf"), "> 3 days")]


def histogram_svg(hours: list[float], width: int = 560, height: int = 200) -> str:
    """An inline SVG bar chart of response times (no JavaScript, no external files)."""
    counts = [0] * len(BUCKETS)
    for h in hours:
        counts[next(i for i, (top, _) in enumerate(BUCKETS) if h < top)] += 1
    peak = max(counts) or 1
    bar_w, gap, base = (width - 20) / len(BUCKETS) - 10, 10, height - 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="time to first response, number of replies per bucket">']
    for i, ((_, raw_label), n) in enumerate(zip(BUCKETS, counts)):
        label = html.escape(raw_label)
        x = 10 + i * (bar_w + gap)
        h = (base - 20) * n / peak
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="#3b6ea5">'
                     f'<title>{label}: {n}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" '
                     f'font-size="12">{n}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                     f'font-size="12">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


class Inbox:
    """The web app. One Store connection per request (SQLite connections are cheap; the daemon writes too)."""

    def __init__(self, config: Config, *, clock: Callable[[], dt.datetime] | None = None,
                 secure_cookies: bool = False, throttle: SignInThrottle | None = None):
        self.config = config
        self.throttle = throttle or SignInThrottle()
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.secure_cookies = secure_cookies
        Store(config.database).close()  # migrate once, up front
        self.env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
        self.env.filters["fromjson"] = lambda s: json.loads(s or "[]")
        self.env.filters["web_url"] = web_url
        self.env.globals.update(ROLES=ROLES, STATES=STATES, LIMITS=LIMITS, X_URL_LENGTH=X_URL_LENGTH,
                                SNOOZE_CHOICES=SNOOZE_CHOICES)
        r = Route
        self.app = Starlette(routes=[
            r("/login", self.login_page, methods=["GET"]),
            r("/login", self.login, methods=["POST"]),
            r("/logout", self.logout, methods=["POST"]),
            r("/", self.inbox, methods=["GET"]),
            r("/actions/{action_id:int}", self.detail, methods=["GET"]),
            r("/actions/{action_id:int}/approve", self.approve, methods=["POST"]),
            r("/actions/{action_id:int}/save", self.save, methods=["POST"]),
            r("/actions/{action_id:int}/reject", self.reject, methods=["POST"]),
            r("/actions/{action_id:int}/reopen", self.reopen, methods=["POST"]),
            r("/actions/{action_id:int}/snooze", self.snooze, methods=["POST"]),
            r("/actions/{action_id:int}/assign", self.assign, methods=["POST"]),
            r("/actions/{action_id:int}/check", self.check, methods=["POST"]),
            r("/actions/{action_id:int}/use", self.use_saved, methods=["POST"]),
            r("/actions/{action_id:int}/link", self.link, methods=["POST"]),
            r("/likes/approve", self.approve_likes, methods=["POST"]),
            r("/incidents/{incident_id:int}", self.incident, methods=["GET"]),
            r("/incidents/{incident_id:int}/reply", self.incident_reply, methods=["POST"]),
            r("/send", self.send, methods=["POST"]),
            r("/metrics", self.metrics, methods=["GET"]),
            r("/audit", self.audit, methods=["GET"]),
        ], exception_handlers={Refused: self._refused})
        self.app.add_middleware(SecurityHeaders)

    # ------------------------------------------------------------------ plumbing
    def store(self) -> Store:
        return Store(self.config.database, migrate=False)

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
        html = self.env.get_template(name).render(request=request, nonce=nonce, flash=flash,
                                                  now=self.clock(), **ctx)
        resp = HTMLResponse(html, status_code=status)
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Cache-Control"] = "no-store"
        if flash:
            resp.delete_cookie(FLASH_COOKIE)
        return resp

    def redirect(self, url: str, flash: str = "") -> RedirectResponse:
        resp = RedirectResponse(url, status_code=303)
        if flash:
            resp.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, httponly=True, samesite="strict",
                            secure=self.secure_cookies)
        return resp

    def _refused(self, request: Request, exc: Refused) -> Response:
        if exc.status == 401 and request.method == "GET":
            return RedirectResponse("/login?" + urlencode({"next": request.url.path + (
                "?" + request.url.query if request.url.query else "")}), status_code=303)
        user = getattr(request.state, "user", None)
        return self.render(request, "refused.html", status=exc.status, message=exc.message, user=user)

    def user(self, request: Request, role: str = "viewer") -> dict[str, Any]:
        """The signed-in user, with at least `role`; otherwise the request is refused (401 / 403)."""
        store = self.store()
        try:
            user = store.session(request.cookies.get(SESSION_COOKIE, ""), now=self.clock())
        finally:
            store.close()
        if user is None:
            raise Refused(401, "Please sign in.")
        request.state.user = user
        if ROLES.index(user["role"]) < ROLES.index(role):
            raise Refused(403, f"Your role ({user['role']}) cannot do this; it needs {role} or above. "
                               "Ask an admin (`taiwa user role NAME ROLE`).")
        return user

    async def form(self, request: Request, user: dict[str, Any]) -> Any:
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf", "")), user["csrf"]):
            raise Refused(403, "This form has expired or came from another site (CSRF token missing or wrong). "
                               "Reload the page and try again.")
        return form

    def _back(self, form: Any, default: str = "/") -> str:
        return local_path(str(form.get("back", "")), default)

    # ------------------------------------------------------------------ sign in / out
    async def login_page(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        resp = self.render(request, "login.html", user=None, login_csrf=token,
                           next=request.query_params.get("next", "/"), error="")
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=self.secure_cookies)
        return resp

    async def login(self, request: Request) -> Response:
        form = await request.form()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(str(form.get("csrf", "")), cookie):
            raise Refused(403, "The sign-in form expired (CSRF token missing or wrong). Reload it and try again.")
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        nxt = local_path(str(form.get("next", "/")))
        address = request.client.host if request.client else "?"
        wait = self.throttle.wait(name, address)
        if wait:
            return self._login_again(request, nxt, 429, f"Too many failed sign-ins. Try again in {math.ceil(wait)} s.")

        def check() -> tuple[dict[str, Any] | None, str]:
            # scrypt takes a few hundred milliseconds: off the event loop, so other people's pages stay quick.
            store = self.store()
            try:
                found = store.check_login(name, password)
                return found, (store.start_session(found["name"], now=self.clock())[0] if found else "")
            finally:
                store.close()

        user, session = await run_in_threadpool(check)
        if user is None:
            self.throttle.failed(name, address)
            return self._login_again(request, nxt, 401, "Wrong name or password (or the account is disabled).")
        self.throttle.succeeded(name)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", secure=self.secure_cookies,
                        max_age=12 * 3600)
        resp.delete_cookie(LOGIN_CSRF_COOKIE)
        return resp

    def _login_again(self, request: Request, nxt: str, status: int, error: str) -> Response:
        token = secrets.token_urlsafe(24)
        resp = self.render(request, "login.html", status=status, user=None, login_csrf=token, next=nxt, error=error)
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=self.secure_cookies)
        return resp

    async def logout(self, request: Request) -> Response:
        user = self.user(request)
        await self.form(request, user)
        store = self.store()
        try:
            store.end_session(request.cookies.get(SESSION_COOKIE, ""))
        finally:
            store.close()
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    # ------------------------------------------------------------------ pages
    def _filters(self, request: Request) -> dict[str, str]:
        q = request.query_params
        return {k: q.get(k, "") for k in ("platform", "brand", "campaign", "sentiment", "state", "kind",
                                           "assigned", "snoozed", "topic", "incident", "needs")}

    async def inbox(self, request: Request) -> Response:
        user = self.user(request)
        f = self._filters(request)
        if f["state"] and f["state"] not in STATES:
            raise Refused(400, f"Unknown state {f['state']!r}; use one of {', '.join(STATES)}.")
        if f["incident"] and not (f["incident"].isdigit() and 0 < int(f["incident"]) <= MAX_ID):
            raise Refused(400, f"Unknown incident {f['incident']!r}.")
        brand = next((b for b in self.config.brands if b.name == f["brand"]), None)
        terms = [*brand.keywords, *(f"@{h}" for h in brand.handles), brand.name] if brand else []
        store = self.store()
        try:
            rows = store.inbox(
                states=(f["state"],) if f["state"] else OPEN_STATES, platform=f["platform"] or None,
                kind=f["kind"] or None, sentiment=f["sentiment"] or None, campaign=f["campaign"] or None,
                terms=terms, assigned_to=user["name"] if f["assigned"] == "me" else None,
                snoozed=True if f["snoozed"] == "only" else (None if f["snoozed"] == "all" else False),
                now=self.clock(), limit=LIMIT, topic=f["topic"] or None,
                incident=int(f["incident"]) if f["incident"] else None,
                needs_answer=True if f["needs"] == "answer" else None)
            rows = incidents_mod.group_rows(rows)
            groups = {r["incident"]: store.incident(r["incident"]) for r in rows if r["incident_first"]}
            counts = store.state_counts()
            platforms = store.platforms()
            alerts = store.alerts()
        finally:
            store.close()
        for r in rows:
            r["why"] = self._why(r)
            r["age"] = _age(r["post_created_at"], self.clock())
        return self.render(request, "inbox.html", user=user, rows=rows, f=f, counts=counts, platforms=platforms,
                           brands=[b.name for b in self.config.brands], groups=groups,
                           topics=[t.name for t in self.config.topics],
                           campaigns=[c.name for c in self.config.campaigns], alerts=alerts,
                           query=request.url.query, limit=LIMIT)

    @staticmethod
    def _why(r: dict[str, Any]) -> list[str]:
        why = list(json.loads(r.get("reasons") or "[]"))  # priority.py's reasons: sentiment, words, reach, age
        if not why and r.get("label"):
            why.append(f"{r['label']} {r.get('negative') or 0:.2f}")
        if r.get("campaigns"):
            why.append(f"campaign: {r['campaigns']}")
        return list(dict.fromkeys(why))

    @staticmethod
    def _action_id(request: Request) -> int:
        action_id = request.path_params["action_id"]
        if not 0 < action_id <= MAX_ID:
            raise Refused(404, f"No action #{action_id}.")
        return action_id

    async def detail(self, request: Request) -> Response:
        user = self.user(request)
        action_id = self._action_id(request)
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
        except TaiwaError as e:
            raise Refused(404, e.message) from e
        finally:
            store.close()
        length, limit = reply_length(a["platform"], a["text"]) if a["kind"] == "reply" else (0, 0)
        a["why"] = self._why({**a, "campaigns": ""})
        return self.render(request, "action.html", user=user, a=a, post=post, thread=thread, history=history,
                           audit=audit, team=team, length=length, limit=limit, accounts=accounts,
                           conversation=conversation, choices=choices,
                           recalled=json.loads(a["recalled"]) if a.get("recalled") else None,
                           memory=json.loads(a["memory"] or "[]"), age=_age(a["post_created_at"], self.clock()),
                           back=local_path(request.query_params.get("back", "/")), error="")

    async def _act(self, request: Request, role: str, do: Callable[[Store, dict[str, Any], Any, int], str]
                   ) -> Response:
        """Run one state change for the signed-in user; errors come back as a message, nothing half-done."""
        user = self.user(request, role)
        form = await self.form(request, user)
        action_id = self._action_id(request)
        store = self.store()
        try:
            message = do(store, user, form, action_id)
        except TaiwaError as e:
            return self.redirect(f"/actions/{action_id}", flash=f"Not done: {e.message}" +
                                 (f" — {e.hint}" if e.hint else ""))
        finally:
            store.close()
        return self.redirect(self._back(form), flash=message)

    async def approve(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            text = form.get("text")
            current = store.action(action_id)
            edited = text is not None and str(text) != current["text"]
            approval.approve(store, action_id, actor=user["name"], text=str(text) if edited else None)
            return f"Approved #{action_id}" + (" (edited)" if edited else "") + "."
        return await self._act(request, "approver", do)

    async def save(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            store.edit_text(action_id, str(form.get("text", "")), user["name"])
            return f"Saved your edit of #{action_id}; it still needs approval."
        return await self._act(request, "responder", do)

    async def reject(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            approval.reject(store, action_id, actor=user["name"], reason=str(form.get("reason", "")))
            return f"Rejected #{action_id}."
        return await self._act(request, "approver", do)

    async def reopen(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            approval.reopen(store, action_id, actor=user["name"])
            return f"#{action_id} is pending again."
        return await self._act(request, "approver", do)

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
        return await self._act(request, "responder", do)

    async def check(self, request: Request) -> Response:
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            was_sent = form.get("was_sent") == "yes"
            approval.resolve_check(store, action_id, actor=user["name"], was_sent=was_sent,
                                   platform_ref=str(form.get("ref", "")))
            return f"#{action_id} marked " + ("sent." if was_sent else "not sent, and approved again.")
        return await self._act(request, "approver", do)

    async def incident(self, request: Request) -> Response:
        user = self.user(request)
        incident_id = request.path_params["incident_id"]
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
        for m in members:
            m["action"] = actions.get(m["post_id"])
        open_drafts = [a for a in actions.values() if a["state"] in ("pending", "failed")]
        suggestion = open_drafts[0]["text"] if open_drafts else ""
        return self.render(request, "incident.html", user=user, i=info, members=members, open=len(open_drafts),
                           suggestion=suggestion, back=local_path(request.query_params.get("back", "/")))

    async def incident_reply(self, request: Request) -> Response:
        """One reply for every open draft of an incident, personalised; "approve" also approves them."""
        incident_id = request.path_params["incident_id"]
        user = self.user(request, "responder")
        form = await self.form(request, user)
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

    async def use_saved(self, request: Request) -> Response:
        """A saved reply picked for the draft: an answer, or a topic's ask (stays pending for approval)."""
        def do(store: Store, user: dict[str, Any], form: Any, action_id: int) -> str:
            kind, _, name = str(form.get("choice", "")).partition(":")
            if kind not in ("answer", "ask") or not name:
                raise Refused(400, "Pick a saved reply from the list.")
            saved.use(store, self.config, action_id, actor=user["name"], answer=name if kind == "answer" else None,
                      ask=name if kind == "ask" else None)
            return f"#{action_id} now uses the saved {kind} {name!r}; check it and approve."
        return await self._act_here(request, "responder", do)

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
        return await self._act_here(request, "responder", do)

    async def _act_here(self, request: Request, role: str, do: Callable[[Store, dict[str, Any], Any, int], str]
                        ) -> Response:
        """Like _act, but back to the action's own page (the change is to be looked at there)."""
        user = self.user(request, role)
        form = await self.form(request, user)
        action_id = self._action_id(request)
        store = self.store()
        try:
            message = do(store, user, form, action_id)
        except TaiwaError as e:
            return self.redirect(f"/actions/{action_id}", flash=f"Not done: {e.message}" +
                                 (f" — {e.hint}" if e.hint else ""))
        finally:
            store.close()
        return self.redirect(f"/actions/{action_id}", flash=message)

    async def approve_likes(self, request: Request) -> Response:
        user = self.user(request, "approver")
        form = await self.form(request, user)
        ids = [int(x) for x in form.getlist("ids") if str(x).isascii() and str(x).isdigit() and 0 < int(x) <= MAX_ID]
        store = self.store()
        done, problems = 0, []
        try:
            for action_id in ids:
                try:
                    if store.action(action_id)["kind"] != "like":
                        problems.append(f"#{action_id} is a reply: approve replies one by one")
                        continue
                    approval.approve(store, action_id, actor=user["name"])
                    done += 1
                except TaiwaError as e:
                    problems.append(e.message)
        finally:
            store.close()
        msg = f"Approved {done} like{'s' if done != 1 else ''}." + (f" Not done: {'; '.join(problems)}"
                                                                   if problems else "")
        return self.redirect(self._back(form), flash=msg if ids else "Select some likes first.")

    async def send(self, request: Request) -> Response:
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
            rt = response_metrics(store.response_times())
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


def create_app(config: Config, **kwargs: Any) -> Starlette:
    return Inbox(config, **kwargs).app
