"""A replay file still being written: an unfinished last line waits for the next run, nothing is lost."""

import json
import subprocess
import sys
import textwrap

from taiwa.listeners.replay import ReplayListener
from taiwa.pipeline import listen
from taiwa.scheduler import Daemon

from .conftest import record

HEADER = b"id,text,created_at,author_handle\n"


def _line(i: int, text: str = "") -> bytes:
    return json.dumps(record(i, text or f"post number {i}", handle=f"u{i}"), ensure_ascii=False).encode() + b"\n"


def test_a_jsonl_line_cut_by_the_writer_waits_and_is_read_whole_next_run(tmp_path, store):
    path = tmp_path / "feed.jsonl"
    whole = _line(1) + _line(2) + _line(3, "the third post, cut in the middle by a 4 KiB flush")
    path.write_bytes(whole[:-25])
    listener = ReplayListener(path)
    report = listen(store, [listener])
    assert (report.new, report.problems) == (2, [])
    assert json.loads(store.cursor(listener.name))["offset"] == len(_line(1) + _line(2))
    with open(path, "ab") as fh:
        fh.write(whole[-25:] + _line(4))
    report = listen(store, [listener])
    assert (report.new, report.problems) == (2, [])
    assert store._scalar("SELECT text FROM posts WHERE platform_id = '3'") == \
        "the third post, cut in the middle by a 4 KiB flush"


def test_a_whole_json_record_without_its_line_end_is_read_at_once(tmp_path, store):
    path = tmp_path / "feed.jsonl"
    path.write_bytes(_line(1) + _line(2).rstrip(b"\n"))
    assert listen(store, [ReplayListener(path)]).new == 2


def test_a_csv_row_cut_inside_its_last_field_is_never_stored_truncated(tmp_path, store):
    path = tmp_path / "feed.csv"
    row = b"2,hello there,2026-11-20T12:00:00Z,bobby_tables\n"
    path.write_bytes(HEADER + b"1,first,2026-11-20T11:00:00Z,amy\n" + row[:-8])   # "...,bobby_" so far
    listener = ReplayListener(path)
    assert (listen(store, [listener]).new, store.count("posts")) == (1, 1)
    with open(path, "ab") as fh:
        fh.write(row[-8:])
    report = listen(store, [listener])
    assert (report.new, report.problems) == (1, [])
    assert store._scalar("SELECT a.handle FROM posts p JOIN authors a ON a.id = p.author_id "
                         "WHERE p.platform_id = '2'") == "bobby_tables"


def test_a_quoted_csv_field_still_open_at_the_end_waits_for_its_closing_line(tmp_path, store):
    path = tmp_path / "feed.csv"
    path.write_bytes(HEADER + b'1,"two lines,\n')
    listener = ReplayListener(path)
    report = listen(store, [listener])
    assert (report.new, report.problems) == (0, [])
    with open(path, "ab") as fh:
        fh.write(b'second line",2026-11-20T11:00:00Z,amy\n')
    report = listen(store, [listener])
    assert (report.new, report.problems) == (1, [])
    assert store._scalar("SELECT text FROM posts") == "two lines,\nsecond line"


def test_a_finished_file_without_a_final_line_end_is_read_on_the_next_run(tmp_path, store):
    """A hand-made CSV whose last row has no line end: the first run cannot know the writer is done; the next
    run finds the file unchanged and reads it."""
    path = tmp_path / "feed.csv"
    path.write_bytes(HEADER + b"1,first,2026-11-20T11:00:00Z,amy\n2,last,2026-11-20T12:00:00Z,bob")
    listener = ReplayListener(path)
    assert listen(store, [listener]).new == 1
    report = listen(store, [listener])
    assert (report.new, report.problems) == (1, [])
    assert listen(store, [listener]).new == 0


WRITER = textwrap.dedent("""
    import json, sys
    path, n = sys.argv[1], int(sys.argv[2])
    data = b"".join(json.dumps({"id": str(i), "platform": "x", "text": f"post {i} " + "x" * (i % 90),
                                "created_at": "2026-11-20T12:00:00+00:00",
                                "author": {"id": f"u{i % 50}", "handle": f"u{i % 50}"}}).encode() + b"\\n"
                    for i in range(n))
    with open(path, "ab", buffering=0) as fh:
        for start in range(0, len(data), 4096):      # what C stdio, Go's bufio and Java's writers do
            fh.write(data[start:start + 4096])
            sys.stdout.write("flushed\\n"); sys.stdout.flush()
            sys.stdin.readline()                       # the daemon reads between two flushes
""")


def test_the_daemon_reads_a_file_a_writer_flushes_in_4k_blocks_and_loses_nothing(cfg, tmp_path):
    path = tmp_path / "feed.jsonl"
    path.touch()
    cfg.sections["platforms.replay"]["paths"] = [str(path)]
    daemon = Daemon(cfg, jobs=["listen:replay"])
    n = 3000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    blocks = 0
    while writer.stdout.readline():
        blocks += 1
        daemon.run_job("listen:replay")
        writer.stdin.write("\n")
        writer.stdin.flush()
    assert writer.wait() == 0
    daemon.run_job("listen:replay")
    from taiwa.store import Store

    store = Store(cfg.database)
    try:
        assert blocks > 50
        assert store.count("posts") == n
        assert store.count("ingest_problems") == 0
        assert store._scalar("SELECT count(DISTINCT platform_id) FROM posts") == n
    finally:
        store.close()
