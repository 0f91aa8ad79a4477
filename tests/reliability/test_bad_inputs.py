"""Bad input never stops or loses good data: each bad record is named (file:line or item: what is wrong), every
good record around it is stored, the cursor moves past it, and nothing raises.

Each case writes good records around one bad thing and checks all three promises. The module prints the table the
README's Guarantees section quotes (cases tried / named / good records lost)."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taiwa.listeners.replay import MAX_RECORD_BYTES, ReplayListener
from taiwa.pipeline import listen
from taiwa.store import Store

from ..conftest import record

GOOD = [record(i, f"good post {i} about the kettle", handle=f"g{i}") for i in range(10)]
CSV_COLS = ["id", "text", "created_at", "author_handle", "likes"]


def jsonl(*lines: bytes, eol: bytes = b"\n") -> bytes:
    return eol.join(lines) + eol


def good_lines(ids=range(10)) -> list[bytes]:
    return [json.dumps(GOOD[i], ensure_ascii=False).encode() for i in ids]


def csv_bytes(rows: list[list[str]], eol: str = "\n") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator=eol)
    w.writerow(CSV_COLS)
    w.writerows(rows)
    return out.getvalue().encode()


def csv_good(i: int) -> list[str]:
    return [f"c{i}", f"good csv post {i}", "2026-11-20T12:00:00Z", f"h{i}", "3"]


def with_field(**changes) -> bytes:
    rec = record(100, "the bad one")
    for k, v in changes.items():
        if k.startswith("author_"):
            rec["author"][k[len("author_"):]] = v
        else:
            rec[k] = v
    return json.dumps(rec).encode()


def page(**tweet_changes) -> dict:
    tweet = {"id": "900", "text": "tweet", "author_id": "7", "created_at": "2026-11-20T12:00:00.000Z",
             "public_metrics": {"like_count": 1, "retweet_count": 0, "reply_count": 0, "quote_count": 0}}
    tweet.update(tweet_changes)
    ok = {"id": "901", "text": "fine tweet", "author_id": "7", "created_at": "2026-11-20T12:00:00.000Z"}
    return {"data": [tweet, ok], "includes": {"users": [{"id": "7", "username": "seven"}]}}


G = good_lines()
# name → (file name, bytes, good records in it, text that must appear in a problem line or None)
CASES = {
    "csv stray quote in a field": ("a.csv", csv_bytes([csv_good(0), csv_good(1)])
                                   + b'c99,my 27" monitor died,2026-11-20T12:00:00Z,h9,3\n'
                                   + b"".join(csv_bytes([csv_good(i)]).split(b"\n", 1)[1] for i in range(2, 10)),
                                   11, None),
    "csv unterminated quote": ("b.csv", csv_bytes([csv_good(0)]) + b'c50,"never closed,2026-11-20T12:00:00Z,h,1\n'
                               + b"".join(csv_bytes([csv_good(i)]).split(b"\n", 1)[1] for i in range(1, 9)),
                               9, ":3: a quoted field opens on this line"),
    "csv field over 131,072 characters": ("c.csv", csv_bytes([csv_good(0), ["c1", "x" * 140_000, "2026-11-20", "h",
                                                                              "1"], csv_good(2)]), 2, ":3:"),
    "csv wrong column count": ("d.csv", csv_bytes([csv_good(0), ["only", "two"], csv_good(2)]), 2,
                               "expected 5 CSV columns, got 2"),
    "csv multi-line quoted field": ("e.csv", csv_bytes([csv_good(0), ["c1", "line one\nline two", "2026-11-20",
                                                                     "h", "1"], csv_good(2)]), 3, None),
    "csv with a byte-order mark": ("f.csv", b"\xef\xbb\xbf" + csv_bytes([csv_good(i) for i in range(3)]), 3, None),
    "csv with CR-only line ends": ("g.csv", csv_bytes([csv_good(i) for i in range(4)], eol="\r"), 4, None),
    "likes 1e30": ("h.jsonl", jsonl(*G[:5], with_field(likes=1e30), *G[5:]), 10, ":6: field 'likes'"),
    "20-digit follower count as text": ("i.jsonl", jsonl(*G[:5], with_field(author_followers="12345678901234567890"),
                                                         *G[5:]), 10, "author_followers"),
    "negative likes": ("j.jsonl", jsonl(*G[:5], with_field(likes=-4), *G[5:]), 10, "'likes'"),
    "created_at 1e20": ("k.jsonl", jsonl(*G[:5], with_field(created_at=1e20), *G[5:]), 10, "created_at 1e+20"),
    "created_at Infinity": ("l.jsonl", jsonl(*G[:5], with_field(created_at=float("inf")), *G[5:]), 10,
                            "created_at inf"),
    "year 9999 with an offset": ("m.jsonl", jsonl(*G[:5], with_field(created_at="9999-12-31T23:00:00-05:00"),
                                                  *G[5:]), 10, "9999-12-31"),
    "year 1 with an offset": ("n.jsonl", jsonl(*G[:5], with_field(created_at="0001-01-01T00:00:00+05:00"), *G[5:]),
                              10, "0001-01-01"),
    "year 1970 but milliseconds": ("o.jsonl", jsonl(*G[:5], with_field(created_at=1763640000000), *G[5:]), 10,
                                   "created_at"),
    "lone surrogate in the text": ("p.jsonl", jsonl(*G[:5], b'{"id": "s", "text": "bad \\ud800 here", '
                                                            b'"created_at": "2026-11-20T12:00:00Z", '
                                                            b'"author_handle": "s"}', *G[5:]), 10, "U+D800"),
    "lone surrogate in the handle": ("q.jsonl", jsonl(*G[:5], b'{"id": "s", "text": "ok", "created_at": '
                                                              b'"2026-11-20T12:00:00Z", "author_handle": "\\udfff"}',
                                                      *G[5:]), 10, "U+DFFF"),
    "JSON nested 100k deep": ("r.jsonl", jsonl(*G[:5], b"[" * 100_000 + b"]" * 100_000, *G[5:]), 10,
                              "nested too deeply"),
    "broken JSON": ("s.jsonl", jsonl(*G[:5], b'{"id": "1", "text": ', *G[5:]), 10, ":6: not valid JSON"),
    "not UTF-8": ("t.jsonl", jsonl(*G[:5], b'{"id": "\xff"}', *G[5:]), 10, "not valid UTF-8"),
    "JSONL with a byte-order mark": ("u.jsonl", b"\xef\xbb\xbf" + jsonl(*G), 10, None),
    "JSONL with CR-only line ends": ("v.jsonl", jsonl(*G, eol=b"\r"), 10, None),
    "JSONL with mixed line ends": ("w.jsonl", b"\r\n".join(G[:5]) + b"\r" + b"\n".join(G[5:]) + b"\n", 10, None),
    "X page: includes is text": ("x1.jsonl", jsonl(*G[:5], json.dumps({**page(), "includes": "oops"}).encode(),
                                                   *G[5:]), 12, "includes must be an object"),
    "X page: users are strings": ("x2.jsonl", jsonl(*G[:5], json.dumps({**page(), "includes": {"users": ["7"]}})
                                                    .encode(), *G[5:]), 12, "includes.users #0"),
    "X page: metrics is a list": ("x3.jsonl", jsonl(*G[:5], json.dumps(page(public_metrics=[1, 2])).encode(), *G[5:]),
                                  11, "public_metrics must be an object"),
    "X page: hashtag tag is a number": ("x4.jsonl", jsonl(*G[:5], json.dumps(page(entities={"hashtags": [
        {"start": 0, "end": 3, "tag": 42}]})).encode(), *G[5:]), 11, "tag must be text"),
    "X page: tweet is a string": ("x5.jsonl", jsonl(*G[:5], json.dumps({**page(), "data": ["hello"]}).encode(),
                                                    *G[5:]), 10, "a tweet must be an object"),
    "X page: metric is a string": ("x6.jsonl", jsonl(*G[:5], json.dumps(page(public_metrics={"like_count": "many"}))
                                                     .encode(), *G[5:]), 11, "like_count must be a number"),
    ".json array with one bad item": ("y1.json", ("[" + ",".join(
        [json.dumps(r) for r in GOOD[:5]] + ['{"id": "b", "text": 5}'] + [json.dumps(r) for r in GOOD[5:]]) + "]")
        .encode(), 10, "item 6"),
    ".json array with a deep item": ("y2.json", b"[" + b",".join([*G[:5], b"[" * 50_000 + b"]" * 50_000, *G[5:]])
                                     + b"]", 10, "item 6: JSON nested too deeply"),
    ".json array cut short": ("y3.json", b"[" + b",".join(G) + b", {\"id\": ", 10, "item 11"),
    ".json single record": ("y4.json", G[0], 1, None),
    "a line over 8 MB": ("z1.jsonl", jsonl(*G[:5], b"x" * (MAX_RECORD_BYTES + 10), *G[5:]), 10, "bytes; a record"),
    "empty file": ("z2.jsonl", b"", 0, None),
    "blank lines only": ("z3.jsonl", b"\n\r\n  \n", 0, None),
}


def _run(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    store = Store(tmp_path / "t.db")
    report = listen(store, [ReplayListener(path, batch_size=4)])
    return store, report, path


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_input_is_named_and_every_good_record_is_stored(tmp_path, case):
    name, data, good, needle = CASES[case]
    store, report, path = _run(tmp_path, name, data)
    assert not report.failed, report.failed
    assert store.count("posts") == good, (store.count("posts"), report.problems)
    if needle:
        assert any(str(path) in p and needle in p for p in report.problems), report.problems
    # The cursor moved past the bad record: a second run reads nothing again and reports nothing again.
    again = listen(store, [ReplayListener(path)])
    assert (again.new, again.updated, again.problems, again.failed) == (0, 0, [], {})
    store.close()


def test_a_poisoned_record_midway_through_a_long_file_blocks_nothing(tmp_path):
    lines = [json.dumps(record(i, f"post {i}", handle=f"u{i % 50}")).encode() for i in range(10_000)]
    lines[4_999] = with_field(likes=1e30)
    store, report, path = _run(tmp_path, "long.jsonl", jsonl(*lines))
    assert store.count("posts") == 9_999 and [p for p in report.problems if ":5000:" in p]
    assert json.loads(store.cursor(f"replay:{path.resolve()}"))["offset"] == path.stat().st_size


def test_a_stray_quote_does_not_make_csv_reading_quadratic_or_lose_the_rest(tmp_path):
    rows = [csv_good(i) for i in range(20_000)]
    data = csv_bytes(rows[:10]) + b'x,my 27" monitor,2026-11-20T12:00:00Z,h,1\n' + \
        csv_bytes(rows[10:]).split(b"\n", 1)[1]
    store, report, _ = _run(tmp_path, "big.csv", data)
    assert store.count("posts") == 20_001 and report.problems == []


def test_a_replaced_file_is_read_again_from_its_start_with_a_clear_message(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl(*good_lines(range(3))))
    store = Store(tmp_path / "t.db")
    listen(store, [ReplayListener(path)])
    longer = [json.dumps(record(i, f"new export {i}", handle=f"n{i}")).encode() for i in range(150)]
    tmp = tmp_path / "export.new"
    tmp.write_bytes(jsonl(*longer))
    os.replace(tmp, path)                    # a new export under the same name (new inode, new first bytes)
    report = listen(store, [ReplayListener(path)])
    assert report.new + report.updated == 150 and store.count("posts") == 150   # ids 0-2 were in both
    assert any("replaced" in p and "from the start" in p for p in report.problems), report.problems


def test_a_rewritten_file_with_the_same_inode_is_noticed_by_its_fingerprint(tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(jsonl(*good_lines(range(3))))
    store = Store(tmp_path / "t.db")
    listen(store, [ReplayListener(path)])
    with open(path, "r+b") as fh:            # rewritten in place: same inode, different start, longer
        fh.write(jsonl(*[json.dumps(record(i, f"rewrite {i}", handle=f"r{i}")).encode() for i in range(50)]))
    report = listen(store, [ReplayListener(path)])
    assert report.new + report.updated == 50 and any("first lines changed" in p for p in report.problems)


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "posts.txt", "unsupported file type '.txt'"),
    (lambda d: d / "folder.jsonl", "is a folder"),
    (lambda d: d / "missing.jsonl", "no such file"),
])
def test_a_file_that_cannot_be_read_fails_alone_and_the_next_file_is_still_read(tmp_path, make, needle):
    bad = make(tmp_path)
    if bad.name == "posts.txt":
        bad.write_text("hello")
    if bad.name == "folder.jsonl":
        bad.mkdir()
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(*G))
    store = Store(tmp_path / "t.db")
    report = listen(store, [ReplayListener(bad), ReplayListener(good)])
    assert store.count("posts") == 10
    [(name, why)] = report.failed.items()
    assert str(bad) in why and needle in why and "→" in why     # what happened, and what to do


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file; run the suite as a user to check this")
def test_an_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "secret.jsonl"
    bad.write_bytes(jsonl(*G))
    bad.chmod(0)
    report = listen(Store(tmp_path / "t.db"), [ReplayListener(bad)])
    assert "permission denied" in report.failed[f"replay:{bad.resolve()}"]


def test_a_big_json_array_is_streamed_in_batches_not_read_whole(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b",\n".join(json.dumps(record(i, f"p {i}")).encode() for i in range(5_000)) + b"]")
    batches = list(ReplayListener(path, batch_size=1000).read(None))
    assert [len(b.posts) for b in batches] == [1000] * 5 + [0]
    # Resuming from the third batch's cursor reads the last two thousand only.
    rest = list(ReplayListener(path, batch_size=1000).read(batches[2].cursor))
    assert sum(len(b.posts) for b in rest) == 2000 and rest[0].posts[0].platform_id == "3000"


def test_the_cli_names_the_bad_record_and_prints_no_traceback(tmp_path):
    from click.testing import CliRunner

    from taiwa.cli import cli

    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl(*G[:3], with_field(created_at="9999-12-31T23:00:00-05:00"), *G[3:]))
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "t.db"), "--demo", "listen", "--no-process", "--file",
                                 str(path)])
    assert r.exit_code == 0 and "10 new posts" in r.output and "Traceback" not in r.output
    assert f"{path}:4" in r.output and "9999-12-31" in r.output


# Hypothesis: records of every shape a broken export produces, not only valid ones.
junk = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
                    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
field_values = {
    "id": st.one_of(st.text(min_size=1, max_size=8), st.integers(), junk),
    "text": st.one_of(st.text(max_size=40), junk),
    "created_at": st.one_of(st.just("2026-11-20T12:00:00Z"), st.floats(allow_nan=True, allow_infinity=True),
                            st.integers(min_value=-2 ** 64, max_value=2 ** 64), st.text(max_size=30), junk),
    "author_handle": st.one_of(st.text(min_size=1, max_size=10), junk),
    "likes": st.one_of(st.integers(min_value=-2 ** 80, max_value=2 ** 80), st.floats(allow_nan=True), st.text(max_size=25),
                       junk),
    "author_followers": st.one_of(st.integers(min_value=-2 ** 80, max_value=2 ** 80), st.text(max_size=25), junk),
    "hashtags": st.one_of(st.lists(st.text(max_size=5), max_size=3), junk),
    "platform": st.one_of(st.just("x"), st.text(max_size=5), junk),
}
records = st.fixed_dictionaries({}, optional=field_values)
lines = st.one_of(records.map(lambda r: json.dumps(r, allow_nan=True).encode()),
                  junk.map(lambda v: json.dumps(v).encode()),
                  st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, min_size=1, max_size=8), st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_any_mix_of_broken_records_keeps_every_good_one(tmp_path_factory, bad_lines, eol):
    d = tmp_path_factory.mktemp("prop")
    store, report, _ = _run(d, "mix.jsonl", eol.join([G[0], *bad_lines, G[1]]) + eol)
    assert not report.failed
    stored = {r[0] for r in store.db.execute("SELECT platform_id FROM posts")}
    assert {"0", "1"} <= stored                                   # the good ones around the junk
    # Every line is accounted for: stored (new or an update of an id seen before), named as a problem, blank, or
    # an API page whose `data` list was empty.
    def silent(b: bytes) -> bool:
        try:
            v = json.loads(b)
        except (ValueError, RecursionError):
            return not b.strip()
        return isinstance(v, dict) and v.get("data") == []
    assert report.new + report.updated + len(report.problems) >= len(bad_lines) + 2 - sum(map(silent, bad_lines))
    store.close()


def test_summary_for_the_readme(capsys):
    print(f"\nbad-input cases: {len(CASES) + 8} (each names the bad record, stores every good one, moves the cursor)")
