"""The one clock taiwa reads.

Everything in taiwa that needs the time takes it from a clock handed down to it: the CLI, the daemon and the
inbox build one from the configuration and give it to the store, the pipeline, the listeners and the senders,
and each of those passes it on. No other module asks the operating system for the date (a test checks), so a
month's X budget is reserved and given back in the same month, a post's age and a draft's deadline agree, and a
test can move time by hand.

`[taiwa] clock` in taiwa.toml, or the TAIWA_CLOCK environment variable (which wins), moves the clock: an instant
("2027-12-31T23:59:30Z": "now" is that instant when the process starts, and it runs on at the real rate from
there) or an offset from the real time ("+365d", "-90m"; units s, m, h, d). It is for rehearsals and for testing
whole processes at another date; leave it unset in production.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Callable

ENV = "TAIWA_CLOCK"
Clock = Callable[[], dt.datetime]   # returns an aware UTC datetime
OFFSET = re.compile(r"^\s*([+-])\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_offset(text: str) -> dt.timedelta | None:
    """"+365d", "-90m", "+2.5h" → a timedelta; None when the text is not an offset."""
    m = OFFSET.match(text)
    if not m:
        return None
    seconds = float(m.group(2)) * UNITS[m.group(3)]
    return dt.timedelta(seconds=seconds if m.group(1) == "+" else -seconds)


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant ("2027-12-31T23:59:30Z", "2028-02-29T09:00+09:00"); a time without a zone is UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc)


def wall() -> dt.datetime:
    """The operating system's time, in UTC. Only the clocks below call this."""
    return dt.datetime.now(dt.timezone.utc)


class SystemClock:
    """The real time, optionally started at another instant or moved by an offset (running at the real rate)."""

    def __init__(self, start: dt.datetime | None = None, offset: dt.timedelta | None = None):
        self.start = start
        self._offset = (start - wall()) if start else (offset or dt.timedelta(0))

    def __call__(self) -> dt.datetime:
        return wall() + self._offset

    def __repr__(self) -> str:
        if self.start:
            return f"SystemClock(start={self.start.isoformat()})"
        return f"SystemClock(offset={self._offset})" if self._offset else "SystemClock()"


def _moved(text: str) -> Clock:
    """A clock from a setting's text: an offset or an instant (ValueError otherwise)."""
    offset = parse_offset(text)
    return SystemClock(offset=offset) if offset is not None else SystemClock(parse_instant(text))


class FixedClock:
    """A clock that moves only when told: for tests and for measuring at a chosen instant."""

    def __init__(self, t: dt.datetime):
        self.t = t.astimezone(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **delta: float) -> dt.datetime:
        self.t += dt.timedelta(**delta)
        return self.t

    def set(self, t: dt.datetime) -> None:
        self.t = t.astimezone(dt.timezone.utc)


def from_setting(value: str | None = None) -> Clock:
    """The clock a process runs on: TAIWA_CLOCK if set, else `[taiwa] clock` (value), else the real time."""
    text = os.environ.get(ENV) or value or ""
    if not text.strip():
        return system
    try:
        return _moved(text)
    except ValueError:
        from .errors import ConfigError

        where = ENV if os.environ.get(ENV) else "taiwa.clock"
        raise ConfigError("taiwa.toml" if where == "taiwa.clock" else "the environment", where,
                          f"{text!r} is neither an ISO 8601 instant nor an offset",
                          'write it like "2027-12-31T23:59:30Z" or "+365d", or leave it unset for the real time'
                          ) from None


def _system_from_env() -> Clock:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return SystemClock()
    try:
        return _moved(text)
    except ValueError:
        return SystemClock()   # from_setting reports the bad value where a command reads its configuration


# The process's default clock: what a store or listener built without one reads.
system: Clock = _system_from_env()
