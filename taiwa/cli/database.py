"""`taiwa migrate-db` (SQLite file → PostgreSQL) and `taiwa workers` (who shares a PostgreSQL database)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.markup import escape as esc
from rich.table import Table

from ..errors import TaiwaError
from ..store import Store, is_postgres_url
from . import Ctx, cli, console, pass_ctx, progress_bars


@cli.command("migrate-db")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "target", help="The PostgreSQL URL to copy into (default: taiwa.database); its password "
                                     "comes from $TAIWA_DATABASE_PASSWORD or ~/.pgpass")
@pass_ctx
def migrate_db(ctx: Ctx, source: str, target: str | None) -> None:
    """Copy a SQLite database into an empty PostgreSQL database, in one transaction.

    Stop `taiwa run` and `taiwa serve` on the SQLite file first, copy, then point taiwa.database at the URL.

    Example: createdb taiwa && taiwa migrate-db taiwa.db --to postgresql://taiwa@db.internal/taiwa"""
    from ..migrate_db import migrate

    url = target or str(ctx.config.database)
    if not is_postgres_url(url):
        raise TaiwaError("migrate-db needs a PostgreSQL database to copy into",
                         "pass --to postgresql://user@host/dbname (or set taiwa.database to that URL)")
    store = Store(url)
    try:
        with progress_bars() as p:
            tasks: dict[str, int] = {}

            def shown(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = p.add_task(table, total=max(total, 1))
                p.update(tasks[table], completed=done if total else 1)

            copied = migrate(Path(source), store, progress=shown)
    finally:
        store.close()
    console.print(f"copied {copied.total} rows from {esc(source)} into {esc(store.describe())} "
                  f"({copied.rows.get('posts', 0)} posts, {copied.rows.get('actions', 0)} actions, "
                  f"{copied.rows.get('users', 0)} users); row counts match")
    console.print("next: set taiwa.database to that URL, then start `taiwa serve` and `taiwa run --worker`")


@cli.command()
@click.option("--forget", "forget", metavar="WORKER", help="Remove a dead worker's entry (its leases expire anyway)")
@pass_ctx
def workers(ctx: Ctx, forget: str | None) -> None:
    """The workers sharing this database (PostgreSQL): alive or not, their jobs, the streams each holds.

    Example: taiwa workers"""
    store = ctx.store()
    if forget:
        if not store.forget_worker(forget):
            raise TaiwaError(f"no worker {forget!r}", "`taiwa workers` lists them")
        console.print(f"forgot worker {esc(forget)}")
        return
    print_workers(store, ctx.config.get("daemon", "lock_stale_seconds"))


def print_workers(store: Store, stale: float) -> None:
    rows = store.workers(stale_after=stale)
    if not rows:
        console.print("workers: none" + ("" if store.backend == "postgresql" else
                                         " (workers share a PostgreSQL database; SQLite has one daemon)"))
        return
    t = Table(title="workers")
    for c in ("worker", "alive", "heartbeat", "started", "holds"):
        t.add_column(c, overflow="fold")
    for w in rows:
        started = dt.datetime.fromisoformat(w["started_at"]).strftime("%m-%d %H:%M:%S")
        t.add_row(w["id"], "yes" if w["alive"] else "[red]no[/]", f"{w['heartbeat_age_s']:g} s ago", started,
                  ", ".join(w["leases"]) or "–")
    console.print(t)
