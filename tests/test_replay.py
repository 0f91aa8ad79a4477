import json

from taiwa.listeners.replay import ReplayListener
from taiwa.pipeline import listen

from .conftest import record, write_jsonl


def test_bad_lines_are_reported_with_line_numbers_and_good_lines_kept(tmp_path, store):
    good = [record(i, f"post {i}") for i in range(5)]
    path = write_jsonl(tmp_path / "in.jsonl", good, raw_lines={
        1: b'{"id": "x1", "text": "no time", "author_handle": "bob"}',          # line 2: missing created_at
        3: b'{not json',                                                       # line 4
        5: b'{"id": "x2", "text": "t", "created_at": "2026-11-20T00:00:00Z", "author_handle": "bob", '
           b'"likes": "many"}',                                                # line 6: wrong type
        6: b'{"id": "x3", "text": "caf\xe9", "created_at": "2026-11-20T00:00:00Z", "author_handle": "bob"}',  # 7
        8: b'[1, 2]',                                                          # line 9: not an object
    })
    report = listen(store, [ReplayListener(path)])
    assert report.new == 5 and store.count("posts") == 5
    by_line = {p.split(":")[1]: p for p in (x.replace(str(path), "F") for x in report.problems)}
    assert by_line["2"].endswith("missing field 'created_at'")
    assert "not valid JSON" in by_line["4"]
    assert "'likes' must be a whole number" in by_line["6"]
    assert "not valid UTF-8" in by_line["7"]
    assert "expected a JSON object" in by_line["9"]
    assert len(report.problems) == 5
    assert store.count("ingest_problems") == 5


def test_relisten_is_idempotent_and_updates_counters(tmp_path, store):
    path = write_jsonl(tmp_path / "in.jsonl", [record(1, "hello", likes=1), record(2, "again")])
    listener = ReplayListener(path)
    assert listen(store, [listener]).new == 2
    assert listen(store, [listener]).new == 0          # cursor at the end: nothing re-read
    write_jsonl(path, [record(1, "hello", likes=9), record(2, "again")])
    store.reset_cursor(listener.name)                   # force a full re-read of the same posts
    report = listen(store, [listener])
    assert report.new == 0 and report.updated == 2 and store.count("posts") == 2
    assert store._scalar("SELECT likes FROM posts WHERE platform_id = '1'") == 9


def test_resumes_from_byte_offset_after_appends(tmp_path, store):
    path = write_jsonl(tmp_path / "in.jsonl", [record(i, f"p{i}") for i in range(3)])
    listener = ReplayListener(path, batch_size=2)
    listen(store, [listener])
    cursor = json.loads(store.cursor(listener.name))
    assert (cursor["offset"], cursor["line"]) == (path.stat().st_size, 3)
    assert (cursor["ino"], cursor["head_len"]) == (path.stat().st_ino, path.stat().st_size)
    with open(path, "ab") as fh:
        fh.write(b"{broken\n" + json.dumps(record(9, "new one")).encode() + b"\n")
    report = listen(store, [listener])
    assert report.new == 1 and store.count("posts") == 4
    assert report.problems and ":4:" in report.problems[0]   # line numbers continue across runs


def test_a_shrunk_file_is_read_again_without_duplicates(tmp_path, store):
    path = write_jsonl(tmp_path / "in.jsonl", [record(i, f"p{i}") for i in range(4)])
    listener = ReplayListener(path)
    listen(store, [listener])
    write_jsonl(path, [record(0, "p0")])
    report = listen(store, [listener])
    assert store.count("posts") == 4 and report.new == 0
    assert "shorter than where we stopped" in report.problems[0]


def test_csv_with_quoted_newlines_and_bad_rows(tmp_path, store):
    path = tmp_path / "in.csv"
    path.write_text(
        "id,text,created_at,author_handle,author_followers,hashtags\n"
        '1,"line one\nline two, with comma",2026-11-20T10:00:00Z,amy,120,MyKettleMorning\n'
        "2,short,2026-11-20T11:00:00Z,bob,lots,\n"
        "3,ok,2026-11-20T12:00:00Z,@cat,5,#a #b\n"
        "4,too,many,columns,here,now,x\n", encoding="utf-8")
    report = listen(store, [ReplayListener(path)])
    assert report.new == 2
    assert any(":4:" in p and "author_followers" in p for p in report.problems)
    assert any(":6:" in p and "CSV columns" in p for p in report.problems)
    row = store._one("SELECT text, hashtags FROM posts WHERE platform_id = '1'")
    assert row["text"] == "line one\nline two, with comma"
    assert json.loads(row["hashtags"]) == ["MyKettleMorning"]
    assert store._scalar("SELECT handle FROM authors WHERE handle = 'cat'") == "cat"


X_PAGE = {
    "data": [
        {"id": "1861", "text": "@kettlebird 届いたマグが割れてた 😢 #MyKettleMorning", "author_id": "42",
         "created_at": "2026-11-20T09:00:00.000Z", "lang": "ja", "conversation_id": "1861",
         "public_metrics": {"retweet_count": 1, "reply_count": 2, "like_count": 3, "quote_count": 1},
         "entities": {"hashtags": [{"start": 20, "end": 36, "tag": "MyKettleMorning"}],
                      "mentions": [{"start": 0, "end": 11, "username": "kettlebird", "id": "7"}]},
         "reply_settings": "everyone"},
        {"id": "1862", "text": "RT @kettlebird: Holiday blend is back", "author_id": "43",
         "created_at": "2026-11-20T09:05:00.000Z", "referenced_tweets": [{"type": "retweeted", "id": "1800"}],
         "reply_settings": "mentionedUsers"},
        {"id": "1863", "author_id": "42", "created_at": "2026-11-20T09:06:00.000Z"},
    ],
    "includes": {"users": [
        {"id": "42", "username": "mika_t", "name": "三上 美香", "public_metrics": {"followers_count": 820}},
        {"id": "43", "username": "fan", "name": "Fan", "verified": True,
         "public_metrics": {"followers_count": 5}}]},
    "meta": {"result_count": 3, "newest_id": "1863", "oldest_id": "1861"},
}


def test_x_api_v2_pages_as_jsonl_and_as_json(tmp_path, store):
    jl = tmp_path / "pages.jsonl"
    jl.write_text(json.dumps(X_PAGE, ensure_ascii=False) + "\n", encoding="utf-8")
    report = listen(store, [ReplayListener(jl)])
    assert report.new == 2
    assert any("1863" in p and "'text'" in p for p in report.problems)
    post = store._one("SELECT p.*, a.handle, a.followers FROM posts p JOIN authors a ON a.id = p.author_id "
                      "WHERE p.platform_id = '1861'")
    assert post["platform"] == "x" and post["handle"] == "mika_t" and post["followers"] == 820
    assert post["likes"] == 3 and post["reposts"] == 2 and post["lang"] == "ja"
    assert json.loads(post["hashtags"]) == ["MyKettleMorning"]
    rt = store._one("SELECT is_repost, can_reply FROM posts WHERE platform_id = '1862'")
    assert rt == {"is_repost": 1, "can_reply": 0}
    one = tmp_path / "page.json"
    one.write_text(json.dumps(X_PAGE, ensure_ascii=False, indent=2), encoding="utf-8")
    again = listen(store, [ReplayListener(one)])
    assert again.new == 0 and again.updated == 2            # same tweets: deduplicated across files


def test_the_bundled_sample_corpus_reads_cleanly(cfg, store):
    from taiwa.pipeline import replay_listeners

    report = listen(store, replay_listeners(cfg))
    assert report.problems == [] and report.new >= 500
    langs = dict(store._x("SELECT lang, count(*) FROM posts GROUP BY lang").fetchall())
    assert langs["en"] > 200 and langs["ja"] > 100
    repeaters = store._scalar("SELECT count(*) FROM (SELECT author_id FROM posts GROUP BY author_id "
                              "HAVING count(*) >= 3) AS r")
    assert repeaters >= 10


from hypothesis import given, settings
from hypothesis import strategies as st

from taiwa.listeners.replay import RecordError, record_to_post

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)
fields = st.sampled_from(["id", "text", "created_at", "author_handle", "author_followers", "likes", "hashtags",
                          "author", "is_repost", "platform", "lang", "extra"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(fields, json_values, max_size=8))
def test_any_json_object_is_a_post_or_a_named_record_error(obj):
    try:
        post = record_to_post(obj)
    except RecordError as e:
        assert str(e)           # a reason a person can read
        return
    assert post.platform_id and post.author.handle and post.created_at.tzinfo is not None


def test_a_compressed_or_utf16_file_gets_one_clear_error(tmp_path, store):
    import gzip

    from taiwa.listeners.replay import ReplayListener

    line = json.dumps(record(1, "hello")) + "\n"
    gz = tmp_path / "export.jsonl"
    gz.write_bytes(gzip.compress(line.encode()))
    u16 = tmp_path / "utf16.jsonl"
    u16.write_bytes(line.encode("utf-16"))
    report = listen(store, [ReplayListener(gz), ReplayListener(u16)])
    assert "gzip-compressed" in report.failed[f"replay:{gz.resolve()}"] and "gunzip" in report.failed[f"replay:{gz.resolve()}"]
    assert "UTF-16" in report.failed[f"replay:{u16.resolve()}"] and not report.problems
