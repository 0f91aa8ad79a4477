"""`taiwa eval`: judgement measured on a labelled set for a brand the project did not build the demo for.

The set (taiwa/data/eval/nami_posts.jsonl, with its brand's taiwa.toml beside it) is posts written for a fictional
ramen chain, in English and Japanese, each labelled before any model ran: topic, intent, sarcasm, urgent, the
incident it belongs to, its English/Japanese twin, the answer a question should get, the history a repeat
customer's draft should recall. Nothing in it is used to train or tune the heads (a test checks that no text is
shared with the training files).

The run is the product's own pipeline on a fresh database, in two phases as a team would live it: phase 1 posts
are read, drafted, and the team's replies to some of them are approved and sent; then phase 2 posts are read, the
team links the accounts the set says belong to one customer, and phase 2 is drafted. The figures are computed from what
the store then holds, exactly as the inbox would show it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .. import config as config_mod
from .. import pipeline
from ..store import Store

EVAL_DIR = Path(str(resources.files("taiwa").joinpath("data/eval")))
# Ranking is judged as if the team opened the inbox at this moment (just after the set's last post).
Progress = Callable[[str], None]


@dataclass
class EvalReport:
    n_posts: int = 0
    figures: dict[str, Any] = field(default_factory=dict)     # name → value (ratios in [0, 1], counts, ranks)
    details: dict[str, list[str]] = field(default_factory=dict)   # name → the misses, for a person to read

    def lines(self) -> list[tuple[str, str]]:
        f = self.figures
        out = []

        def ratio(key: str, label: str) -> None:
            if key in f:
                hit, total = f[key]
                out.append((label, f"{hit / total:.2f}  ({hit} of {total})" if total else "n/a"))

        ratio("topic", "topic accuracy")
        ratio("topic_en", "  English")
        ratio("topic_ja", "  Japanese")
        ratio("intent", "intent accuracy")
        ratio("intent_en", "  English")
        ratio("intent_ja", "  Japanese")
        ratio("sarcasm", "sarcasm recall (read as a complaint, no like)")
        ratio("urgent_top10", "urgent posts in the top 10")
        if "rank_gap" in f:
            g = f["rank_gap"]
            out.append(("English/Japanese rank gap", f"mean {g['mean']:.1f}, max {g['max']} places over {g['pairs']} "
                                                     f"twins (Japanese lower by {g['ja_lower']:+.1f} on average)"))
        ratio("incident", "incident posts grouped together")
        if "incident_strays" in f:
            out.append(("  unrelated posts pulled into an incident", str(f["incident_strays"])))
        ratio("answered", "answerable questions whose draft holds the answer")
        ratio("unanswered_flagged", "unanswerable questions marked 'needs an answer'")
        ratio("right_ask", "complaint drafts with their topic's ask")
        ratio("wrong_ask", "complaint drafts with a wrong ask")
        if "stubs" in f:
            out.append(("drafts that stop at a stub", str(f["stubs"])))
        ratio("memory", "repeat customers recalled correctly")
        ratio("apology_no_problem", "apologies to posts with no problem")
        ratio("complaints_drafted", "complaints with a written draft")
        ratio("praise_liked", "praise and campaign entries with a like proposed")
        ratio("sarcasm_liked", "sarcastic posts with a like proposed")
        ratio("look", "posts left as 'needs a look'")
        ratio("reply_kind", "the reply kind a team would send")
        for lang in ("en", "ja"):
            if f.get(f"sentiment_f1_{lang}") is not None:
                out.append((f"sentiment macro-F1 ({lang})", f"{f[f'sentiment_f1_{lang}']:.3f}"))
        if "multi_open" in f:
            out.append(("authors with more than one open draft", str(f["multi_open"])))
        return out


def load_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(posts_path: Path = EVAL_DIR / "nami_posts.jsonl", config_path: Path = EVAL_DIR / "nami.toml", *,
        work_dir: Path | None = None, progress: Progress | None = None) -> EvalReport:
    """Run the pipeline over the labelled set on a fresh database and measure it."""
    from ..models.sentiment import load_configured

    say = progress or (lambda _m: None)
    records = load_set(posts_path)
    tmp = Path(work_dir or tempfile.mkdtemp(prefix="taiwa-eval-"))
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_path, tmp / "taiwa.toml")
    cfg = config_mod.load(tmp / "taiwa.toml")
    for suffix in ("", "-wal", "-shm"):
        Path(str(cfg.database) + suffix).unlink(missing_ok=True)
    store = Store(cfg.database, clock=cfg.clock)
    m = cfg.sections["model"]
    say("loading the sentiment model")
    model = load_configured(m)
    by_id = {r["id"]: r for r in records}
    end = max(dt.datetime.fromisoformat(r["created_at"]) for r in records)
    for phase in (1, 2):
        part = [r for r in records if r["label"]["phase"] == phase]
        replay = tmp / f"phase{phase}.jsonl"
        replay.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "label"}, ensure_ascii=False)
                                  + "\n" for r in part), encoding="utf-8")
        say(f"phase {phase}: {len(part)} posts")
        pipeline.listen(store, [pipeline.ReplayListener(replay, own_handles=frozenset(cfg.brand_handles))])
        pipeline.classify(store, model)
        if phase == 2:   # the team links the accounts they know to be one customer's
            _team_links(store, [r for r in records if r["label"].get("link")])
        last = max(dt.datetime.fromisoformat(r["created_at"]) for r in part)
        pipeline.triage(store, cfg, now=last + dt.timedelta(minutes=30))
        if phase == 1:
            _team_replies(store, cfg, [r for r in part if r["label"].get("replied")])
    report = measure(store, cfg, by_id, now=end)
    report.n_posts = len(records)
    store.close()
    return report


def _post_ids(store: Store) -> dict[str, int]:
    """Eval id (the platform id in the set) → stored post id."""
    return {r["platform_id"]: r["post_id"] for r in store.judgements()}


def _team_replies(store: Store, cfg, replied: list[dict[str, Any]]) -> None:
    """The team approves and sends taiwa's drafts for the posts the set says were answered in phase 1."""
    from ..responders import approval, senders

    ids = _post_ids(store)
    for r in replied:
        for a in store.actions_for_post(ids[r["id"]]):
            if a["kind"] == "reply" and a["state"] == "pending":
                # A post taiwa left to a person ("needs a look") gets the person's own words.
                approval.approve(store, a["id"], actor="eval", text=None if a["text"].strip() else
                                 "Thanks for telling us. We're looking into it and will reply here.")
    sender_for, _ = senders.router(cfg, store)
    senders.send_approved(store, sender_for, actor="eval")


def _team_links(store: Store, linked: list[dict[str, Any]]) -> None:
    """The team links accounts the set says belong to one customer (`taiwa link`)."""
    for r in linked:
        platform, handle = r["label"]["link"].split(":", 1)
        [this] = store.find_authors(r["author"]["handle"], r["platform"])
        [other] = store.find_authors(handle, platform)
        store.link_authors(this["id"], other["id"], actor="eval")


def measure(store: Store, cfg, by_id: dict[str, dict[str, Any]], now: dt.datetime) -> EvalReport:
    rep = EvalReport()
    rows = {r["platform_id"]: r for r in store.judgements()}
    phase2 = [r for r in by_id.values() if r["label"]["phase"] == 2]

    def tally(key: str, items: list[tuple[bool, str]]) -> None:
        rep.figures[key] = (sum(ok for ok, _ in items), len(items))
        rep.details[key] = [why for ok, why in items if not ok]

    # topic and intent, per language
    for lang in ("", "en", "ja"):
        pick = [r for r in phase2 if not lang or r["lang"] == lang]
        suffix = f"_{lang}" if lang else ""
        tally("topic" + suffix, [((rows[r["id"]]["topic"] or None) == r["label"]["topic"],
                                  f"{r['id']}: {rows[r['id']]['topic'] or 'none'} ≠ {r['label']['topic'] or 'none'}")
                                 for r in pick if r["label"]["intent"] != "spam"])
        tally("intent" + suffix, [(rows[r["id"]]["intent"] == r["label"]["intent"],
                                   f"{r['id']}: {rows[r['id']]['intent']} ≠ {r['label']['intent']}") for r in pick])
    sarcastic = [r for r in phase2 if r["label"].get("sarcasm")]
    tally("sarcasm", [(rows[r["id"]]["intent"] == "complaint" and not rows[r["id"]]["like_proposed"],
                       f"{r['id']}: {rows[r['id']]['intent']}" + (", like proposed" if rows[r["id"]]["like_proposed"]
                                                                   else "")) for r in sarcastic])

    # ranking, as the inbox shows it: pending replies, escalated first, then by score
    order = [r["platform_id"] for r in store.inbox(kind="reply", limit=100_000)]
    rank = {pid: i + 1 for i, pid in enumerate(order)}
    urgent = [r["id"] for r in phase2 if r["label"].get("urgent")]
    tally("urgent_top10", [(rank.get(u, 10 ** 6) <= 10, f"{u}: rank {rank.get(u, 'none (no draft)')}")
                           for u in urgent])
    twins: dict[str, dict[str, str]] = {}
    for r in phase2:
        if r["label"].get("twin"):
            twins.setdefault(r["label"]["twin"], {})[r["lang"]] = r["id"]
    gaps = [(rank.get(t["ja"], len(order) + 1) - rank.get(t["en"], len(order) + 1), name)
            for name, t in twins.items() if {"en", "ja"} <= set(t)]
    if gaps:
        rep.figures["rank_gap"] = {"pairs": len(gaps), "mean": sum(abs(g) for g, _ in gaps) / len(gaps),
                                   "max": max(abs(g) for g, _ in gaps),
                                   "ja_lower": sum(g for g, _ in gaps) / len(gaps)}
        rep.details["rank_gap"] = [f"{name}: Japanese {g:+d} places" for g, name in gaps]

    # incidents: the labelled group should be one incident, and nothing else should be pulled into one
    groups: dict[str, list[str]] = {}
    for r in phase2:
        if r["label"].get("incident"):
            groups.setdefault(r["label"]["incident"], []).append(r["id"])
    hits, total, majority = 0, 0, {}
    for name, ids in groups.items():
        found = [rows[i]["incident"] for i in ids if rows[i]["incident"] is not None]
        top = max(set(found), key=found.count) if found else None
        majority[top] = name
        hits += found.count(top) if top is not None else 0
        total += len(ids)
        rep.details.setdefault("incident", []).extend(
            f"{i}: {'not grouped' if rows[i]['incident'] is None else 'incident #' + str(rows[i]['incident'])}"
            for i in ids if top is None or rows[i]["incident"] != top)
    rep.figures["incident"] = (hits, total)
    strays = [r["id"] for r in phase2 if rows[r["id"]]["incident"] is not None
              and majority.get(rows[r["id"]]["incident"]) != r["label"].get("incident")]
    rep.figures["incident_strays"] = len(strays)
    rep.details["incident_strays"] = strays
    _measure_drafts(store, cfg, rep, phase2, rows)
    # What each post got, judged with asymmetric costs (evaluation/outcomes.py), and sentiment per language.
    from .outcomes import got, judge

    items = [({**r["label"], "id": r["id"], "lang": r["lang"]}, got(store, rows[r["id"]]["post_id"], rows[r["id"]]))
             for r in phase2]
    figures, misses = judge(items)
    for key in ("apology_no_problem", "complaints_drafted", "praise_liked", "sarcasm_liked", "look", "reply_kind",
                "sentiment_f1_en", "sentiment_f1_ja", "confusion_en", "confusion_ja"):
        if key in figures:
            rep.figures[key] = figures[key]
            rep.details[key] = misses.get(key, [])
    return rep


STUB_ENDS = (":", "：", "Here's what we know", "お問い合わせありがとうございます。")


def _measure_drafts(store: Store, cfg, rep: EvalReport, phase2: list[dict[str, Any]], rows: dict[str, Any]) -> None:
    """Answers, asks, stubs, memory and one open draft per customer, from the drafts the store holds."""
    ids = {pid: r["post_id"] for pid, r in rows.items()}
    by_post = {v: k for k, v in ids.items()}
    asks = {t.name for t in cfg.topics if t.ask}

    def reply(eval_id: str) -> dict[str, Any] | None:
        return store.reply_for_post(ids[eval_id])

    answered, flagged, right, wrong, memory = [], [], [], [], []
    for r in phase2:
        lab, a = r["label"], reply(r["id"])
        if lab["intent"] == "question" and lab.get("answer"):
            if lab["answer"] == "none":
                flagged.append((bool(a and a["needs_answer"] and not a["answer"]),
                                f"{r['id']}: " + ("no draft" if not a else f"answer {a['answer'] or '-'}, "
                                                                             f"needs_answer {a['needs_answer']}")))
            else:
                answered.append((bool(a and a["answer"] == lab["answer"]),
                                 f"{r['id']}: " + ("no draft" if not a else
                                                   f"{a['answer'] or 'no answer'} ≠ {lab['answer']}")))
        if lab["intent"] == "complaint" and a is not None and a["post_id"] == ids[r["id"]]:
            want = f"topic {lab['topic']}" if lab.get("topic") in asks else "generic"
            right.append((a["ask"] == want, f"{r['id']}: ask {a['ask'] or '-'} ≠ {want}"))
            wrong.append((a["ask"].startswith("topic ") and a["ask"] != want, f"{r['id']}: {a['ask']}"))
        if "memory" in lab:
            exp = lab["memory"]
            got = json.loads(a["recalled"]) if a and a["recalled"] else None
            if exp.get("recall") is None:
                ok = got is None
                why = f"{r['id']}: recalled {by_post.get(got['post_id'], got['post_id'])}" if got else ""
            elif a and ids[exp["recall"]] in json.loads(a["conversation"] or "[]"):
                ok, why = True, ""     # the earlier post is part of this very conversation: the draft covers it
            else:
                ok = bool(got and got["post_id"] == ids[exp["recall"]] and got["kind"] == exp["as"]
                          and got["settled"] == exp["settled"])
                why = f"{r['id']}: " + ("nothing recalled" if not got else
                                       f"{by_post.get(got['post_id'], got['post_id'])} as {got['kind']}, "
                                       f"settled {got['settled']}")
            memory.append((ok, why))
    for key, items in (("answered", answered), ("unanswered_flagged", flagged), ("right_ask", right),
                       ("wrong_ask", wrong), ("memory", memory)):
        rep.figures[key] = (sum(ok for ok, _ in items), len(items))
        rep.details[key] = [why for ok, why in items if (not ok if key != "wrong_ask" else ok)]
    drafts = [a for a in (store.reply_for_post(ids[r["id"]]) for r in phase2) if a]
    stubs = {a["id"] for a in drafts if a["text"].rstrip().endswith(STUB_ENDS)}
    rep.figures["stubs"] = len(stubs)
    rep.details["stubs"] = [str(s) for s in sorted(stubs)]
    multi = {p: n for p, n in store.open_replies_by_person().items() if n > 1}
    rep.figures["multi_open"] = len(multi)
    rep.details["multi_open"] = [f"{p}: {n}" for p, n in multi.items()]
