
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


def test_an_incident_counts_each_member_as_it_joins(store):
    """grow_incident keeps size, authors and first/last seen as a recount of the members would (both backends):
    a second post of an author already in the incident adds to the size, not to the authors."""
    import datetime as dt

    from taiwa.listeners.base import Author, Post
    from .conftest import T0

    people = [Author("1", "amy"), Author("2", "bo"), Author("1", "amy"), Author("3", "cy")]
    hours = [0, 2, 3, -1]      # the last one is older than the first: first_seen moves back
    store.ingest([Post("x", str(i), a, f"app crash {i}", T0 + dt.timedelta(hours=h))
                  for i, (a, h) in enumerate(zip(people, hours))], listener="t", cursor=None)
    ids = [r["id"] for r in store._rows("SELECT id FROM posts ORDER BY platform_id")]
    first = store._rows("SELECT created_at FROM posts WHERE id = ?", [ids[0]])[0]["created_at"]
    incident = store.create_incident("app", ids[0], at=first)
    for pid in ids[1:]:
        store.add_to_incident(incident, pid, 0.8)
        store.grow_incident(incident, pid)
    info = store.incident(incident)
    members = store.incident_members(incident)
    assert info["size"] == len(members) == 4
    assert info["authors"] == len({m["author_id"] for m in members}) == 3
    assert info["first_seen"] == min(m["created_at"] for m in members)
    assert info["last_seen"] == max(m["created_at"] for m in members)


@pytest.mark.parametrize("bad", ["None", "/dev/null"])
def test_a_path_that_is_not_a_database_file_is_refused_with_what_to_do(tmp_path, monkeypatch, bad):
    from taiwa.errors import StoreError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as e:
        Store(bad)
    assert "taiwa.database" in e.value.hint and not (tmp_path / "None").exists()


def test_a_nul_character_in_a_record_never_fails_its_batch(store, tmp_path):
    """PostgreSQL refuses NUL in text: the character is dropped at the edge, the record and its batch are kept."""
    import datetime as dt

    from taiwa.listeners.base import Author, Post

    when = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    posts = [Post("x", "1", Author("9", "am\x00y", name="A\x00my"), "my mug\x00 cracked", when),
             Post("x", "2", Author("8", "bob"), "fine", when)]
    assert store.ingest(posts, listener="t", cursor="c").new == 2
    assert store._scalar("SELECT text FROM posts WHERE platform_id = '1'") == "my mug cracked"
    assert store.cursor("t") == "c"


def test_three_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    """What compose does on an empty volume: `run`, `serve` and a command open the same new file together."""
    import subprocess
    import sys

    for round_ in range(5):
        db = tmp_path / f"new{round_}.db"
        code = f"from taiwa.store import Store; Store({str(db)!r}).close(); print('ok')"
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-300:] for _, err in outs]
        assert Store(db).count("posts") == 0


@pytest.mark.parametrize("name", ["\u0430dmin", "ｄｅｍｏ", "ADMIN", "ad min", "x" * 40])
def test_look_alike_user_names_are_refused(tmp_path, name):
    from taiwa.errors import ValidationError

    s = Store(tmp_path / "t.db")
    s.add_user("admin", "admin", "long-enough-password", "test")
    with pytest.raises(ValidationError):
        s.add_user(name, "viewer", "long-enough-password", "test")
