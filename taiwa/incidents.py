"""Incidents: many people reporting the same thing at about the same time are one problem, not many rows.

A post joins an incident when another author's post on the same topic, within `[triage] incident_window_hours`
before it, says nearly the same thing: their multilingual embeddings, centred as topics centre them, are at least
`[triage] incident_similarity` alike (for an incident: on average over its members in the window, as single
pairs are noisy). Either it joins that incident, or the two posts start one. Only posts that
report a problem (a complaint, or a negative post) group; posts are taken oldest first, so the grouping does not
depend on how a run is chunked.

An incident is stored with a title (its most central post, clipped; chosen again each time the incident doubles),
its size, its authors, and when it was first
and last seen. The inbox shows it as one group with one reply for all: the team writes it once (with {name} for
each author), and every member's draft is set from it, personalised, each still approved and sent at most once.
When an incident reaches `[triage] incident_alert_at` posts, an alert is raised, like a campaign spike.
"""

from __future__ import annotations

import bisect
import re
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .names import greeting_name
from .store import Store, now_iso, parse_iso

TITLE_CHARS = 90


@dataclass
class GroupReport:
    joined: int = 0                 # posts that joined an incident (new ones included)
    created: list[int] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)


def _centred(vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    from .models.sentiment import needs_multilingual, reference_e5
    from .models.topics import background_means

    means = background_means(reference_e5())
    v = np.asarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    m = np.stack([means["other" if needs_multilingual(t) else "latin"] for t in texts])
    c = v - m
    return c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-12)


def group(store: Store, posts: Sequence[dict[str, Any]], *, window_hours: float, similarity: float,
          alert_at: int) -> GroupReport:
    """Put each problem post (dicts with id, author_id, created_at, text, topic) into an incident where one
    fits. Idempotent: a post already in an incident is left alone.

    Cost grows with the window, not the database: the candidates (problem posts on a topic) are read once per
    topic for the whole call, from the earliest post's window to the latest post, and each post takes its own
    window from them; a post's centred vector is computed once per call; counts are kept per join in constant
    work, and titles are chosen again (once, at the end of the call) only for incidents that are new or have
    doubled in size."""
    report = GroupReport()
    window = dt.timedelta(hours=window_hours)
    centred: dict[int, np.ndarray] = {}
    retitle: set[int] = set()
    todo = sorted((p for p in posts if p.get("topic")), key=lambda p: (p["created_at"], p["id"]))
    pools = {topic: _Pool(store, topic, [parse_iso(p["created_at"]) for p in todo if p["topic"] == topic], window)
             for topic in {p["topic"] for p in todo}}

    def vectors_of(rows: Sequence[dict[str, Any]]) -> np.ndarray:
        new = [r for r in rows if r["post_id"] not in centred]
        if new:
            for r, v in zip(new, _centred(np.stack([r["vector"] for r in new]), [r["text"] for r in new])):
                centred[r["post_id"]] = v
        return np.stack([centred[r["post_id"]] for r in rows])

    for post in todo:
        if store.incident_of(post["id"]) is not None:
            continue
        at = parse_iso(post["created_at"])
        pool = pools[post["topic"]]
        cands = pool.window(at - window, at, post_id=post["id"], author_id=post["author_id"])
        if not cands:
            continue
        own = pool.vector(post["id"])
        if own is None:
            own = store.vectors([post["id"]]).get(post["id"])
        if own is None:
            continue
        own_c = vectors_of([{"post_id": post["id"], "vector": own, "text": post["text"]}])[0]
        sims = vectors_of(cands) @ own_c
        # An incident is judged by the post's mean likeness to its members in the window (single pairs are noisy);
        # a post not yet in one, by itself.
        options: dict[Any, list[float]] = {}
        for cand, sim in zip(cands, sims):
            key = cand["incident_id"] if cand["incident_id"] is not None else ("post", cand["post_id"])
            options.setdefault(key, []).append(float(sim))
        key, scores = max(options.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))
        score = sum(scores) / len(scores)
        if score < similarity:
            continue
        with store.atomic():
            if isinstance(key, tuple):
                first = next(c for c in cands if c["post_id"] == key[1])
                incident = store.create_incident(post["topic"], first["post_id"], at=first["created_at"])
                first["incident_id"] = incident
                report.created.append(incident)
            else:
                incident = key
            store.add_to_incident(incident, post["id"], score)
            store.grow_incident(incident, post["id"])
        pool.joined(post["id"], incident)
        report.joined += 1
        info = store.incident(incident)
        size_before = info["size"] - 1
        # The title (the most central member) is chosen again whenever the incident has doubled since it was last
        # chosen (a new incident's size is 2): one of thousands of posts is not re-read for every post that joins.
        if info["size"] & size_before == 0:
            retitle.add(incident)
        if size_before < alert_at <= info["size"]:   # it has just reached the alert size
            refresh(store, incident)  # the alert carries the incident's title
            info = store.incident(incident)
            if store.raise_alert("incident", f"incident #{incident} ({info['topic']})", info["first_seen"],
                                 f"{info['size']} posts from {info['authors']} people about {info['topic']} "
                                 f"since {info['first_seen'][:16]}: {info['title']}"):
                report.alerts.append(incident)
    for incident in sorted(retitle):
        refresh(store, incident)
    return report


class _Pool:
    """One topic's problem posts from the earliest window of a group() call to its latest post, read in one query
    (a post per query re-read the same busy hours for every post). Joins made during the call are written here as
    well as in the store, so later posts of the call see them."""

    def __init__(self, store: Store, topic: str, times: list[dt.datetime], window: dt.timedelta):
        rows = store.incident_candidates(topic, since=min(times) - window, until=max(times))
        # Sorted here, not in SQL: bisect needs Python's string order, and PostgreSQL may collate differently.
        self.rows = sorted(rows, key=lambda r: (r["created_at"], r["post_id"]))
        self.keys = [r["created_at"] for r in self.rows]
        self.by_id = {r["post_id"]: r for r in self.rows}

    def window(self, since: dt.datetime, until: dt.datetime, *, post_id: int, author_id: str) -> list[dict[str, Any]]:
        """Other authors' problem posts in [since, until] (the same bounds, compared as the store compares them)."""
        lo = bisect.bisect_left(self.keys, now_iso(since))
        hi = bisect.bisect_right(self.keys, now_iso(until))
        return [r for r in self.rows[lo:hi] if r["post_id"] != post_id and r["author_id"] != author_id]

    def vector(self, post_id: int) -> np.ndarray | None:
        row = self.by_id.get(post_id)
        return None if row is None else row["vector"]

    def joined(self, post_id: int, incident: int) -> None:
        if post_id in self.by_id:
            self.by_id[post_id]["incident_id"] = incident


def refresh(store: Store, incident_id: int) -> None:
    """Recount an incident and choose its title: the member post closest to all the others (the largest sum of
    centred cosines to the rest, computed against the members' summed vector: linear in the incident's size)."""
    members = store.incident_members(incident_id)
    if not members:
        store.update_incident(incident_id, size=0, authors=0)
        return
    vectors = store.vectors([m["post_id"] for m in members])
    ids = [m["post_id"] for m in members if m["post_id"] in vectors]
    rep = members[0]["post_id"]
    if len(ids) > 2:
        by_id = {m["post_id"]: m for m in members}
        c = _centred(np.stack([vectors[i] for i in ids]), [by_id[i]["text"] for i in ids])
        rep = ids[int(np.argmax(c @ c.sum(axis=0)))]
    text = next(m["text"] for m in members if m["post_id"] == rep)
    title = " ".join(text.split())
    title = title if len(title) <= TITLE_CHARS else title[:TITLE_CHARS - 1].rstrip() + "…"
    store.update_incident(incident_id, size=len(members), authors=len({m["author_id"] for m in members}),
                          first_seen=min(m["created_at"] for m in members),
                          last_seen=max(m["created_at"] for m in members), representative_post_id=rep, title=title)


def group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inbox rows in their order, except that an incident's members follow its highest-ranked one (one group);
    each row gets `incident_first` (True on the group's first row)."""
    order: list[Any] = []
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        key = ("incident", r["incident"]) if r.get("incident") is not None else ("action", r["id"])
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(r)
    out = []
    for key in order:
        for i, r in enumerate(groups[key]):
            out.append({**r, "incident_first": key[0] == "incident" and i == 0})
    return out


def personalise(text: str, action: dict[str, Any]) -> str:
    """One reply for all, made this author's: {name} (their cleaned display name) and {handle} filled in,
    nothing else touched."""
    handle = action.get("handle") or ""
    display = greeting_name(action.get("author_name") or "", handle)
    return text.replace("{name}", display).replace("{handle}", f"@{handle}")


def shared_text(action: dict[str, Any]) -> str:
    """A draft made general again: this author's greeting and handle replaced by {name} and {handle}, so it can
    start the one reply for all (never one person's name sent to everyone)."""
    handle = action.get("handle") or ""
    text = action.get("text") or ""
    display = greeting_name(action.get("author_name") or "", handle, lang=action.get("lang") or "en")
    greeting = greeting_name(action.get("author_name") or "", handle)
    for this, placeholder in ((display, "{name}"), (greeting, "{name}"), (f"@{handle}", "{handle}"),
                              (handle, "{handle}")):
        if this:
            text = re.sub(rf"(?<![\w@]){re.escape(this)}(?!\w)", placeholder, text)
    return text


def reply_to_all(store: Store, incident_id: int, text: str, *, actor: str, approve: bool = False
                 ) -> dict[str, list[int]]:
    """Set every open reply draft of the incident to `text`, personalised per author; approve them too if asked.
    Drafts a person already approved, sent or rejected are left as they are."""
    from .responders import approval

    from .errors import TaiwaError

    store.incident(incident_id)   # NotFound for an unknown id
    done: dict[str, list] = {"set": [], "approved": [], "skipped": [], "refused": []}
    for action in store.incident_actions(incident_id):
        if action["kind"] != "reply" or action["state"] not in ("pending", "failed"):
            done["skipped"].append(action["id"])
            continue
        mine = personalise(text, action)
        try:
            if approve:
                approval.approve(store, action["id"], actor=actor, text=mine)
                done["approved"].append(action["id"])
            else:
                store.edit_text(action["id"], mine, actor)
        except TaiwaError as e:   # e.g. too long once this author's name is in: that one stays as it was
            done["refused"].append((action["id"], e.message))
            continue
        done["set"].append(action["id"])
    return done
