"""listen → classify → triage (intent, priority, campaigns, drafts). The daemon and `taiwa demo` both call these.

Each step reads what the previous one left in the store and is idempotent: run it twice, nothing doubles.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import incidents as incidents_mod
from .config import Config
from .errors import LeaseLost, ListenerPaused, TaiwaError
from .listeners.base import Listener, post_problem
from .listeners.replay import ReplayListener
from .models import intent as intents
from .models import priority
from .models import rules as rules_mod
from .models import topics as topics_mod
from .models.sentiment import SentimentModel
from .responders import answers as answers_mod
from .responders import conversation, llm, policy
from .store import Store, parse_iso

Progress = Callable[[int], None]
ESCALATE_SCORE = 6.0   # a topic's score (σ above everyday posts) that escalates without one of its keywords
log = logging.getLogger(__name__)


@dataclass
class ListenReport:
    new: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)
    paused: dict[str, str] = field(default_factory=dict)   # listener → why it waits, and until when
    failed: dict[str, str] = field(default_factory=dict)   # listener → what stopped it this run (the others ran)
    lost: list[str] = field(default_factory=list)           # streams another worker took over mid-read


def replay_listeners(config: Config) -> list[ReplayListener]:
    own = frozenset(config.brand_handles)
    return [ReplayListener(config.resolve(p), own_handles=own) for p in config.platform("replay")["paths"]]


class Unavailable:
    """Stands in for a platform whose listeners could not be built (missing credentials, server unreachable while
    signing in): reading it raises what went wrong, so `listen` records it like any listener's failure and the
    other platforms still run."""

    def __init__(self, name: str, error: BaseException):
        self.name, self.error = name, error

    def read(self, cursor: str | None):
        raise self.error


def platform_listeners(config: Config, store: Store, platform: str) -> list[Listener]:
    """The listeners taiwa.toml asks for on one platform (the CLI's `listen` and the daemon's jobs both use
    this); an Unavailable stand-in when they cannot be built."""
    try:
        return _build_listeners(config, store, platform)
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001 - reported through listen(), never a crash of the whole run
        return [Unavailable(platform, e)]


def _build_listeners(config: Config, store: Store, platform: str) -> list[Listener]:
    """Platform modules are imported only when used: each pulls in its client library."""
    if platform == "replay":
        return list(replay_listeners(config))
    if platform == "x":
        from .listeners import x

        return list(x.listeners_from_config(config, store))
    if platform == "instagram":
        from .listeners import instagram

        return instagram.listeners_from_config(config)
    if platform == "mastodon":
        from .listeners import mastodon

        return mastodon.listeners_from_config(config)
    if platform == "bluesky":
        from .listeners import bluesky

        return bluesky.listeners_from_config(config)
    raise ValueError(f"unknown platform {platform!r}")


def listen(store: Store, listeners: Iterable[Listener], progress: Progress | None = None,
           now: dt.datetime | None = None, stop: Callable[[], bool] | None = None,
           lease: tuple[str, float] | None = None) -> ListenReport:
    """Read every listener from its stored cursor; each batch and its cursor are committed together.

    A listener under a recorded pause (rate limit, budget) is skipped; one that pauses now keeps what it
    read and records until when it must wait. One listener's failure, whatever it is (an unreachable server,
    a file that cannot be read, a bug in a client library), is recorded and reported, and the others still
    run. Every post passes `post_problem` before it is stored: a record SQLite could not take is named and
    skipped, never allowed to fail its batch. Nothing sleeps.

    lease: (worker id, lease seconds) for a worker sharing PostgreSQL: each batch is stored only while the
    worker still holds the stream's lease (checked inside the ingest transaction); once it is lost the stream
    is left to its new holder."""
    report = ListenReport()
    for listener in listeners:
        paused = store.paused_until(listener.name, now)
        if paused:
            report.paused[listener.name] = f"{paused[1]} (until {paused[0]:%Y-%m-%d %H:%M} UTC)"
            continue
        got = 0
        try:
            for batch in listener.read(store.cursor(listener.name)):
                if stop and stop():
                    break   # this batch is dropped uncommitted; the cursor still points at it
                posts, problems = _storable(batch, listener.name)
                result = store.ingest(posts, listener=listener.name, cursor=batch.cursor, problems=problems,
                                      reads=(batch.platform, batch.reads - batch.reserved, batch.reserved_at)
                                      if batch.reads != batch.reserved else None, lease=lease, at=now)
                report.new += result.new
                report.updated += result.updated
                report.problems += problems
                got += len(posts)
                if progress:
                    progress(len(batch.posts))
        except LeaseLost:
            report.lost.append(listener.name)
            log.info("stream %s was taken over by another worker after %d posts", listener.name, got)
            continue
        except ListenerPaused as e:
            store.pause_listener(listener.name, e.until, e.message)
            store.record_run(listener.name, f"paused after {got} posts: {e.message}", at=now)
            report.paused[listener.name] = f"{e.message} (until {e.until:%Y-%m-%d %H:%M} UTC)"
            continue
        except Exception as e:  # noqa: BLE001 - one source's failure must not stop the others
            message = str(e) if isinstance(e, TaiwaError) else describe_failure(e)
            if not isinstance(e, TaiwaError):
                log.warning("listener %s failed", listener.name, exc_info=True)
            store.record_run(listener.name, f"error after {got} posts", error=message.splitlines()[0], at=now)
            report.failed[listener.name] = message
            continue
        store.record_run(listener.name, f"ok, {got} posts", at=now)
    return report


def describe_failure(e: BaseException) -> str:
    """A one-line account of an unexpected error for a person: its kind and message, never a traceback."""
    if isinstance(e, RecursionError):
        return ("the client library recursed without end (Mastodon.py does this when the server's "
                "/api/v1/instance is unreachable); is the server up?")
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    kind = type(e).__name__
    if any(k in kind for k in ("Connect", "Timeout", "Network")) or isinstance(e, OSError):
        return f"could not reach the platform ({kind}: {text}); check the network and the server address"
    return f"{kind}: {text}" if text else kind


def _storable(batch, listener: str) -> tuple[list, list[str]]:
    """The batch's posts that can be stored, and its problems plus one line for each post that cannot."""
    posts, problems = [], list(batch.problems)
    for post in batch.posts:
        why = post_problem(post)
        if why:
            problems.append(f"{listener}: post {str(post.platform_id)[:40]}: {why}")
        else:
            posts.append(post)
    return posts, problems


def classify(store: Store, model: SentimentModel, *, chunk: int = 256, progress: Progress | None = None,
             stop: Callable[[], bool] | None = None) -> int:
    """Label every post that has no sentiment yet; saved chunk by chunk, so an interruption loses little."""
    done = 0
    while not (stop and stop()):
        # Workers sharing PostgreSQL each hold their chunk (row locks, SKIP LOCKED) until it is saved: nobody
        # else classifies it, and a worker that dies mid-chunk leaves it to the others.
        with store.claim_unclassified(chunk) as rows:
            if not rows:
                break
            results = model.classify([r["text"] for r in rows])
            with store.atomic(exclusive=False):
                store.save_sentiments(zip((r["id"] for r in rows), results))
                store.save_vectors((r["id"], s.vector) for r, s in zip(rows, results))
        done += len(rows)
        if progress:
            progress(len(rows))
    return done


def campaigns_for(post: dict[str, Any], config: Config) -> list[tuple[str, str]]:
    """(campaign, matching hashtag) for each configured campaign this post entered."""
    tags = {t.lower() for t in json.loads(post["hashtags"])}
    when = parse_iso(post["created_at"])
    out = []
    for c in config.campaigns:
        hit = next((h for h in c.hashtags if h.lower() in tags), None)
        if hit and c.covers(post["platform"], when):
            out.append((c.name, hit))
    return out


def post_vectors(store: Store, rows: list[dict[str, Any]]) -> list[Any]:
    """Each post's multilingual-e5 embedding: the one the sentiment pass stored, or (a checkpoint model that made
    none) computed here once and stored, so topics, intent, incidents and answers share one encoder pass."""
    from .models.sentiment import shared_e5

    stored = store.vectors([r["id"] for r in rows])
    missing = [r for r in rows if r["id"] not in stored]
    if missing:
        made = shared_e5().embed([r["text"] for r in missing])
        store.save_vectors((r["id"], v) for r, v in zip(missing, made))
        stored.update({r["id"]: v for r, v in zip(missing, made)})
    return [stored[r["id"]] for r in rows]


@dataclass
class TriageReport:
    triaged: int = 0
    drafts: int = 0
    likes: int = 0
    campaign_entries: int = 0
    incident_posts: int = 0          # posts that joined an incident this run
    incidents: int = 0               # incidents started this run
    merged: int = 0                  # posts that joined their author's open draft instead of a new one
    ignored: dict[str, int] = field(default_factory=dict)


def triage(store: Store, config: Config, *, now: dt.datetime | None = None, progress: Progress | None = None,
           chunk: int = 500, stop: Callable[[], bool] | None = None) -> TriageReport:
    """For each newly classified post: intent, priority, campaign entry, and a reply/like draft where wanted."""
    now = now or store.clock()
    report = TriageReport()
    store.sync_campaigns(config.campaigns)
    rules = config.rules or rules_mod.RuleSet([])
    topic_finder = topics_mod.detector(tuple(config.topics), config.get("triage", "topic_threshold"),
                                       topics_mod.brand_words(config)) \
        if config.topics else None
    intent_model = intents.load()
    drafter = conversation.Drafter(store, config, now=now, answers=answers_mod.index(config), topics=topic_finder,
                                   writer=llm.writer(config))
    after = None   # where this run has got to: each chunk starts there, not at the oldest post ever stored
    while not (stop and stop()):
        with store.triage_turn():
            rows = store.posts_to_triage(limit=chunk, after=after)
            if not rows and after is not None:
                # Nothing newer: one look from the start, for posts stored meanwhile with an older time.
                after = None
                rows = store.posts_to_triage(limit=chunk)
            if not rows:
                break
            after = (rows[-1]["created_at"], rows[-1]["id"])
            _triage_chunk(store, config, rows, report, drafter, topic_finder, intent_model, rules, now=now)
        if progress:
            progress(len(rows))
    return report


def _triage_chunk(store: Store, config: Config, rows: list[dict[str, Any]], report: TriageReport, drafter,
                  topic_finder, intent_model, rules, *, now: dt.datetime) -> None:
    weights = config.weights
    half_life = config.get("priority", "recency_half_life_hours")
    reach_full = config.get("priority", "reach_full_at_followers")
    texts = [r["text"] for r in rows]
    vecs = post_vectors(store, rows)
    prios, entries = [], []
    found = topic_finder.detect(texts, vecs) if topic_finder else [None] * len(rows)
    its = intent_model.classify(texts, vecs, [r["label"] for r in rows]) if intent_model else \
        [intents.detect(r["text"], r["label"]) for r in rows]
    for post, match, it, vec in zip(rows, found, its, vecs):
        post = {**post, "topic": match.name if match else ""}
        camps = campaigns_for(post, config)
        if camps and it.name in ("praise", "other"):
            # Taking part in one of the brand's own hashtag campaigns: someone to thank, not chatter.
            it = dataclasses.replace(it, name="campaign")
        decision = policy.decide(post, it, config, [c for c, _ in camps])
        ignore = decision.why if decision.why in ("spam", "our own post", "repost") else ""
        ruled = rules.apply(post, intent=it.name, sentiment=post["label"]) if not ignore else rules_mod.Outcome()
        if match and not ignore:
            topic = topic_finder.topic(match.name)
            # A topic escalates only with evidence beyond the embedding: one of its keywords, or a very high score.
            if topic.escalate and (len(match.evidence) > 1 or match.score >= ESCALATE_SCORE) \
                    and decision.template not in ("praise", "campaign"):
                ruled.escalate = True
                ruled.fired.insert(0, {"rule": f"topic {topic.name}", "evidence": match.evidence[:2]})
            ruled.assign = ruled.assign or topic.assign
        if ruled.hide:
            decision = policy.Decision([], why=f"hidden by rule {ruled.hide}")
        elif ruled.escalate and post.get("can_reply", 1):
            # An escalated post (a safety report, a legal or churn threat, a rule's VIP) always gets a reply
            # draft for a person to finish, and never a like: a heart under "allergic reaction" is wrong.
            template = decision.template if decision.template in ("complaint", "question", "look") else "negative"
            decision = policy.Decision(["reply"], template=template, unsure=decision.unsure)
        elif ruled.no_like:
            decision.kinds = [k for k in decision.kinds if k != "like"]
        created = parse_iso(post["created_at"])
        p = priority.score(negative=post["negative"], intent=it.name, evidence=it.evidence,
                           followers=post["followers"], created_at=created, now=now,
                           campaigns=[c for c, _ in camps], weights=weights, half_life_hours=half_life,
                           reach_full_at=reach_full, ignore=ignore, boost=ruled.boost,
                           escalated=ruled.escalate, intent_reason=it.reason(),
                           sarcasm_positive=post["positive"] * (it.confidence or 0.0)
                           if getattr(it, "sarcasm", False) else None,
                           rule_reasons=([match.reason()] if match and not ignore else []) + ruled.reasons()
                           + [f"needs a look: {u}" for u in decision.unsure])
        prios.append({"post_id": post["id"], "score": p.score, "intent": it.name,
                      "sentiment": p.components["sentiment"], "intent_c": p.components["intent"],
                      "reach": p.components["reach"], "recency": p.components["recency"],
                      "campaign": p.components["campaign"], "reasons": p.reasons,
                      "escalated": ruled.escalate, "rules": ruled.fired, "tags": ruled.tags,
                      "topic": match.name if match else "", "topic_score": match.score if match else None,
                      "topic_evidence": match.evidence if match else []})
        entries += [(c, post["id"], tag) for c, tag in camps]
        if decision.why:
            report.ignored[decision.why] = report.ignored.get(decision.why, 0) + 1
        drafter.judged(post["id"], intent=it.name, topic=post["topic"], label=post["label"])
        if not decision.kinds:
            continue
        drafter.add(post, kinds=decision.kinds, template=decision.template, intent=it.name, vector=vec,
                    campaign=camps[0][0] if camps else "", assign=ruled.assign, unsure=decision.unsure)
    new_replies = sum(1 for a in drafter.new if a["kind"] == "reply")
    new_likes = sum(1 for a in drafter.new if a["kind"] == "like")
    with store.atomic():
        store.save_priorities(prios)
        store.add_campaign_entries(entries)
        _, merged = drafter.flush()
    problems = [{**r, "topic": p["topic"]} for r, p in zip(rows, prios)
                if p["topic"] and p["score"] > 0 and (p["intent"] == "complaint" or r["label"] == "negative")]
    grouped = incidents_mod.group(store, problems, window_hours=config.get("triage", "incident_window_hours"),
                                  similarity=config.get("triage", "incident_similarity"),
                                  alert_at=config.get("triage", "incident_alert_at"))
    report.incident_posts += grouped.joined
    report.incidents += len(grouped.created)
    report.triaged += len(rows)
    report.drafts += new_replies
    report.likes += new_likes
    report.merged += merged
    report.campaign_entries += len(entries)
