"""The daemon (`taiwa run`): APScheduler 3.x jobs wiring listeners → models → responders.

Jobs (module-level functions, each given its own Store connection per run):
    listen:<platform>   each enabled platform on its own interval; paused streams are skipped (rate limits)
    process             classify and rank new posts, draft replies/likes
    send                send approved actions (at most once)
    followups           match customers' answers to what our replies asked; draft follow-ups and check-ins
    campaigns           campaign snapshots (entries, participants, sentiment over time)
    digest              a daily summary file and log line
    heartbeat           keeps the one-daemon-per-database lock fresh

`taiwa run --worker` (PostgreSQL only): any number of worker processes, on any machines, share one database
instead of one daemon holding it. Each registers itself and heartbeats; listener streams are leased (one worker
reads a stream at a time; a dead worker's streams are taken over when its leases expire); classify claims
chunks of posts with SKIP LOCKED; triage goes chunk by chunk under the write lock; sending claims each action
(a lost claim is skipped); follow-ups, campaigns, digest and retention run on whichever worker takes the job's
advisory lock first. See store/workers.py.

Every job runs with max_instances=1 and coalesce=True; a job that raises is recorded (count, last message) and
never stops the others. SIGTERM/SIGINT: no new batch starts, the running one finishes (each batch is one
transaction, so nothing is half-written), then the lock is released.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import secrets
import signal
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import clock
from .config import KNOWN_PLATFORMS, Config
from .errors import TaiwaError
from .store import Store, parse_iso

log = logging.getLogger("taiwa.daemon")


class DaemonRunning(TaiwaError):
    exit_code = 10


# --------------------------------------------------------------------------- logging
class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"at": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for key in ("job", "duration_s", "result"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class DropExpectedSchedulerNoise(logging.Filter):
    """A job still running at its next tick is skipped by design (max_instances=1); that is not worth a line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


class RedactSecrets(logging.Filter):
    """Replace the values of the configured credential variables wherever they would appear in a log line."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


def setup_logging(config: Config, log_file: Path | None, *, console: bool = True) -> None:
    secrets = [os.environ.get(v, "") for section in config.sections.values()
               for k, v in section.items() if k.endswith("_env") and isinstance(v, str)]
    root = logging.getLogger("taiwa")
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    redact = RedactSecrets(secrets)
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 2 ** 20, backupCount=5, encoding="utf-8")
        fh.setFormatter(JsonFormatter())
        fh.addFilter(redact)
        root.addHandler(fh)
    if console:
        ch = logging.StreamHandler()
        ch.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        ch.addFilter(redact)
        root.addHandler(ch)
    # APScheduler's own warnings go to the same handlers (not Python's last-resort stderr printer, which would
    # write unformatted lines even with --quiet, and block a daemon whose stderr nobody reads).
    aps = logging.getLogger("apscheduler")
    aps.setLevel(logging.WARNING)
    aps.propagate = False
    for h in list(aps.handlers):
        aps.removeHandler(h)
    for h in root.handlers:
        aps.addHandler(h)
    if not aps.filters:
        aps.addFilter(DropExpectedSchedulerNoise())


# --------------------------------------------------------------------------- jobs
SINGLETON_JOBS = frozenset({"followups", "campaigns", "digest", "retention"})


def job_listen(daemon: "Daemon", store: Store, platform: str) -> str:
    from . import pipeline

    listeners = pipeline.platform_listeners(daemon.config, store, platform)
    lease = None
    if daemon.worker:
        held = set(store.claim_streams(daemon.worker, [lst.name for lst in listeners],
                                       lease_seconds=daemon.lease_seconds))
        listeners = [lst for lst in listeners if lst.name in held]
        if not listeners:
            return "every stream is held by another worker"
        lease = (daemon.worker, daemon.lease_seconds)
    report = pipeline.listen(store, listeners, stop=daemon.stopping, lease=lease)
    paused = f", paused: {', '.join(report.paused)}" if report.paused else ""
    paused += f", taken over: {', '.join(report.lost)}" if report.lost else ""
    if report.failed:   # what the others read is stored; the job still counts as failed, with each reason
        raise TaiwaError(f"{report.new} new; failed: " + "; ".join(f"{k}: {v}" for k, v in report.failed.items()))
    return f"{report.new} new, {len(report.problems)} problems{paused}"


def job_process(daemon: "Daemon", store: Store) -> str:
    from . import pipeline

    unclassified = bool(store.posts_without_sentiment(limit=1))
    if not unclassified and not store.posts_to_triage(limit=1):
        return "nothing new"
    # A worker's claimed chunk stays locked while it is classified: smaller chunks keep those waits short.
    n = pipeline.classify(store, daemon.model(), stop=daemon.stopping, chunk=64 if daemon.worker else 256) \
        if unclassified else 0
    t = pipeline.triage(store, daemon.config, stop=daemon.stopping, chunk=200 if daemon.worker else 500)
    return f"{n} classified, {t.triaged} ranked, {t.drafts} drafts, {t.likes} likes"


def job_send(daemon: "Daemon", store: Store) -> str:
    from .responders import senders

    sender_for, problems = senders.router(daemon.config, store)
    r = senders.send_approved(store, sender_for)
    waiting = f", waiting: {'; '.join(problems.values())}" if problems else ""
    return r.summary() + "".join(f"; {p}" for p in r.problems) + waiting


def job_followups(daemon: "Daemon", store: Store) -> str:
    from .responders import followups

    r = followups.run(store, daemon.config, now=daemon.now())
    return f"{r.tracked} tracked, {r.answered} answered, {r.drafted} drafted, {r.closed} closed"


def job_campaigns(daemon: "Daemon", store: Store) -> str:
    from . import campaigns

    store.sync_campaigns(daemon.config.campaigns)   # campaigns added to taiwa.toml show up before any entry
    n = store.snapshot_campaigns(daemon.now(), daemon.config.brand_handles)
    alerts = campaigns.raise_spike_alerts(store, daemon.config)
    return f"{n} campaigns snapshotted, {alerts} new spike alerts"


def job_digest(daemon: "Daemon", store: Store) -> str:
    now = daemon.now()
    q = store.queue_sizes()
    counts = store.state_counts()
    rt = store.response_times()
    hours = [(dt.datetime.fromisoformat(r["first_sent"]) - dt.datetime.fromisoformat(r["created_at"]))
             .total_seconds() / 3600 for r in rt]
    lines = [f"# taiwa digest {now:%Y-%m-%d}", "",
             f"- posts stored: {store.count('posts')}; drafts waiting for a person: {q['to_approve']}; "
             f"approved, not yet sent: {q['to_send']}; needing a check: {q['to_check']}",
             "- actions: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
             f"- time to first response: median {statistics.median(hours):.1f}h over {len(hours)} replies"
             if hours else "- time to first response: no replies sent yet"]
    for c in store.campaign_summary(daemon.config.brand_handles):
        lines.append(f"- #{c['name']}: {c['entries']} entries, {c['participants']} participants")
    path = daemon.config.data_dir / "digests" / f"digest-{now:%Y-%m-%d}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"wrote {path.name}"


def job_retention(daemon: "Daemon", store: Store) -> str:
    from .retention import prune

    out = prune(store, daemon.config, now=daemon.now())
    return f"{out['raw_cleared']} raw records cleared, {out['posts_deleted']} posts deleted"


# --------------------------------------------------------------------------- the daemon
class Daemon:
    """One per database, or (worker=True, PostgreSQL) one of many workers sharing it. `start()` takes the lock
    (registers the worker) and schedules the jobs; `stop()` finishes and releases."""

    def __init__(self, config: Config, *, jobs: list[str] | None = None, now: Callable[[], dt.datetime] | None = None,
                 intervals: dict[str, float] | None = None, pid: int | None = None, host: str | None = None,
                 model_loader: Callable[[], Any] | None = None, worker: bool = False):
        self.config = config
        self.pid, self.host = pid or os.getpid(), host or socket.gethostname()
        # A worker's id: host and pid name it for people; the random tail keeps a restarted pid distinct.
        self.worker = f"{self.host}:{self.pid}:{secrets.token_hex(3)}" if worker else ""
        self.lease_seconds = config.get("daemon", "lease_seconds")
        self.now = now or config.clock
        self._stop = threading.Event()
        self._model = None
        self._model_lock = threading.Lock()
        self._model_loader = model_loader
        d = config.sections["daemon"]
        default = {"process": d["process_seconds"], "send": d["send_seconds"],
                   "followups": d["followup_minutes"] * 60, "campaigns": d["snapshot_minutes"] * 60,
                   "digest": 24 * 3600, "heartbeat": d["heartbeat_seconds"],
                   "retention": d["retention_hours"] * 3600}
        for p in KNOWN_PLATFORMS:
            if config.platform(p)["enabled"]:
                default[f"listen:{p}"] = config.platform(p)["interval_minutes"] * 60
        self.intervals = {**default, **(intervals or {})}
        wanted = set(jobs) if jobs else set(self.intervals)
        unknown = wanted - set(self.intervals)
        if unknown:
            raise TaiwaError(f"unknown or disabled job(s): {', '.join(sorted(unknown))}",
                             f"jobs here: {', '.join(sorted(self.intervals))}")
        self.jobs = sorted(wanted | {"heartbeat"})
        self.scheduler = None

    def stopping(self) -> bool:
        return self._stop.is_set()

    def model(self):
        with self._model_lock:
            if self._model is None:
                if self._model_loader:
                    self._model = self._model_loader()
                else:
                    from .models.sentiment import load_configured

                    m = self.config.sections["model"]
                    self._model = load_configured(m)
        return self._model

    def _function(self, name: str) -> Callable[[Store], str]:
        if name.startswith("listen:"):
            return lambda store: job_listen(self, store, name.split(":", 1)[1])
        if name == "heartbeat":
            return self._heartbeat
        return lambda store, f=globals()[f"job_{name}"]: f(self, store)

    def _heartbeat(self, store: Store) -> str:
        if self.worker:
            if not store.worker_heartbeat(self.worker, lease_seconds=self.lease_seconds):
                log.error("this worker's registration was removed; stopping")
                self._stop.set()
                return "unregistered"
            return "ok"
        if not store.heartbeat(self.pid, self.now()):
            log.error("another daemon took the lock; stopping")
            self._stop.set()
            return "lock lost"
        return "ok"

    def run_job(self, name: str) -> str:
        """Run one job now, in this thread, recording its result. The scheduler calls this too."""
        if self.stopping() and name != "heartbeat":
            return "stopping"
        t0, at = time.monotonic(), self.now()
        store = Store(self.config.database, clock=self.now)
        result, error = "", ""
        try:
            if self.worker and name in SINGLETON_JOBS:
                with store.singleton(name) as mine:
                    result = self._function(name)(store) if mine else "another worker is running it"
            else:
                result = self._function(name)(store)
        except Exception as e:  # noqa: BLE001 - one job's failure must never stop the others
            result, error = "error", f"{type(e).__name__}: {e}"
            log.exception("job %s failed", name, extra={"job": name})
        finally:
            # Not scheduler.get_job(): shutdown(wait=True) holds the job-store lock while it waits for running
            # jobs, so a job asking for it while the daemon stops would deadlock (seen: SIGTERM hung the daemon).
            next_run = None if self.stopping() else at + dt.timedelta(seconds=self.intervals[name])
            if name != "heartbeat" or error:
                store.record_job(name, at=at, duration_s=time.monotonic() - t0, result=result, error=error,
                                 next_run_at=next_run)
            store.close()
        if name != "heartbeat":
            log.info("job %s: %s", name, result, extra={"job": name, "result": result,
                                                          "duration_s": round(time.monotonic() - t0, 3)})
        return result

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        store = Store(self.config.database, clock=self.now)
        stale = self.config.get("daemon", "lock_stale_seconds")
        try:
            if self.worker:
                self._register(store, stale)
                holder = None
            else:
                live = [w for w in store.workers(stale_after=stale) if w["alive"]]
                if live:
                    raise DaemonRunning(
                        f"{len(live)} taiwa worker(s) share {store.describe()} "
                        f"({', '.join(w['id'] for w in live)})",
                        "start this one as a worker too (taiwa run --worker), or stop the workers first")
                holder = store.acquire_lock(self.pid, self.host, now=self.now(),
                                            stale_after=dt.timedelta(seconds=stale))
        finally:
            store.close()
        if holder:
            raise DaemonRunning(
                f"another taiwa daemon (pid {holder['pid']} on {holder['host']}, since {holder['started_at']}) "
                f"is running on {self.config.database}",
                f"stop it first (kill {holder['pid']}), or use another database; one daemon per database")
        self.scheduler = BackgroundScheduler(
            timezone=dt.timezone.utc, executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        # APScheduler times its intervals on the operating system's clock; what taiwa records and stamps uses
        # the daemon's clock (self.now), which may have been started elsewhere ([taiwa] clock).
        first = clock.wall() + dt.timedelta(milliseconds=50)
        for name in self.jobs:
            self.scheduler.add_job(self.run_job, "interval", args=[name], id=name, name=name,
                                   seconds=self.intervals[name], next_run_time=first)
        self.scheduler.start()
        store = Store(self.config.database, clock=self.now)
        try:
            for name in self.jobs:
                store.set_next_run(name, self.now() + (self.scheduler.get_job(name).next_run_time - clock.wall()))
        finally:
            store.close()
        log.info("%s started: pid %s, jobs %s", f"worker {self.worker}" if self.worker else "daemon", self.pid,
                 ", ".join(self.jobs))

    def _register(self, store: Store, stale: float) -> None:
        if store.backend != "postgresql":
            raise TaiwaError(f"workers share a PostgreSQL database; {store.describe()} is a SQLite file",
                             "run one `taiwa run` per SQLite file, or move to PostgreSQL (taiwa migrate-db)")
        holder = store.lock_holder()
        if holder and parse_iso(holder["heartbeat_at"]) > self.now() - dt.timedelta(seconds=stale):
            raise DaemonRunning(
                f"a taiwa daemon (pid {holder['pid']} on {holder['host']}) holds {store.describe()} alone",
                "stop it, then start workers (taiwa run --worker) in its place")
        store.register_worker(self.worker, self.host, self.pid, self.jobs)

    def stop(self) -> None:
        """Let running batches finish (each is one transaction), then release the lock (a worker: its
        registration and leases, so the others take its streams at once)."""
        self._stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        store = Store(self.config.database, clock=self.now)
        try:
            if self.worker:
                store.unregister_worker(self.worker)
            else:
                store.release_lock(self.pid)
        finally:
            store.close()
        log.info("daemon stopped")

    def run_forever(self) -> None:
        """`taiwa run`: start, wait for SIGTERM/SIGINT (or a lost lock), stop."""
        def on_signal(signum, _frame):
            log.info("received %s: finishing the current batch, then stopping", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if hasattr(signal, "SIGUSR1"):
            import faulthandler

            faulthandler.register(signal.SIGUSR1, all_threads=True)   # `kill -USR1 PID`: where is each thread?
        self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
