"""What the inbox's pages share: refusals, security headers, sign-in throttling, small formatting helpers."""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
from pathlib import Path
from typing import Callable

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


MAX_BODY = 256 * 1024       # no form of the inbox sends more; a bigger body is refused before it is read
MAX_FIELD = 20_000          # characters in one field (a reply is at most a few hundred)


class BodyLimit:
    """ASGI middleware: a request body over MAX_BODY is answered 413 before it is parsed or stored anywhere, by
    its Content-Length or, without one, as soon as the bytes read pass the limit."""

    def __init__(self, app, max_bytes: int = MAX_BODY):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _too_large(send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except TooLarge:
            await _too_large(send)


class TooLarge(Exception):
    pass


async def _too_large(send) -> None:
    body = b"Request body too large for the inbox."
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


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
        self.lock = threading.RLock()
        # scrypt takes 128 MiB and a few hundred ms per check: at most this many at once, the rest answered 429.
        self.hashing = threading.BoundedSemaphore(2)

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

    def begin(self, account: str, address: str) -> float:
        """Check and count in one step, before the password is hashed: a burst of simultaneous attempts cannot
        all pass the check before any of them is counted. Returns the seconds to wait (0: go ahead, counted as a
        failure until `succeeded` clears it)."""
        with self.lock:
            wait = self.wait(account, address)
            if not wait:
                for key in (("account", account.lower()), ("address", address)):
                    self.failures.setdefault(key, []).append(self.now())
            return wait

    def failed(self, account: str, address: str) -> None:
        with self.lock:
            for key in (("account", account.lower()), ("address", address)):
                self.failures.setdefault(key, []).append(self.now())

    def succeeded(self, account: str, address: str = "") -> None:
        with self.lock:
            self.failures.pop(("account", account.lower()), None)
            times = self.failures.get(("address", address))
            if times:
                times.pop()        # the attempt counted by begin() was not a failure


def local_path(url: str, default: str = "/") -> str:
    """A redirect target on this site only: a path, never another host. Browsers read "/\\host", "/\t/host" and
    "//host" as another site (backslashes become slashes, tabs and newlines are dropped), so any of those, any
    control character and anything that is not a plain path is replaced by the default."""
    if not isinstance(url, str) or not url.startswith("/") or len(url) > 2000:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in url) or "\\" in url:
        return default
    from urllib.parse import unquote

    decoded = unquote(url)
    squeezed = "".join(ch for ch in decoded if ord(ch) >= 0x20 and ord(ch) != 0x7f).replace("\\", "/")
    if squeezed.startswith("//") or url.startswith("//") or "://" in decoded.split("?", 1)[0]:
        return default
    return url


def age(iso: str | None, now: dt.datetime) -> str:
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


def due_phrase(due_iso: str | None, now: dt.datetime) -> tuple[str, bool]:
    """("due in 2h 10m", False) or ("overdue by 35m", True) for an SLA deadline; ("", False) without one."""
    if not due_iso:
        return "", False
    seconds = (dt.datetime.fromisoformat(due_iso) - now).total_seconds()
    late, s = seconds < 0, abs(seconds)
    h, m = int(s // 3600), int(s % 3600 // 60)
    span = (f"{h // 24}d {h % 24}h" if h >= 48 else f"{h}h {m}m" if h else f"{m}m")
    return (f"overdue by {span}" if late else f"due in {span}"), late
