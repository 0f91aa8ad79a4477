"""PostgreSQL: one database that web servers and workers on several machines share (psycopg 3).

Writers serialise the way SQLite's do: the outermost write transaction takes one transaction-scoped advisory
lock, so every read-then-write in the Store contract means the same on both backends. It is held for the few
milliseconds a write takes; classifying (the slow part) happens outside it, and the workers' queues (leases,
claimed chunks, see workers.py) use row locks and SKIP LOCKED instead. The web inbox borrows connections from
a pool (psycopg_pool) rather than connecting per request."""

from __future__ import annotations

import decimal
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from ..errors import StoreError
from .base import Store
from .dialect import PostgresSQL, to_pyformat
from .pg_schema import STEPS

WRITE_LOCK = 0x7461_6977_6100    # "taiwa" in an advisory-lock key: one writer at a time, like SQLite
MIGRATE_LOCK = WRITE_LOCK + 1
PASSWORD_ENV = "TAIWA_DATABASE_PASSWORD"

_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _connect_kwargs() -> dict[str, Any]:
    kw: dict[str, Any] = {"autocommit": True, "connect_timeout": 10, "application_name": "taiwa"}
    if os.environ.get(PASSWORD_ENV):
        kw["password"] = os.environ[PASSWORD_ENV]
    return kw


def _import_psycopg():
    try:
        import psycopg
    except ImportError as e:   # pragma: no cover - the extra is installed with the tests
        raise StoreError("the database is PostgreSQL but psycopg is not installed",
                         "pip install 'taiwa[postgresql]'") from e
    return psycopg


class PostgresStore(Store):
    backend = "postgresql"
    sql = PostgresSQL

    def __init__(self, url: str, *, migrate: bool = True, pooled: bool = False, clock: Any = None, **_: Any):
        if clock is not None:
            self.clock = clock
        psycopg = _import_psycopg()
        self.url, self.path, self._pool = url, None, None
        self.database = url
        try:
            if pooled:
                self._pool = _pool_for(url)
                self.conn = self._pool.getconn()
            else:
                self.conn = psycopg.connect(url, **_connect_kwargs())
        except Exception as e:   # psycopg.OperationalError, the pool's PoolTimeout
            raise StoreError(f"cannot connect to PostgreSQL at {redact(url)}: {str(e).strip() or type(e).__name__}",
                             "check that the server runs and the URL, user and password "
                             f"(${PASSWORD_ENV} or ~/.pgpass) are right") from e
        self._errors = psycopg.Error
        if migrate:
            self._migrate()

    def describe(self) -> str:
        return redact(self.url)

    # ---------------------------------------------------------------- connection
    def close(self) -> None:
        conn, self.conn = getattr(self, "conn", None), None
        if conn is None:
            return
        if self._pool is not None:
            self._pool.putconn(conn)
        else:
            conn.close()

    def _x(self, sql: str, params: Sequence | None = ()):
        return self.conn.execute(to_pyformat(sql), _params(params or ()))

    def _xmany(self, sql: str, rows: Sequence[Sequence]) -> int:
        rows = [_params(r) for r in rows]
        if not rows:
            return 0
        with self.conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)
            return max(cur.rowcount, 0)

    def _rows(self, sql: str, params: Sequence = ()) -> list[dict[str, Any]]:
        cur = self._x(sql, params)
        cols = [c[0] for c in cur.description]
        # The same Python values SQLite gives: integers for booleans (EXISTS, comparisons), floats for numerics.
        return [dict(zip(cols, (_plain(v) for v in r))) for r in cur.fetchall()]

    def _scalar(self, sql: str, params: Sequence = ()) -> Any:
        row = self._x(sql, params).fetchone()
        return _plain(row[0]) if row else None

    @contextmanager
    def atomic(self, *, exclusive: bool = True) -> Iterator[None]:
        """A transaction (a savepoint when nested). exclusive: take the one-writer lock first (the default,
        and what every read-then-write of the contract relies on); the workers' queues pass False."""
        from psycopg import pq

        outermost = self.conn.info.transaction_status == pq.TransactionStatus.IDLE
        with self.conn.transaction():
            if outermost and exclusive:
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITE_LOCK])
            yield

    # ---------------------------------------------------------------- workers' queues (see workers.py)
    @contextmanager
    def claim_unclassified(self, limit: int) -> Iterator[list[dict[str, Any]]]:
        """Lock up to `limit` unclassified posts for this transaction; everyone else's claim skips them.
        FOR NO KEY UPDATE still lets other transactions insert rows that point at these posts (sentiments,
        priorities), so nobody waits on a claim but a writer of the posts themselves."""
        with self.atomic(exclusive=False):
            rows = self._rows(
                """SELECT p.id, p.text FROM posts p
                   WHERE NOT EXISTS (SELECT 1 FROM sentiments s WHERE s.post_id = p.id)
                   ORDER BY p.id LIMIT ? FOR NO KEY UPDATE OF p SKIP LOCKED""", [limit])
            if rows:
                # The SELECT's snapshot predates the lock: a post another worker classified and committed just
                # before we locked it still looked unclassified. A fresh statement sees that commit.
                done = {r["post_id"] for r in self._rows(
                    "SELECT post_id FROM sentiments WHERE post_id = ANY(?)", [[r["id"] for r in rows]])}
                rows = [r for r in rows if r["id"] not in done]
            yield rows

    @contextmanager
    def triage_turn(self) -> Iterator[None]:
        with self.atomic():
            yield

    @contextmanager
    def singleton(self, job: str) -> Iterator[bool]:
        """A session advisory lock named for the job: taken without waiting, released when the block ends (or
        when the connection drops, if the process dies)."""
        got = bool(self._scalar("SELECT pg_try_advisory_lock(hashtext(?))", [f"taiwa:job:{job}"]))
        try:
            yield got
        finally:
            if got and self.conn is not None and not self.conn.closed:
                self._scalar("SELECT pg_advisory_unlock(hashtext(?))", [f"taiwa:job:{job}"])

    def tables(self) -> list[str]:
        return [r["table_name"] for r in self._rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name")]

    # ---------------------------------------------------------------- schema
    def _migrate(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATE_LOCK])   # two processes starting at once
            self.conn.execute("CREATE TABLE IF NOT EXISTS taiwa_migrations (name TEXT PRIMARY KEY, "
                              "applied_at TEXT NOT NULL)")
            applied = {r[0] for r in self.conn.execute("SELECT name FROM taiwa_migrations").fetchall()}
            newer = applied - {name for name, _ in STEPS}
            if newer:
                raise StoreError(f"{self.describe()} was written by a newer taiwa (schema steps {sorted(newer)})",
                                 "upgrade taiwa (pip install -U taiwa) before opening this database")

            for name, sql in STEPS:
                if name not in applied:
                    self.conn.execute(sql)
                    self.conn.execute("INSERT INTO taiwa_migrations (name, applied_at) VALUES (%s, %s)",
                                      [name, self.stamp()])

    # ---------------------------------------------------------------- backups belong to PostgreSQL's tools
    def backup_to(self, target: str) -> None:
        raise StoreError("taiwa backup copies SQLite files; this database is PostgreSQL",
                         f"use PostgreSQL's own tools: pg_dump --format=custom --file={target} '<your URL>'")

    def restore_from(self, source: str, progress=None) -> None:
        raise StoreError("taiwa restore writes SQLite files; this database is PostgreSQL",
                         "restore a pg_dump with pg_restore, or copy a SQLite file in with `taiwa migrate-db`")


def _params(params: Sequence) -> list[Any]:
    """Flags go in as 0/1, as SQLite stores them: PostgreSQL will not put a boolean into an integer column."""
    return [int(v) if isinstance(v, bool) else v for v in params]


def _plain(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v


def _pool_for(url: str):
    """One pool per database URL per process: the inbox's requests borrow a connection and give it back."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(url, min_size=1, max_size=int(os.environ.get("TAIWA_DATABASE_POOL", "10")),
                                  kwargs=_connect_kwargs(), timeout=30, name="taiwa", open=False)
            pool.open(wait=True, timeout=30)
            _pools[url] = pool
        return pool


def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
