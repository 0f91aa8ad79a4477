"""Topics: what a post is about, in any language, from the brand's own examples.

    [[topics]]
    name = "delivery"                                              # required, unique
    examples = ["my order never arrived", "注文した豆がまだ来ない"]   # required: phrases, any language
    keywords = ["courier", "配達"]                                  # optional evidence
    ask = { en = "Could you DM us your order number?", ja = "ご注文番号をDMでお知らせいただけますか？" }
    escalate = false                                               # true: always at the top (safety, legal)
    assign = "aiko"                                                # optional: a user of the inbox

Detection reuses the multilingual-e5 embedding the sentiment pass already made for each post (stored in
`post_vectors`): one encoder pass per post. The examples are embedded once per process.

Raw e5 similarities are squeezed into 0.75–0.94 and lean on language (a Japanese post is close to every Japanese
example). Both the post and the examples are therefore centred on the mean embedding of a small background of
everyday sentences in their own script (English for Latin-script text, Japanese for the rest) and renormalised;
what remains is about the subject, so an English example catches a Japanese post and back.

Some topics are close to everything a brand hears (a "delivery" topic for a restaurant, an "app" topic whose
examples name the brand): a raw threshold makes them a sink. Each topic's similarity is therefore calibrated
against posts to the brand about nothing in particular: a bank of everyday posts (NO_TOPIC: thanks, greetings,
chit-chat, general questions), once as written and once with the brand's name or handle in it. A post's score
for a topic is how many spreads (MAD × 1.4826) above the bank's median similarity it lies, +KEYWORD_BONUS when
one of the topic's keywords is in the post (case- and width-insensitive). The best topic at `[triage]
topic_threshold` (2.5) or above, ahead of the next by MARGIN, wins; otherwise the post has no topic. The
calibration and the threshold were chosen on a development set for another brand and domain (taiwa/data/dev,
35 posts: 0.89 correct there, 0.69 with the uncalibrated threshold), never on the evaluation set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .rules import _keyword_pattern, fold

KEYWORD_BONUS = 1.0          # in spreads (z units)
# The closest topic must also lead the next one by this much: a post about equally close to two topics is "none"
# rather than a coin toss (a wrong "safety" escalates; a wrong ask misleads).
MARGIN = 0.25
MIN_SPREAD = 0.02            # a topic whose background similarities barely vary is not allowed to divide by ~0
# Everyday sentences about nothing in particular: their mean is the "any post" direction that is removed.
BACKGROUND = (
    "good morning everyone", "I had coffee today", "what a day", "thanks for the update", "just posted a photo",
    "this is my opinion", "see you tomorrow", "the weather is nice", "I am at home now", "that was interesting",
    "おはようございます", "今日はコーヒーを飲んだ", "いい天気ですね", "ありがとうございます", "写真を投稿しました",
    "また明日", "これは私の意見です", "今日は忙しい", "今、家にいます", "おもしろかった",
)
# Posts to a brand about nothing a team routes (thanks, greetings, chit-chat, news, general questions): part of
# the background every topic is calibrated against, so a topic needs more than "a post to this brand".
NO_TOPIC = (
    "thank you so much, you made my day", "love this place", "great service as always", "big fan of your brand",
    "good morning, have a nice day", "see you next week", "just tried it for the first time",
    "having lunch with friends here", "my friend recommended you", "what's new this month?",
    "when does the new shop open?", "are you hiring?", "do you have a discount for students?",
    "is there a shop near the station?", "what do you recommend for a beginner?", "congrats on the anniversary",
    "your new ad is funny", "saw your stand at the festival", "can't wait for the new season",
    "posting a photo from my visit", "happy new year everyone", "what time do you open tomorrow?",
    "ありがとうございます、助かりました", "いつも応援しています", "おはようございます", "また来週行きます",
    "初めて利用しました", "友達と行ってきた", "新しい店舗はいつオープンしますか？", "求人はありますか？",
    "学生割引はありますか？", "おすすめを教えてください", "新しいCMおもしろい", "イベントで見かけました",
    "写真を投稿しました", "明けましておめでとうございます", "明日は何時から開いていますか？", "これからも頑張ってください",
)


@dataclass(frozen=True)
class Topic:
    name: str
    examples: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    ask: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    escalate: bool = False
    assign: str = ""
    label: dict[str, str] = field(default_factory=dict, hash=False, compare=False)   # its name per language

    def shown(self, lang: str) -> str:
        return self.label.get(lang) or self.label.get("en") or self.name


@dataclass
class TopicMatch:
    name: str
    score: float
    evidence: list[str]          # the closest example, then any keywords found

    def reason(self) -> str:
        return f"topic {self.name} {self.score:.1f}σ: " + ", ".join(repr(e) for e in self.evidence[:3])


@functools.lru_cache(maxsize=2)
def background_means(encoder: Any) -> dict[str, np.ndarray]:
    """The mean embedding of everyday sentences per script ("latin", "other"): what centring removes."""
    bg = _normalise(np.asarray(encoder.embed(list(BACKGROUND)), dtype=np.float32))
    half = len(BACKGROUND) // 2
    return {"latin": bg[:half].mean(axis=0), "other": bg[half:].mean(axis=0)}


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class TopicDetector:
    def __init__(self, topics: Sequence[Topic], encoder: Any, threshold: float, brand_words: Sequence[str] = ()):
        self.topics, self.encoder, self.threshold = list(topics), encoder, threshold
        self.means = background_means(encoder)
        self.examples = [self._centre(encoder.embed(list(t.examples)), t.examples) for t in self.topics]
        bank = list(NO_TOPIC) + branded(NO_TOPIC, brand_words)
        self.calibration = self._calibration(self._centre(encoder.embed(bank), bank))
        self.patterns = [_keyword_pattern(list(t.keywords)) for t in self.topics]

    def _centre(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Each vector minus the background mean of its script (Latin, or Japanese and other scripts)."""
        from .sentiment import needs_multilingual

        v = _normalise(np.asarray(vectors, dtype=np.float32))
        means = np.stack([self.means["other" if needs_multilingual(t) else "latin"] for t in texts])
        return _normalise(v - means)

    def detect(self, texts: Sequence[str], vectors: Sequence[np.ndarray | None],
               ) -> list[TopicMatch | None]:
        """The best topic for each post (or None), reusing each post's stored vector (posts without one are
        embedded here)."""
        if not self.topics or not texts:
            return [None] * len(texts)
        missing = [i for i, v in enumerate(vectors) if v is None]
        vecs = list(vectors)
        if missing:
            for i, v in zip(missing, self.encoder.embed([texts[i] for i in missing])):
                vecs[i] = v
        posts = self._centre(np.stack(vecs), texts)
        out: list[TopicMatch | None] = []
        for row, text in zip(posts, texts):
            folded = fold(text)
            scored = []
            for topic, ex, pattern, (median, spread) in zip(self.topics, self.examples, self.patterns,
                                                            self.calibration):
                sims = ex @ row
                k = int(np.argmax(sims))
                score, evidence = (float(sims[k]) - median) / spread, [topic.examples[k]]
                if pattern is not None:
                    words = list(dict.fromkeys(m.group(0) for m in pattern.finditer(folded)))
                    if words:
                        score += KEYWORD_BONUS
                        evidence += words
                scored.append((score, topic.name, evidence))
            scored.sort(key=lambda x: -x[0])
            best = scored[0]
            runner_up = scored[1][0] if len(scored) > 1 else float("-inf")
            clear = best[0] >= self.threshold and best[0] - runner_up >= MARGIN
            out.append(TopicMatch(best[1], round(best[0], 3), best[2]) if clear else None)
        return out

    def _calibration(self, bank: np.ndarray) -> list[tuple[float, float]]:
        """Per topic: the median and spread (MAD × 1.4826) of its similarity over the no-topic bank."""
        out = []
        for ex in self.examples:
            sims = (bank @ ex.T).max(axis=1)
            median = float(np.median(sims))
            spread = max(float(np.median(np.abs(sims - median))) * 1.4826, MIN_SPREAD)
            out.append((median, spread))
        return out

    def topic(self, name: str) -> Topic:
        return next(t for t in self.topics if t.name == name)


def branded(sentences: Sequence[str], words: Sequence[str]) -> list[str]:
    """The sentences again, each with one of the brand's names or @handles before or after it."""
    if not words:
        return []
    return [f"{s} {words[i % len(words)]}" if i % 2 else f"{words[i % len(words)]} {s}"
            for i, s in enumerate(sentences)]


@functools.lru_cache(maxsize=4)
def detector(topics: tuple[Topic, ...], threshold: float, brand_words: tuple[str, ...] = ()) -> TopicDetector:
    """One detector per configuration and process: the examples and the calibration bank are embedded once."""
    from .sentiment import reference_e5

    return TopicDetector(topics, reference_e5(), threshold, brand_words)


def brand_words(config: Any) -> tuple[str, ...]:
    """The names and @handles posts use for the configured brands."""
    return tuple(w for b in config.brands for w in [b.name, *(f"@{h.lstrip('@')}" for h in b.handles)])


def parse_topics(raw: Any, file: str) -> tuple[Topic, ...]:
    """[[topics]] from taiwa.toml; ConfigError names the topic and key that are wrong."""
    from ..config import _check_template
    from ..errors import ConfigError

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, "topics", "expected an array of tables", "write each topic as [[topics]]")
    out, names = [], set()
    known = {"name", "examples", "keywords", "ask", "escalate", "assign", "label"}
    for i, t in enumerate(raw):
        where = f"topics[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(file, where, "expected a table", '[[topics]] with name = "..." and examples = [...]')
        extra = sorted(set(t) - known)
        if extra:
            raise ConfigError(file, f"{where}.{extra[0]}", "unknown key", f"known keys: {', '.join(sorted(known))}")
        name = t.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(file, f"{where}.name", "missing required key", 'name = "delivery"')
        if name in names:
            raise ConfigError(file, f"{where}.name", f"two topics are called {name!r}", "give each its own name")
        names.add(name)
        examples = t.get("examples")
        if not isinstance(examples, list) or not examples or not all(isinstance(e, str) and e.strip()
                                                                     for e in examples):
            raise ConfigError(file, f"{where}.examples", "needs a list of example phrases",
                              'examples = ["my order never arrived", "注文した豆がまだ来ない"]')
        keywords = t.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
            raise ConfigError(file, f"{where}.keywords", "expected a list of words", 'keywords = ["courier", "配達"]')
        ask = t.get("ask", {})
        if not isinstance(ask, dict) or not all(isinstance(v, str) for v in ask.values()):
            raise ConfigError(file, f"{where}.ask", "expected a table of language = text",
                              'ask = { en = "Could you DM us your order number?" }')
        for lang, text in ask.items():
            _check_template(file, f"{where}.ask.{lang}", text)
        if not isinstance(t.get("escalate", False), bool):
            raise ConfigError(file, f"{where}.escalate", "expected true or false", "escalate = true")
        label = t.get("label", {})
        if not isinstance(label, dict) or not all(isinstance(v, str) and v for v in label.values()):
            raise ConfigError(file, f"{where}.label", "expected a table of language = name",
                              'label = { en = "delivery", ja = "配送" }')
        if not isinstance(t.get("assign", ""), str):
            raise ConfigError(file, f"{where}.assign", "expected a user name", 'assign = "aiko"')
        out.append(Topic(name, tuple(examples), tuple(keywords), dict(ask), t.get("escalate", False),
                         t.get("assign", ""), dict(label)))
    return tuple(out)
