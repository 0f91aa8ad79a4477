"""The approval inbox: `taiwa serve`. A small Starlette app over the same Store the CLI and daemon use.

Security model, in order:
  * every page needs a signed-in session (cookie holding a random token; the database keeps only its hash);
    the one exception is the sign-in page itself;
  * every POST carries the session's CSRF token (the sign-in form: a double-submit cookie);
  * roles: viewer < responder (edit, snooze, assign, done, notes) < approver (approve, reject, send) < admin;
  * everything shown is escaped by Jinja's autoescape, and a Content-Security-Policy allows only this
    response's own inline script and style (nonce), so a post's text can never run as code;
  * state changes go through approval.py / Store.transition: compare-and-set, audited with the user's name, and
    refused when the item changed since the person loaded it (its version).
Sending stays at-most-once: the "send" button calls the same senders.send_approved as `taiwa send`.

The pages live in listing.py (the list, bulk, send, live updates, metrics, audit) and item.py (one item and its
decisions, incidents); this module holds sign-in and the plumbing they share.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import secrets
from typing import Any, Callable
from urllib.parse import quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..config import Config
from ..metrics import response_metrics  # noqa: F401 - the metrics page's figures; tests import it from here
from ..responders.drafts import LIMITS, X_URL_LENGTH
from ..store import ROLES, STATES, Store
from .item import ItemPages
from .listing import ListPages
from .util import (FLASH_COOKIE, LOGIN_CSRF_COOKIE, MAX_FIELD, SESSION_COOKIE, SNOOZE_CHOICES, TEMPLATES, BodyLimit,
                   Refused, SecurityHeaders, SignInThrottle, histogram_svg, local_path, web_url)

__all__ = ["create_app", "Inbox", "SignInThrottle", "histogram_svg", "response_metrics", "local_path"]


class Inbox(ListPages, ItemPages):
    """The web app. One Store connection per request (SQLite connections are cheap; the daemon writes too)."""

    def __init__(self, config: Config, *, clock: Callable[[], dt.datetime] | None = None,
                 secure_cookies: bool = False, throttle: SignInThrottle | None = None):
        self.config = config
        self.throttle = throttle or SignInThrottle()
        self.clock = clock or config.clock
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
            r("/healthz", self.healthz, methods=["GET"]),
            r("/", self.inbox, methods=["GET"]),
            r("/rows", self.rows, methods=["GET"]),
            r("/events", self.events, methods=["GET"]),
            r("/actions/{action_id:int}", self.detail, methods=["GET"]),
            r("/actions/{action_id:int}/approve", self.approve, methods=["POST"]),
            r("/actions/{action_id:int}/save", self.save, methods=["POST"]),
            r("/actions/{action_id:int}/reject", self.reject, methods=["POST"]),
            r("/actions/{action_id:int}/done", self.done, methods=["POST"]),
            r("/actions/{action_id:int}/reopen", self.reopen, methods=["POST"]),
            r("/actions/{action_id:int}/snooze", self.snooze, methods=["POST"]),
            r("/actions/{action_id:int}/assign", self.assign, methods=["POST"]),
            r("/actions/{action_id:int}/check", self.check, methods=["POST"]),
            r("/actions/{action_id:int}/use", self.use_saved, methods=["POST"]),
            r("/actions/{action_id:int}/link", self.link, methods=["POST"]),
            r("/actions/{action_id:int}/note", self.note, methods=["POST"]),
            r("/actions/{action_id:int}/tag", self.tag, methods=["POST"]),
            r("/actions/{action_id:int}/correct", self.correct, methods=["POST"]),
            r("/actions/{action_id:int}/here", self.here, methods=["POST"]),
            r("/bulk", self.bulk, methods=["POST"]),
            r("/likes/approve", self.approve_likes, methods=["POST"]),
            r("/incidents/{incident_id:int}", self.incident, methods=["GET"]),
            r("/incidents/{incident_id:int}/reply", self.incident_reply, methods=["POST"]),
            r("/send", self.send, methods=["POST"]),
            r("/metrics", self.metrics, methods=["GET"]),
            r("/audit", self.audit, methods=["GET"]),
        ], exception_handlers={Refused: self._refused})
        self.app.add_middleware(SecurityHeaders)
        self.app.add_middleware(BodyLimit)

    # ------------------------------------------------------------------ plumbing
    def store(self) -> Store:
        return Store(self.config.database, migrate=False, pooled=True, clock=self.clock)

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
        html = self.env.get_template(name).render(request=request, nonce=nonce, flash=flash,
                                                  now=self.clock(), **ctx)
        resp = HTMLResponse(html, status_code=status)
        resp.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
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

    @staticmethod
    def require(user: dict[str, Any], role: str) -> None:
        if ROLES.index(user["role"]) < ROLES.index(role):
            raise Refused(403, f"Your role ({user['role']}) cannot do this; it needs {role} or above. "
                               "Ask an admin (`taiwa user role NAME ROLE`).")

    async def form(self, request: Request, user: dict[str, Any]) -> Any:
        form = await request.form()
        if not hmac.compare_digest(str(form.get("csrf", "")), user["csrf"]):
            raise Refused(403, "This form has expired or came from another site (CSRF token missing or wrong). "
                               "Reload the page and try again.")
        # A NUL character is never meant (no database stores it in text the same way): dropped at the edge. No
        # field a person types is longer than MAX_FIELD.
        from starlette.datastructures import FormData

        for key, value in form.multi_items():
            if isinstance(value, str) and len(value) > MAX_FIELD:
                raise Refused(413, f"The field {key!r} is {len(value):,} characters; at most {MAX_FIELD:,} are taken.")

        return FormData([(k, v.replace("\x00", "") if isinstance(v, str) else v) for k, v in form.multi_items()])

    def _back(self, form: Any, default: str = "/") -> str:
        return local_path(str(form.get("back", "")), default)

    async def healthz(self, request: Request) -> Response:
        """For load balancers, docker and monitoring: no session needed, and nothing private in it (counts of
        nothing, no names but listeners' and jobs'). 200 while the database answers (?strict=1: only when every
        check passes), 503 otherwise."""
        from .. import health

        h = await run_in_threadpool(health.check, self.config, expect_daemon=request.query_params.get("daemon")
                                    != "no")
        strict = request.query_params.get("strict") == "1"
        code = 200 if h.status == "ok" or (h.database and not strict) else 503
        return JSONResponse(h.as_dict(), status_code=code, headers={"Cache-Control": "no-store"})

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
        if not self.throttle.hashing.acquire(blocking=False):
            return self._login_again(request, nxt, 429, "Too many sign-ins at this moment. Try again in a few "
                                                        "seconds.")
        try:
            return await self._check_login(request, name, password, nxt, address)
        finally:
            self.throttle.hashing.release()

    async def _check_login(self, request: Request, name: str, password: str, nxt: str, address: str) -> Response:
        wait = self.throttle.begin(name, address)     # counted before the hash, not after
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
            return self._login_again(request, nxt, 401, "Wrong name or password (or the account is disabled).")
        self.throttle.succeeded(name, address)
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


def create_app(config: Config, **kwargs: Any) -> Starlette:
    return Inbox(config, **kwargs).app
