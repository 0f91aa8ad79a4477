"""Incidents: many people reporting one thing at once form one group, with one reply for all; unrelated posts,
one person's repeats and old posts stay out."""

from __future__ import annotations

import json

from click.testing import CliRunner

from taiwa import incidents, pipeline
from taiwa.cli import cli
from taiwa.listeners.replay import ReplayListener
from taiwa.responders import senders
from taiwa.store import Store

from .conftest import T0, record, write_jsonl

CRASH = [  # eight people, three hours, two languages: the app crashes at checkout
    ("pia", "@kettlebird the app crashes the moment I tap Pay, three times now", "en"),
    ("rex", "anyone else's kettlebird app closing itself at checkout?? can't order", "en"),
    ("mei", "ケトルバードのアプリ、支払い画面で落ちる。注文できない", "ja"),
    ("gus", "@kettlebird app just crashed during payment, did it charge me?", "en"),
    ("ayu", "アプリで決済しようとすると強制終了します @kettlebird_jp", "ja"),
    ("lou", "kettlebird app keeps crashing on the checkout screen, iPhone 15", "en"),
    ("nao", "ケトルバードのアプリ、会計のところで毎回落ちる", "ja"),
    ("zed", "@kettlebird checkout in the app is broken, it crashes every time I place the order", "en"),
]


def _run(tmp_path, cfg, model, extra=()):
    posts = [record(i + 1, text, handle=h, lang=lang, hours=-3 + i * 0.4) for i, (h, text, lang) in enumerate(CRASH)]
    posts += list(extra)
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", posts))])
    pipeline.classify(store, model)
    report = pipeline.triage(store, cfg, now=T0)
    return store, report


def test_reports_of_one_problem_form_one_incident_and_unrelated_posts_stay_out(tmp_path, cfg, default_model):
    unrelated = [
        record(20, "@kettlebird the app crashed once last week, fine since", handle="old", hours=-40),   # too old
        record(21, "@kettlebird love the new app design!", handle="fan", hours=-1),                  # praise
        record(22, "@kettlebird my grinder arrived with a cracked lid", handle="cora", hours=-1),     # other topic
        record(23, "@kettlebird app crashes at checkout again", handle="pia", hours=0.2),            # same person
    ]
    store, report = _run(tmp_path, cfg, default_model, unrelated)
    rows = {r["platform_id"]: r for r in store.judgements()}
    found = [rows[str(i + 1)]["incident"] for i in range(len(CRASH))]
    main = max(set(f for f in found if f), key=found.count)
    assert found.count(main) >= 6, found                      # most of the eight in one incident
    assert all(rows[k]["incident"] != main for k in ("20", "21", "22"))
    info = store.incident(main)
    assert info["topic"] == "app" and info["size"] == found.count(main) + (rows["23"]["incident"] == main)
    assert info["authors"] == found.count(main) and info["title"]
    assert report.incidents >= 1 and report.incident_posts >= 5
    alerts = [a for a in store.alerts() if a["kind"] == "incident"]
    assert len(alerts) == 1 and f"#{main}" in alerts[0]["subject"]    # once, when it reached five
    r = CliRunner().invoke(cli, ["--db", str(cfg.database), "--demo", "inbox", "--json", "--limit", "100"])
    grouped = [json.loads(line) for line in r.output.splitlines() if json.loads(line)["incident"] == main]
    assert len(grouped) >= 6 and all("platform_id" in g and "topic" in g for g in grouped)
    r = CliRunner().invoke(cli, ["--db", str(cfg.database), "--demo", "incidents"])
    assert r.exit_code == 0 and f"{info['size']}" in r.output
    store.close()


def test_one_reply_for_all_is_personalised_and_each_is_sent_once(tmp_path, cfg, default_model):
    store, _ = _run(tmp_path, cfg, default_model)
    main = store.incidents()[0]["id"]
    actions = [a for a in store.incident_actions(main) if a["kind"] == "reply"]
    from taiwa.responders import approval

    approval.approve(store, actions[0]["id"], actor="ann")      # already approved by hand: left as it is
    done = incidents.reply_to_all(store, main, "Hi {name}, checkout was down for an hour; it works again now.",
                                  actor="ann", approve=True)
    assert actions[0]["id"] in done["skipped"] and len(done["approved"]) == len(actions) - 1
    for a in store.incident_actions(main):
        if a["id"] in done["approved"]:
            assert a["state"] == "approved" and a["text"].startswith(f"Hi @{a['handle']},")
    sender_for, _ = senders.router(cfg, store)
    first = senders.send_approved(store, sender_for)
    again = senders.send_approved(store, sender_for)
    assert first.sent == len(actions) and again.sent == 0
    lines = cfg.outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(actions) == len({json.loads(x)["action_id"] for x in lines})
    store.close()


def test_one_person_repeating_themselves_is_not_an_incident(tmp_path, cfg, default_model):
    posts = [record(i, f"@kettlebird the app crashes at checkout, try {i}", handle="same", hours=-3 + i * 0.3)
             for i in range(1, 6)]
    store = Store(cfg.database)
    pipeline.listen(store, [ReplayListener(write_jsonl(tmp_path / "in.jsonl", posts))])
    pipeline.classify(store, default_model)
    pipeline.triage(store, cfg, now=T0)
    assert store.incidents(min_size=1) == []
    store.close()


def test_the_inbox_page_groups_an_incident_and_its_page_answers_all(tmp_path, cfg, default_model):
    from starlette.testclient import TestClient

    from taiwa.web.app import create_app

    from .web_helpers import PASSWORDS, clock, csrf_of

    store, _ = _run(tmp_path, cfg, default_model)
    store.add_user("ann", "approver", PASSWORDS["ann"], "test")
    store.add_user("vic", "viewer", PASSWORDS["vic"], "test")
    main = store.incidents()[0]["id"]
    app = create_app(cfg, clock=clock)

    def signed_in(name):
        c = TestClient(app, base_url="http://127.0.0.1")
        page = c.get("/login")
        c.post("/login", data={"name": name, "password": PASSWORDS[name], "csrf": csrf_of(page.text), "next": "/"})
        return c

    ann = signed_in("ann")
    inbox = ann.get("/")
    assert f'data-incident="{main}"' in inbox.text and inbox.text.count(' in-incident') >= 6
    assert ann.get("/?topic=app").status_code == 200 and ann.get("/?incident=abc").status_code == 400
    page = ann.get(f"/incidents/{main}")
    assert page.status_code == 200 and "One reply for all" in page.text
    title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<script" not in title and "#" in title                    # the preview script sits in the page body
    vic = signed_in("vic")
    refused = vic.post(f"/incidents/{main}/reply", data={"csrf": csrf_of(vic.get("/").text), "text": "x",
                                                         "approve": "yes"})
    assert refused.status_code == 403
    r = ann.post(f"/incidents/{main}/reply", data={"csrf": csrf_of(page.text), "approve": "yes",
                                                    "text": "Hi {name}, checkout is fixed; sorry for the trouble."})
    assert r.status_code == 200 and "approved" in r.text
    states = {a["state"] for a in store.incident_actions(main) if a["kind"] == "reply"}
    assert states == {"approved"}
    assert ann.get("/incidents/999999").status_code == 404
    store.close()
