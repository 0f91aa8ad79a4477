"""`taiwa forget`: one author's data erased on request, nothing of theirs left in any table."""

import datetime as dt

from click.testing import CliRunner

from taiwa import pipeline
from taiwa.cli import cli
from taiwa.listeners.replay import ReplayListener
from taiwa.responders import approval, followups, senders

from .conftest import T0, record, write_jsonl

MIKA_TEXTS = ["@kettlebird_jp 届いたマグが割れていました #MyKettleMorning", "@kettlebird_jp 交換のマグ、取っ手にひびが…"]


def everything_in(store) -> str:
    """Every value of every row of every table, as one string to search."""
    out = []
    for table in store.tables():
        for row in store._x(f'SELECT * FROM "{table}"').fetchall():
            out.append(" ".join(str(v) for v in row))
    return "\n".join(out)


def test_forget_leaves_nothing_of_the_author(tmp_path, store, cfg, default_model, monkeypatch):
    posts = [record(1, MIKA_TEXTS[0], handle="mika_secret", followers=820, lang="ja", hours=-24 * 3),
             record(2, MIKA_TEXTS[1], handle="mika_secret", followers=820, lang="ja"),
             record(3, "@kettlebird my grinder is broken", handle="dan_stays", followers=10)]
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "p.jsonl", posts))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0 + dt.timedelta(hours=1))
    mika_reply = store._scalar("SELECT ac.id FROM actions ac JOIN posts p ON p.id = ac.post_id "
                               "WHERE p.platform_id = '2' AND ac.kind = 'reply'")
    approval.approve(store, mika_reply, actor="kim", text="mika-specific edited reply text")
    senders.send_approved(store, lambda a: senders.OutboxSender(tmp_path / "out.jsonl"))
    followups.run(store, cfg, now=T0 + dt.timedelta(days=5))
    store.correct_sentiment(1, "negative", "kim")
    # The team's notes and tags about her and her draft, and a campaign report file that lists her entry.
    person = store.subject_for("person", "x:u-mika_secret")
    store.add_note(person, "kim", "mika-note: prefers Japanese, lives in Sapporo", action_id=mika_reply)
    store.add_note(f"action:{mika_reply}", "kim", "mika-draft-note", action_id=mika_reply)
    store.add_label(person, "mika-vip-tag", "kim", action_id=mika_reply)
    from taiwa import campaigns

    cfg.sections["taiwa"]["database"] = str(store.database) if store.path else "unused.db"
    report_folder = campaigns.report_dir(tmp_path, "MyKettleMorning")
    camp = campaigns.find(cfg, "MyKettleMorning")
    campaigns.write(campaigns.build(store, camp, own_handles=cfg.brand_handles), report_folder,
                    store.campaign_entries(camp.name), cfg.brand_handles)
    before = everything_in(store)
    assert "mika_secret" in before and MIKA_TEXTS[1] in before and "mika-specific edited" in before
    assert "mika-note" in before and "mika-vip-tag" in before
    assert any("mika_secret" in p.read_text(encoding="utf-8") for p in report_folder.iterdir())

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["--db", str(store.database), "--demo", "forget", "@mika_secret", "--yes",
                                 "--as", "dpo"], catch_exceptions=False)
    assert r.exit_code == 0 and "erased @mika_secret on x: 2 posts" in r.output

    after = everything_in(store)
    for trace in ("mika_secret", "x:u-mika_secret", MIKA_TEXTS[0], MIKA_TEXTS[1], "mika-specific edited", "割れて",
                  "mika-note", "mika-draft-note", "mika-vip-tag", "Sapporo"):
        assert trace not in after, trace
    for path in (tmp_path / "reports" / "MyKettleMorning").iterdir():    # the --demo data folder is tmp_path
        assert "mika_secret" not in path.read_text(encoding="utf-8"), path.name
    assert "dan_stays" in after and store.count("posts") == 1          # others untouched
    last = store.audit_log(limit=1)[0]
    assert last["event"] == "author_forgotten" and last["actor"] == "dpo" and "2 posts" in last["detail"]


def test_forget_unknown_author_is_an_error(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["--db", str(store.database), "--demo", "forget", "nobody", "--yes"])
    assert r.exit_code != 0 and "no author 'nobody'" in str(r.exception)
