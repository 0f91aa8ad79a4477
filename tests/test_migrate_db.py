"""`taiwa migrate-db`: a SQLite database a team has worked in, copied into a real PostgreSQL server, reads back
the same through the Store on the other side (and keeps working there)."""

from __future__ import annotations

import subprocess
import sys

from taiwa import pipeline
from taiwa.listeners.base import Author, Post
from taiwa.responders import approval, senders
from taiwa.store import Store

from .conftest import T0, record, write_jsonl

TABLES = ("posts", "authors", "sentiments", "priorities", "actions", "audit", "campaign_posts")


def worked_in_database(cfg, tmp_path, model):
    """Posts listened, classified and triaged; a user; a reply approved and sent; a note, a tag, linked accounts."""
    posts = [record(1, "@kettlebird my mug arrived cracked, order 123", handle="amy"),
             record(2, "Is the Shibuya store open on Sunday?", handle="ben", hours=1),
             record(3, "Sunrise coffee #MyKettleMorning so happy", handle="cat", hours=2),
             record(4, "@kettlebird still no answer about my cracked mug", handle="amy", hours=3),
             record(5, "配達がまだ来ません。注文番号は 4411 です", handle="dai", hours=4)]
    cfg.sections["platforms.replay"]["paths"] = [str(write_jsonl(tmp_path / "in.jsonl", posts))]
    s = Store(cfg.database)
    pipeline.listen(s, pipeline.replay_listeners(cfg))
    pipeline.classify(s, model)
    pipeline.triage(s, cfg)
    s.add_user("mika", "admin", "correct horse battery", actor="setup")
    first = s.actions_in_state("pending")[0]["id"]
    approval.approve(s, first, actor="mika")
    senders.send_approved(s, senders.router(cfg, s)[0])
    s.add_note("x:u-amy", "mika", "prefers replies in the morning")
    s.add_label("x:u-amy", "vip", "mika")
    s.link_authors("x:u-amy", "x:u-ben", actor="mika")
    return s


def test_a_worked_in_sqlite_database_moves_to_postgresql(cfg, tmp_path, pg_cluster, default_model):
    src = worked_in_database(cfg, tmp_path, default_model)
    before = {t: src.count(t) for t in TABLES}
    inbox_before = [(a["id"], a["state"], a["text"]) for a in src.inbox(states=("pending", "sent"))]
    history_before = src.author_history("x:u-amy", limit=10)
    vectors_before = src.vectors([1, 2, 3])
    src.close()
    name = pg_cluster.create_database()          # empty: migrate-db creates the schema
    url = pg_cluster.url(name)

    r = subprocess.run([sys.executable, "-m", "taiwa", "migrate-db", str(cfg.database),
                        "--to", url], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "row counts match" in r.stdout and f"{before['posts']} posts" in r.stdout

    pg = Store(url)
    assert {t: pg.count(t) for t in TABLES} == before
    assert [(a["id"], a["state"], a["text"]) for a in pg.inbox(states=("pending", "sent"))] == inbox_before
    assert pg.author_history("x:u-amy", limit=10) == history_before      # memory, linked accounts included
    assert {k: v.tolist() for k, v in pg.vectors([1, 2, 3]).items()} == \
        {k: v.tolist() for k, v in vectors_before.items()}
    assert pg.check_login("mika", "correct horse battery") == {"name": "mika", "role": "admin"}   # no re-enrolling
    assert [n["text"] for n in pg.notes(["x:u-amy"])] == ["prefers replies in the morning"]
    # it keeps working: new posts and actions continue after the copied ids
    new = pg.ingest([Post("x", "99", Author("u-eve", "eve"), "hello", T0)], listener="t", cursor=None)
    assert new.new == 1 and pg._scalar("SELECT max(id) FROM posts") == before["posts"] + 1
    pg.close()

    # a second copy into the now-full database is refused, and nothing changes
    r = subprocess.run([sys.executable, "-m", "taiwa", "migrate-db", str(cfg.database),
                        "--to", url], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "already holds posts" in r.stderr
    pg = Store(url)
    assert pg.count("posts") == before["posts"] + 1
    pg.close()


def test_migrate_db_needs_a_postgresql_target(cfg, tmp_path):
    Store(cfg.database).close()
    r = subprocess.run([sys.executable, "-m", "taiwa", "migrate-db", str(cfg.database),
                        "--to", str(tmp_path / "other.db")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "PostgreSQL" in r.stderr


def test_every_table_is_copied_or_named_as_left_behind(tmp_path):
    from taiwa.migrate_db import NOT_COPIED, TABLES

    s = Store(tmp_path / "t.db")
    left = {t for t in s.tables() if t not in TABLES}
    s.close()
    assert {t for t in left if not t.startswith(NOT_COPIED)} == set()
