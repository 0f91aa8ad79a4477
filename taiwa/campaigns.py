"""Hashtag campaign figures, timelines, spike alerts and reports (HTML with inline SVG, CSV, JSON).

Definitions (the README repeats them):
    entry           an original post (not a repost) carrying one of the campaign's hashtags, on a covered platform,
                    between start and end; one post counts once however many queries saw it. The brand's own
                    posts and spam are not entries (counted in `excluded`)
    reposts         reposts/retweets of entries, counted apart
    participant     an author with at least one entry; *returning* when we have any post of theirs from before
                    their first entry, else *new*
    reach           sum of the authors' followers over entries; unique reach: over participants
    engagement      likes + reposts + replies of the entries
    reacted share   entries the team replied to or liked (an action sent), over entries
    spike           an hour with at least `min_count` entries and ≥ `factor` × the mean of the previous 24 hours
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import Campaign, Config
from .errors import NotFound
from .store import Store, parse_iso

LABELS = ("negative", "neutral", "positive")
COLORS = {"negative": "#d64545", "neutral": "#b8b8b8", "positive": "#3a9d5d"}


@dataclass
class Report:
    campaign: str
    hashtags: list[str]
    start: str
    end: str
    entries: int
    reposts: int
    participants: int
    new_participants: int
    returning_participants: int
    reach: int
    unique_reach: int
    engagement: dict[str, int]
    sentiment: dict[str, int]
    reacted: int
    reacted_share: float
    reactions_waiting: int
    goals: dict[str, dict[str, float]]
    top_posts: list[dict[str, Any]] = field(default_factory=list)
    top_participants: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)   # per day: date, negative, neutral, positive
    spikes: list[dict[str, Any]] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)          # the brand's own posts, spam
    platforms: dict[str, int] = field(default_factory=dict)         # entries per platform (x, instagram, ...)


def find(config: Config, name: str) -> Campaign:
    for c in config.campaigns:
        if c.name.lower() == name.lower().lstrip("#"):
            return c
    raise NotFound(f"no campaign named {name!r} in the configuration",
                   "campaigns: " + (", ".join(c.name for c in config.campaigns) or "none declared"))


def hourly_spikes(counts: dict[dt.datetime, int], *, factor: float = 3.0, min_count: int = 5,
                  baseline_hours: int = 24) -> list[dict[str, Any]]:
    """Hours far above their own recent past: count ≥ min_count and ≥ factor × mean of the previous hours."""
    if not counts:
        return []
    first, last = min(counts), max(counts)
    spikes, hour = [], first
    while hour <= last:
        n = counts.get(hour, 0)
        past = [counts.get(hour - dt.timedelta(hours=k), 0) for k in range(1, baseline_hours + 1)]
        baseline = sum(past) / baseline_hours
        if n >= min_count and n >= factor * max(baseline, 1 / baseline_hours):
            spikes.append({"hour": hour.isoformat(), "entries": n, "baseline_per_hour": round(baseline, 2)})
        hour += dt.timedelta(hours=1)
    return spikes


def build(store: Store, campaign: Campaign, *, top: int = 5, own_handles: set[str] = frozenset()) -> Report:
    rows = store.campaign_entries(campaign.name)
    own = [r for r in rows if r["handle"].lower() in own_handles]
    spam = [r for r in rows if r["intent"] == "spam" and r["handle"].lower() not in own_handles]
    skip = {r["id"] for r in own + spam}
    entries = [r for r in rows if not r["is_repost"] and r["id"] not in skip]
    reposts = sum(1 for r in rows if r["is_repost"] and r["id"] not in skip)
    by_author: dict[str, list[dict]] = defaultdict(list)
    for r in entries:
        by_author[r["author_id"]].append(r)
    first_seen = store.first_post_times(list(by_author))
    returning = sum(1 for a, posts in by_author.items() if first_seen.get(a, posts[0]["created_at"])
                    < posts[0]["created_at"])
    followers = {a: posts[0]["followers"] for a, posts in by_author.items()}
    engagement = {"likes": sum(r["likes"] for r in entries), "reposts": sum(r["reposts"] for r in entries),
                  "replies": sum(r["replies"] for r in entries)}
    engagement["total"] = sum(engagement.values())
    sentiment = Counter(r["label"] or "unclassified" for r in entries)
    reacted = sum(1 for r in entries if r["reacted"])
    actual = {"entries": len(entries), "participants": len(by_author), "reach": sum(r["followers"] for r in entries),
              "unique_reach": sum(followers.values()), "engagement": engagement["total"], "reposts": reposts,
              "positive": sentiment.get("positive", 0), "reacted": reacted}
    goals = {k: {"goal": v, "actual": actual.get(k, 0), "progress": round(actual.get(k, 0) / v, 4) if v else 0.0}
             for k, v in campaign.goals.items()}
    days: dict[str, Counter] = defaultdict(Counter)
    hours: Counter = Counter()
    for r in entries:
        t = parse_iso(r["created_at"])
        days[campaign.day_of(t).isoformat()][r["label"] or "neutral"] += 1
        hours[t.replace(minute=0, second=0, microsecond=0)] += 1
    d, timeline = campaign.start, []
    while d <= campaign.end:
        c = days.get(d.isoformat(), Counter())
        timeline.append({"date": d.isoformat(), **{lab: c.get(lab, 0) for lab in LABELS}})
        d += dt.timedelta(days=1)
    eng = lambda r: r["likes"] + r["reposts"] + r["replies"]  # noqa: E731
    top_posts = [{"post_id": r["id"], "handle": r["handle"], "platform": r["platform"], "text": r["text"],
                  "engagement": eng(r), "sentiment": r["label"], "url": r["url"], "reacted": bool(r["reacted"])}
                 for r in sorted(entries, key=lambda r: (-eng(r), r["id"]))[:top]]
    top_people = sorted(by_author.items(), key=lambda kv: (-len(kv[1]), -kv[1][0]["followers"], kv[0]))[:top]
    top_participants = [{"handle": posts[0]["handle"], "entries": len(posts), "followers": posts[0]["followers"],
                         "returning": first_seen.get(a, posts[0]["created_at"]) < posts[0]["created_at"]}
                        for a, posts in top_people]
    return Report(campaign=campaign.name, hashtags=campaign.hashtags, start=campaign.start.isoformat(),
                  end=campaign.end.isoformat(), entries=len(entries), reposts=reposts, participants=len(by_author),
                  new_participants=len(by_author) - returning, returning_participants=returning,
                  reach=actual["reach"], unique_reach=actual["unique_reach"], engagement=engagement,
                  sentiment={lab: sentiment.get(lab, 0) for lab in LABELS}, reacted=reacted,
                  reacted_share=round(reacted / len(entries), 4) if entries else 0.0,
                  reactions_waiting=sum(1 for r in entries if r["reaction_waiting"]), goals=goals,
                  top_posts=top_posts, top_participants=top_participants, timeline=timeline,
                  spikes=hourly_spikes(hours), excluded={"own_posts": len(own), "spam": len(spam)},
                  platforms=dict(sorted(Counter(r["platform"] for r in entries).items())))


def raise_spike_alerts(store: Store, config: Config) -> int:
    """One inbox alert per campaign spike hour (never twice for the same hour)."""
    new = 0
    for c in config.campaigns:
        for s in build(store, c, own_handles=config.brand_handles).spikes:
            detail = (f"#{c.name}: {s['entries']} entries in the hour from {s['hour'][:16]} UTC, "
                      f"against {s['baseline_per_hour']} an hour over the day before")
            new += store.raise_alert("campaign_spike", c.name, s["hour"], detail)
    return new


# --------------------------------------------------------------------------- files
def exclusion(row: dict[str, Any], own_handles: set[str]) -> str:
    """Why a campaign row is not an entry ('' when it is one)."""
    if row["handle"].lower() in own_handles:
        return "own post"
    if row["intent"] == "spam":
        return "spam"
    return "repost" if row["is_repost"] else ""


def cell(value: Any) -> str:
    """Outside text for a CSV cell: one that a spreadsheet would run as a formula (=HYPERLINK(…), +, -, @, or a
    tab/CR before them) is kept as text with a leading apostrophe, as OWASP's CSV-injection advice says."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_dir(base: Path, campaign: str) -> Path:
    """reports/NAME under `base`; a name that would lead outside it (../, /, a drive) is refused."""
    root = (base / "reports").resolve()
    out = (root / campaign).resolve()
    if out.parent != root:
        from .errors import ConfigError

        raise ConfigError("taiwa.toml", "campaigns.name", f"{campaign!r} cannot name a report folder",
                          "use letters, digits, spaces, - or _")
    return out


def write(report: Report, out_dir: Path, entries: list[dict[str, Any]], own_handles: set[str] = frozenset()
          ) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "report.html", "json": out_dir / "summary.json", "csv": out_dir / "entries.csv"}
    paths["json"].write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2), encoding="utf-8")
    with open(paths["csv"], "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["post_id", "platform", "platform_id", "created_at", "handle", "followers", "repost", "sentiment",
                    "likes", "reposts", "replies", "reacted", "hashtag", "excluded", "url", "text"])
        for r in entries:
            w.writerow([r["id"], r["platform"], cell(r["platform_id"]), r["created_at"], cell(r["handle"]),
                        r["followers"], int(r["is_repost"]), r["label"] or "", r["likes"], r["reposts"], r["replies"],
                        int(r["reacted"]), cell(r["hashtag"]), exclusion(r, own_handles), cell(r["url"]),
                        cell(r["text"])])
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


def _timeline_svg(timeline: list[dict[str, Any]], width: int = 720, height: int = 220) -> str:
    if not timeline:
        return ""
    peak = max(max(sum(t[lab] for lab in LABELS) for t in timeline), 1)
    bar = (width - 40) / len(timeline)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" role="img" '
             f'aria-label="entries per day by sentiment">']
    for i, t in enumerate(timeline):
        y = height
        for lab in LABELS:
            h = t[lab] / peak * (height - 10)
            if h:
                parts.append(f'<rect x="{30 + i * bar:.1f}" y="{y - h:.1f}" width="{bar * 0.8:.1f}" height="{h:.1f}" '
                             f'fill="{COLORS[lab]}"><title>{t["date"]}: {t[lab]} {lab}</title></rect>')
            y -= h
        if i % max(1, len(timeline) // 7) == 0:
            parts.append(f'<text x="{30 + i * bar:.1f}" y="{height + 16}" font-size="10">{t["date"][5:]}</text>')
    parts.append(f'<text x="0" y="12" font-size="10">{peak}</text><line x1="28" y1="{height}" x2="{width}" '
                 f'y2="{height}" stroke="#444"/></svg>')
    return "".join(parts)


def _goal_svg(goals: dict[str, dict[str, float]]) -> str:
    if not goals:
        return "<p>No KPI goals declared for this campaign.</p>"
    rows = []
    for i, (k, g) in enumerate(goals.items()):
        w = min(g["progress"], 1.0) * 300
        rows.append(f'<text x="0" y="{i * 28 + 14}" font-size="12">{html.escape(k)}</text>'
                    f'<rect x="110" y="{i * 28}" width="300" height="18" fill="#eee"/>'
                    f'<rect x="110" y="{i * 28}" width="{w:.1f}" height="18" fill="#3a6fd6"/>'
                    f'<text x="420" y="{i * 28 + 14}" font-size="12">{g["actual"]:g} / {g["goal"]:g} '
                    f'({g["progress"]:.0%})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="560" height="{len(goals) * 28}" role="img" '
            f'aria-label="progress against goals">{"".join(rows)}</svg>')


def render_html(r: Report) -> str:
    e = html.escape
    top_posts = "".join(
        f"<tr><td>@{e(p['handle'])}</td><td>{e(p['platform'])}</td><td>{e(p['text'])}</td><td>{p['engagement']}</td>"
        f"<td>{e(p['sentiment'] or '')}</td><td>{'yes' if p['reacted'] else 'no'}</td></tr>" for p in r.top_posts)
    people = "".join(f"<tr><td>@{e(p['handle'])}</td><td>{p['entries']}</td><td>{p['followers']}</td>"
                     f"<td>{'returning' if p['returning'] else 'new'}</td></tr>" for p in r.top_participants)
    spikes = "".join(f"<li>{e(s['hour'][:16])} UTC: {s['entries']} entries (baseline {s['baseline_per_hour']}/h)</li>"
                     for s in r.spikes) or "<li>none</li>"
    figures = [("entries", r.entries), ("reposts (counted apart)", r.reposts), ("participants", r.participants),
               ("new / returning", f"{r.new_participants} / {r.returning_participants}"),
               ("reach (sum of followers over entries)", f"{r.reach:,}"), ("unique reach", f"{r.unique_reach:,}"),
               ("engagement (likes / reposts / replies)",
                f"{r.engagement['total']} ({r.engagement['likes']} / {r.engagement['reposts']} / "
                f"{r.engagement['replies']})"),
               ("sentiment (neg / neu / pos)", " / ".join(str(r.sentiment[lab]) for lab in LABELS)),
               ("entries the team reacted to", f"{r.reacted} ({r.reacted_share:.0%}); {r.reactions_waiting} waiting"),
               ("not counted: our own posts / spam", f"{r.excluded.get('own_posts', 0)} / {r.excluded.get('spam', 0)}")]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in figures)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>#{e(r.campaign)} — taiwa campaign report</title>
<style>body{{font-family:system-ui,"Noto Sans CJK JP","Hiragino Sans","Yu Gothic","Meiryo",sans-serif;
max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}}th{{background:#f6f6f6}}.legend span{{display:inline-block;width:10px;height:10px;margin:0 4px}}
</style></head><body>
<h1>#{e(r.campaign)}</h1>
<p>Hashtags {e(', '.join('#' + h for h in r.hashtags))} · {e(r.start)} to {e(r.end)}</p>
<table>{rows}</table>
<h2>Goals</h2>{_goal_svg(r.goals)}
<h2>Entries per day</h2>
<p class="legend">{''.join(f'<span style="background:{COLORS[lab]}"></span>{lab}' for lab in LABELS)}</p>
{_timeline_svg(r.timeline)}
<h2>Spikes</h2><ul>{spikes}</ul>
<h2>Top posts</h2><table><tr><th>author</th><th>platform</th><th>post</th><th>engagement</th><th>sentiment</th>
<th>reacted</th></tr>{top_posts}</table>
<h2>Top participants</h2><table><tr><th>author</th><th>entries</th><th>followers</th><th></th></tr>{people}</table>
<p>Exports: <a href="summary.json">summary.json</a> · <a href="entries.csv">entries.csv</a></p>
</body></html>
"""


def refresh_written_reports(store: Store, config) -> list[Path]:
    """Rewrite every campaign report already written to disk from what the store holds now (after `taiwa
    forget`, no file may still name the person); returns the folders rewritten."""
    done = []
    for c in config.campaigns:
        folder = report_dir(config.data_dir, c.name)
        if folder.exists():
            write(build(store, c, own_handles=config.brand_handles), folder, store.campaign_entries(c.name),
                  config.brand_handles)
            done.append(folder)
    return done
