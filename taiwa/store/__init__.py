"""The SQLite schema and every query taiwa runs. Nothing else in the package writes SQL.

Open the file with Datasette or `sqlite-utils tables taiwa.db --counts` to look around:

    posts           one row per platform post (unique on platform + platform_id), raw JSON kept in `raw`
    authors         one row per platform account ("x:12345"), with reach (followers)
    sentiments      the model's (or a person's) label and the three class probabilities per post
    post_vectors    each post's multilingual-e5 embedding, made once with its sentiment (topics reuse it)
    priorities      the priority score per post and each component it was made of, with human-readable reasons,
                    whether rules escalated it, the rules that fired, tags, and its topic
    actions         drafted replies / likes and their approval state (pending → approved → sending → sent ...)
    audit           every state change: who, when, from, to, and what changed
    cursors         where each listener stopped, written in the same transaction as the posts it read
    campaigns, campaign_posts   declared hashtag campaigns and the posts that entered them
    ingest_problems lines a listener could not read (file, line, reason); the good lines around them are kept
    listener_state, platform_usage   pauses (rate limits, budgets), last runs; posts read/written per month
    campaign_snapshots, alerts       campaign figures over time; spike alerts shown in the inbox
    followups       replies that asked the customer something, and what came of it
    jobs, daemon_lock                the daemon's jobs (runs, errors, next run) and its one-per-database lock
    users, web_sessions              the team (roles; scrypt password hashes) and signed-in browser sessions
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlite_utils import Database

from ..errors import StoreError
from .actions import ActionsMixin
from .campaigns import CampaignsMixin
from .collab import CollabMixin
from .common import OPEN_STATES, ROLES, SESSION_HOURS, STATES, TRANSITIONS, WAITING_STATES, now_iso, parse_iso
from .daemon import DaemonMixin
from .incidents import IncidentsMixin
from .passwords import SCRYPT, check_password, hash_password, needs_rehash
from .people import PeopleMixin
from .posts import IngestResult, PostsMixin
from .schema import migrations
from .team import TeamMixin

__all__ = ["Store", "IngestResult", "STATES", "OPEN_STATES", "WAITING_STATES", "ROLES", "TRANSITIONS", "SESSION_HOURS", "SCRYPT",
           "now_iso", "parse_iso", "hash_password", "check_password", "needs_rehash", "migrations"]


class Store(PostsMixin, PeopleMixin, IncidentsMixin, CampaignsMixin, ActionsMixin, TeamMixin,
            DaemonMixin, CollabMixin):
    """One SQLite file. WAL, a busy timeout and short transactions, so a daemon and a web page can share it."""

    def __init__(self, path: str | Path, *, migrate: bool = True):
        self.path = Path(path)
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
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(self.db)}
        newer = applied - known
        if newer:
            raise StoreError(f"{self.path} was written by a newer taiwa (schema steps {sorted(newer)})",
                             "upgrade taiwa (pip install -U taiwa) before opening this database")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A write transaction. The outermost one starts with BEGIN IMMEDIATE: it takes the write lock up front
        (waiting up to the busy timeout), so a read-then-write can never fail on a lock upgrade under WAL.
        Nested ones are savepoints."""
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

    def _rows(self, sql: str, params: Sequence | dict = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _one(self, sql: str, params: Sequence | dict = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _scalar(self, sql: str, params: Sequence = ()) -> Any:
        row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None
