import sqlite3

import pytest

from taiwa.errors import StoreError
from taiwa.store import Store, migrations


def test_schema_is_made_by_migrations_and_uses_wal(tmp_path):
    s = Store(tmp_path / "a.db")
    names = [m.name for m in migrations.applied(s.db)]
    assert names == [m.name for m in migrations._migrations]
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"posts", "authors", "sentiments", "priorities", "actions", "audit", "cursors", "campaigns",
            "campaign_posts", "ingest_problems"} <= set(s.db.table_names())
    s.close()
    Store(tmp_path / "a.db").close()  # reopening applies nothing twice


def test_a_database_from_a_newer_taiwa_is_refused(tmp_path):
    s = Store(tmp_path / "a.db")
    s.db["_sqlite_migrations"].insert({"migration_set": "taiwa", "name": "m999_from_the_future",
                                       "applied_at": "2030-01-01"})
    s.close()
    with pytest.raises(StoreError) as e:
        Store(tmp_path / "a.db")
    assert "newer taiwa" in e.value.message and "m999_from_the_future" in e.value.message


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    p = tmp_path / "notes.db"
    p.write_text("my notes, not a database")
    with pytest.raises(StoreError) as e:
        Store(p)
    assert "not a SQLite database" in e.value.message
    assert p.read_text() == "my notes, not a database"


def test_posts_are_unique_on_platform_and_id(store):
    from taiwa.listeners.base import Author, Post
    from .conftest import T0

    a = Author("1", "amy")
    same_id = [Post("x", "7", a, "hi", T0), Post("instagram", "7", a, "hi", T0), Post("x", "7", a, "hi", T0)]
    r = store.ingest(same_id, listener="t", cursor=None)
    assert r.new == 2 and store.count("posts") == 2
    with pytest.raises(Exception, match="(?i)unique"):     # the database refuses it, whichever it is
        store._x("INSERT INTO posts (platform, platform_id, author_id, text, created_at, source, "
                 "ingested_at) VALUES ('x', '7', 'x:1', 't', 'now', 't', 'now')")


def test_concurrent_writers_on_two_connections_lose_nothing(tmp_path):
    """A listener and an inbox writing at once: read-then-write transactions must not fail on lock upgrades."""
    import threading

    from taiwa.listeners.base import Author, Post
    from .conftest import T0

    Store(tmp_path / "c.db").close()
    errors, a = [], Author("1", "amy")

    def writer(prefix: str) -> None:
        s = Store(tmp_path / "c.db")
        try:
            for i in range(150):
                s.ingest([Post("x", f"{prefix}{i}", a, "hi", T0)], listener=f"l{prefix}", cursor=str(i))
        except Exception as e:  # noqa: BLE001 - the test reports whatever broke
            errors.append(repr(e))
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = Store(tmp_path / "c.db")
    assert errors == []
    assert s.count("posts") == 450
    assert {c["listener"]: c["position"] for c in s.cursors()} == {"la": "149", "lb": "149", "lc": "149"}
