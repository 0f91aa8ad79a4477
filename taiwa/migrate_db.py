"""`taiwa migrate-db`: copy a SQLite database into an empty PostgreSQL one, table by table, in one transaction.

Everything a team built up moves: posts and what taiwa made of them, drafts and their audit log, customers'
links, notes and tags, users (their password hashes: nobody needs a new password), campaigns, follow-ups. Not
copied: the daemon's lock and workers' leases (they belong to the deployment being retired) and SQLite's search
index (the PostgreSQL store searches with pg_trgm). Row counts are compared afterwards; any difference rolls it all back."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import TaiwaError
from .store import Store

# Parents before children (foreign keys), then everything else.
TABLES = ("authors", "posts", "sentiments", "post_vectors", "priorities", "campaigns", "campaign_posts",
          "incidents", "incident_posts", "actions", "audit", "cursors", "ingest_problems", "listener_state",
          "platform_usage", "jobs", "followups", "campaign_snapshots", "alerts", "users", "web_sessions", "notes",
          "labels", "presence", "corrections")
# What stays behind: the retiring deployment's own running state and SQLite's internals (the search index and
# the migrations record; PostgreSQL has its own of both).
NOT_COPIED = ("daemon_lock", "workers", "leases", "_sqlite_migrations", "action_search")
BATCH = 5_000


@dataclass
class Copied:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def migrate(source: Path, target: Store, *, progress: Callable[[str, int, int], None] | None = None) -> Copied:
    """Copy `source` (a SQLite file) into `target` (an empty PostgreSQL store). progress(table, done, total)."""
    if target.backend != "postgresql":
        raise TaiwaError("migrate-db copies a SQLite file into PostgreSQL; the target here is not PostgreSQL",
                         "pass --to postgresql://user@host/db, or set taiwa.database to that URL")
    src_store = Store(source)          # migrates an older file first, so both sides have the same columns
    src_store.close()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if target._scalar("SELECT count(*) FROM posts") or target._scalar("SELECT count(*) FROM users"):
            raise TaiwaError(f"{target.describe()} already holds posts or users",
                             "migrate into a new, empty database (createdb taiwa), so nothing is mixed or lost")
        counts = {t: src.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}
        out = Copied()
        with target.atomic():
            for table in TABLES:
                cols = _common_columns(src, target, table)
                collist = ", ".join(f'"{c}"' for c in cols)
                done = 0
                if progress:
                    progress(table, 0, counts[table])
                cur = src.execute(f'SELECT {collist} FROM "{table}" ORDER BY rowid')
                with target.conn.cursor() as pg, pg.copy(f'COPY "{table}" ({collist}) FROM STDIN') as copy:
                    while rows := cur.fetchmany(BATCH):
                        for row in rows:
                            copy.write_row(row)
                        done += len(rows)
                        if progress:
                            progress(table, done, counts[table])
                out.rows[table] = done
                if target._scalar("SELECT pg_get_serial_sequence(?, 'id')", [table]) if "id" in cols else None:
                    # numbered tables: new rows continue after the copied ids
                    target._x(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
            for table in TABLES:
                there = target._scalar(f'SELECT count(*) FROM "{table}"')
                if there != counts[table]:
                    raise TaiwaError(f"{table}: {counts[table]} rows in {source}, {there} copied; nothing was kept",
                                     "report this with the output of `taiwa status` for both databases")
        return out
    finally:
        src.close()


def _common_columns(src: sqlite3.Connection, target: Store, table: str) -> list[str]:
    mine = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
    theirs = {r["column_name"] for r in target._rows(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ?", [table])}
    missing = [c for c in mine if c not in theirs]
    if missing:
        raise TaiwaError(f"{table}: PostgreSQL has no column {', '.join(missing)}",
                         "upgrade taiwa on this machine (the PostgreSQL schema is older than the file's)")
    return mine
