"""What taiwa understood: `taiwa eval` (judgement on a labelled set), `taiwa incidents` / `taiwa incident`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape as esc
from rich.table import Table
from rich.text import Text

from .. import incidents as incidents_mod
from . import Ctx, actor_option, cli, console, pass_ctx


SETS = ("nami", "kirara", "uminomori", "real")


@cli.command("eval")
@click.option("--set", "which", type=click.Choice(("all", *SETS)), default="all", show_default=True,
              help="Which packaged set: the Nami Ramen, Kirara Denki and Umi no Mori brand sets, or the blind part "
                   "of the real labelled posts")
@click.option("--posts", type=click.Path(exists=True, dir_okay=False),
              help="Your own labelled set (JSONL, like taiwa/data/eval/nami_posts.jsonl), with --config")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="Its brand's taiwa.toml (default: the packaged one)")
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the evaluation database in this folder")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON")
@click.option("--misses", is_flag=True, help="Also list every miss")
def eval_cmd(which: str, posts: str | None, config_file: str | None, keep: str | None, as_json: bool,
             misses: bool) -> None:
    """Measure judgement on labelled posts taiwa was never trained or tuned on: what each post got (apologies to
    posts with no problem, complaints drafted, likes for praise, sarcasm, "needs a look"), intent, sentiment per
    language, topics, answers, memory, ranking, incidents (a few minutes on CPU, offline).

    Example: taiwa eval --set real --misses"""
    from .. import evaluation

    if posts or config_file:
        if not (posts and config_file):
            raise click.UsageError("--posts and --config go together: a labelled set and its brand's taiwa.toml")
        _eval_one(evaluation.run(Path(posts), Path(config_file), work_dir=Path(keep) if keep else None),
                  "your set", as_json, misses)
        return
    for name in SETS if which == "all" else (which,):
        work = Path(keep) / name if keep else None
        with console.status(f"evaluating {name}") as status:
            if name == "real":
                from ..evaluation import real

                r = real.run(("blind",), work_dir=work, progress=lambda m: status.update(f"evaluating: {m}"))
                _eval_real(r, as_json, misses)
                continue
            report = evaluation.run(evaluation.EVAL_DIR / f"{name}_posts.jsonl",
                                    evaluation.EVAL_DIR / f"{name}.toml", work_dir=work,
                                    progress=lambda m: status.update(f"evaluating {name}: {m}"))
        _eval_one(report, name, as_json, misses)


def _eval_real(r: dict, as_json: bool, misses: bool) -> None:
    if as_json:
        click.echo(json.dumps({"set": "real", **r}, ensure_ascii=False, indent=1))
        return
    f = r["figures"]
    t = Table(title=f"taiwa eval: {f['posts']} real posts (blind part)", show_header=False)
    t.add_column("what")
    t.add_column("figure")
    for key, label in (("intent", "intent accuracy"), ("apology_no_problem", "apologies to posts with no problem"),
                       ("complaints_drafted", "complaints with a written draft"),
                       ("praise_liked", "praise and campaign entries with a like proposed"),
                       ("sarcasm_liked", "sarcastic posts with a like proposed"),
                       ("look", "posts left as 'needs a look'"), ("reply_kind", "the reply kind a team would send")):
        hit, total = f[key]
        t.add_row(label, f"{hit / total:.2f}  ({hit} of {total})" if total else "n/a")
    worst = min(r["brands"].items(), key=lambda kv: kv[1]["intent"][0] / max(kv[1]["intent"][1], 1))
    t.add_row("worst brand (intent)", f"{worst[0]} {worst[1]['intent'][0] / max(worst[1]['intent'][1], 1):.2f}")
    console.print(t)
    console.print("confusion (rows: label, columns: read as): " + esc(json.dumps(f["confusion_en"])))
    if misses:
        for key, items in r["misses"].items():
            if items:
                console.print(f"[bold]{esc(key)}[/]: " + esc("; ".join(items)))


def _eval_one(report, name: str, as_json: bool, misses: bool) -> None:
    if as_json:
        click.echo(json.dumps({"set": name, "posts": report.n_posts, "figures": report.figures,
                               "misses": report.details}, ensure_ascii=False, indent=1, default=str))
        return
    t = Table(title=f"taiwa eval ({name}): {report.n_posts} labelled posts", show_header=False)
    t.add_column("what")
    t.add_column("figure")
    for label, value in report.lines():
        t.add_row(label, value)
    console.print(t)
    if misses:
        for key, items in report.details.items():
            if items:
                console.print(f"[bold]{esc(key)}[/]: " + esc("; ".join(items)))


@cli.command()
@click.option("--limit", default=20, show_default=True)
@pass_ctx
def incidents(ctx: Ctx, limit: int) -> None:
    """Incidents: several people reporting the same thing at about the same time, most recent first.

    Example: taiwa incidents"""
    rows = ctx.store().incidents(limit=limit)
    if not rows:
        console.print("no incidents (posts from different people about the same problem within "
                      f"{ctx.config.get('triage', 'incident_window_hours'):g} h group into one)")
        return
    t = Table(title="Incidents", expand=True)
    for c in ("id", "topic", "posts", "people", "open drafts", "first → last seen", "what"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(str(r["id"]), esc(r["topic"]), str(r["size"]), str(r["authors"]), str(r["open"]),
                  f"{r['first_seen'][:16]} → {r['last_seen'][11:16]}", Text(r["title"]))
    console.print(t)
    console.print("[dim]taiwa incident ID shows its posts; taiwa incident ID --reply \"...\" answers them all[/]")


@cli.command()
@click.argument("incident_id", type=int)
@click.option("--reply", "reply_text", help="One reply for every open draft of the incident; {name} becomes each "
                                             "author's name")
@click.option("--approve", is_flag=True, help="Also approve them (each is still sent at most once)")
@actor_option
@pass_ctx
def incident(ctx: Ctx, incident_id: int, reply_text: str | None, approve: bool, actor: str) -> None:
    """One incident: its posts and drafts; with --reply, one answer for all of them, personalised per author.

    Example: taiwa incident 3 --reply "Hi {name}, our app had an outage at checkout; it's fixed now." --approve"""
    store = ctx.store()
    info = store.incident(incident_id)
    if reply_text is not None:
        if not reply_text.strip():
            raise click.BadParameter("the reply is empty", param_hint="--reply")
        done = incidents_mod.reply_to_all(store, incident_id, reply_text, actor=actor, approve=approve)
        verb = "set and approved" if approve else "set (pending an approver)"
        console.print(f"{len(done['set'])} drafts {verb}; {len(done['skipped'])} left as they were "
                      "(already approved, sent, rejected, or likes)")
        return
    console.print(f"[bold]incident #{info['id']}[/] · topic {esc(info['topic'])} · {info['size']} posts from "
                  f"{info['authors']} people · {info['first_seen'][:16]} → {info['last_seen'][:16]}")
    console.print(Text(info["title"]))
    t = Table(expand=True)
    for c in ("action", "state", "who", "post"):
        t.add_column(c, overflow="fold")
    actions = {a["post_id"]: a for a in store.incident_actions(incident_id) if a["kind"] == "reply"}
    for m in store.incident_members(incident_id):
        a = actions.get(m["post_id"])
        t.add_row(str(a["id"]) if a else "–", a["state"] if a else "no draft", f"@{esc(m['handle'])}",
                  Text(m["text"]))
    console.print(t)


def _author(store, ref: str) -> dict:
    """platform:handle (or @handle when only one platform has it) → the stored author."""
    platform, _, handle = ref.rpartition(":")
    found = store.find_authors(handle, platform or None)
    if not found:
        raise click.BadParameter(f"no account {ref!r} in the database", param_hint="ACCOUNT")
    if len(found) > 1:
        raise click.BadParameter(f"{ref!r} is on several platforms: write platform:handle "
                                 f"({', '.join(a['platform'] + ':' + a['handle'] for a in found)})",
                                 param_hint="ACCOUNT")
    return found[0]


@cli.command()
@click.argument("account")
@click.argument("others", nargs=-1, required=True)
@actor_option
@pass_ctx
def link(ctx: Ctx, account: str, others: tuple[str, ...], actor: str) -> None:
    """Link one customer's accounts across platforms: drafts then remember across all of them.

    Example: taiwa link x:dan_brews instagram:danbrews"""
    store = ctx.store()
    first = _author(store, account)
    for other in others:
        accounts = store.link_authors(first["id"], _author(store, other)["id"], actor=actor)
    console.print("one customer: " + ", ".join(f"{a['platform']}:@{esc(a['handle'])}" for a in accounts))


@cli.command()
@click.argument("account")
@actor_option
@pass_ctx
def unlink(ctx: Ctx, account: str, actor: str) -> None:
    """Let one account stand alone again (the others stay linked).

    Example: taiwa unlink instagram:danbrews"""
    store = ctx.store()
    a = _author(store, account)
    store.unlink_author(a["id"], actor=actor)
    console.print(f"{a['platform']}:@{esc(a['handle'])} stands alone")


@cli.command()
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite TARGET if it exists")
@pass_ctx
def backup(ctx: Ctx, target: str, force: bool) -> None:
    """A consistent copy of the database, safe while the daemon and the inbox write (SQLite's VACUUM INTO).

    Example: taiwa backup /backups/taiwa-$(date +%F).db"""
    import sqlite3

    from ..errors import TaiwaError

    if not isinstance(ctx.config.database, Path):
        ctx.store().backup_to(target)       # PostgreSQL: says to use pg_dump
    path = Path(target)
    if path.exists() and not force:
        raise TaiwaError(f"{path} already exists", "pick a new name, or --force to overwrite it")
    if path.exists():
        path.unlink()
    store = ctx.store()
    with console.status(f"copying {ctx.config.database} (one snapshot; writers go on)"):
        store.backup_to(str(path))
    ok = sqlite3.connect(str(path)).execute("PRAGMA integrity_check").fetchone()[0]
    if ok != "ok":
        raise TaiwaError(f"the copy in {path} fails its integrity check: {ok}", "run the backup again")
    console.print(f"backed up {ctx.config.database} → {path} (integrity ok)")


@cli.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do it: the database's current contents are replaced")
@pass_ctx
def restore(ctx: Ctx, source: str, yes: bool) -> None:
    """Replace the database's contents with a backup's. Stop the daemon first (`taiwa run` holds a lock).

    Example: taiwa restore /backups/taiwa-2026-11-29.db --yes"""
    import datetime as dt
    import sqlite3

    from ..errors import TaiwaError
    from ..store import Store, parse_iso

    if not isinstance(ctx.config.database, Path):
        ctx.store().restore_from(source)    # PostgreSQL: says to use pg_restore or migrate-db
    ok = sqlite3.connect(f"file:{source}?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchone()[0]
    if ok != "ok":
        raise TaiwaError(f"{source} fails its integrity check ({ok})", "pick another backup")
    store = ctx.store()
    holder = store.lock_holder()
    stale = dt.timedelta(seconds=ctx.config.get("daemon", "lock_stale_seconds"))
    if holder and parse_iso(holder["heartbeat_at"]) > store.clock() - stale:
        raise TaiwaError(f"a daemon (pid {holder['pid']} on {holder['host']}) is using {ctx.config.database}",
                         "stop it first (systemctl stop taiwa, or docker compose stop run), then restore")
    if not yes:
        raise TaiwaError(f"this replaces everything in {ctx.config.database} with {source}", "add --yes to do it")
    store.restore_from(source)
    store.close()
    Store(ctx.config.database).close()   # a backup from an older taiwa is migrated now
    console.print(f"restored {source} → {ctx.config.database}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what would be cleared and deleted; change nothing")
@pass_ctx
def prune(ctx: Ctx, dry_run: bool) -> None:
    """Apply [retention] now (the daemon does it daily): clear old raw JSON, delete old posts that led to nothing.

    Example: taiwa prune --dry-run"""
    from ..retention import prune as run_prune

    out = run_prune(ctx.store(), ctx.config, dry_run=dry_run)
    verb = ("would be cleared", "would be deleted") if dry_run else ("cleared", "deleted")
    console.print(f"{out['raw_cleared']} raw records {verb[0]}, {out['posts_deleted']} posts {verb[1]} "
                  f"(ages counted from {out['counted_from']})")
    if out.get("note"):
        console.print(f"[yellow]{esc(str(out['note']))}[/]")
