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

import datetime as dt
import hashlib
import hmac
import json
import secrets
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .errors import InvalidTransition, NotFound, StoreError, ValidationError
from .listeners.base import Post

migrations = Migrations("taiwa")
# One encoder for every row: json.dumps with non-default options builds a new encoder per call (slow in bulk).
_to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode

# The approval state machine. Every change goes through Store.transition (compare-and-set + audit row).
STATES = ("pending", "approved", "rejected", "sending", "sent", "failed", "needs_check")
TRANSITIONS: dict[str, set[str]] = {
    "pending": {"approved", "rejected"},
    "approved": {"sending", "rejected", "pending"},
    "rejected": {"pending"},
    "sending": {"sent", "failed", "needs_check"},
    "failed": {"approved", "rejected"},
    # A person looked at the platform: it was sent after all, or it was not and may be approved again.
    "needs_check": {"sent", "approved", "rejected"},
    "sent": set(),
}
OPEN_STATES = ("pending", "approved", "failed", "needs_check")
# Team roles, each allowed everything the ones before it are.
ROLES = ("viewer", "responder", "approver", "admin")
SESSION_HOURS = 12


def now_iso(t: dt.datetime | None = None) -> str:
    t = t or dt.datetime.now(dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def parse_iso(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE authors (
            id TEXT PRIMARY KEY,               -- "platform:platform_id"
            platform TEXT NOT NULL,
            platform_id TEXT NOT NULL,
            handle TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            followers INTEGER NOT NULL DEFAULT 0,
            verified INTEGER NOT NULL DEFAULT 0,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        );
        CREATE INDEX authors_handle ON authors(platform, handle);

        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            platform_id TEXT NOT NULL,
            author_id TEXT NOT NULL REFERENCES authors(id),
            text TEXT NOT NULL,
            lang TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '',
            conversation_id TEXT NOT NULL DEFAULT '',
            in_reply_to_id TEXT NOT NULL DEFAULT '',
            is_repost INTEGER NOT NULL DEFAULT 0,
            can_reply INTEGER NOT NULL DEFAULT 1,
            likes INTEGER NOT NULL DEFAULT 0,
            reposts INTEGER NOT NULL DEFAULT 0,
            replies INTEGER NOT NULL DEFAULT 0,
            hashtags TEXT NOT NULL DEFAULT '[]',   -- JSON array
            mentions TEXT NOT NULL DEFAULT '[]',   -- JSON array
            source TEXT NOT NULL,                  -- the listener that brought it
            raw TEXT NOT NULL DEFAULT '{}',        -- the platform's record, as read
            ingested_at TEXT NOT NULL,
            UNIQUE (platform, platform_id)
        );
        CREATE INDEX posts_author ON posts(author_id, created_at);
        CREATE INDEX posts_created ON posts(created_at);

        CREATE TABLE sentiments (
            post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
            label TEXT NOT NULL CHECK (label IN ('negative', 'neutral', 'positive')),
            negative REAL NOT NULL,
            neutral REAL NOT NULL,
            positive REAL NOT NULL,
            model_id TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'model',  -- 'model', or 'human' for a correction made in the inbox
            classified_at TEXT NOT NULL
        );

        CREATE TABLE priorities (
            post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
            score REAL NOT NULL,
            intent TEXT NOT NULL,                  -- complaint | question | praise | spam | other
            sentiment_c REAL NOT NULL,             -- each component in [0, 1], before its weight
            intent_c REAL NOT NULL,
            reach_c REAL NOT NULL,
            recency_c REAL NOT NULL,
            campaign_c REAL NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',    -- JSON array of short human-readable strings
            computed_at TEXT NOT NULL
        );
        CREATE INDEX priorities_score ON priorities(score DESC);

        CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('reply', 'like')),
            intent TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending','approved','rejected','sending','sent','failed','needs_check')),
            text TEXT NOT NULL DEFAULT '',         -- what will be sent (edited by a person or as drafted)
            draft_text TEXT NOT NULL DEFAULT '',   -- what taiwa drafted, kept for comparison
            template TEXT NOT NULL DEFAULT '',
            memory TEXT NOT NULL DEFAULT '[]',     -- JSON: the author's earlier posts/replies this draft recalls
            reason TEXT NOT NULL DEFAULT '',       -- rejection reason, or failure message
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            approved_by TEXT NOT NULL DEFAULT '',
            approved_at TEXT,
            sending_since TEXT,
            sent_at TEXT,
            platform_ref TEXT NOT NULL DEFAULT '', -- the platform's id for what we sent
            UNIQUE (post_id, kind)
        );
        CREATE INDEX actions_state ON actions(state);

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action_id INTEGER,
            event TEXT NOT NULL,
            before TEXT NOT NULL DEFAULT '',
            after TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_action ON audit(action_id);

        CREATE TABLE cursors (
            listener TEXT PRIMARY KEY,
            position TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            posts_read INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE campaigns (
            name TEXT PRIMARY KEY,
            hashtags TEXT NOT NULL,
            start TEXT NOT NULL,
            "end" TEXT NOT NULL,
            platforms TEXT NOT NULL DEFAULT '[]',
            goals TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE campaign_posts (
            campaign TEXT NOT NULL REFERENCES campaigns(name) ON DELETE CASCADE,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            hashtag TEXT NOT NULL,
            PRIMARY KEY (campaign, post_id)
        );

        CREATE TABLE ingest_problems (
            id INTEGER PRIMARY KEY,
            listener TEXT NOT NULL,
            at TEXT NOT NULL,
            location TEXT NOT NULL,                -- file:line
            reason TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_listener_state_and_usage(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE listener_state (
            listener TEXT PRIMARY KEY,
            paused_until TEXT,                     -- do not ask this source again before this time (UTC)
            pause_reason TEXT NOT NULL DEFAULT '',
            last_run_at TEXT,
            last_result TEXT NOT NULL DEFAULT '',
            errors INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE platform_usage (              -- what each platform billed us for, per calendar month (UTC)
            platform TEXT NOT NULL,
            month TEXT NOT NULL,                   -- "2026-11"
            reads INTEGER NOT NULL DEFAULT 0,      -- posts read
            writes INTEGER NOT NULL DEFAULT 0,     -- posts written (replies, likes)
            PRIMARY KEY (platform, month)
        );
        """
    )


@migrations()
def m003_daemon_and_followups(db: Database) -> None:
    """Jobs and the daemon lock; follow-ups. `actions` is rebuilt (SQLite cannot drop a table constraint):
    a post may now get a second reply when it is a follow-up of an earlier one."""
    db.executescript(
        """
        CREATE TABLE jobs (
            name TEXT PRIMARY KEY,
            runs INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            last_run_at TEXT,
            last_duration_s REAL,
            last_result TEXT NOT NULL DEFAULT '',
            last_error TEXT NOT NULL DEFAULT '',
            next_run_at TEXT
        );
        CREATE TABLE daemon_lock (
            id INTEGER PRIMARY KEY CHECK (id = 1),  -- one daemon per database
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL
        );
        CREATE TABLE followups (
            id INTEGER PRIMARY KEY,
            action_id INTEGER NOT NULL,            -- our sent reply that asked something
            author_id TEXT NOT NULL,
            asks TEXT NOT NULL,                    -- offer (yes / later / no) | resolution (complaint check-in)
            state TEXT NOT NULL DEFAULT 'waiting', -- waiting | answered | drafted | closed
            answer TEXT NOT NULL DEFAULT '',       -- yes | later | no | other
            answer_post_id INTEGER,
            due_at TEXT,                           -- when a check-in / reminder draft is made if nothing else happens
            draft_action_id INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (action_id)
        );
        CREATE TABLE campaign_snapshots (
            campaign TEXT NOT NULL,
            at TEXT NOT NULL,
            entries INTEGER NOT NULL,
            participants INTEGER NOT NULL,
            positive INTEGER NOT NULL,
            negative INTEGER NOT NULL,
            PRIMARY KEY (campaign, at)
        );

        CREATE TABLE actions_new (
            id INTEGER PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('reply', 'like')),
            intent TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending','approved','rejected','sending','sent','failed','needs_check')),
            text TEXT NOT NULL DEFAULT '',
            draft_text TEXT NOT NULL DEFAULT '',
            template TEXT NOT NULL DEFAULT '',
            memory TEXT NOT NULL DEFAULT '[]',
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            approved_by TEXT NOT NULL DEFAULT '',
            approved_at TEXT,
            sending_since TEXT,
            sent_at TEXT,
            platform_ref TEXT NOT NULL DEFAULT '',
            followup_of INTEGER,                   -- the earlier action this one follows up
            asks TEXT NOT NULL DEFAULT ''          -- what this reply asks the customer: offer | resolution | ''
        );
        INSERT INTO actions_new (id, post_id, kind, intent, state, text, draft_text, template, memory, reason,
                                 created_at, updated_at, approved_by, approved_at, sending_since, sent_at,
                                 platform_ref)
            SELECT id, post_id, kind, intent, state, text, draft_text, template, memory, reason, created_at,
                   updated_at, approved_by, approved_at, sending_since, sent_at, platform_ref FROM actions;
        DROP TABLE actions;
        ALTER TABLE actions_new RENAME TO actions;
        CREATE UNIQUE INDEX actions_once ON actions(post_id, kind, ifnull(followup_of, 0));
        CREATE INDEX actions_state ON actions(state);
        """
    )


@migrations()
def m004_alerts(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,                    -- campaign_spike
            subject TEXT NOT NULL,                 -- the campaign
            window_start TEXT NOT NULL,
            detail TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'open',    -- open | acknowledged
            created_at TEXT NOT NULL,
            acknowledged_by TEXT NOT NULL DEFAULT '',
            UNIQUE (kind, subject, window_start)
        );
        """
    )


@migrations()
def m005_team(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'responder', 'approver', 'admin')),
            password_hash TEXT NOT NULL,           -- scrypt$n$r$p$salt$hash; the password itself is never stored
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE web_sessions (
            token_hash TEXT PRIMARY KEY,           -- sha256 of the cookie value; the cookie itself is never stored
            user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            csrf TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        ALTER TABLE actions ADD COLUMN assigned_to TEXT NOT NULL DEFAULT '';
        ALTER TABLE actions ADD COLUMN snoozed_until TEXT;
        """
    )


@migrations()
def m006_rules(db: Database) -> None:
    """What the rules decided for each post: escalated above the rest, the rules that fired, tags."""
    db.executescript(
        """
        ALTER TABLE priorities ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE priorities ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';   -- [{"rule", "evidence"}]
        ALTER TABLE priorities ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX priorities_rank ON priorities(escalated DESC, score DESC);
        """
    )


@migrations()
def m007_topics(db: Database) -> None:
    """Each post's multilingual embedding (computed once, with its sentiment) and the topic found for it."""
    db.executescript(
        """
        CREATE TABLE post_vectors (
            post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
            model TEXT NOT NULL,                   -- the encoder, e.g. multilingual-e5-small
            vector BLOB NOT NULL                   -- float32, L2-normalised
        );
        ALTER TABLE priorities ADD COLUMN topic TEXT NOT NULL DEFAULT '';
        ALTER TABLE priorities ADD COLUMN topic_score REAL;
        ALTER TABLE priorities ADD COLUMN topic_evidence TEXT NOT NULL DEFAULT '[]';
        """
    )


@migrations()
def m008_incidents(db: Database) -> None:
    """Incidents: posts from different people about the same thing at about the same time, grouped."""
    db.executescript(
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            representative_post_id INTEGER REFERENCES posts(id) ON DELETE SET NULL,
            size INTEGER NOT NULL DEFAULT 0,
            authors INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX incidents_seen ON incidents(topic, last_seen);
        CREATE TABLE incident_posts (
            post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            similarity REAL NOT NULL                -- to the post it matched when it joined
        );
        CREATE INDEX incident_posts_incident ON incident_posts(incident_id);
        """
    )


@migrations()
def m009_drafts_and_people(db: Database) -> None:
    """What each draft stands on (answer, ask, recalled history, the posts it answers, who wrote it), and one
    customer's linked accounts (authors sharing a person)."""
    db.executescript(
        """
        ALTER TABLE actions ADD COLUMN answer TEXT NOT NULL DEFAULT '';        -- the [[answers]] entry used
        ALTER TABLE actions ADD COLUMN answer_score REAL;                      -- how close the question was
        ALTER TABLE actions ADD COLUMN needs_answer INTEGER NOT NULL DEFAULT 0; -- a question no answer fits
        ALTER TABLE actions ADD COLUMN ask TEXT NOT NULL DEFAULT '';           -- 'topic NAME' | 'generic' | ''
        ALTER TABLE actions ADD COLUMN recalled TEXT NOT NULL DEFAULT '';      -- JSON: the earlier post recalled
        ALTER TABLE actions ADD COLUMN conversation TEXT NOT NULL DEFAULT '[]'; -- earlier post ids it also answers
        ALTER TABLE actions ADD COLUMN backend TEXT NOT NULL DEFAULT 'templates';  -- templates | llm
        ALTER TABLE authors ADD COLUMN person TEXT;                            -- linked accounts share it
        CREATE INDEX authors_person ON authors(person);
        """
    )


# scrypt's cost, as current guidance (OWASP's password storage cheat sheet) sets it: N = 2^17, r = 8, p = 1,
# about 128 MiB and a few hundred milliseconds a hash. Hashes made with a lower cost are upgraded at sign-in.
SCRYPT = {"n": 2 ** 17, "r": 8, "p": 1}


def hash_password(password: str, *, salt: bytes | None = None, n: int | None = None, r: int | None = None,
                  p: int | None = None) -> str:
    n, r, p = n or SCRYPT["n"], r or SCRYPT["r"], p or SCRYPT["p"]
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=_maxmem(n, r, p))
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * n * r * p + 16 * 1024 * 1024


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        n_, r_, p_ = int(n), int(r), int(p)
    except ValueError:
        return False
    if scheme != "scrypt" or n_ > 2 ** 20 or r_ > 32 or p_ > 16:
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=n_, r=r_, p=p_, dklen=32,
                         maxmem=_maxmem(n_, r_, p_))
    return hmac.compare_digest(got.hex(), digest)


def needs_rehash(stored: str) -> bool:
    """True when a hash was made with less than today's cost."""
    try:
        _, n, r, p, _, _ = stored.split("$")
        return (int(n), int(r), int(p)) < (SCRYPT["n"], SCRYPT["r"], SCRYPT["p"])
    except ValueError:
        return True


def _dummy_hash() -> str:
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}$" + "00" * 16 + "$" + "00" * 32


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IngestResult:
    new: int
    updated: int
    problems: int


class Store:
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

    # ---------------------------------------------------------------- ingest
    def ingest(self, posts: Sequence[Post], *, listener: str, cursor: str | None,
               problems: Iterable[str] = (), at: dt.datetime | None = None,
               reads: tuple[str, int] | None = None) -> IngestResult:
        """Upsert a batch of posts and their authors, move the listener's cursor, record problems: one transaction.

        Re-reading a post updates its counters (likes, reposts, replies) and never duplicates it."""
        stamp = now_iso(at)
        problems = list(problems)
        author_rows, post_rows = {}, []
        for p in posts:
            a = p.author
            aid = f"{p.platform}:{a.platform_id}"
            author_rows[aid] = (aid, p.platform, a.platform_id, a.handle, a.name, int(a.followers),
                                int(a.verified), stamp, stamp)
            post_rows.append((p.platform, p.platform_id, aid, p.text, p.lang, now_iso(p.created_at), p.url,
                              p.conversation_id, p.in_reply_to_id, int(p.is_repost), int(p.can_reply),
                              int(p.likes), int(p.reposts), int(p.replies),
                              _to_json(p.hashtags), _to_json(p.mentions), listener, _raw_json(p.raw), stamp))
        with self.atomic():
            before = self._scalar("SELECT coalesce(max(id), 0) FROM posts")
            self.db.conn.executemany(
                """INSERT INTO authors (id, platform, platform_id, handle, name, followers, verified,
                                        first_seen_at, last_seen_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET handle = excluded.handle, name = excluded.name,
                       followers = excluded.followers, verified = excluded.verified,
                       last_seen_at = excluded.last_seen_at""",
                list(author_rows.values()))
            self.db.conn.executemany(
                """INSERT INTO posts (platform, platform_id, author_id, text, lang, created_at, url,
                       conversation_id, in_reply_to_id, is_repost, can_reply, likes, reposts, replies,
                       hashtags, mentions, source, raw, ingested_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (platform, platform_id) DO UPDATE SET likes = excluded.likes,
                       reposts = excluded.reposts, replies = excluded.replies, can_reply = excluded.can_reply""",
                post_rows)
            new = self._scalar("SELECT count(*) FROM posts WHERE id > ?", [before])
            if cursor is not None:
                self.db.execute(
                    """INSERT INTO cursors (listener, position, updated_at, posts_read) VALUES (?, ?, ?, ?)
                       ON CONFLICT (listener) DO UPDATE SET position = excluded.position,
                           updated_at = excluded.updated_at, posts_read = posts_read + excluded.posts_read""",
                    [listener, cursor, stamp, len(posts)])
            if problems:
                self.db.conn.executemany(
                    "INSERT INTO ingest_problems (listener, at, location, reason) VALUES (?, ?, ?, ?)",
                    [(listener, stamp, *_split_problem(p)) for p in problems])
            if reads and reads[1]:
                self.add_usage(reads[0], reads=reads[1], at=at)
        return IngestResult(new=new, updated=len(post_rows) - new, problems=len(problems))

    # ---------------------------------------------------------------- listener state and platform usage
    def pause_listener(self, listener: str, until: dt.datetime, reason: str) -> None:
        self.db.execute(
            """INSERT INTO listener_state (listener, paused_until, pause_reason) VALUES (?, ?, ?)
               ON CONFLICT (listener) DO UPDATE SET paused_until = excluded.paused_until,
                   pause_reason = excluded.pause_reason""", [listener, now_iso(until), reason])

    def paused_until(self, listener: str, now: dt.datetime | None = None) -> tuple[dt.datetime, str] | None:
        """(until, reason) if the listener must wait, else None."""
        row = self._one("SELECT paused_until, pause_reason FROM listener_state WHERE listener = ?", [listener])
        if not row or not row["paused_until"]:
            return None
        until = parse_iso(row["paused_until"])
        return (until, row["pause_reason"]) if until > (now or dt.datetime.now(dt.timezone.utc)) else None

    def record_run(self, listener: str, result: str, error: str = "", at: dt.datetime | None = None) -> None:
        self.db.execute(
            """INSERT INTO listener_state (listener, last_run_at, last_result, errors, last_error)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (listener) DO UPDATE SET last_run_at = excluded.last_run_at,
                   last_result = excluded.last_result, errors = errors + excluded.errors,
                   last_error = CASE WHEN excluded.last_error != '' THEN excluded.last_error ELSE last_error END""",
            [listener, now_iso(at), result, 1 if error else 0, error])

    def listener_states(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM listener_state ORDER BY listener")

    def add_usage(self, platform: str, *, reads: int = 0, writes: int = 0, at: dt.datetime | None = None) -> None:
        month = (at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m")
        self.db.execute(
            """INSERT INTO platform_usage (platform, month, reads, writes) VALUES (?, ?, ?, ?)
               ON CONFLICT (platform, month) DO UPDATE SET reads = reads + excluded.reads,
                   writes = writes + excluded.writes""", [platform, month, reads, writes])

    def usage(self, platform: str, at: dt.datetime | None = None) -> dict[str, int]:
        month = (at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m")
        row = self._one("SELECT reads, writes FROM platform_usage WHERE platform = ? AND month = ?", [platform, month])
        return row or {"reads": 0, "writes": 0}

    def cursor(self, listener: str) -> str | None:
        return self._scalar("SELECT position FROM cursors WHERE listener = ?", [listener])

    def reset_cursor(self, listener: str) -> None:
        self.db.execute("DELETE FROM cursors WHERE listener = ?", [listener])

    def cursors(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM cursors ORDER BY listener")

    def ingest_problems(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM ingest_problems ORDER BY id DESC LIMIT ?", [limit])

    # ---------------------------------------------------------------- posts
    def post(self, post_id: int) -> dict[str, Any]:
        row = self._one(
            """SELECT p.*, a.handle, a.name AS author_name, a.followers, a.verified,
                      s.label, s.negative, s.neutral, s.positive, s.model_id, s.source AS label_source,
                      pr.score, pr.intent, pr.reasons
               FROM posts p JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE p.id = ?""", [post_id])
        if row is None:
            raise NotFound(f"no post with id {post_id}", "`taiwa inbox` lists the posts waiting for a person")
        return row

    def post_or_none(self, post_id: int) -> dict[str, Any] | None:
        try:
            return self.post(post_id)
        except NotFound:
            return None

    def posts_without_sentiment(self, limit: int = 10_000) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT p.id, p.text FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id
               WHERE s.post_id IS NULL ORDER BY p.id LIMIT ?""", [limit])

    def posts_to_triage(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """Classified posts that have no priority yet (new since the last triage)."""
        return self._rows(
            """SELECT p.*, a.handle, a.name AS author_name, a.followers, a.verified,
                      s.label, s.negative, s.neutral, s.positive
               FROM posts p JOIN authors a ON a.id = p.author_id JOIN sentiments s ON s.post_id = p.id
               LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE pr.post_id IS NULL ORDER BY p.created_at, p.id LIMIT ?""", [limit])

    def latest_post_time(self) -> dt.datetime | None:
        v = self._scalar("SELECT max(created_at) FROM posts")
        return parse_iso(v) if v else None

    def count(self, table: str) -> int:
        if table not in {"posts", "authors", "sentiments", "priorities", "actions", "audit", "campaign_posts",
                         "ingest_problems"}:
            raise ValueError(table)
        return self._scalar(f"SELECT count(*) FROM {table}")

    def save_sentiments(self, rows: Iterable[tuple[int, Any]], at: dt.datetime | None = None) -> None:
        """rows: (post_id, Sentiment). A person's correction (source='human') is never overwritten by the model."""
        stamp = now_iso(at)
        data = [(pid, s.label, s.scores["negative"], s.scores["neutral"], s.scores["positive"], s.model_id, stamp)
                for pid, s in rows]
        with self.atomic():
            self.db.conn.executemany(
                """INSERT INTO sentiments (post_id, label, negative, neutral, positive, model_id, classified_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (post_id) DO UPDATE SET label = excluded.label, negative = excluded.negative,
                       neutral = excluded.neutral, positive = excluded.positive, model_id = excluded.model_id,
                       classified_at = excluded.classified_at
                   WHERE sentiments.source = 'model'""", data)

    def save_vectors(self, rows: Iterable[tuple[int, Any]], model: str = "multilingual-e5-small") -> None:
        """rows: (post_id, float vector). Kept so topics (and later answers) reuse the sentiment pass's encoding."""
        import numpy as np

        data = [(pid, model, np.asarray(v, dtype=np.float32).tobytes()) for pid, v in rows if v is not None]
        if data:
            with self.atomic():
                self.db.conn.executemany(
                    """INSERT INTO post_vectors (post_id, model, vector) VALUES (?, ?, ?)
                       ON CONFLICT (post_id) DO UPDATE SET model = excluded.model, vector = excluded.vector""", data)

    def vectors(self, post_ids: Sequence[int]) -> dict[int, Any]:
        import numpy as np

        if not post_ids:
            return {}
        rows = self.db.execute(f"SELECT post_id, vector FROM post_vectors WHERE post_id IN "
                               f"({','.join('?' * len(post_ids))})", list(post_ids)).fetchall()
        return {pid: np.frombuffer(blob, dtype=np.float32) for pid, blob in rows}

    def correct_sentiment(self, post_id: int, label: str, actor: str) -> None:
        """A person's label for a post; kept for retraining (`taiwa model train --corrections`)."""
        self.post(post_id)
        scores = {k: (1.0 if k == label else 0.0) for k in ("negative", "neutral", "positive")}
        with self.atomic():
            before = self._scalar("SELECT label FROM sentiments WHERE post_id = ?", [post_id]) or ""
            self.db.execute(
                """INSERT INTO sentiments (post_id, label, negative, neutral, positive, model_id, source,
                       classified_at) VALUES (?, ?, ?, ?, ?, 'human', 'human', ?)
                   ON CONFLICT (post_id) DO UPDATE SET label = excluded.label, negative = excluded.negative,
                       neutral = excluded.neutral, positive = excluded.positive, model_id = 'human',
                       source = 'human', classified_at = excluded.classified_at""",
                [post_id, label, scores["negative"], scores["neutral"], scores["positive"], now_iso()])
            self._audit(actor, None, "sentiment_corrected", before, label, f"post {post_id}")

    def sentiment_corrections(self) -> list[dict[str, Any]]:
        return self._rows("""SELECT p.text, s.label FROM sentiments s JOIN posts p ON p.id = s.post_id
                             WHERE s.source = 'human'""")

    def save_priorities(self, rows: Iterable[dict[str, Any]], at: dt.datetime | None = None) -> None:
        stamp = now_iso(at)
        data = [(r["post_id"], r["score"], r["intent"], r["sentiment"], r["intent_c"], r["reach"], r["recency"],
                 r["campaign"], json.dumps(r["reasons"], ensure_ascii=False), stamp, int(r.get("escalated", False)),
                 _to_json(r.get("rules", [])), _to_json(r.get("tags", [])), r.get("topic", ""), r.get("topic_score"),
                 _to_json(r.get("topic_evidence", []))) for r in rows]
        with self.atomic():
            self.db.conn.executemany(
                """INSERT INTO priorities (post_id, score, intent, sentiment_c, intent_c, reach_c, recency_c,
                       campaign_c, reasons, computed_at, escalated, rules, tags, topic, topic_score,
                       topic_evidence)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (post_id) DO UPDATE SET score = excluded.score, intent = excluded.intent,
                       sentiment_c = excluded.sentiment_c, intent_c = excluded.intent_c,
                       reach_c = excluded.reach_c, recency_c = excluded.recency_c,
                       campaign_c = excluded.campaign_c, reasons = excluded.reasons,
                       computed_at = excluded.computed_at, escalated = excluded.escalated,
                       rules = excluded.rules, tags = excluded.tags, topic = excluded.topic,
                       topic_score = excluded.topic_score, topic_evidence = excluded.topic_evidence""", data)

    def priority(self, post_id: int) -> dict[str, Any]:
        """The stored score and its components for one post ({} if it was not ranked yet)."""
        return self._one("SELECT * FROM priorities WHERE post_id = ?", [post_id]) or {}

    def author_history(self, author_id: str, before: dt.datetime | None = None, *, since: dt.datetime | None = None,
                       limit: int, exclude_post: int | None = None) -> list[dict[str, Any]]:
        """The customer's posts (newest first; only those in [since, before) when given), across the accounts linked
        to this author, with what taiwa made of each, what we replied if it was sent, and whether they spoke again
        after that reply or its follow-up closed."""
        window = (" AND p.created_at < ?" if before else "") + (" AND p.created_at >= ?" if since else "")
        return self._rows(
            f"""SELECT p.id, p.text, p.created_at, p.platform, p.is_repost, p.author_id, s.label, pr.intent,
                      coalesce(pr.topic, '') AS topic,
                      (SELECT a.text FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         AND a.state = 'sent' ORDER BY a.id LIMIT 1) AS our_reply,
                      (SELECT a.sent_at FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         AND a.state = 'sent' ORDER BY a.id LIMIT 1) AS replied_at,
                      (SELECT a.state FROM actions a WHERE a.post_id = p.id AND a.kind = 'reply'
                         ORDER BY a.id LIMIT 1) AS reply_state,
                      (SELECT f.state FROM followups f JOIN actions a ON a.id = f.action_id
                         WHERE a.post_id = p.id ORDER BY f.id DESC LIMIT 1) AS followup_state
               FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE p.author_id IN (SELECT id FROM authors WHERE coalesce(person, id) =
                                     (SELECT coalesce(person, id) FROM authors WHERE id = ?))
                 AND p.id != ?{window}
               ORDER BY p.created_at DESC LIMIT ?""",
            [author_id, exclude_post or -1, *([now_iso(before)] if before else []),
             *([now_iso(since)] if since else []), limit])

    # ---------------------------------------------------------------- people: one customer's linked accounts
    def person_of(self, author_id: str) -> str:
        return self._scalar("SELECT coalesce(person, id) FROM authors WHERE id = ?", [author_id]) or author_id

    def linked_accounts(self, author_id: str) -> list[dict[str, Any]]:
        """Every account of the customer this author belongs to (the author included)."""
        return self._rows(
            """SELECT id, platform, handle, name, followers FROM authors
               WHERE coalesce(person, id) = (SELECT coalesce(person, id) FROM authors WHERE id = ?)
               ORDER BY platform, handle""", [author_id])

    def link_authors(self, author_id: str, other_id: str, *, actor: str) -> list[dict[str, Any]]:
        """One customer, two accounts: every account of `other_id`'s customer joins `author_id`'s. Audited."""
        with self.atomic():
            for a in (author_id, other_id):
                if not self._one("SELECT 1 FROM authors WHERE id = ?", [a]):
                    raise NotFound(f"no author {a}", "`taiwa link` takes platform:handle of accounts taiwa has seen")
            keep, old = self.person_of(author_id), self.person_of(other_id)
            if keep != old:
                self.db.execute("UPDATE authors SET person = ? WHERE coalesce(person, id) = ?", [keep, old])
                self._audit(actor, None, "accounts_linked", other_id, author_id, "")
        return self.linked_accounts(author_id)

    def unlink_author(self, author_id: str, *, actor: str) -> None:
        """This account stands alone again (the others stay linked to each other)."""
        with self.atomic():
            person = self.person_of(author_id)
            others = [r["id"] for r in self.linked_accounts(author_id) if r["id"] != author_id]
            self.db.execute("UPDATE authors SET person = NULL WHERE id = ?", [author_id])
            if person == author_id and others:   # the others keep a person id of their own
                self.db.execute(f"UPDATE authors SET person = ? WHERE id IN ({','.join('?' * len(others))})",
                                [others[0], *others])
            self._audit(actor, None, "account_unlinked", author_id, "", "")

    def open_reply(self, author_id: str) -> dict[str, Any] | None:
        """The customer's reply draft that still waits for a person (not a follow-up), if any: new posts join it."""
        return self._one(
            """SELECT ac.* FROM actions ac JOIN posts p ON p.id = ac.post_id
               WHERE ac.kind = 'reply' AND ac.state = 'pending' AND ac.followup_of IS NULL
                 AND p.author_id IN (SELECT id FROM authors WHERE coalesce(person, id) = ?)
               ORDER BY ac.id DESC LIMIT 1""", [self.person_of(author_id)])

    def merge_into(self, action_id: int, fields: dict[str, Any], *, actor: str = "taiwa") -> None:
        """A customer's new post joins their open draft: the action now answers that post (and lists the earlier
        ones); its text is redrafted only if nobody edited it."""
        allowed = {"post_id", "intent", "text", "draft_text", "template", "memory", "answer", "answer_score",
                   "needs_answer", "ask", "recalled", "conversation", "backend"}
        if set(fields) - allowed:
            raise ValueError(f"unknown action fields {set(fields) - allowed}")
        row = self._one("SELECT post_id, state, text, draft_text FROM actions WHERE id = ?", [action_id])
        if row is None or row["state"] != "pending":
            raise InvalidTransition(f"action {action_id} is no longer pending", "draft a new reply instead")
        values = dict(fields)
        if row["text"] != row["draft_text"]:        # a person's edit is kept; the new post is listed beside it
            values.pop("text", None)
        for key in ("memory", "conversation"):
            if key in values and not isinstance(values[key], str):
                values[key] = _to_json(values[key])
        if "recalled" in values and not isinstance(values["recalled"], str):
            values["recalled"] = _to_json(values["recalled"]) if values["recalled"] else ""
        values["updated_at"] = now_iso()
        self.db.execute(f"UPDATE actions SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ?",
                        [*values.values(), action_id])
        self._audit(actor, action_id, "merged", str(row["post_id"]), str(fields.get("post_id", row["post_id"])),
                    "the customer wrote again; this draft now answers their newest post")

    def judgements(self) -> list[dict[str, Any]]:
        """Every post with what taiwa made of it: topic, intent, escalation, score, and which drafts it got."""
        return self._rows(
            """SELECT p.id AS post_id, p.platform_id, p.author_id, p.lang, coalesce(pr.topic, '') AS topic,
                      pr.intent, coalesce(pr.escalated, 0) AS escalated, pr.score, s.label,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'like') AS like_proposed,
                      (SELECT ip.incident_id FROM incident_posts ip WHERE ip.post_id = p.id) AS incident,
                      (SELECT ac.id FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'reply') AS reply_id
               FROM posts p LEFT JOIN priorities pr ON pr.post_id = p.id LEFT JOIN sentiments s ON s.post_id = p.id
               ORDER BY p.id""")

    def reply_for_post(self, post_id: int) -> dict[str, Any] | None:
        """The reply that answers this post: its own, or the conversation's it joined (not follow-ups)."""
        return self._one(
            """SELECT ac.* FROM actions ac WHERE ac.kind = 'reply' AND ac.followup_of IS NULL AND
                   (ac.post_id = ? OR EXISTS (SELECT 1 FROM json_each(ac.conversation) WHERE value = ?))
               ORDER BY ac.id DESC LIMIT 1""", [post_id, post_id])

    def open_replies_by_person(self) -> dict[str, int]:
        """How many reply drafts wait for a person, per customer (linked accounts count as one)."""
        return {r["person"]: r["n"] for r in self._rows(
            """SELECT coalesce(a.person, a.id) AS person, count(*) AS n FROM actions ac
               JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
               WHERE ac.kind = 'reply' AND ac.state = 'pending' AND ac.followup_of IS NULL GROUP BY 1""")}

    def actions_for_post(self, post_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM actions WHERE post_id = ? ORDER BY id", [post_id])

    # ---------------------------------------------------------------- incidents
    def incident_candidates(self, topic: str, *, since: dt.datetime, until: dt.datetime, post_id: int,
                            author_id: str) -> list[dict[str, Any]]:
        """Other authors' problem posts on this topic in [since, until], with their vectors and incidents."""
        import numpy as np

        rows = self._rows(
            """SELECT p.id AS post_id, p.author_id, p.created_at, p.text, v.vector, ip.incident_id
               FROM priorities pr JOIN posts p ON p.id = pr.post_id JOIN post_vectors v ON v.post_id = p.id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN incident_posts ip ON ip.post_id = p.id
               WHERE pr.topic = ? AND p.created_at >= ? AND p.created_at <= ? AND p.id != ? AND p.author_id != ?
                 AND (pr.intent = 'complaint' OR s.label = 'negative') AND p.is_repost = 0
               ORDER BY p.created_at, p.id""",
            [topic, now_iso(since), now_iso(until), post_id, author_id])
        for r in rows:
            r["vector"] = np.frombuffer(r["vector"], dtype=np.float32)
        return rows

    def incident_of(self, post_id: int) -> int | None:
        return self._scalar("SELECT incident_id FROM incident_posts WHERE post_id = ?", [post_id])

    def create_incident(self, topic: str, first_post: int, *, at: str) -> int:
        with self.atomic():
            cur = self.db.execute(
                """INSERT INTO incidents (topic, first_seen, last_seen, created_at) VALUES (?, ?, ?, ?)""",
                [topic, at, at, now_iso()])
            incident = cur.lastrowid
            self.db.execute("INSERT OR IGNORE INTO incident_posts (post_id, incident_id, similarity) VALUES (?, ?, 1)",
                            [first_post, incident])
        return incident

    def add_to_incident(self, incident_id: int, post_id: int, similarity: float) -> None:
        self.db.execute("INSERT OR IGNORE INTO incident_posts (post_id, incident_id, similarity) VALUES (?, ?, ?)",
                        [post_id, incident_id, similarity])

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        allowed = {"size", "authors", "first_seen", "last_seen", "representative_post_id", "title"}
        if set(fields) - allowed:
            raise ValueError(f"unknown incident fields {set(fields) - allowed}")
        self.db.execute(f"UPDATE incidents SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                        [*fields.values(), incident_id])

    def incident(self, incident_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM incidents WHERE id = ?", [incident_id])
        if row is None:
            raise NotFound(f"no incident with id {incident_id}", "`taiwa incidents` lists them")
        return row

    def incidents(self, *, min_size: int = 2, limit: int = 50) -> list[dict[str, Any]]:
        """Incidents, most recently active first, with how many of their drafts still wait for a person."""
        return self._rows(
            """SELECT i.*, (SELECT count(*) FROM incident_posts ip JOIN actions ac ON ac.post_id = ip.post_id
                            WHERE ip.incident_id = i.id AND ac.kind = 'reply' AND ac.state = 'pending') AS open
               FROM incidents i WHERE i.size >= ? ORDER BY i.last_seen DESC, i.id DESC LIMIT ?""",
            [min_size, limit])

    def incident_members(self, incident_id: int) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT ip.post_id, ip.similarity, p.author_id, p.created_at, p.text, p.platform, a.handle
               FROM incident_posts ip JOIN posts p ON p.id = ip.post_id JOIN authors a ON a.id = p.author_id
               WHERE ip.incident_id = ? ORDER BY p.created_at, p.id""", [incident_id])

    def incident_actions(self, incident_id: int) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT ac.id, ac.kind, ac.state, ac.text, a.handle, a.name AS author_name, p.id AS post_id
               FROM incident_posts ip JOIN actions ac ON ac.post_id = ip.post_id JOIN posts p ON p.id = ip.post_id
               JOIN authors a ON a.id = p.author_id WHERE ip.incident_id = ? ORDER BY p.created_at, ac.id""",
            [incident_id])

    # ---------------------------------------------------------------- campaigns
    def sync_campaigns(self, campaigns: Sequence[Any]) -> None:
        with self.atomic():
            for c in campaigns:
                self.db.execute(
                    """INSERT INTO campaigns (name, hashtags, start, "end", platforms, goals)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT (name) DO UPDATE SET hashtags = excluded.hashtags, start = excluded.start,
                           "end" = excluded."end", platforms = excluded.platforms, goals = excluded.goals""",
                    [c.name, json.dumps(c.hashtags, ensure_ascii=False), c.start.isoformat(), c.end.isoformat(),
                     json.dumps(c.platforms), json.dumps(c.goals)])

    def add_campaign_entries(self, rows: Iterable[tuple[str, int, str]]) -> None:
        with self.atomic():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO campaign_posts (campaign, post_id, hashtag) VALUES (?, ?, ?)", list(rows))

    def campaign_summary(self, own_handles: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Entries per campaign: originals only, without spam and without the brand's own accounts' posts."""
        own = sorted({h.lower() for h in own_handles})
        marks = ",".join("?" * len(own)) or "NULL"
        return self._rows(
            f"""SELECT c.name, count(p.id) AS entries, count(DISTINCT p.author_id) AS participants,
                      sum(s.label = 'positive') AS positive, sum(s.label = 'negative') AS negative
               FROM campaigns c LEFT JOIN campaign_posts cp ON cp.campaign = c.name
               LEFT JOIN posts p ON p.id = cp.post_id AND p.is_repost = 0
                   AND NOT EXISTS (SELECT 1 FROM priorities pr WHERE pr.post_id = cp.post_id AND pr.intent = 'spam')
                   AND NOT EXISTS (SELECT 1 FROM authors a WHERE a.id = p.author_id AND lower(a.handle) IN ({marks}))
               LEFT JOIN sentiments s ON s.post_id = p.id
               GROUP BY c.name ORDER BY c.name""", own)

    def campaign_entries(self, campaign: str) -> list[dict[str, Any]]:
        """Every post that entered the campaign (originals and reposts), with author, sentiment and whether the
        team reacted (an action sent) or has one waiting."""
        return self._rows(
            """SELECT p.id, p.platform, p.platform_id, p.text, p.created_at, p.url, p.is_repost, p.likes, p.reposts,
                      p.replies, p.author_id, a.handle, a.followers, s.label, cp.hashtag, pr.intent,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id AND ac.state = 'sent') AS reacted,
                      EXISTS (SELECT 1 FROM actions ac WHERE ac.post_id = p.id
                              AND ac.state IN ('pending', 'approved')) AS reaction_waiting
               FROM campaign_posts cp JOIN posts p ON p.id = cp.post_id JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE cp.campaign = ? ORDER BY p.created_at, p.id""", [campaign])

    def first_post_times(self, author_ids: Sequence[str]) -> dict[str, str]:
        if not author_ids:
            return {}
        marks = ",".join("?" * len(author_ids))
        return {r["author_id"]: r["first"] for r in self._rows(
            f"SELECT author_id, min(created_at) AS first FROM posts WHERE author_id IN ({marks}) GROUP BY author_id",
            list(author_ids))}

    def raise_alert(self, kind: str, subject: str, window_start: str, detail: str) -> bool:
        """Record an alert once per (kind, subject, window); True when it is new."""
        cur = self.db.execute(
            """INSERT OR IGNORE INTO alerts (kind, subject, window_start, detail, created_at)
               VALUES (?, ?, ?, ?, ?)""", [kind, subject, window_start, detail, now_iso()])
        return cur.rowcount == 1

    def alerts(self, state: str | None = "open") -> list[dict[str, Any]]:
        if state is None:
            return self._rows("SELECT * FROM alerts ORDER BY window_start DESC, id DESC")
        return self._rows("SELECT * FROM alerts WHERE state = ? ORDER BY window_start DESC, id DESC", [state])

    def acknowledge_alert(self, alert_id: int, actor: str) -> None:
        with self.atomic():
            cur = self.db.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_by = ? WHERE id = ? "
                                  "AND state = 'open'", [actor, alert_id])
            if cur.rowcount != 1:
                raise NotFound(f"no open alert with id {alert_id}", "`taiwa inbox` lists the open alerts")
            self._audit(actor, None, "alert_acknowledged", "open", "acknowledged", f"alert {alert_id}")

    # ---------------------------------------------------------------- actions
    def create_actions(self, rows: Iterable[dict[str, Any]], at: dt.datetime | None = None) -> int:
        """Insert drafts; a post never gets two drafts of the same kind (re-running drafting is a no-op)."""
        stamp = now_iso(at)
        data = [(r["post_id"], r["kind"], r.get("intent", ""), r.get("text", ""), r.get("text", ""),
                 r.get("template", ""), json.dumps(r.get("memory", []), ensure_ascii=False), stamp, stamp,
                 r.get("followup_of"), r.get("asks", ""), r.get("assigned_to") or "", r.get("answer", ""),
                 r.get("answer_score"), int(bool(r.get("needs_answer"))), r.get("ask", ""),
                 _to_json(r["recalled"]) if r.get("recalled") else "", _to_json(r.get("conversation", [])),
                 r.get("backend", "templates")) for r in rows]
        with self.atomic():
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                """INSERT OR IGNORE INTO actions (post_id, kind, intent, text, draft_text, template, memory,
                       created_at, updated_at, followup_of, asks, assigned_to, answer, answer_score, needs_answer,
                       ask, recalled, conversation, backend)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", data)
            created = self.db.conn.total_changes - before
            if created:
                self._audit("taiwa", None, "drafted", "", "pending", f"{created} draft(s)")
        return created

    def action(self, action_id: int) -> dict[str, Any]:
        row = self._one(
            """SELECT ac.*, p.platform, p.platform_id, p.text AS post_text, p.created_at AS post_created_at,
                      p.url, p.author_id, p.source, p.conversation_id, p.can_reply, p.lang,
                      a.handle, a.name AS author_name, a.followers,
                      s.label, s.negative, s.neutral, s.positive, pr.score, pr.reasons,
                      coalesce(pr.topic, '') AS topic
               FROM actions ac JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
               LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
               WHERE ac.id = ?""", [action_id])
        if row is None:
            raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions and their ids")
        return row

    def inbox(self, *, states: Sequence[str] = ("pending",), platform: str | None = None,
              kind: str | None = None, sentiment: str | None = None, campaign: str | None = None,
              terms: Sequence[str] = (), assigned_to: str | None = None, snoozed: bool | None = None,
              now: dt.datetime | None = None, limit: int = 50, topic: str | None = None,
              incident: int | None = None, needs_answer: bool | None = None) -> list[dict[str, Any]]:
        """Open actions, highest priority first, with everything the 'why' column needs.

        terms: the post must contain one of these (a brand's keywords and @handles), case-insensitively.
        snoozed: None = all, False = hide actions snoozed until after `now`, True = only those."""
        where, params = [f"ac.state IN ({','.join('?' * len(states))})"], list(states)
        if terms:
            where.append("(" + " OR ".join("instr(lower(p.text), ?) > 0" for _ in terms) + ")")
            params.extend(t.lower() for t in terms)
        if assigned_to is not None:
            where.append("ac.assigned_to = ?"); params.append(assigned_to)
        if snoozed is not None:
            where.append("(ac.snoozed_until IS NOT NULL AND ac.snoozed_until > ?)" if snoozed else
                         "(ac.snoozed_until IS NULL OR ac.snoozed_until <= ?)")
            params.append(now_iso(now))
        if platform:
            where.append("p.platform = ?"); params.append(platform)
        if kind:
            where.append("ac.kind = ?"); params.append(kind)
        if sentiment:
            where.append("s.label = ?"); params.append(sentiment)
        if campaign:
            where.append("EXISTS (SELECT 1 FROM campaign_posts cp WHERE cp.post_id = p.id AND cp.campaign = ?)")
            params.append(campaign)
        if topic:
            where.append("pr.topic = ?"); params.append(topic)
        if incident is not None:
            where.append("ip.incident_id = ?"); params.append(incident)
        if needs_answer is not None:
            where.append("ac.needs_answer = ?"); params.append(int(needs_answer))
        params.append(limit)
        return self._rows(
            f"""SELECT ac.id, ac.kind, ac.state, ac.intent, ac.text, ac.memory, ac.created_at, ac.assigned_to,
                       ac.snoozed_until, ac.answer, ac.answer_score, ac.needs_answer, ac.ask, ac.recalled,
                       ac.conversation, ac.backend, p.id AS post_id, p.platform, p.platform_id, p.text AS post_text,
                       p.created_at AS post_created_at, p.lang, a.handle, a.followers, s.label, s.negative,
                       s.positive, pr.score, pr.reasons, coalesce(pr.escalated, 0) AS escalated,
                       coalesce(pr.rules, '[]') AS rules, coalesce(pr.tags, '[]') AS tags,
                       coalesce(pr.topic, '') AS topic, pr.topic_score, ip.incident_id AS incident,
                       (SELECT group_concat(cp.campaign, ', ') FROM campaign_posts cp WHERE cp.post_id = p.id)
                           AS campaigns
                FROM actions ac JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id
                LEFT JOIN sentiments s ON s.post_id = p.id LEFT JOIN priorities pr ON pr.post_id = p.id
                LEFT JOIN incident_posts ip ON ip.post_id = p.id
                WHERE {' AND '.join(where)}
                ORDER BY coalesce(pr.escalated, 0) DESC, coalesce(pr.score, 0) DESC, p.created_at DESC, ac.id
                LIMIT ?""", params)

    def actions_in_state(self, state: str) -> list[dict[str, Any]]:
        return self._rows("SELECT id FROM actions WHERE state = ? ORDER BY id", [state])

    def state_counts(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self._rows("SELECT state, count(*) AS n FROM actions GROUP BY state")}

    def transition(self, action_id: int, to: str, *, actor: str, expect: Sequence[str] | None = None,
                   detail: str = "", **fields: Any) -> dict[str, Any]:
        """Move an action to `to` if (and only if) its current state allows it. Compare-and-set, audited.

        Two processes racing for the same action cannot both win: the UPDATE names the state it read."""
        allowed_fields = {"text", "reason", "approved_by", "approved_at", "sending_since", "sent_at",
                          "platform_ref"}
        if set(fields) - allowed_fields:
            raise ValueError(f"unknown action fields {set(fields) - allowed_fields}")
        with self.atomic():
            row = self._one("SELECT id, state, text FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            current = row["state"]
            if (expect is not None and current not in expect) or to not in TRANSITIONS[current]:
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
                raise InvalidTransition(
                    f"action {action_id} is {current}; it cannot become {to}",
                    f"from {current} it can become: {allowed}")
            sets = {"state": to, "updated_at": now_iso(), **fields}
            assignments = ", ".join(f"{k} = ?" for k in sets)
            cur = self.db.execute(f"UPDATE actions SET {assignments} WHERE id = ? AND state = ?",
                                  [*sets.values(), action_id, current])
            if cur.rowcount != 1:  # pragma: no cover - the read and write share one transaction
                raise InvalidTransition(f"action {action_id} changed while we looked at it", "try again")
            extra = detail
            if "text" in fields and fields["text"] != row["text"]:
                extra = (detail + "; " if detail else "") + f"text edited: {row['text']!r} → {fields['text']!r}"
            self._audit(actor, action_id, f"state:{to}", current, to, extra)
        return self.action(action_id)

    def edit_text(self, action_id: int, text: str, actor: str) -> None:
        with self.atomic():
            row = self._one("SELECT state, text FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            if row["state"] not in ("pending", "failed", "needs_check"):
                raise InvalidTransition(f"action {action_id} is {row['state']}; its text can no longer change",
                                        "only pending, failed or needs_check drafts can be edited")
            self.db.execute("UPDATE actions SET text = ?, updated_at = ? WHERE id = ?", [text, now_iso(), action_id])
            self._audit(actor, action_id, "edited", row["text"], text, "")

    def use_saved(self, action_id: int, text: str, actor: str, *, answer: str = "", ask: str = "") -> None:
        """A saved reply (an answer or a topic's ask) picked for a draft: its text, and what it now stands on."""
        with self.atomic():
            row = self._one("SELECT state, text FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "`taiwa inbox` lists the open actions")
            if row["state"] not in ("pending", "failed", "needs_check"):
                raise InvalidTransition(f"action {action_id} is {row['state']}; its text can no longer change",
                                        "only pending, failed or needs_check drafts can be edited")
            self.db.execute(
                """UPDATE actions SET text = ?, answer = ?, answer_score = NULL, needs_answer = 0,
                       ask = CASE WHEN ? != '' THEN ? ELSE ask END, updated_at = ? WHERE id = ?""",
                [text, answer, ask, ask, now_iso(), action_id])
            self._audit(actor, action_id, "saved_reply", row["text"], text,
                        f"answer {answer}" if answer else f"ask {ask}")

    def assign(self, action_id: int, user: str, actor: str) -> None:
        """Give an action to a teammate ('' = nobody). Audited."""
        with self.atomic():
            row = self._one("SELECT assigned_to FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "the inbox lists the open actions")
            if user and not self._one("SELECT 1 FROM users WHERE name = ? AND NOT disabled", [user]):
                raise NotFound(f"no teammate called {user!r}", "`taiwa user list` shows the team")
            self.db.execute("UPDATE actions SET assigned_to = ?, updated_at = ? WHERE id = ?",
                            [user, now_iso(), action_id])
            self._audit(actor, action_id, "assigned", row["assigned_to"], user, "")

    def snooze(self, action_id: int, until: dt.datetime | None, actor: str) -> None:
        """Hide an open action from the inbox until `until` (None: wake it now). Audited."""
        with self.atomic():
            row = self._one("SELECT state, snoozed_until FROM actions WHERE id = ?", [action_id])
            if row is None:
                raise NotFound(f"no action with id {action_id}", "the inbox lists the open actions")
            if row["state"] not in OPEN_STATES:
                raise InvalidTransition(f"action {action_id} is {row['state']}; only open actions can be snoozed",
                                        "nothing to do: it is no longer waiting for anyone")
            value = now_iso(until) if until else None
            self.db.execute("UPDATE actions SET snoozed_until = ?, updated_at = ? WHERE id = ?",
                            [value, now_iso(), action_id])
            self._audit(actor, action_id, "snoozed" if until else "woken", row["snoozed_until"] or "",
                        value or "", "")

    def thread(self, post: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
        """The other stored posts of the post's conversation (or the post it answers), oldest first, with our
        reply to each if one went out."""
        keys = [k for k in (post.get("conversation_id"), post.get("in_reply_to_id")) if k]
        if not keys:
            return []
        return self._rows(
            """SELECT p.id, p.text, p.created_at, a.handle,
                      (SELECT ac.text FROM actions ac WHERE ac.post_id = p.id AND ac.kind = 'reply'
                         AND ac.state = 'sent') AS our_reply
               FROM posts p JOIN authors a ON a.id = p.author_id
               WHERE p.platform = ? AND p.id != ? AND (p.conversation_id IN (?, ?) OR p.platform_id IN (?, ?))
               ORDER BY p.created_at LIMIT ?""",
            [post["platform"], post["id"], keys[0], keys[-1], keys[0], keys[-1], limit])

    def author_overview(self, author_id: str, *, exclude_post: int | None = None, limit: int = 20
                        ) -> dict[str, Any]:
        """Everything the inbox shows about one customer: earlier posts with our replies, open follow-ups."""
        posts = self.author_history(author_id, limit=limit, exclude_post=exclude_post)
        followups = self._rows(
            """SELECT f.id, f.asks, f.state, f.due_at, f.created_at, ac.text AS our_reply
               FROM followups f JOIN actions ac ON ac.id = f.action_id
               WHERE f.author_id = ? AND f.state IN ('waiting', 'answered', 'drafted') ORDER BY f.id""",
            [author_id])
        return {"posts": posts, "followups": followups,
                "total_posts": self._scalar("SELECT count(*) FROM posts WHERE author_id = ?", [author_id])}

    def platforms(self) -> list[str]:
        """The platforms the stored posts came from."""
        return [r["platform"] for r in self._rows("SELECT DISTINCT platform FROM posts ORDER BY platform")]

    def approval_counts(self) -> dict[str, int]:
        """Decisions people made on drafts: approved (ever) and rejected."""
        row = self._one("""SELECT sum(approved_at IS NOT NULL) AS approved, sum(state = 'rejected') AS rejected,
                                  sum(intent = 'complaint' AND state IN ('pending', 'approved', 'failed',
                                      'needs_check')) AS open_complaints
                           FROM actions""")
        return {k: int(v or 0) for k, v in (row or {}).items()}

    # ---------------------------------------------------------------- team: users and browser sessions
    def add_user(self, name: str, role: str, password: str, actor: str) -> None:
        if role not in ROLES:
            raise ValidationError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValidationError(f"user name {name!r} is not allowed", "use letters, digits, '.', '-' and '_'")
        if len(password) < 10:
            raise ValidationError("the password is shorter than 10 characters", "choose a longer one")
        with self.atomic():
            if self._one("SELECT 1 FROM users WHERE name = ?", [name]):
                raise ValidationError(f"user {name!r} already exists",
                                      "`taiwa user passwd` changes a password, `taiwa user role` a role")
            self.db.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                            [name, role, hash_password(password), now_iso()])
            self._audit(actor, None, "user_added", "", role, name)

    def set_user(self, name: str, actor: str, *, role: str | None = None, password: str | None = None,
                 disabled: bool | None = None) -> None:
        with self.atomic():
            row = self._one("SELECT role, disabled FROM users WHERE name = ?", [name])
            if row is None:
                raise NotFound(f"no user {name!r}", "`taiwa user list` shows the team")
            if role is not None:
                if role not in ROLES:
                    raise ValidationError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
                self.db.execute("UPDATE users SET role = ? WHERE name = ?", [role, name])
                self._audit(actor, None, "user_role", row["role"], role, name)
            if password is not None:
                if len(password) < 10:
                    raise ValidationError("the password is shorter than 10 characters", "choose a longer one")
                self.db.execute("UPDATE users SET password_hash = ? WHERE name = ?", [hash_password(password), name])
                self.db.execute("DELETE FROM web_sessions WHERE user = ?", [name])
                self._audit(actor, None, "user_password", "", "", name)
            if disabled is not None:
                self.db.execute("UPDATE users SET disabled = ? WHERE name = ?", [int(disabled), name])
                if disabled:
                    self.db.execute("DELETE FROM web_sessions WHERE user = ?", [name])
                self._audit(actor, None, "user_disabled" if disabled else "user_enabled", "", "", name)

    def users(self) -> list[dict[str, Any]]:
        return self._rows("SELECT name, role, created_at, disabled FROM users ORDER BY name")

    def check_login(self, name: str, password: str) -> dict[str, Any] | None:
        """The user, if the name and password match an enabled account."""
        row = self._one("SELECT * FROM users WHERE name = ?", [name])
        if row is None:
            check_password(password, _dummy_hash())  # same work either way: timing does not reveal user names
            return None
        if not check_password(password, row["password_hash"]) or row["disabled"]:
            return None
        if needs_rehash(row["password_hash"]):   # made with an older, cheaper cost: upgrade it now we know it
            self.db.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                            [hash_password(password), name, row["password_hash"]])
        return {"name": row["name"], "role": row["role"]}

    def start_session(self, user: str, now: dt.datetime | None = None) -> tuple[str, str]:
        """A new browser session: (cookie value, CSRF token). Only a hash of the cookie value is stored."""
        now = now or dt.datetime.now(dt.timezone.utc)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.atomic():
            self.db.execute("DELETE FROM web_sessions WHERE expires_at < ?", [now_iso(now)])
            self.db.execute("INSERT INTO web_sessions (token_hash, user, csrf, created_at, expires_at) "
                            "VALUES (?, ?, ?, ?, ?)", [_token_hash(token), user, csrf, now_iso(now),
                                                        now_iso(now + dt.timedelta(hours=SESSION_HOURS))])
            self._audit(user, None, "signed_in", "", "", "")
        return token, csrf

    def session(self, token: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
        """The signed-in user behind a cookie value, or None (unknown, expired, or the user was disabled)."""
        if not token:
            return None
        return self._one(
            """SELECT u.name, u.role, ws.csrf FROM web_sessions ws JOIN users u ON u.name = ws.user
               WHERE ws.token_hash = ? AND ws.expires_at > ? AND NOT u.disabled""",
            [_token_hash(token), now_iso(now)])

    def end_session(self, token: str) -> None:
        self.db.execute("DELETE FROM web_sessions WHERE token_hash = ?", [_token_hash(token)])

    def stale_sending(self, older_than: dt.datetime) -> list[int]:
        """Actions left in `sending` by a sender that died (claimed before `older_than`)."""
        return [r["id"] for r in self._rows(
            "SELECT id FROM actions WHERE state = 'sending' AND sending_since < ? ORDER BY id",
            [now_iso(older_than)])]

    def response_times(self) -> list[dict[str, Any]]:
        """Per replied post: when it was posted and when our first reply went out (time to first response)."""
        return self._rows(
            """SELECT p.platform, s.label, p.created_at, min(ac.sent_at) AS first_sent
               FROM actions ac JOIN posts p ON p.id = ac.post_id LEFT JOIN sentiments s ON s.post_id = p.id
               WHERE ac.kind = 'reply' AND ac.state = 'sent' GROUP BY p.id""")

    # ---------------------------------------------------------------- the daemon: lock, jobs, queues
    def acquire_lock(self, pid: int, host: str, *, stale_after: dt.timedelta,
                     now: dt.datetime | None = None) -> dict[str, Any] | None:
        """Take the one-daemon lock. Returns the holder's row when someone else holds a live lock, else None.

        A lock is taken over when its heartbeat is older than `stale_after`, or when its pid is dead on this
        host (a daemon killed with -9 leaves its row behind)."""
        import os

        now = now or dt.datetime.now(dt.timezone.utc)
        with self.atomic():
            row = self._one("SELECT * FROM daemon_lock WHERE id = 1")
            if row and row["pid"] != pid:
                fresh = parse_iso(row["heartbeat_at"]) > now - stale_after
                alive = True
                if row["host"] == host:
                    try:
                        os.kill(row["pid"], 0)
                    except ProcessLookupError:
                        alive = False
                    except PermissionError:
                        alive = True
                if fresh and alive:
                    return row
                self._audit("taiwa", None, "lock_taken_over", f"pid {row['pid']}@{row['host']}",
                            f"pid {pid}@{host}", "stale heartbeat" if not fresh else "holder is not running")
            self.db.execute(
                """INSERT INTO daemon_lock (id, pid, host, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
                       started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at""",
                [pid, host, now_iso(now), now_iso(now)])
        return None

    def heartbeat(self, pid: int, now: dt.datetime | None = None) -> bool:
        """Refresh our lock; False when another daemon has taken it (we must stop)."""
        cur = self.db.execute("UPDATE daemon_lock SET heartbeat_at = ? WHERE id = 1 AND pid = ?", [now_iso(now), pid])
        return cur.rowcount == 1

    def release_lock(self, pid: int) -> None:
        self.db.execute("DELETE FROM daemon_lock WHERE id = 1 AND pid = ?", [pid])

    def lock_holder(self) -> dict[str, Any] | None:
        return self._one("SELECT * FROM daemon_lock WHERE id = 1")

    def record_job(self, name: str, *, at: dt.datetime, duration_s: float, result: str = "", error: str = "",
                   next_run_at: dt.datetime | None = None) -> None:
        self.db.execute(
            """INSERT INTO jobs (name, runs, errors, last_run_at, last_duration_s, last_result, last_error, next_run_at)
               VALUES (?, 1, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET runs = runs + 1, errors = errors + excluded.errors,
                   last_run_at = excluded.last_run_at, last_duration_s = excluded.last_duration_s,
                   last_result = excluded.last_result,
                   last_error = CASE WHEN excluded.last_error != '' THEN excluded.last_error ELSE last_error END,
                   next_run_at = excluded.next_run_at""",
            [name, 1 if error else 0, now_iso(at), round(duration_s, 3), result, error,
             now_iso(next_run_at) if next_run_at else None])

    def set_next_run(self, name: str, next_run_at: dt.datetime | None) -> None:
        self.db.execute(
            """INSERT INTO jobs (name, next_run_at) VALUES (?, ?)
               ON CONFLICT (name) DO UPDATE SET next_run_at = excluded.next_run_at""",
            [name, now_iso(next_run_at) if next_run_at else None])

    def jobs(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM jobs ORDER BY name")

    def queue_sizes(self) -> dict[str, int]:
        """What waits at each step: unclassified posts, posts to rank, drafts for a person, approved to send."""
        return {
            "to_classify": self._scalar("SELECT count(*) FROM posts p LEFT JOIN sentiments s ON s.post_id = p.id "
                                        "WHERE s.post_id IS NULL"),
            "to_rank": self._scalar("SELECT count(*) FROM sentiments s LEFT JOIN priorities pr "
                                    "ON pr.post_id = s.post_id WHERE pr.post_id IS NULL"),
            "to_approve": self._scalar("SELECT count(*) FROM actions WHERE state = 'pending'"),
            "to_send": self._scalar("SELECT count(*) FROM actions WHERE state = 'approved'"),
            "to_check": self._scalar("SELECT count(*) FROM actions WHERE state = 'needs_check'"),
            "followups_waiting": self._scalar("SELECT count(*) FROM followups WHERE state = 'waiting'"),
        }

    def snapshot_campaigns(self, at: dt.datetime, own_handles: Iterable[str] = ()) -> int:
        rows = self.campaign_summary(own_handles)
        with self.atomic():
            self.db.conn.executemany(
                """INSERT OR REPLACE INTO campaign_snapshots (campaign, at, entries, participants, positive, negative)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [(r["name"], now_iso(at), r["entries"], r["participants"], r["positive"] or 0, r["negative"] or 0)
                 for r in rows])
        return len(rows)

    def campaign_snapshots(self, campaign: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM campaign_snapshots WHERE campaign = ? ORDER BY at", [campaign])

    # ---------------------------------------------------------------- follow-ups
    def sent_replies_without_followup(self) -> list[dict[str, Any]]:
        """Sent replies that asked something and are not yet tracked as a follow-up."""
        return self._rows(
            """SELECT ac.id, ac.asks, ac.sent_at, ac.post_id, p.author_id, p.conversation_id, p.platform_id
               FROM actions ac JOIN posts p ON p.id = ac.post_id
               LEFT JOIN followups f ON f.action_id = ac.id
               WHERE ac.kind = 'reply' AND ac.state = 'sent' AND ac.asks != '' AND f.id IS NULL""")

    def add_followup(self, action_id: int, author_id: str, asks: str, due_at: dt.datetime | None) -> None:
        self.db.execute(
            """INSERT OR IGNORE INTO followups (action_id, author_id, asks, due_at, created_at)
               VALUES (?, ?, ?, ?, ?)""", [action_id, author_id, asks, now_iso(due_at) if due_at else None,
                                           now_iso()])

    def waiting_followups(self) -> list[dict[str, Any]]:
        return self._rows(
            """SELECT f.*, ac.sent_at, ac.post_id AS replied_post_id, p.conversation_id, p.platform_id,
                      p.platform
               FROM followups f JOIN actions ac ON ac.id = f.action_id JOIN posts p ON p.id = ac.post_id
               WHERE f.state IN ('waiting', 'answered') ORDER BY f.id""")

    def next_post_by(self, author_id: str, after: str, conversation_id: str = "") -> dict[str, Any] | None:
        """The author's first post after `after` — in the same conversation when the platform tells us one."""
        if conversation_id:
            row = self._one("""SELECT * FROM posts WHERE author_id = ? AND created_at > ? AND conversation_id = ?
                               ORDER BY created_at LIMIT 1""", [author_id, after, conversation_id])
            if row:
                return row
        return self._one("SELECT * FROM posts WHERE author_id = ? AND created_at > ? ORDER BY created_at LIMIT 1",
                         [author_id, after])

    def update_followup(self, followup_id: int, **fields: Any) -> None:
        allowed = {"state", "answer", "answer_post_id", "due_at", "draft_action_id"}
        if set(fields) - allowed:
            raise ValueError(set(fields) - allowed)
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE followups SET {sets} WHERE id = ?", [*fields.values(), followup_id])

    def followup_action(self, post_id: int, followup_of: int) -> int | None:
        return self._scalar("SELECT id FROM actions WHERE post_id = ? AND followup_of = ?", [post_id, followup_of])

    def followups(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM followups ORDER BY id")

    # ---------------------------------------------------------------- privacy
    def find_authors(self, handle: str, platform: str | None = None) -> list[dict[str, Any]]:
        h = handle.lstrip("@").lower()
        if platform:
            return self._rows("SELECT * FROM authors WHERE lower(handle) = ? AND platform = ?", [h, platform])
        return self._rows("SELECT * FROM authors WHERE lower(handle) = ?", [h])

    def forget_author(self, author_id: str, actor: str) -> dict[str, int]:
        """Erase one author: posts (text, raw JSON), sentiments, priorities, drafts and their memory, follow-ups,
        campaign entries, the author row, and audit details that quoted their drafts. The audit log keeps the
        fact that an erasure happened, not the content."""
        with self.atomic():
            post_ids = [r["id"] for r in self._rows("SELECT id FROM posts WHERE author_id = ?", [author_id])]
            marks = ",".join("?" * len(post_ids)) or "NULL"
            action_ids = [r["id"] for r in self._rows(f"SELECT id FROM actions WHERE post_id IN ({marks})", post_ids)]
            amarks = ",".join("?" * len(action_ids)) or "NULL"
            counts = {"posts": len(post_ids), "actions": len(action_ids)}
            # Audit rows about their actions keep who/when/state, lose any text (edits quote the reply).
            self.db.execute(f"UPDATE audit SET before = CASE WHEN event = 'edited' THEN '' ELSE before END, "
                            f"after = CASE WHEN event = 'edited' THEN '' ELSE after END, detail = '' "
                            f"WHERE action_id IN ({amarks})", action_ids)
            counts["followups"] = self.db.execute(
                f"DELETE FROM followups WHERE author_id = ? OR action_id IN ({amarks})", [author_id, *action_ids]
            ).rowcount
            for table, col in (("actions", "post_id"), ("sentiments", "post_id"), ("priorities", "post_id"),
                               ("campaign_posts", "post_id")):
                self.db.execute(f"DELETE FROM {table} WHERE {col} IN ({marks})", post_ids)
            self.db.execute("DELETE FROM posts WHERE author_id = ?", [author_id])
            self.db.execute("UPDATE authors SET person = NULL WHERE person = ?", [author_id])
            self.db.execute("DELETE FROM authors WHERE id = ?", [author_id])
            self._audit(actor, None, "author_forgotten", "", "", f"{counts['posts']} posts, {counts['actions']} "
                        f"actions erased on request")
        return counts

    # ---------------------------------------------------------------- audit
    def _audit(self, actor: str, action_id: int | None, event: str, before: str, after: str, detail: str) -> None:
        self.db.execute(
            "INSERT INTO audit (at, actor, action_id, event, before, after, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [now_iso(), actor, action_id, event, before, after, detail])

    def audit_log(self, action_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if action_id is None:
            return self._rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", [limit])
        return self._rows("SELECT * FROM audit WHERE action_id = ? ORDER BY id", [action_id])


def _raw_json(raw: Any) -> str:
    """The platform's record as JSON text; a lone surrogate somewhere in it is kept escaped (\\ud800), since
    SQLite only takes valid UTF-8."""
    text = _to_json(raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(raw, ensure_ascii=True, default=str)
    return text


def _split_problem(problem: str) -> tuple[str, str]:
    location, _, reason = problem.partition(": ")
    return (location, reason) if reason else ("", problem)
