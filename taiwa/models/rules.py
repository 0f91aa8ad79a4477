"""Rules: "when these hold, do that" — the rules engine social teams configure in their inbox tools.

    [[rules]]
    name = "influencer"
    when = { followers_at_least = 50000 }      # every condition must hold
    then = { escalate = true }

Conditions: followers_at_least, verified, reposts_at_least, topic (a [[topics]] name), intent, sentiment, platform,
lang, keywords (any of them; English and Japanese, case- and width-insensitive), handles. Actions: escalate (always above the rest),
boost (added to the score), assign (a user of the inbox), tag, hide (no draft; counted apart), no_like.

Four built-in rules are on unless `[triage] builtin_rules` leaves them out: legal threats, churn threats, safety
reports and big accounts (100,000 followers or more, a complaint or a negative post) escalate. Every rule that fired is stored with the post's priority and shown in its "why", with the
words that made it fire.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

CONDITIONS = {"followers_at_least": "int", "verified": "bool", "reposts_at_least": "int", "topic": "list[str]",
              "intent": "list[str]",
              "sentiment": "list[str]", "platform": "list[str]", "lang": "list[str]", "keywords": "list[str]",
              "handles": "list[str]"}
ACTIONS = {"escalate": "bool", "boost": "float", "assign": "str", "tag": "list[str]", "hide": "bool",
           "no_like": "bool"}
INTENT_NAMES = ("complaint", "question", "praise", "spam", "other")
BIG_ACCOUNT = 100_000   # followers: the built-in "big account" rule escalates their complaints and negative posts
SENTIMENT_NAMES = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Rule:
    name: str
    when: dict[str, Any]
    then: dict[str, Any]
    builtin: bool = False
    # Built-ins only: a further test on (post, intent, sentiment) returning its evidence, or None when it fails.
    test: Callable[[dict[str, Any], str, str], list[str] | None] | None = field(default=None, compare=False)


@dataclass
class Outcome:
    """What the rules decided for one post."""

    fired: list[dict[str, Any]] = field(default_factory=list)   # [{"rule": name, "evidence": [...]}]
    escalate: bool = False
    boost: float = 0.0
    assign: str = ""
    tags: list[str] = field(default_factory=list)
    hide: str = ""           # the rule that hid it
    no_like: bool = False

    @property
    def names(self) -> list[str]:
        return [f["rule"] for f in self.fired]

    def reasons(self) -> list[str]:
        out = []
        for f in self.fired:
            words = ", ".join(repr(w) for w in f["evidence"][:3])
            out.append(f"rule {f['rule']}" + (f": {words}" if words else ""))
        return out


def fold(text: str) -> str:
    """Case- and width-insensitive form: full-width Latin and half-width kana are folded (NFKC), then casefolded."""
    return unicodedata.normalize("NFKC", text or "").casefold()


BUILTIN: dict[str, Rule] = {
    "legal_threat": Rule("legal threat", {"keywords": [
        "lawyer", "attorney", "sue you", "suing", "lawsuit", "small claims", "legal action", "take you to court",
        "consumer protection", "trading standards", "chargeback",
        "訴える", "訴えます", "訴訟", "弁護士", "法的措置", "消費者センター", "裁判", "少額訴訟"]}, {"escalate": True},
        builtin=True),
    "churn_threat": Rule("churn threat", {"keywords": [
        "cancel my subscription", "cancelling my subscription", "canceling my subscription", "cancel my membership",
        "thinking about cancelling", "thinking about canceling", "going to cancel", "cancel my sub",
        "cancel* my * membership", "cancel* my * subscription", "cancel* my * account", "cancel* my * plan",
        "ending my * subscription", "switching to a competitor", "unsubscribing", "never using you again",
        "close my account", "delete my account", "switching to another", "switching brands", "never buying from",
        "never ordering from", "last time i order", "taking my business elsewhere",
        "解約", "退会", "もう買わない", "二度と買わない", "二度と使わない", "二度と行かない", "乗り換え"]}, {"escalate": True},
        builtin=True),
    "safety": Rule("safety", {"keywords": [
        "allergic reaction", "allergy", "anaphylaxis", "anaphylactic", "epipen", "in the hospital", "emergency room",
        "burned myself", "burnt my", "scalded", "injured", "injury", "glass in", "piece of glass", "metal in my",
        "piece of metal", "foreign object", "plastic in my", "hair in my", "food poisoning", "sick after",
        "vomiting", "threw up", "choking", "caught fire", "smoke came", "exploded", "electric shock",
        "アレルギー", "アナフィラキシー", "異物", "混入", "火傷", "怪我", "病院", "救急", "食中毒",
        "発火", "発煙", "破裂", "感電", "ガラス片", "金属片"]}, {"escalate": True}, builtin=True),
    # An unhappy post from an account this big is read by a crowd: a person answers it first.
    "big_account": Rule("big account", {"followers_at_least": BIG_ACCOUNT}, {"escalate": True}, builtin=True,
                        test=lambda post, intent, sentiment: ([f"{intent}" if intent == "complaint" else sentiment]
                                                              if intent == "complaint" or sentiment == "negative"
                                                              else None)),
}


class RuleSet:
    """The configured rules plus the built-ins that are on, each keyword pattern compiled once."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._patterns = {r.name: _keyword_pattern(r.when.get("keywords", [])) for r in rules}

    def apply(self, post: dict[str, Any], *, intent: str, sentiment: str) -> Outcome:
        out = Outcome()
        text = fold(post.get("text", ""))
        for rule in self.rules:
            evidence = self._matches(rule, post, text, intent, sentiment)
            if evidence is None:
                continue
            out.fired.append({"rule": rule.name, "evidence": evidence})
            t = rule.then
            out.escalate |= bool(t.get("escalate"))
            out.boost += float(t.get("boost", 0.0))
            out.assign = out.assign or t.get("assign", "")
            out.tags += [tag for tag in t.get("tag", []) if tag not in out.tags]
            if t.get("hide") and not out.hide:
                out.hide = rule.name
            out.no_like |= bool(t.get("no_like"))
        return out

    def _matches(self, rule: Rule, post: dict[str, Any], text: str, intent: str, sentiment: str
                 ) -> list[str] | None:
        """The evidence (matched words, or the conditions that held) if every condition holds, else None."""
        w, evidence = rule.when, []
        if "followers_at_least" in w:
            if int(post.get("followers") or 0) < w["followers_at_least"]:
                return None
            evidence.append(f"{int(post.get('followers') or 0):,} followers")
        if "verified" in w and bool(post.get("verified")) != w["verified"]:
            return None
        if "reposts_at_least" in w:
            if int(post.get("reposts") or 0) < w["reposts_at_least"]:
                return None
            evidence.append(f"{int(post.get('reposts') or 0):,} reposts")
        if "topic" in w and (post.get("topic") or "") not in w["topic"]:
            return None
        if "intent" in w and intent not in w["intent"]:
            return None
        if "sentiment" in w and sentiment not in w["sentiment"]:
            return None
        if "platform" in w and post.get("platform") not in w["platform"]:
            return None
        if "lang" in w and (post.get("lang") or "") not in w["lang"]:
            return None
        if "handles" in w and fold(post.get("handle", "")).lstrip("@") not in {fold(h).lstrip("@")
                                                                                for h in w["handles"]}:
            return None
        pattern = self._patterns[rule.name]
        if pattern is not None:
            found = list(dict.fromkeys(m.group(0) for m in pattern.finditer(text)))
            if not found:
                return None
            evidence = found + evidence
        if rule.test is not None:
            extra = rule.test(post, intent, sentiment)
            if extra is None:
                return None
            evidence += extra
        return evidence


MAX_WILDCARDS = 3


def _keyword_pattern(words: list[str]) -> re.Pattern | None:
    """One pattern for a rule's keywords: Latin words match whole words (\"sue\" not in \"issue\"), others as
    substrings (Japanese has no spaces). A `*` stands for a few more letters or words within one sentence:
    "cancel* my * membership" matches "cancelling my Nami Plus membership"."""
    if not words:
        return None
    parts = []
    for w in sorted({fold(w) for w in words}, key=len, reverse=True):
        esc = re.escape(w).replace(r"\ \*\ ", r"\ (?:[^\s.!?。！？]+\ ){0,3}").replace(r"\*", r"[^\s.!?。！？]{0,12}")
        parts.append(rf"(?<!\w){esc}(?!\w)" if w[:1].isascii() and w[-1:].isascii() else esc)
    return re.compile("|".join(parts))


def parse_rules(raw: Any, builtin_names: list[str], file: str, topics: Sequence[str] | None = None) -> RuleSet:
    """[[rules]] from taiwa.toml and the built-ins named in [triage] builtin_rules → a RuleSet; ConfigError names
    the rule and key that are wrong."""
    from ..errors import ConfigError

    unknown = [n for n in builtin_names if n not in BUILTIN]
    if unknown:
        raise ConfigError(file, "triage.builtin_rules", f"unknown built-in rule(s) {unknown}",
                          f"built-in rules: {', '.join(BUILTIN)} (an empty list turns them all off)")
    rules = [BUILTIN[n] for n in builtin_names]
    if raw is None:
        return RuleSet(rules)
    if not isinstance(raw, list):
        raise ConfigError(file, "rules", "expected an array of tables", "write each rule as [[rules]]")
    names = {r.name for r in rules}
    for i, r in enumerate(raw):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(file, where, "expected a table", "[[rules]] with name, when and then")
        extra = set(r) - {"name", "when", "then"}
        if extra:
            raise ConfigError(file, f"{where}.{sorted(extra)[0]}", "unknown key", "a rule has name, when and then")
        name = r.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(file, f"{where}.name", "missing required key", 'name = "influencer"')
        if name in names:
            raise ConfigError(file, f"{where}.name", f"two rules are called {name!r}", "give each rule its own name")
        names.add(name)
        when = _check_part(file, f"{where}.when", r.get("when"), CONDITIONS, "followers_at_least = 50000")
        then = _check_part(file, f"{where}.then", r.get("then"), ACTIONS, "escalate = true")
        checks = [("intent", INTENT_NAMES), ("sentiment", SENTIMENT_NAMES)]
        if topics is not None:
            checks.append(("topic", tuple(topics)))
        for key, allowed in checks:
            bad = [v for v in when.get(key, []) if v not in allowed]
            if bad:
                raise ConfigError(file, f"{where}.when.{key}", f"unknown value(s) {bad}",
                                  f"use: {', '.join(allowed) or '(no [[topics]] are declared)'}")
        for word in when.get("keywords", []):
            if word.count("*") > MAX_WILDCARDS:
                raise ConfigError(file, f"{where}.when.keywords", f"{word!r} has {word.count('*')} wildcards; at most "
                                  f"{MAX_WILDCARDS} are allowed in one keyword (each one multiplies the work per post)",
                                  'split it into shorter keywords, e.g. "cancel* my * membership"')
        if not when:
            raise ConfigError(file, f"{where}.when", "a rule needs at least one condition",
                              "when = { followers_at_least = 50000 }")
        if not then:
            raise ConfigError(file, f"{where}.then", "a rule needs at least one action", "then = { escalate = true }")
        rules.append(Rule(name, when, then))
    return RuleSet(rules)


def _check_part(file: str, where: str, table: Any, spec: dict[str, str], example: str) -> dict[str, Any]:
    from ..errors import ConfigError

    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(file, where, "expected an inline table", f"{where.rsplit('.', 1)[1]} = {{ {example} }}")
    out: dict[str, Any] = {}
    for key, value in table.items():
        kind = spec.get(key)
        if kind is None:
            raise ConfigError(file, f"{where}.{key}", "unknown key", f"known here: {', '.join(spec)}")
        if kind == "list[str]" and isinstance(value, str):
            value = [value]
        ok = {"int": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
              "bool": isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
              "str": isinstance(value, str),
              "list[str]": isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value),
              }[kind]
        if not ok:
            raise ConfigError(file, f"{where}.{key}", f"expected {kind}, got {value!r}",
                              f"for example: {key} = " + {"int": "50000", "bool": "true", "float": "0.2",
                                                         "str": '"aiko"', "list[str]": '["a", "b"]'}[kind])
        out[key] = value
    return out
