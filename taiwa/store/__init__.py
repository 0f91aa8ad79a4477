"""The database: the Store contract (base.py) over SQLite (sqlite.py, the embedded default) or PostgreSQL
(postgres.py), the schema, and every query taiwa runs. Nothing else in the package writes SQL.

Open a SQLite file with Datasette or `sqlite-utils tables taiwa.db --counts` to look around:

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
    workers, leases                  (several workers) who is running, and which stream or chunk each holds
"""

from __future__ import annotations

from .base import Store, is_postgres_url
from .common import OPEN_STATES, ROLES, SESSION_HOURS, STATES, TRANSITIONS, WAITING_STATES, now_iso, parse_iso
from .passwords import SCRYPT, check_password, hash_password, needs_rehash
from .posts import IngestResult
from .schema import migrations
from .sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "is_postgres_url", "IngestResult", "STATES", "OPEN_STATES", "WAITING_STATES",
           "ROLES", "TRANSITIONS", "SESSION_HOURS", "SCRYPT", "now_iso", "parse_iso", "hash_password",
           "check_password", "needs_rehash", "migrations"]
