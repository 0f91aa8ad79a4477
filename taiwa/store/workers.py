"""Workers sharing one database (`taiwa run --worker`, PostgreSQL): who is running, leases on listener streams,
claimed chunks of posts to classify, singleton jobs.

- A listener stream (one cursor) is read by one worker at a time: it holds a lease until `expires_at`, renewed
  with every batch it stores and every heartbeat. A worker that dies stops renewing; once the lease expires
  another worker takes the stream over, from the stored cursor. The cursor write checks the lease inside the
  ingest transaction, so a worker that lost its lease (paused too long, say) cannot move a cursor it no
  longer owns: its batch is dropped and re-read by the new holder.
- Posts to classify are claimed in chunks with SELECT … FOR NO KEY UPDATE SKIP LOCKED, in a transaction held
  while the chunk is classified: two workers never take the same post, and a killed worker's chunk is free
  again the moment its connection drops. Triage goes chunk by chunk under the write lock (triage_turn), so
  each customer's memory sees what every worker drafted.
- Jobs that must run once per database (follow-ups, campaign snapshots, the digest, retention) take an
  advisory lock; a worker that does not get it skips the run.
On SQLite (one daemon per file) the same calls work and simply never contend."""

from __future__ import annotations

import datetime as dt
import json
import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from ..errors import LeaseLost

EPOCH = "1970-01-01T00:00:00+00:00"


class WorkersMixin:
    # ---------------------------------------------------------------- the worker registry
    def register_worker(self, worker: str, host: str, pid: int, jobs: Sequence[str],
                        now: dt.datetime | None = None) -> None:
        stamp = self.stamp(now)
        self._x("""INSERT INTO workers (id, host, pid, jobs, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at""",
                [worker, host, pid, json.dumps(list(jobs)), stamp, stamp])

    def worker_heartbeat(self, worker: str, *, lease_seconds: float, now: dt.datetime | None = None) -> bool:
        """Still alive: refresh the worker's row and every lease it holds. False if its row is gone (someone
        removed it with `taiwa workers --forget`): it must stop."""
        now = now or self.clock()
        with self.atomic(exclusive=False):
            alive = self._x("UPDATE workers SET heartbeat_at = ? WHERE id = ?", [self.stamp(now), worker]).rowcount
            self._x("UPDATE leases SET expires_at = ? WHERE worker = ? AND expires_at > ?",
                    [self.stamp(now + dt.timedelta(seconds=lease_seconds)), worker, self.stamp(now)])
        return bool(alive)

    def unregister_worker(self, worker: str) -> None:
        """A clean stop: the worker's leases are free at once (nobody waits for them to expire)."""
        with self.atomic(exclusive=False):
            self._x("UPDATE leases SET worker = '', expires_at = ? WHERE worker = ?", [EPOCH, worker])
            self._x("DELETE FROM workers WHERE id = ?", [worker])

    def workers(self, *, stale_after: float, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every registered worker, whether it is alive (a heartbeat within stale_after seconds), and the
        streams it holds."""
        now = now or self.clock()
        rows = self._rows("SELECT * FROM workers ORDER BY host, pid")
        held: dict[str, list[str]] = {}
        for r in self._rows("SELECT name, worker FROM leases WHERE worker != '' AND expires_at > ? ORDER BY name",
                            [self.stamp(now)]):
            held.setdefault(r["worker"], []).append(r["name"])
        for r in rows:
            r["jobs"] = json.loads(r["jobs"])
            r["heartbeat_age_s"] = round((now - dt.datetime.fromisoformat(r["heartbeat_at"])).total_seconds(), 1)
            r["alive"] = r["heartbeat_age_s"] <= stale_after
            r["leases"] = held.get(r["id"], [])
        return rows

    def forget_worker(self, worker: str) -> bool:
        """Remove a dead worker's row (its leases expire by themselves)."""
        return bool(self._x("DELETE FROM workers WHERE id = ?", [worker]).rowcount)

    # ---------------------------------------------------------------- leases on listener streams
    def claim_streams(self, worker: str, names: Sequence[str], *, lease_seconds: float,
                      now: dt.datetime | None = None) -> list[str]:
        """The streams among `names` this worker may read now: those it holds (renewed), plus free or expired
        ones up to its fair share (the streams divided among the live workers). Over its share (a worker
        joined), it gives streams back."""
        names = sorted(set(names))
        if not names:
            return []
        now = now or self.clock()
        until = self.stamp(now + dt.timedelta(seconds=lease_seconds))
        marks = ",".join("?" * len(names))
        with self.atomic(exclusive=False):
            self._xmany("INSERT INTO leases (name, worker, expires_at) VALUES (?, '', ?) ON CONFLICT DO NOTHING",
                        [(n, EPOCH) for n in names])
            live = self._scalar("SELECT count(*) FROM workers WHERE heartbeat_at > ?",
                                [self.stamp(now - dt.timedelta(seconds=lease_seconds))]) or 1
            share = math.ceil(len(names) / max(live, 1))
            held = [r["name"] for r in self._rows(
                f"SELECT name FROM leases WHERE worker = ? AND expires_at > ? AND name IN ({marks}) "
                f"ORDER BY name{self.sql.for_update}", [worker, self.stamp(now), *names])]
            if len(held) > share:
                give_back = held[share:]
                held = held[:share]
                self._x(f"UPDATE leases SET worker = '', expires_at = ? WHERE worker = ? AND name IN "
                        f"({','.join('?' * len(give_back))})", [EPOCH, worker, *give_back])
            elif len(held) < share:
                free = [r["name"] for r in self._rows(
                    f"SELECT name FROM leases WHERE name IN ({marks}) AND expires_at <= ? "
                    f"ORDER BY name LIMIT ?{self.sql.skip_locked}",
                    [*names, self.stamp(now), share - len(held)])]
                for name in free:
                    self._x("UPDATE leases SET worker = ?, expires_at = ?, acquired_at = ? WHERE name = ?",
                            [worker, until, self.stamp(now), name])
                held += free
            if held:
                self._x(f"UPDATE leases SET expires_at = ? WHERE worker = ? AND name IN "
                        f"({','.join('?' * len(held))})", [until, worker, *held])
        return sorted(held)

    def _check_lease(self, name: str, worker: str, lease_seconds: float, now: dt.datetime | None = None) -> None:
        """Inside the ingest transaction: the stream is still this worker's (the row is locked until commit, so
        nobody takes it in between); renew it. LeaseLost otherwise, and the transaction rolls back."""
        now = now or self.clock()
        row = self._one(f"SELECT worker, expires_at FROM leases WHERE name = ?{self.sql.for_update}", [name])
        if row is None or row["worker"] != worker or row["expires_at"] <= self.stamp(now):
            holder = row["worker"] if row and row["worker"] else "nobody"
            raise LeaseLost(f"the lease on {name} is no longer this worker's (now: {holder})",
                            "nothing to do: the batch is dropped and the stream's holder reads it again")
        self._x("UPDATE leases SET expires_at = ? WHERE name = ?",
                [self.stamp(now + dt.timedelta(seconds=lease_seconds)), name])

    def leases(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM leases ORDER BY name")

    # ---------------------------------------------------------------- claimed work and singleton jobs
    @contextmanager
    def claim_unclassified(self, limit: int) -> Iterator[list[dict[str, Any]]]:
        """Posts without a sentiment, claimed for the time of the `with` block: write their sentiments inside
        it. On PostgreSQL the rows stay locked (SKIP LOCKED for everyone else) until the block ends."""
        yield self.posts_without_sentiment(limit=limit)

    @contextmanager
    def triage_turn(self) -> Iterator[None]:
        """One chunk of triage: read the ranked-to-be posts, judge them, write priorities and drafts. On
        PostgreSQL the whole chunk holds the write lock, so a worker's per-customer memory (one open draft per
        author, what was said before) sees every draft the other workers wrote; on SQLite there is one daemon."""
        yield

    @contextmanager
    def singleton(self, job: str) -> Iterator[bool]:
        """True when this process may run `job` now (nobody else runs it on this database)."""
        yield True
