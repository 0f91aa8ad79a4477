"""The schema: every change is a migration recorded in the database (sqlite-utils Migrations)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("taiwa")


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


@migrations()
def m010_inbox_teamwork(db: Database) -> None:
    """The inbox as a team's tool. `actions` is rebuilt (SQLite cannot change a CHECK): a new state `done` (closed
    with no reply needed) and a `version` every change bumps (a trigger, so no code path can forget), which the
    inbox checks before it lets an approval or edit through. Notes and tags on customers and actions; who has an
    item open; a full-text index over each action's post, draft and author (trigram: Japanese works too)."""
    cols = ("id, post_id, kind, intent, state, text, draft_text, template, memory, reason, created_at, updated_at, "
            "approved_by, approved_at, sending_since, sent_at, platform_ref, followup_of, asks, assigned_to, "
            "snoozed_until, answer, answer_score, needs_answer, ask, recalled, conversation, backend")
    db.executescript(
        f"""
        CREATE TABLE actions_new (
            id INTEGER PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('reply', 'like')),
            intent TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending','approved','rejected','sending','sent','failed','needs_check','done')),
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
            followup_of INTEGER,
            asks TEXT NOT NULL DEFAULT '',
            assigned_to TEXT NOT NULL DEFAULT '',
            snoozed_until TEXT,
            answer TEXT NOT NULL DEFAULT '',
            answer_score REAL,
            needs_answer INTEGER NOT NULL DEFAULT 0,
            ask TEXT NOT NULL DEFAULT '',
            recalled TEXT NOT NULL DEFAULT '',
            conversation TEXT NOT NULL DEFAULT '[]',
            backend TEXT NOT NULL DEFAULT 'templates',
            version INTEGER NOT NULL DEFAULT 1
        );
        INSERT INTO actions_new ({cols}) SELECT {cols} FROM actions;
        DROP TABLE actions;
        ALTER TABLE actions_new RENAME TO actions;
        CREATE UNIQUE INDEX actions_once ON actions(post_id, kind, ifnull(followup_of, 0));
        CREATE INDEX actions_state ON actions(state);
        CREATE TRIGGER actions_version AFTER UPDATE ON actions FOR EACH ROW WHEN NEW.version = OLD.version
        BEGIN
            UPDATE actions SET version = OLD.version + 1 WHERE id = NEW.id;
        END;

        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,                 -- 'person:<author id>' or 'action:<id>'
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX notes_subject ON notes(subject);
        CREATE TABLE labels (
            subject TEXT NOT NULL,                 -- as in notes
            tag TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (subject, tag)
        );
        CREATE TABLE presence (
            action_id INTEGER NOT NULL,
            user TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (action_id, user)
        );

        CREATE VIRTUAL TABLE action_search USING fts5(post_text, draft_text, author, tokenize = 'trigram');
        INSERT INTO action_search (rowid, post_text, draft_text, author)
            SELECT ac.id, p.text, ac.text, a.handle || ' ' || a.name FROM actions ac
            JOIN posts p ON p.id = ac.post_id JOIN authors a ON a.id = p.author_id;
        CREATE TRIGGER action_search_insert AFTER INSERT ON actions BEGIN
            INSERT INTO action_search (rowid, post_text, draft_text, author)
                SELECT NEW.id, p.text, NEW.text, a.handle || ' ' || a.name FROM posts p
                JOIN authors a ON a.id = p.author_id WHERE p.id = NEW.post_id;
        END;
        CREATE TRIGGER action_search_update AFTER UPDATE OF text, post_id ON actions BEGIN
            DELETE FROM action_search WHERE rowid = OLD.id;
            INSERT INTO action_search (rowid, post_text, draft_text, author)
                SELECT NEW.id, p.text, NEW.text, a.handle || ' ' || a.name FROM posts p
                JOIN authors a ON a.id = p.author_id WHERE p.id = NEW.post_id;
        END;
        CREATE TRIGGER action_search_delete AFTER DELETE ON actions BEGIN
            DELETE FROM action_search WHERE rowid = OLD.id;
            DELETE FROM presence WHERE action_id = OLD.id;
            DELETE FROM notes WHERE subject = 'action:' || OLD.id;
            DELETE FROM labels WHERE subject = 'action:' || OLD.id;
        END;
        """
    )


@migrations()
def m011_corrections(db: Database) -> None:
    """A person's corrections of what taiwa understood (intent, topic), kept for retraining and evaluation."""
    db.executescript(
        """
        CREATE TABLE corrections (
            id INTEGER PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            field TEXT NOT NULL CHECK (field IN ('intent', 'topic')),
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX corrections_post ON corrections(post_id);
        """
    )


@migrations()
def m012_job_failures(db: Database) -> None:
    """How many times in a row each job has failed (a health check flags a job that keeps failing)."""
    db.executescript("ALTER TABLE jobs ADD COLUMN failing INTEGER NOT NULL DEFAULT 0;")


@migrations()
def m013_public_views(db: Database) -> None:
    """Posts without the platforms' raw JSON, for browsing with Datasette (deploy/datasette-metadata.json hides
    `posts` itself, the team's password hashes and sessions)."""
    db.executescript(
        """
        CREATE VIEW posts_public AS
            SELECT id, platform, platform_id, author_id, text, lang, created_at, url, conversation_id, in_reply_to_id,
                   is_repost, can_reply, likes, reposts, replies, hashtags, mentions, source, ingested_at
            FROM posts;
        """
    )


WORKERS_SQL = """
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,                   -- host:pid:random, one per `taiwa run --worker` process
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        jobs TEXT NOT NULL DEFAULT '[]',       -- JSON list of the jobs it runs
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,                 -- a listener stream (its cursor's name)
        worker TEXT NOT NULL DEFAULT '',       -- who holds it ('' = nobody)
        expires_at TEXT NOT NULL,              -- held until then unless renewed; then anyone may take it
        acquired_at TEXT
    );
"""


@migrations()
def m014_workers(db: Database) -> None:
    """Workers sharing one database (PostgreSQL): who runs, and which listener stream each holds. On SQLite the
    tables stay empty (one daemon per file), so both backends have the same schema."""
    db.executescript(WORKERS_SQL)


@migrations()
def m015_audience(db: Database) -> None:
    """Who can see each post (Mastodon: public, unlisted, private = followers only, direct), so a reply is never
    posted to a wider audience than the post it answers. Older Mastodon posts take it from their raw record."""
    db.executescript(
        """
        ALTER TABLE posts ADD COLUMN audience TEXT NOT NULL DEFAULT 'public';
        UPDATE posts SET audience = json_extract(raw, '$.visibility')
            WHERE platform = 'mastodon' AND json_valid(raw)
              AND json_extract(raw, '$.visibility') IN ('unlisted', 'private', 'direct');
        DROP VIEW posts_public;
        CREATE VIEW posts_public AS
            SELECT id, platform, platform_id, author_id, text, lang, created_at, url, conversation_id, in_reply_to_id,
                   is_repost, can_reply, likes, reposts, replies, hashtags, mentions, source, ingested_at, audience
            FROM posts;
        """
    )


@migrations()
def m016_unsure(db: Database) -> None:
    """A draft taiwa was unsure about ("needs a look"): no text is proposed, and the reasons are kept (JSON list)."""
    db.executescript("ALTER TABLE actions ADD COLUMN unsure TEXT NOT NULL DEFAULT '';")
