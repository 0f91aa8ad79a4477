"""The team who sign in to the inbox, and their browser sessions."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from ..errors import NotFound, ValidationError
from .common import ROLES, SESSION_HOURS
from .passwords import _dummy_hash, _token_hash, check_password, hash_password, needs_rehash

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class TeamMixin:
    # ---------------------------------------------------------------- team: users and browser sessions
    def add_user(self, name: str, role: str, password: str, actor: str) -> None:
        if role not in ROLES:
            raise ValidationError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
        # Plain ASCII only, so nobody can be "аdmin" (a Cyrillic а), "ｄｅｍｏ" or "ADMIN" beside "admin".
        if not USER_NAME.fullmatch(name or ""):
            raise ValidationError(f"user name {name!r} is not allowed",
                                  "use 1–32 plain letters a–z, digits, '.', '-' and '_' (no accents, no other scripts)")
        if len(password) < 10:
            raise ValidationError("the password is shorter than 10 characters", "choose a longer one")
        with self.atomic():
            if self._one("SELECT 1 FROM users WHERE lower(name) = lower(?)", [name]):
                raise ValidationError(f"user {name!r} already exists (names are the same in any case)",
                                      "`taiwa user passwd` changes a password, `taiwa user role` a role")
            self._x("INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                            [name, role, hash_password(password), self.stamp()])
            self._audit(actor, None, "user_added", "", role, name)

    def set_user(self, name: str, actor: str, *, role: str | None = None, password: str | None = None,
                 disabled: bool | None = None) -> None:
        with self.atomic():
            row = self._one("SELECT role, disabled FROM users WHERE name = ?", [name])
            if row is None:
                raise NotFound(f"no user {name!r}", "`taiwa user list` shows the team")
            if role is not None:
                if role not in ROLES:
                    raise ValidationError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
                self._x("UPDATE users SET role = ? WHERE name = ?", [role, name])
                self._audit(actor, None, "user_role", row["role"], role, name)
            if password is not None:
                if len(password) < 10:
                    raise ValidationError("the password is shorter than 10 characters", "choose a longer one")
                self._x("UPDATE users SET password_hash = ? WHERE name = ?", [hash_password(password), name])
                self._x('DELETE FROM web_sessions WHERE "user" = ?', [name])
                self._audit(actor, None, "user_password", "", "", name)
            if disabled is not None:
                self._x("UPDATE users SET disabled = ? WHERE name = ?", [int(disabled), name])
                if disabled:
                    self._x('DELETE FROM web_sessions WHERE "user" = ?', [name])
                self._audit(actor, None, "user_disabled" if disabled else "user_enabled", "", "", name)

    def users(self) -> list[dict[str, Any]]:
        return self._rows("SELECT name, role, created_at, disabled FROM users ORDER BY name")

    def check_login(self, name: str, password: str) -> dict[str, Any] | None:
        """The user, if the name and password match an enabled account."""
        row = self._one("SELECT * FROM users WHERE name = ?", [name])
        if row is None:
            check_password(password, _dummy_hash())  # same work either way: timing does not reveal user names
            return None
        if not check_password(password, row["password_hash"]) or row["disabled"]:
            return None
        if needs_rehash(row["password_hash"]):   # made with an older, cheaper cost: upgrade it now we know it
            self._x("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                            [hash_password(password), name, row["password_hash"]])
        return {"name": row["name"], "role": row["role"]}

    def start_session(self, user: str, now: dt.datetime | None = None) -> tuple[str, str]:
        """A new browser session: (cookie value, CSRF token). Only a hash of the cookie value is stored."""
        now = now or self.clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.atomic():
            self._x("DELETE FROM web_sessions WHERE expires_at < ?", [self.stamp(now)])
            self._x('INSERT INTO web_sessions (token_hash, "user", csrf, created_at, expires_at) '
                            "VALUES (?, ?, ?, ?, ?)", [_token_hash(token), user, csrf, self.stamp(now),
                                                        self.stamp(now + dt.timedelta(hours=SESSION_HOURS))])
            self._audit(user, None, "signed_in", "", "", "")
        return token, csrf

    def session(self, token: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
        """The signed-in user behind a cookie value, or None (unknown, expired, or the user was disabled)."""
        if not token:
            return None
        return self._one(
            """SELECT u.name, u.role, ws.csrf FROM web_sessions ws JOIN users u ON u.name = ws."user"
               WHERE ws.token_hash = ? AND ws.expires_at > ? AND u.disabled = 0""",
            [_token_hash(token), self.stamp(now)])

    def end_session(self, token: str) -> None:
        self._x("DELETE FROM web_sessions WHERE token_hash = ?", [_token_hash(token)])

    def stale_sending(self, older_than: dt.datetime) -> list[int]:
        """Actions left in `sending` by a sender that died (claimed before `older_than`)."""
        return [r["id"] for r in self._rows(
            "SELECT id FROM actions WHERE state = 'sending' AND sending_since < ? ORDER BY id",
            [self.stamp(older_than)])]

    def response_times(self) -> list[dict[str, Any]]:
        """Per replied post: when it was posted and when our first reply went out (time to first response)."""
        return self._rows(
            """SELECT p.platform, s.label, p.created_at, min(ac.sent_at) AS first_sent,
                      max(coalesce(pr.escalated, 0)) AS escalated, max(ac.intent) AS intent
               FROM actions ac JOIN posts p ON p.id = ac.post_id LEFT JOIN sentiments s ON s.post_id = p.id
               LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE ac.kind = 'reply' AND ac.state = 'sent' GROUP BY p.id, p.platform, s.label, p.created_at""")
