"""Waiting in tests without time.sleep: libfaketime (the suite runs under a moved clock) makes Python's sleep fail
with EINVAL; a timed wait on an Event works there as everywhere."""

from __future__ import annotations

import threading
import time
from typing import Callable

_never = threading.Event()


def pause(seconds: float) -> None:
    """Let `seconds` pass (a poll's interval, or giving another process time to act)."""
    _never.wait(seconds)


def wait_for(condition: Callable[[], object], timeout: float = 60.0, every: float = 0.05, what: str = "") -> None:
    """Poll a condition on real state until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
        pause(every)
