"""Is taiwa healthy? For `GET /healthz` (no session, no private data) and `taiwa status --check` (an exit code for
systemd, docker and monitoring).

Problems, each named: the database cannot be read; no daemon holds the lock, or its heartbeat is older than
`[daemon] lock_stale_seconds`; a job failed `[health] failing_runs` times in a row; a listener is paused longer
than `[health] max_pause_hours`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .store import Store, parse_iso


@dataclass
class Health:
    database: bool = True
    daemon: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    paused: list[dict[str, str]] = field(default_factory=list)
    failing_jobs: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "down" if not self.database else ("degraded" if self.problems else "ok")

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "database": "ok" if self.database else "unreachable", "daemon": self.daemon,
                "paused_listeners": self.paused, "failing_jobs": self.failing_jobs, "problems": self.problems}


def check(config: Config, *, now: dt.datetime | None = None, expect_daemon: bool = True) -> Health:
    now = now or config.clock()
    h = Health()
    try:
        store = Store(config.database, migrate=False, clock=config.clock)
    except Exception as e:  # noqa: BLE001 - whatever it is, the answer is "the database is not usable"
        h.database = False
        h.problems.append(f"database: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return h
    try:
        store._scalar("SELECT count(*) FROM posts")
        holder = store.lock_holder()
        stale = config.get("daemon", "lock_stale_seconds")
        if holder:
            age = (now - parse_iso(holder["heartbeat_at"])).total_seconds()
            h.daemon = {"running": age <= stale, "heartbeat_age_s": round(age, 1), "since": holder["started_at"]}
            if age > stale:
                h.problems.append(f"daemon: no heartbeat for {age:.0f} s (more than {stale:g} s)")
        else:
            workers = store.workers(stale_after=stale, now=now)
            alive = [w for w in workers if w["alive"]]
            h.daemon = {"running": bool(alive), "workers": len(alive)}
            if workers and not alive:
                h.problems.append(f"workers: none of {len(workers)} has sent a heartbeat within {stale:g} s")
            elif not workers and expect_daemon:
                h.problems.append("daemon: not running (`taiwa run`, or `taiwa run --worker` on PostgreSQL)")
        runs = config.get("health", "failing_runs")
        for job in store.jobs():
            if job.get("failing", 0) >= runs:
                h.failing_jobs.append(job["name"])
                h.problems.append(f"job {job['name']}: failed {job['failing']} times in a row "
                                  f"({(job['last_error'] or '').splitlines()[0][:120]})")
        limit = dt.timedelta(hours=config.get("health", "max_pause_hours"))
        for st in store.listener_states():
            until = st.get("paused_until")
            if until and parse_iso(until) > now:
                h.paused.append({"listener": st["listener"], "until": until})
                if parse_iso(until) - now > limit:
                    h.problems.append(f"listener {st['listener']}: paused until {until[:16]} "
                                      f"({st.get('pause_reason') or 'rate limit or budget'})")
    except Exception as e:  # noqa: BLE001
        h.database = False
        h.problems.append(f"database: {type(e).__name__}: {e}")
    finally:
        store.close()
    return h
