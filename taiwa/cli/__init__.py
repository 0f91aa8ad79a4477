"""The `taiwa` command: one verb per task. Each verb is a thin layer over a library call the tests also use."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import secrets
import time
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console
from rich.markup import escape as esc
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import clock as clock_mod
from .. import config as config_mod
from .. import demo as demo_mod
from .. import pipeline
from ..errors import TaiwaError
from ..metrics import response_metrics
from ..responders import approval, senders
from ..responders.drafts import reply_length
from ..store import OPEN_STATES, ROLES, STATES, Store

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # file:line: reason stays one greppable line


class Ctx:
    def __init__(self, config_path: str | None, demo: bool, db: str | None):
        self.config_path, self.demo, self.db_override = config_path, demo, db
        self._config: config_mod.Config | None = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            if self.demo:
                cfg = demo_mod.config(Path.cwd())
            else:
                cfg = config_mod.load(config_mod.find(self.config_path))
            if self.db_override:
                config_mod.check_database("--db", self.db_override)
                cfg.sections["taiwa"]["database"] = (self.db_override if config_mod.is_database_url(self.db_override)
                                                     else str(Path(self.db_override).resolve()))
            self._config = cfg
        return self._config

    def store(self) -> Store:
        return Store(self.config.database, clock=self.config.clock)


pass_ctx = click.make_pass_decorator(Ctx)


def actor_option(f):
    return click.option("--as", "actor", default=lambda: os.environ.get("TAIWA_USER") or getpass.getuser(),
                        show_default="$TAIWA_USER or your login", help="Who is acting (kept in the audit log)")(f)


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=False) as p:
        yield p


def progress_task(p: Progress, label: str, total: int | None):
    task = p.add_task(label, total=total)
    return lambda n: p.advance(task, n)


@click.group()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="taiwa.toml to use (default: $TAIWA_CONFIG, ./taiwa.toml, ~/.config/taiwa/taiwa.toml, "
                   "/etc/taiwa/taiwa.toml)")
@click.option("--demo", is_flag=True, help="Use the demo's configuration and demo.db in this folder")
@click.option("--db", help="Use this database (a SQLite file or a postgresql:// URL) instead of the configured one")
@click.version_option(package_name="taiwa")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, demo: bool, db: str | None) -> None:
    """taiwa (対話): listen, classify, rank and draft replies that a person approves.

    Start with `taiwa demo`, or `taiwa init` to write a taiwa.toml of your own."""
    ctx.obj = Ctx(config_path, demo, db)


# ------------------------------------------------------------------------------------------------ set-up
@cli.command()
@click.argument("path", default="taiwa.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file")
def init(path: str, force: bool) -> None:
    """Write a commented example taiwa.toml.

    Example: taiwa init && $EDITOR taiwa.toml"""
    p = Path(path)
    if p.exists() and not force:
        raise TaiwaError(f"{p} already exists", "use --force to overwrite it, or pass another path")
    p.write_text(config_mod.sample_config_text(), encoding="utf-8")
    config_mod.load(p)  # the example must always be valid
    console.print(f"wrote {esc(str(p))} — edit brands, campaigns and platforms, then run [bold]taiwa listen[/]")


@cli.command()
@click.option("--keep", is_flag=True, help="Keep demo.db from an earlier run instead of starting fresh")
@click.option("--limit", default=15, show_default=True, help="Inbox rows to show")
@pass_ctx
def demo(ctx: Ctx, keep: bool, limit: int) -> None:
    """Run the whole pipeline on the bundled sample data (offline), then show the inbox.

    Example: taiwa demo"""
    ctx.demo = True
    if not keep or demo_mod.shift_of(Path.cwd()) is None:
        # The sample fortnight, moved so that its newest post is a few minutes old now.
        demo_mod.write_posts(Path.cwd(), clock_mod.from_setting()())
    cfg = ctx.config
    if not keep and isinstance(cfg.database, Path):
        for suffix in ("", "-wal", "-shm"):
            Path(str(cfg.database) + suffix).unlink(missing_ok=True)
        cfg.outbox.unlink(missing_ok=True)
    started = time.monotonic()
    store = ctx.store()
    listen_report, n_classified, triage_report = _process(ctx, store, listeners=_listeners(ctx, store, "replay"))
    console.print()
    console.print(Panel.fit(
        f"[bold]{listen_report.new}[/] new posts read ({len(listen_report.problems)} unreadable lines), "
        f"[bold]{n_classified}[/] classified, [bold]{triage_report.drafts}[/] reply drafts and "
        f"[bold]{triage_report.likes}[/] likes waiting for approval; ignored: "
        + ", ".join(f"{v} {k}" for k, v in sorted(triage_report.ignored.items()))
        + f"\nin {time.monotonic() - started:.1f}s → {cfg.database}",
        title="taiwa demo"))
    from .. import campaigns

    campaigns.raise_spike_alerts(store, cfg)
    _print_alerts(store)
    _print_inbox(store.inbox(states=("pending",), limit=limit), title="Inbox: highest priority first", store=store)
    _print_campaigns(store, ctx.config.brand_handles)
    first = cfg.campaigns[0]
    report = campaigns.build(store, first, own_handles=cfg.brand_handles)
    paths = campaigns.write(report, campaigns.report_dir(cfg.data_dir, first.name),
                            store.campaign_entries(first.name),
                            cfg.brand_handles)
    _print_campaign_report(report)
    console.print(f"campaign report: {esc(str(paths['html']))}")
    password = secrets.token_urlsafe(9)
    if any(u["name"] == "demo" for u in store.users()):
        store.set_user("demo", "taiwa demo", password=password)
    else:
        store.add_user("demo", "admin", password, "taiwa demo")
    console.print(Panel(
        f"make serve      (or: {esc(sys.executable.rsplit('/', 1)[0])}/taiwa --demo serve)\n"
        f"then open http://127.0.0.1:8000 and sign in as [bold]demo[/] / [bold]{esc(password)}[/]",
        title="approve replies in the browser", border_style="cyan"))
    console.print(Panel(
        "taiwa --demo show ID              the post, the why, the author's history, the draft\n"
        "taiwa --demo approve ID           approve as drafted (or --text \"...\" to edit first)\n"
        "taiwa --demo reject ID --reason   with a reason, kept in the audit log\n"
        "taiwa --demo send                 send approved actions (demo: to demo-outbox.jsonl)\n"
        "taiwa --demo status               counts, cursors, campaigns, response times\n"
        "taiwa --demo campaign report WinterCupDesign   figures, timeline, HTML/CSV/JSON report",
        title="next", border_style="green"))
    store.close()


def _listeners(ctx: Ctx, store: Store, platform: str = "all", files: tuple[str, ...] = ()) -> list:
    """The listeners a run reads: the given files, or each enabled platform (or the one asked for)."""
    cfg = ctx.config
    if files:
        return [pipeline.ReplayListener(f, own_handles=frozenset(ctx.config.brand_handles)) for f in files]
    if platform != "all" and not cfg.platform(platform)["enabled"]:
        raise TaiwaError(f"platforms.{platform}.enabled is false in {cfg.path or 'the configuration'}",
                         f"set enabled = true under [platforms.{platform}]")
    names = config_mod.KNOWN_PLATFORMS if platform == "all" else (platform,)
    return [lst for name in names if cfg.platform(name)["enabled"]
            for lst in pipeline.platform_listeners(cfg, store, name)]


def _process(ctx: Ctx, store: Store, *, listeners: list | None):
    from ..models.sentiment import load_configured

    cfg = ctx.config
    listen_report = pipeline.ListenReport()
    with progress_bars() as p:
        if listeners is not None:
            reading = p.add_task("reading posts", total=None)
            listen_report = pipeline.listen(store, listeners, lambda n: p.advance(reading, n))
            p.update(reading, total=p.tasks[reading].completed)
        todo = len(store.posts_without_sentiment())
        n_classified = 0
        if todo:
            load = p.add_task("loading the sentiment model", total=None)
            m = cfg.sections["model"]
            model = load_configured(m)
            p.update(load, total=1, completed=1)
            n_classified = pipeline.classify(store, model, progress=progress_task(p, "classifying sentiment", todo))
        pending = len(store.posts_to_triage())
        triage_report = pipeline.triage(store, cfg, now=cfg.clock(),
                                        progress=progress_task(p, "ranking and drafting", pending))
    _print_listen_problems(listen_report)
    return listen_report, n_classified, triage_report


def _print_listen_problems(report: pipeline.ListenReport, limit: int = 10) -> None:
    for problem in report.problems[:limit]:
        err_console.print(f"[yellow]skipped[/] {esc(problem)}")
    if len(report.problems) > limit:
        err_console.print(f"[yellow]… and {len(report.problems) - limit} more (taiwa status lists them)[/]")
    for name, why in report.paused.items():
        err_console.print(f"[cyan]paused[/] {esc(name)}: {esc(why)}")
    for name, why in report.failed.items():
        err_console.print(f"[red]failed[/] {esc(name)}: {esc(why)}")


# ------------------------------------------------------------------------------------------------ listening
@cli.command()
@click.option("--platform", type=click.Choice(["all", *config_mod.KNOWN_PLATFORMS]), default="all",
              show_default=True,
              help="Which source to read (all: every enabled platform)")
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Replay this file instead of the configured sources (repeatable)")
@click.option("--no-process", is_flag=True, help="Only store the posts; do not classify or draft")
@pass_ctx
def listen(ctx: Ctx, platform: str, files: tuple[str, ...], no_process: bool) -> None:
    """Read new posts from where the last run stopped, then classify, rank and draft.

    Example: taiwa listen --platform x"""
    store = ctx.store()
    listeners = _listeners(ctx, store, platform, files)
    if no_process:
        report = pipeline.listen(store, listeners)
        console.print(f"{report.new} new posts, {report.updated} seen before, {len(report.problems)} lines skipped")
        _print_listen_problems(report, limit=20)
    else:
        report, n, tr = _process(ctx, store, listeners=listeners)
        console.print(f"{report.new} new posts ({report.updated} seen before, {len(report.problems)} lines skipped), "
                      f"{n} classified, {tr.drafts} reply drafts and {tr.likes} likes queued")
    if report.failed:   # the other sources were read and stored; say so in the exit code for scripts and cron
        raise click.exceptions.Exit(1)


# ------------------------------------------------------------------------------------------------ the inbox
def _why(row: dict[str, Any], *, skip_sentiment: bool = False) -> str:
    reasons = json.loads(row.get("reasons") or "[]")
    return "; ".join(r for r in reasons if not (skip_sentiment and r.startswith("negative ")))


def _print_inbox(rows: list[dict[str, Any]], title: str, store: Store | None = None) -> None:
    if not rows:
        console.print(f"[dim]{esc(title)}: nothing waiting[/]")
        return
    from ..incidents import group_rows

    rows = group_rows(rows)
    table = Table(title=title, show_lines=True, expand=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("who · why", ratio=3, overflow="fold")
    table.add_column("post", ratio=4, overflow="fold")
    table.add_column("draft", ratio=4, overflow="fold")
    colors = {"negative": "red", "neutral": "yellow", "positive": "green"}
    for r in rows:
        if r.get("incident_first") and store is not None:
            info = store.incident(r["incident"])
            if info["size"] >= 2:
                table.add_row(f"[bold magenta]#{info['id']}[/]", Text.assemble(
                    ("incident", "bold magenta"), f" · {info['topic']}\n{info['size']} posts, "
                                                           f"{info['authors']} people"),
                    Text(info["title"]), Text(f"one reply for all: taiwa incident {info['id']} --reply \"...\"",
                                              style="magenta"))
        mem = json.loads(r.get("memory") or "[]")
        label = r.get("label") or "?"
        p = {"negative": r.get("negative"), "positive": r.get("positive")}.get(label)
        who = Text.assemble((f"@{r['handle']}", "bold"), f" · {r['platform']}\n",
                            (label + (f" {p:.2f}" if p is not None else ""), colors.get(label, "white")),
                            (f" · {len(mem)} earlier" if mem else "", "cyan"), "\n", (_why(r, skip_sentiment=True), "dim"))
        draft = Text("♥ like", style="magenta") if r["kind"] != "reply" else \
            Text("needs a look: " + "; ".join(json.loads(r.get("unsure") or "[]")), style="yellow") \
            if r.get("template") == "look" and not r["text"] else Text(_clip(r["text"], 220))
        table.add_row(f"[bold]{r['id']}[/]\n{r.get('score') or 0:.2f}\n{r['kind']}", who,
                      Text(_clip(r["post_text"], 220)), draft)
    console.print(table)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _print_campaigns(store: Store, own_handles: set[str] = frozenset()) -> None:
    rows = store.campaign_summary(own_handles)
    if not rows:
        return
    t = Table(title="Campaigns")
    for c in ("campaign", "entries", "participants", "positive", "negative"):
        t.add_column(c, justify="right" if c != "campaign" else "left")
    for r in rows:
        t.add_row(Text(f"#{r['name']}"), str(r["entries"]), str(r["participants"]), str(r["positive"] or 0),
                  str(r["negative"] or 0))
    console.print(t)


@cli.command()
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Default: pending")
@click.option("--platform")
@click.option("--kind", type=click.Choice(["reply", "like"]))
@click.option("--sentiment", type=click.Choice(["negative", "neutral", "positive"]))
@click.option("--campaign")
@click.option("--topic", help="Only posts about this [[topics]] entry")
@click.option("--incident", type=int, help="Only this incident's posts")
@click.option("--needs-answer", is_flag=True, help="Only questions no [[answers]] entry fits")
@click.option("--search", "search", help="Words in the post, the draft or the author (any language)")
@click.option("--limit", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table")
@pass_ctx
def inbox(ctx: Ctx, states, platform, kind, sentiment, campaign, topic, incident, needs_answer, search, limit,
          as_json) -> None:
    """What waits for a person, highest priority first, with why; an incident's posts as one group.

    Example: taiwa inbox --kind reply --sentiment negative"""
    store = ctx.store()
    rows = store.inbox(states=states or ("pending",), platform=platform, kind=kind, sentiment=sentiment,
                       campaign=campaign, topic=topic, incident=incident, limit=limit,
                       needs_answer=True if needs_answer else None, search=search,
                       sla_hours=ctx.config.sla_hours, now=ctx.config.clock())
    if as_json:
        for r in rows:
            r = {**r, "escalated": bool(r["escalated"]), "tags": json.loads(r["tags"]),
                 "rules": [f["rule"] for f in json.loads(r["rules"])], "reasons": json.loads(r["reasons"] or "[]"),
                 "needs_answer": bool(r["needs_answer"]), "conversation": json.loads(r["conversation"] or "[]"),
                 "recalled": json.loads(r["recalled"]) if r["recalled"] else None,
                 "memory": json.loads(r["memory"] or "[]")}
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    _print_alerts(store)
    _print_inbox(rows, title=f"Inbox ({', '.join(states or ('pending',))})", store=store)


@cli.command()
@click.argument("action_id", type=int)
@pass_ctx
def show(ctx: Ctx, action_id: int) -> None:
    """One action in full: the post, the why, the author's history with us, the draft and its audit trail.

    Example: taiwa show 12"""
    store = ctx.store()
    a = store.action(action_id)
    post = store.post(a["post_id"])
    head = Text.assemble((f"@{a['handle']}", "bold"), f" ({a['author_name']}, {a['followers']} followers) on "
                         f"{a['platform']} · {a['post_created_at']}\n\n", post["text"], f"\n\n{a.get('url') or ''}")
    console.print(Panel(head, title=f"post {a['post_id']}"))
    comps = store.priority(a["post_id"])
    console.print(f"sentiment: [bold]{a.get('label')}[/] (neg {a.get('negative') or 0:.2f}, "
                  f"neu {a.get('neutral') or 0:.2f}, pos {a.get('positive') or 0:.2f})   "
                  f"priority {a.get('score') or 0:.3f} = " + " + ".join(
                      f"{w:.2f}×{k} {comps.get(col, 0):.2f}" for k, w, col in [
                          (k, ctx.config.weights[k], c) for k, c in [("sentiment", "sentiment_c"),
                                                                    ("intent", "intent_c"), ("reach", "reach_c"),
                                                                    ("recency", "recency_c"),
                                                                    ("campaign", "campaign_c")]]))
    console.print(f"why: {esc(_why(a))}")
    earlier = json.loads(a.get("conversation") or "[]")
    if earlier:
        t = Table(title="this reply also answers their earlier posts", expand=True)
        t.add_column("when")
        t.add_column("they said", overflow="fold")
        for pid in earlier:
            try:
                e = store.post(pid)
            except TaiwaError:
                continue          # erased since (taiwa forget)
            t.add_row(e["created_at"][:16], Text(e["text"]))
        console.print(t)
    stands = []
    if a.get("answer"):
        stands.append(f"answer [bold]{esc(a['answer'])}[/] ({a['answer_score']:.2f} close)")
    if a.get("needs_answer"):
        stands.append("[yellow]needs an answer[/]: no [[answers]] entry fits; add the facts before approving")
    if a.get("ask"):
        stands.append(f"ask: {esc(a['ask'])}")
    if a.get("recalled"):
        r = json.loads(a["recalled"])
        stands.append(f"recalls post {r['post_id']} as {r['kind']}" + (" (settled)" if r["settled"] else " (open)"))
    if a.get("backend") and a["backend"] != "templates":
        stands.append(f"written by: {esc(a['backend'])}")
    if stands:
        console.print("draft: " + " · ".join(stands))
    memory = json.loads(a["memory"] or "[]")
    if memory:
        t = Table(title=f"@{esc(a['handle'])}'s history with us", expand=True)
        for c in ("when", "sentiment", "they said", "we replied"):
            t.add_column(c, overflow="fold")
        for m in memory:
            t.add_row(m["at"][:16], m.get("sentiment") or "", Text(m["text"]),
                      Text(m.get("our_reply") or f"({m.get('reply_state') or 'no reply'})"))
        console.print(t)
    else:
        console.print("[dim]first post we have from this author[/]")
    if a["kind"] == "reply":
        length, limit = reply_length(a["platform"], a["text"])
        style = "red" if length > limit else "green"
        console.print(Panel(Text(a["text"]), title=f"{a['kind']} · {a['state']}",
                            subtitle=f"[{style}]{length}/{limit}[/]"))
    else:
        console.print(Panel("♥ like this post", title=f"like · {a['state']}"))
    for e in store.audit_log(action_id):
        console.print(f"[dim]{e['at']} {esc(e['actor'])}: {esc(e['before'] or '∅')} → {esc(e['after'])} "
                      f"{esc(e['detail'])}[/]")


@cli.command()
@click.argument("action_ids", type=int, nargs=-1, required=True)
@click.option("--text", help="Edit the reply before approving it (one action only)")
@click.option("--answer", "answer", help="Rewrite the reply around this [[answers]] entry first (a saved reply)")
@click.option("--ask", "ask", help="Rewrite the reply around this topic's ask first (a saved reply)")
@actor_option
@pass_ctx
def approve(ctx: Ctx, action_ids: tuple[int, ...], text: str | None, answer: str | None, ask: str | None,
            actor: str) -> None:
    """Approve drafts for sending (likes can be approved in bulk).

    Example: taiwa approve 12 --text "Hi Dan, so sorry — DM us your order number?"
    Example: taiwa approve 14 --answer warranty"""
    if (text is not None or answer or ask) and len(action_ids) > 1:
        raise TaiwaError("--text, --answer and --ask change one reply", "approve the others separately")
    if sum(x is not None for x in (text, answer, ask)) > 1:
        raise TaiwaError("use one of --text, --answer and --ask", "a saved reply can be edited in the inbox after")
    store = ctx.store()
    if answer or ask:
        from ..responders import saved

        basis = saved.use(store, ctx.config, action_ids[0], actor=actor, answer=answer, ask=ask)
        console.print(f"draft {action_ids[0]} now reads: {esc(basis['text'])}")
    for action_id in action_ids:
        a = approval.approve(store, action_id, actor=actor, text=text)
        console.print(f"[green]approved[/] {a['kind']} {action_id} for @{esc(a['handle'])} — `taiwa send` sends it")


@cli.command()
@click.argument("action_id", type=int)
@click.option("--reason", required=True, help="Why (kept in the audit log)")
@actor_option
@pass_ctx
def reject(ctx: Ctx, action_id: int, reason: str, actor: str) -> None:
    """Reject a draft, with a reason.

    Example: taiwa reject 7 --reason "already handled by phone" """
    a = approval.reject(ctx.store(), action_id, actor=actor, reason=reason)
    console.print(f"[red]rejected[/] {a['kind']} {action_id}: {esc(reason)}")


@cli.command()
@click.argument("action_ids", type=int, nargs=-1, required=True)
@click.option("--reason", default="", help="Why no reply is needed (optional; kept in the audit log)")
@actor_option
@pass_ctx
def done(ctx: Ctx, action_ids: tuple[int, ...], reason: str, actor: str) -> None:
    """Close drafts that need no reply (answered elsewhere, nothing to say); not counted as rejections.

    Example: taiwa done 7 8 --reason "answered by phone" """
    store = ctx.store()
    for action_id in action_ids:
        approval.done(store, action_id, actor=actor, reason=reason)
        console.print(f"[green]done[/] {action_id}: no reply needed")


@cli.command()
@click.argument("action_id", type=int)
@click.option("--sent/--not-sent", "was_sent", required=True,
              help="Is the reply on the platform (a person looked)?")
@click.option("--ref", default="", help="The platform's id of the reply, if it was sent")
@actor_option
@pass_ctx
def check(ctx: Ctx, action_id: int, was_sent: bool, ref: str, actor: str) -> None:
    """Settle an action left `needs_check` by a sender that stopped mid-send.

    Example: taiwa check 9 --not-sent"""
    a = approval.resolve_check(ctx.store(), action_id, actor=actor, was_sent=was_sent, platform_ref=ref)
    console.print(f"action {action_id} is now {a['state']}")


@cli.command()
@actor_option
@pass_ctx
def send(ctx: Ctx, actor: str) -> None:
    """Send every approved action, each at most once (replayed posts: to the outbox file).

    Example: taiwa send"""
    store = ctx.store()
    sender_for, problems = senders.router(ctx.config, store)
    report = senders.send_approved(store, sender_for, actor=actor)
    console.print(report.summary() + (f" → {ctx.config.outbox}" if report.sent else ""))
    for line in report.problems:
        err_console.print(f"[yellow]{esc(line)}[/]")
    for platform, why in problems.items():
        err_console.print(f"[yellow]{platform}: not sent[/] — {esc(why)}")


@cli.command()
@click.argument("post_id", type=int)
@click.argument("label", type=click.Choice(["negative", "neutral", "positive"]))
@actor_option
@pass_ctx
def label(ctx: Ctx, post_id: int, label: str, actor: str) -> None:
    """Correct a post's sentiment; corrections feed `taiwa model train --corrections`.

    Example: taiwa label 41 negative"""
    ctx.store().correct_sentiment(post_id, label, actor)
    console.print(f"post {post_id} labelled {label} by {esc(actor)}")


@cli.command()
@click.argument("action_id", type=int, required=False)
@click.option("--limit", default=30, show_default=True)
@pass_ctx
def audit(ctx: Ctx, action_id: int | None, limit: int) -> None:
    """The audit log: who changed what, when.

    Example: taiwa audit 12"""
    t = Table(title="audit")
    for c in ("at", "actor", "action", "event", "before", "after", "detail"):
        t.add_column(c, overflow="fold")
    for e in ctx.store().audit_log(action_id, limit=limit):
        t.add_row(e["at"], Text(e["actor"]), str(e["action_id"] or ""), e["event"], Text(e["before"][:80]),
                  Text(e["after"][:80]), Text(e["detail"][:120]))
    console.print(t)


@cli.command()
@click.option("--check", is_flag=True, help="Only say whether taiwa is healthy; exit 1 if not (for systemd, "
                                           "docker and monitoring)")
@click.option("--no-daemon", is_flag=True, help="With --check: a missing daemon is not a problem (the inbox alone)")
@pass_ctx
def status(ctx: Ctx, check: bool, no_daemon: bool) -> None:
    """Counts, listener cursors, unreadable lines, action states, campaigns, time to first response.

    Example: taiwa status --check && echo healthy"""
    from .. import health

    h = health.check(ctx.config, expect_daemon=not no_daemon)
    if check:
        for p in h.problems:
            err_console.print(f"[red]unhealthy:[/] {esc(p)}")
        console.print(f"taiwa is {h.status}" + (f" (daemon heartbeat {h.daemon['heartbeat_age_s']} s ago)"
                                               if h.daemon.get("heartbeat_age_s") is not None else ""))
        raise click.exceptions.Exit(0 if h.status == "ok" else 1)
    store = ctx.store()
    console.print(f"health: {h.status}" + "".join(f"; {esc(p)}" for p in h.problems))
    console.print(f"database {ctx.config.database}: " + ", ".join(
        f"{store.count(t)} {t}" for t in ("posts", "authors", "sentiments", "actions", "audit")))
    counts = store.state_counts()
    console.print("actions: " + (", ".join(f"{counts.get(s, 0)} {s}" for s in STATES if counts.get(s)) or "none"))
    open_n = sum(counts.get(s, 0) for s in OPEN_STATES)
    console.print(f"open: {open_n}")
    for c in store.cursors():
        console.print(f"listener {esc(c['listener'])}: {c['posts_read']} posts read, at {esc(c['position'])}, "
                      f"updated {c['updated_at']}")
    problems = store.ingest_problems(limit=10)
    for p in problems:
        console.print(f"[yellow]unreadable[/] {esc(p['location'])}: {esc(p['reason'])}")
    for st in store.listener_states():
        paused = store.paused_until(st["listener"])
        console.print(f"listener {esc(st['listener'])}: last run {st['last_run_at'] or 'never'} "
                      f"({esc(st['last_result'])})"
                      + (f", {st['errors']} errors, last: {esc(st['last_error'])}" if st["errors"] else "")
                      + (f", [cyan]paused until {paused[0]:%Y-%m-%d %H:%M} UTC: {esc(paused[1])}[/]" if paused
                         else ""))
    if ctx.config.platform("x")["enabled"] or store.usage("x")["reads"]:
        u, x = store.usage("x"), ctx.config.platform("x")
        console.print(f"X this month: {u['reads']} of {x['monthly_read_budget']} posts read, "
                      f"{u['writes']} of {x['monthly_write_budget']} written")
    q = store.queue_sizes()
    console.print("queues: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in q.items()))
    holder = store.lock_holder()
    if holder or store.backend != "postgresql":
        console.print(f"daemon: pid {holder['pid']} on {esc(holder['host'])} since {holder['started_at']}, "
                      f"last heartbeat {holder['heartbeat_at']}" if holder else "daemon: not running")
    else:
        from .database import print_workers

        print_workers(store, ctx.config.get("daemon", "lock_stale_seconds"))
    jobs = [j for j in store.jobs() if j["name"] != "heartbeat"]
    if jobs:
        def hhmm(iso: str | None) -> str:
            return dt.datetime.fromisoformat(iso).strftime("%m-%d %H:%M:%S") if iso else "–"

        t = Table(title="daemon jobs (UTC)")
        for c, kw in (("job", {"no_wrap": True}), ("runs", {"justify": "right"}), ("errors", {"justify": "right"}),
                      ("last run", {"no_wrap": True}), ("next run", {"no_wrap": True}), ("result", {})):
            t.add_column(c, overflow="fold", **kw)
        for j in jobs:
            t.add_row(j["name"], str(j["runs"]), f"[red]{j['errors']}[/]" if j["errors"] else "0",
                      hhmm(j["last_run_at"]), hhmm(j["next_run_at"]), Text(j["last_result"]))
        console.print(t)
        for j in jobs:
            if j["last_error"]:
                console.print(f"[red]{j['name']} last error:[/] {esc(j['last_error'])}")
    rt = response_metrics(store.response_times(), ctx.config.sla_hours)
    ttfr = rt["overall"]
    if ttfr:
        console.print(f"time to first response: median {ttfr['median']:.1f}h, "
                      f"p90 {ttfr['p90']:.1f}h over {ttfr['n']} replies")
        console.print("within response targets: " + f"{rt['sla_overall']:.0%} overall; " + ", ".join(
            f"{t} {v['within']}/{v['n']} (≤{v['target_hours']:g}h)" for t, v in rt["sla"].items() if v["n"]))
    _print_campaigns(store, ctx.config.brand_handles)


@cli.group()
def campaign() -> None:
    """Hashtag campaigns: figures, timelines, reports."""


@campaign.command("list")
@pass_ctx
def campaign_list(ctx: Ctx) -> None:
    """Each declared campaign with its entries so far.

    Example: taiwa campaign list"""
    store = ctx.store()
    store.sync_campaigns(ctx.config.campaigns)
    _print_campaigns(store, ctx.config.brand_handles)


@campaign.command("report")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for report.html, summary.json, entries.csv "
              "(default: reports/NAME beside the database)")
@pass_ctx
def campaign_report(ctx: Ctx, name: str, out: str | None) -> None:
    """Figures, KPI progress, timeline, spikes, top posts and people; writes HTML, JSON and CSV.

    Example: taiwa campaign report MyKettleMorning"""
    from .. import campaigns

    c = campaigns.find(ctx.config, name)
    store = ctx.store()
    store.sync_campaigns(ctx.config.campaigns)
    report = campaigns.build(store, c, own_handles=ctx.config.brand_handles)
    paths = campaigns.write(report, Path(out) if out else campaigns.report_dir(ctx.config.data_dir, c.name),
                            store.campaign_entries(c.name), ctx.config.brand_handles)
    _print_campaign_report(report)
    console.print(f"wrote {esc(str(paths['html']))} (+ summary.json, entries.csv)")


def _print_campaign_report(r) -> None:
    t = Table(title=f"#{esc(r.campaign)} · {r.start} to {r.end}", show_header=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in [("entries", r.entries),
                 ("entries by platform", ", ".join(f"{p} {n}" for p, n in r.platforms.items()) or "–"),
                 ("reposts (apart)", r.reposts), ("participants", r.participants),
                 ("new / returning", f"{r.new_participants} / {r.returning_participants}"),
                 ("reach / unique reach", f"{r.reach:,} / {r.unique_reach:,}"),
                 ("engagement (likes/reposts/replies)", f"{r.engagement['total']} ({r.engagement['likes']}/"
                                                        f"{r.engagement['reposts']}/{r.engagement['replies']})"),
                 ("sentiment neg / neu / pos", " / ".join(str(r.sentiment[x]) for x in ("negative", "neutral",
                                                                                       "positive"))),
                 ("team reacted to", f"{r.reacted} ({r.reacted_share:.0%}), {r.reactions_waiting} waiting"),
                 *[(f"goal: {k}", f"{g['actual']:g} / {g['goal']:g} ({g['progress']:.0%})") for k, g in
                   r.goals.items()],
                 ("not counted: own posts / spam", f"{r.excluded['own_posts']} / {r.excluded['spam']}"),
                 ("spike hours", str(len(r.spikes)))]:
        t.add_row(k, str(v))
    console.print(t)


@cli.command()
@click.argument("handle")
@click.option("--platform", help="Only the account on this platform (default: that handle on every platform)")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@actor_option
@pass_ctx
def forget(ctx: Ctx, handle: str, platform: str | None, yes: bool, actor: str) -> None:
    """Erase everything stored about one author (a privacy request). The audit log keeps only the fact.

    Example: taiwa forget @someone --platform x"""
    store = ctx.store()
    authors = store.find_authors(handle, platform)
    if not authors:
        raise TaiwaError(f"no author {handle!r}" + (f" on {platform}" if platform else ""),
                         "check the handle with `taiwa inbox --json` or in the authors table")
    names = ", ".join(f"@{a['handle']} on {a['platform']}" for a in authors)
    if not yes and not click.confirm(f"Erase all posts, drafts and history of {names}?"):
        raise click.exceptions.Abort()
    for a in authors:
        counts = store.forget_author(a["id"], actor)
        console.print(f"erased @{esc(a['handle'])} on {esc(a['platform'])}: {counts['posts']} posts, {counts['actions']} "
                      f"actions, {counts['followups']} follow-ups, {counts['notes']} notes, {counts['tags']} tags")
    from .. import campaigns

    for folder in campaigns.refresh_written_reports(store, ctx.config):
        console.print(f"rewrote the campaign report in {esc(str(folder))} without them")
    console.print("[dim]Replies already written to an outbox file or posted on a platform are not touched: "
                  f"check {ctx.config.outbox} and the platform itself.[/]")


@cli.command()
@click.argument("alert_id", type=int)
@actor_option
@pass_ctx
def ack(ctx: Ctx, alert_id: int, actor: str) -> None:
    """Acknowledge an inbox alert (e.g. a campaign spike).

    Example: taiwa ack 3"""
    ctx.store().acknowledge_alert(alert_id, actor)
    console.print(f"alert {alert_id} acknowledged")


def _print_alerts(store: Store) -> None:
    for a in store.alerts("open"):
        console.print(f"[bold magenta]alert {a['id']}[/] {a['kind']}: {esc(a['detail'])}  (taiwa ack {a['id']})")


@cli.command()
@click.option("--jobs", help="Comma-separated jobs to run (default: all): listen:replay, listen:x, process, send, "
                            "followups, campaigns, digest")
@click.option("--quiet", is_flag=True, help="Log to the file only, not the console")
@click.option("--worker", is_flag=True, help="Share a PostgreSQL database with other workers (any number, any "
                                              "machine) instead of holding it alone")
@pass_ctx
def run(ctx: Ctx, jobs: str | None, quiet: bool, worker: bool) -> None:
    """Start the daemon: every job on its interval until SIGTERM/Ctrl-C. One daemon per SQLite database; on
    PostgreSQL, as many `--worker`s as the load needs.

    Example: taiwa run    (PostgreSQL, on each machine: taiwa run --worker)"""
    from ..scheduler import Daemon, setup_logging

    cfg = ctx.config
    setup_logging(cfg, cfg.resolve(cfg.get("daemon", "log_file")), console=not quiet)
    daemon = Daemon(cfg, jobs=[j.strip() for j in jobs.split(",")] if jobs else None, worker=worker)
    what = f"worker {daemon.worker}" if worker else f"daemon pid {daemon.pid}"
    console.print(f"taiwa {what} on {esc(str(cfg.database))}: {', '.join(daemon.jobs)} — Ctrl-C to stop")
    daemon.run_forever()


# ------------------------------------------------------------------------------------------------ the web inbox
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep 127.0.0.1 unless a TLS proxy is in front)")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--secure-cookies", is_flag=True, help="Mark cookies Secure (when served behind HTTPS)")
@pass_ctx
def serve(ctx: Ctx, host: str, port: int, secure_cookies: bool) -> None:
    """Serve the approval inbox in the browser (sign in with an account from `taiwa user add`).

    Example: taiwa serve  →  open http://127.0.0.1:8000"""
    import uvicorn

    from ..web.app import create_app

    store = ctx.store()
    users = store.users()
    store.close()
    if not any(not u["disabled"] for u in users):
        raise TaiwaError("nobody can sign in: the team has no accounts yet",
                         "add one first: taiwa user add YOUR_NAME --role admin")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]warning:[/] serving on {esc(host)}: anyone who can reach it can try to sign "
                          "in; put it behind HTTPS and use --secure-cookies")
    app = create_app(ctx.config, secure_cookies=secure_cookies)
    console.print(f"taiwa inbox on [bold]http://{esc(host)}:{port}[/] ({ctx.config.database}) — Ctrl-C to stop")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.group()
def user() -> None:
    """The team who use the inbox: viewer < responder (edit, snooze, assign) < approver (approve, send) < admin."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("password (10+ characters)", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="responder",
              show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts)")
@actor_option
@pass_ctx
def user_add(ctx: Ctx, name: str, role: str, password_stdin: bool, actor: str) -> None:
    """Add a teammate. The password is asked for (or read with --password-stdin) and only its hash is kept.

    Example: taiwa user add aiko --role approver"""
    password = _read_password(password_stdin)
    ctx.store().add_user(name, role, password, actor)
    console.print(f"added {esc(name)} ({role})")


@user.command("list")
@pass_ctx
def user_list(ctx: Ctx) -> None:
    """The team and their roles."""
    for u in ctx.store().users():
        console.print(f"{esc(u['name'])}  {u['role']}  since {u['created_at'][:10]}"
                      + ("  [red]disabled[/]" if u["disabled"] else ""))


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@actor_option
@pass_ctx
def user_role(ctx: Ctx, name: str, role: str, actor: str) -> None:
    """Change a teammate's role."""
    ctx.store().set_user(name, actor, role=role)
    console.print(f"{esc(name)} is now {role}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input")
@actor_option
@pass_ctx
def user_passwd(ctx: Ctx, name: str, password_stdin: bool, actor: str) -> None:
    """Set a new password (signs them out everywhere)."""
    password = _read_password(password_stdin)
    ctx.store().set_user(name, actor, password=password)
    console.print(f"new password set for {esc(name)}")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the account again")
@actor_option
@pass_ctx
def user_disable(ctx: Ctx, name: str, enable: bool, actor: str) -> None:
    """Stop (or allow again) a teammate signing in; their sessions end at once."""
    ctx.store().set_user(name, actor, disabled=not enable)
    console.print(f"{esc(name)} {'enabled' if enable else 'disabled'}")


@cli.command()
@pass_ctx
def doctor(ctx: Ctx) -> None:
    """Which credentials are present (never their values) and whether the platforms accept them.

    Example: taiwa doctor"""
    cfg, ok = ctx.config, True
    console.print(f"configuration {cfg.path or 'demo'}: valid; database {cfg.database}")
    x = cfg.platform("x")
    names = {k: x[k] for k in ("bearer_token_env", "consumer_key_env", "consumer_secret_env", "access_token_env",
                               "access_token_secret_env")}
    present = {k: bool(os.environ.get(v)) for k, v in names.items()}
    console.print(f"X ({'enabled' if x['enabled'] else 'disabled'}): " + ", ".join(
        f"{v} {'set' if present[k] else '[red]not set[/]'}" for k, v in names.items()))
    if present["bearer_token_env"]:
        from ..listeners.x import call_x, make_client

        client = make_client(bearer_env=names["bearer_token_env"])
        handles = [h.lstrip("@") for b in cfg.brands for h in b.handles][:1] or ["x"]
        try:
            call_x(client.get_users, what="user lookup", env=names["bearer_token_env"], retries=1,
                   usernames=handles)
            console.print("  reading: [green]the bearer token works[/]")
        except TaiwaError as e:
            ok = False
            console.print(f"  reading: [red]{esc(e.message)}[/]\n  → {esc(e.hint or '')}")
    elif x["enabled"]:
        ok = False
    if all(present[k] for k in names if k != "bearer_token_env"):
        from ..listeners.x import call_x, make_client

        client = make_client(bearer_env=names["bearer_token_env"], consumer_key_env=names["consumer_key_env"],
                             consumer_secret_env=names["consumer_secret_env"],
                             access_token_env=names["access_token_env"],
                             access_token_secret_env=names["access_token_secret_env"])
        try:
            me = call_x(client.get_me, what="the posting account", env=names["access_token_env"], retries=1,
                        user_auth=True)
            console.print(f"  posting: [green]as @{esc(me['data']['username'])}[/]")
        except TaiwaError as e:
            ok = False
            console.print(f"  posting: [red]{esc(e.message)}[/]\n  → {esc(e.hint or '')}")
    elif x["enabled"]:
        console.print("  posting: approved X replies wait until the four user-context variables are set")
    ig = cfg.platform("instagram")
    if ig["enabled"]:
        sf = cfg.resolve(ig["session_file"]) if ig["session_file"] else None
        good = bool(sf and sf.exists())
        ok &= good
        console.print(f"Instagram: session file {sf or '(none)'} {'found' if good else '[red]missing[/]'}")
    md = cfg.platform("mastodon")
    if md["enabled"]:
        good = bool(md["api_base_url"]) and bool(os.environ.get(md["access_token_env"]))
        ok &= good
        console.print(f"Mastodon: server {esc(md['api_base_url'] or '(not set)')}, {md['access_token_env']} "
                      + ("set" if os.environ.get(md["access_token_env"]) else "[red]not set[/]"))
    bsky = cfg.platform("bluesky")
    if bsky["enabled"]:
        session = Path(bsky["session_file"]).expanduser() if bsky["session_file"] else None
        has_session = bool(session and session.exists())
        has_password = bool(os.environ.get(bsky["app_password_env"]))
        ok &= bool(bsky["handle"]) and (has_session or has_password)
        console.print(f"Bluesky: {esc(bsky['handle'] or '(handle not set)')}, saved session "
                      f"{'found' if has_session else 'none'}, {bsky['app_password_env']} "
                      f"{'set' if has_password else 'not set'}")
    try:
        from ..models.sentiment import HEADS_DIR, Head

        for name in ("minilm", "e5"):
            Head.load(HEADS_DIR / f"{name}.safetensors")
        console.print("sentiment model: [green]heads present[/] (offline default)" if cfg.get("model", "name") ==
                      "default" else f"sentiment model: {cfg.get('model', 'name')}")
    except TaiwaError as e:
        ok = False
        console.print(f"sentiment model: [red]{esc(e.message)}[/]")
    if not ok:
        raise TaiwaError("some enabled sources cannot be used yet", "fix the lines marked above")


def main() -> None:
    try:
        code = cli(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except TaiwaError as e:
        err_console.print(f"[bold red]error:[/] {esc(e.message)}")
        if e.hint:
            err_console.print(f"  [yellow]→ {esc(e.hint)}[/]")
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except FileNotFoundError as e:
        err_console.print(f"[bold red]error:[/] {esc(str(e))}")
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - a person gets what happened and what to do, not a traceback
        from ..pipeline import describe_failure

        if os.environ.get("TAIWA_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {esc(describe_failure(e))}")
        err_console.print("  [yellow]→ run again with TAIWA_DEBUG=1 for the full traceback, and report it if it "
                          "looks like a bug in taiwa[/]")
        sys.exit(1)


# Commands kept in modules of their own register themselves on `cli` when imported.
from . import database, model, understanding  # noqa: E402,F401

if __name__ == "__main__":
    main()
