"""The embedded default: one SQLite file. WAL, a busy timeout and short transactions, so a daemon, the inbox and
the CLI can share it on one machine."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlite_utils import Database

from ..errors import StoreError
from .base import Store
from .dialect import SQLiteSQL
from .schema import migrations


class SQLiteStore(Store):
    backend = "sqlite"
    sql = SQLiteSQL

    def __init__(self, path: str | Path, *, migrate: bool = True, clock: Any = None, **_: Any):
        if clock is not None:
            self.clock = clock
        self.path = Path(path)
        self.database = self.path
        if self.path.name in ("None", "null", "undefined") or str(path).strip() in ("", "."):
            raise StoreError(f"{str(path)!r} is not a database path (a setting that was never filled in?)",
                             'set taiwa.database to a file name, e.g. database = "taiwa.db"')
        if self.path.exists() and not self.path.is_file() and not self.path.is_dir():
            raise StoreError(f"the database path {self.path} is not a regular file (a device or a pipe)",
                             "point taiwa.database (or --db) at an ordinary file")
        if self.path.is_dir():
            raise StoreError(f"the database path {self.path} is a folder",
                             "point taiwa.database (or --db) at a file, e.g. taiwa.db inside it")
        if not self.path.parent.is_dir():
            raise StoreError(f"the folder for the database {self.path} does not exist",
                             f"create it (mkdir -p {self.path.parent}) or point taiwa.database elsewhere")
        # Never open the file outside SQLite: on POSIX, closing any descriptor of a file drops every lock the
        # process holds on it, including those of this process's other live connections, and another process
        # then writes under them (corruption). SQLite itself tells a non-database file apart: its first read of
        # the header fails with SQLITE_NOTADB, before anything is written.
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(f"cannot open database {self.path}: {e}",
                             "check the file's permissions, or point taiwa.database at another file") from e
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as e:
            conn.close()
            if "not a database" in str(e) or "encrypted" in str(e):
                raise StoreError(f"{self.path} is not a SQLite database",
                                 "point taiwa.database at a new file name, or move this file away") from e
            raise StoreError(f"cannot open database {self.path}: {e}",
                             "check the file's permissions, or point taiwa.database at another file") from e
        try:
            self.db = Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(f"cannot open database {self.path}: {e}",
                             "check the file's permissions, or point taiwa.database at another file") from e
        if migrate:
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to date. Several processes may open a new file at once (compose starts `run` and
        `serve` together): a step another process applied a moment before fails here with "already exists", and
        is then found applied on the next look."""
        known = {m.name for m in migrations._migrations}
        for attempt in range(20):
            applied = {m.name for m in migrations.applied(self.db)}
            newer = applied - known
            if newer:
                raise StoreError(f"{self.path} was written by a newer taiwa (schema steps {sorted(newer)})",
                                 "upgrade taiwa (pip install -U taiwa) before opening this database")
            try:
                migrations.apply(self.db)
                return
            except sqlite3.OperationalError as e:
                if "already exists" not in str(e) and "duplicate column" not in str(e) and "locked" not in str(e):
                    raise
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                threading.Event().wait(0.05 * (attempt + 1))   # the other process is finishing the same step
        raise StoreError(f"{self.path}: the schema could not be brought up to date while other processes opened it",
                         "start taiwa again")

    def close(self) -> None:
        self.db.close()

    def _x(self, sql: str, params: Sequence | None = ()):
        # sqlite-utils commits a write made outside a transaction (Python's sqlite3 would leave it open)
        return self.db.execute(sql, params or ())

    def _xmany(self, sql: str, rows: Sequence[Sequence]) -> int:
        conn = self.db.conn
        opened = not conn.in_transaction
        # cursor.rowcount counts the rows the statement itself wrote (not its triggers' writes)
        count = max(conn.executemany(sql, rows).rowcount, 0)
        if opened and conn.in_transaction:
            conn.execute("COMMIT")
        return count

    @contextmanager
    def atomic(self, *, exclusive: bool = True) -> Iterator[None]:
        """The outermost transaction starts with BEGIN IMMEDIATE: it takes the write lock up front (waiting up to
        the busy timeout), so a read-then-write can never fail on a lock upgrade under WAL. (`exclusive` is
        PostgreSQL's choice; a SQLite write transaction is always exclusive.)"""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def tables(self) -> list[str]:
        return self.db.table_names()

    # ---------------------------------------------------------------- backups (a file's own operations)
    def backup_to(self, target: str) -> None:
        """A consistent copy of the database in `target`: SQLite's VACUUM INTO reads one snapshot (a single read
        transaction in WAL mode), so it is safe while the daemon and the inbox write and never waits for them to
        pause, unlike the page-by-page backup API, which starts over whenever another connection writes."""
        self.db.execute("VACUUM INTO ?", [target])

    def restore_from(self, source: str, progress=None) -> None:
        """Replace this database's contents with a backup's, through SQLite's backup API."""
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            src.backup(self.db.conn, pages=256, progress=progress)
        finally:
            src.close()
