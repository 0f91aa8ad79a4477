"""The Store contract: every query taiwa runs, written once over a small backend interface that SQLite
(`sqlite.py`, the embedded default) and PostgreSQL (`postgres.py`, for several machines) implement."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import clock as clock_mod
from ..clock import Clock
from .actions import ActionsMixin
from .campaigns import CampaignsMixin
from .collab import CollabMixin
from .daemon import DaemonMixin
from .incidents import IncidentsMixin
from .people import PeopleMixin
from .posts import PostsMixin
from .team import TeamMixin
from .common import now_iso
from .workers import WorkersMixin


def is_postgres_url(database: Any) -> bool:
    return isinstance(database, str) and database.split("://", 1)[0] in ("postgresql", "postgres")


class Store(PostsMixin, PeopleMixin, IncidentsMixin, CampaignsMixin, ActionsMixin, TeamMixin,
            DaemonMixin, CollabMixin, WorkersMixin):
    """One taiwa database. `Store(path)` opens (and migrates) a SQLite file; `Store("postgresql://…")` a
    PostgreSQL database. Both give the same methods and the same answers; what differs lives in the subclass:
    connecting, transactions, migrations, backups, and a few SQL spellings (`self.sql`, see dialect.py)."""

    backend = ""
    path: Path | None = None      # the SQLite file (None on PostgreSQL)
    database: Any = None          # what Store() was given: the file's path or the PostgreSQL URL
    clock: Clock = clock_mod.system   # what "now" is for everything this store stamps (Store(..., clock=...))

    def stamp(self, t: dt.datetime | None = None) -> str:
        """An instant as stored; without one, the store's clock's now."""
        return now_iso(t or self.clock())

    def __new__(cls, database: Any = None, *args: Any, **kwargs: Any):
        if cls is Store:
            if is_postgres_url(database):
                from .postgres import PostgresStore as cls
            else:
                from .sqlite import SQLiteStore as cls
        return super().__new__(cls)

    # ---------------------------------------------------------------- what a backend provides
    def _x(self, sql: str, params: Sequence | None = ()):           # pragma: no cover - abstract
        """Run one statement; returns a DB-API cursor (rowcount, fetchone, fetchall, description)."""
        raise NotImplementedError

    def _xmany(self, sql: str, rows: Sequence[Sequence]) -> int:     # pragma: no cover - abstract
        """Run one statement for each row; returns how many rows it wrote."""
        raise NotImplementedError

    @contextmanager
    def atomic(self, *, exclusive: bool = True) -> Iterator[None]:   # pragma: no cover - abstract
        """A write transaction (nested ones are savepoints). Writers take it one at a time, so a read followed
        by a write inside it sees no other writer in between, on either backend."""
        raise NotImplementedError
        yield

    def close(self) -> None:                                         # pragma: no cover - abstract
        raise NotImplementedError

    def tables(self) -> list[str]:                                   # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """Where this store is, for messages (a PostgreSQL URL without its password)."""
        return str(self.path)

    # ---------------------------------------------------------------- reading helpers, shared
    def _rows(self, sql: str, params: Sequence = ()) -> list[dict[str, Any]]:
        cur = self._x(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _one(self, sql: str, params: Sequence = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _scalar(self, sql: str, params: Sequence = ()) -> Any:
        row = self._x(sql, params).fetchone()
        return row[0] if row else None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
