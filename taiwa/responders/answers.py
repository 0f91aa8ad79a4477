"""The knowledge base: what the team has already answered, so a question's draft carries the answer.

    [[answers]]
    name = "warranty"                                                   # optional; default: the first question
    questions = ["Is there a warranty on the grinder?", "グラインダーの保証はありますか？"]   # required
    en = "Every grinder has a two-year warranty: DM us and we'll arrange a repair."      # one per language
    ja = "グラインダーは2年間の保証付きです。DMいただければ修理を手配いたします。"

The same tables can live in a separate file named by `[drafts] answers_file`, for long lists.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LANG_KEYS = ("en", "ja", "ko", "zh", "es", "fr", "de", "pt", "it", "ru")
MARGIN = 0.03   # the best answer must lead the next by this much; a tie is "needs an answer", never a guess


@dataclass(frozen=True)
class Answer:
    name: str
    questions: tuple[str, ...]
    texts: dict[str, str] = field(default_factory=dict, hash=False, compare=False)   # language → answer

    def text(self, lang: str) -> str | None:
        return self.texts.get(lang)


def parse_answers(raw: Any, file: str, where: str = "answers") -> tuple[Answer, ...]:
    """[[answers]] tables → Answers; ConfigError names the table and key that are wrong."""
    from ..errors import ConfigError

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, where, "expected an array of tables", "write each answer as [[answers]]")
    out: list[Answer] = []
    names: set[str] = set()
    for i, t in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(file, at, "expected a table", '[[answers]] with questions = [...] and en = "..."')
        extra = sorted(set(t) - {"name", "questions", *LANG_KEYS})
        if extra:
            raise ConfigError(file, f"{at}.{extra[0]}", "unknown key",
                              f"an answer has name, questions and one text per language ({', '.join(LANG_KEYS)})")
        questions = t.get("questions")
        if not isinstance(questions, list) or not questions or not all(isinstance(q, str) and q.strip()
                                                                       for q in questions):
            raise ConfigError(file, f"{at}.questions", "needs a list of questions it answers",
                              'questions = ["Is there a warranty?", "保証はありますか？"]')
        texts = {k: t[k] for k in LANG_KEYS if k in t}
        for k, v in texts.items():
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(file, f"{at}.{k}", "expected the answer's text", f'{k} = "..."')
        if not texts:
            raise ConfigError(file, at, "an answer needs its text in at least one language",
                              'en = "Every grinder has a two-year warranty."')
        name = t.get("name", questions[0])
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(file, f"{at}.name", "expected a name", 'name = "warranty"')
        if name in names:
            raise ConfigError(file, f"{at}.name", f"two answers are called {name!r}", "give each its own name")
        names.add(name)
        out.append(Answer(name, tuple(questions), texts))
    return tuple(out)


def load_answers_file(path: Path, file: str) -> tuple[Answer, ...]:
    """The [[answers]] tables of a separate file (`[drafts] answers_file`)."""
    from ..errors import ConfigError

    if not path.is_file():
        raise ConfigError(file, "drafts.answers_file", f"{path} is not a file",
                          "point it at a TOML file of [[answers]] tables, relative to taiwa.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(path), "", f"not valid TOML: {e}", "check quotes and brackets on that line") from None
    extra = sorted(set(data) - {"answers"})
    if extra:
        raise ConfigError(str(path), extra[0], "unknown section", "this file holds only [[answers]] tables")
    return parse_answers(data.get("answers"), str(path))


@dataclass
class AnswerMatch:
    name: str
    score: float                 # centred cosine to the closest of the answer's questions
    question: str                # that question


class AnswerIndex:
    """The knowledge base's questions, embedded once with the multilingual encoder and centred per script as
    topics are, so a Japanese question finds an answer written for an English one and back."""

    def __init__(self, answers: "tuple[Answer, ...]", encoder: Any, threshold: float, margin: float = MARGIN):
        from ..models.topics import background_means

        self.answers, self.encoder, self.threshold, self.margin = list(answers), encoder, threshold, margin
        self.means = background_means(encoder)
        self.questions = [self._centre(encoder.embed(list(a.questions)), a.questions) for a in self.answers]

    def _centre(self, vectors, texts):
        import numpy as np

        from ..models.sentiment import needs_multilingual

        v = np.asarray(vectors, dtype=np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
        m = np.stack([self.means["other" if needs_multilingual(t) else "latin"] for t in texts])
        c = v - m
        return c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-12)

    def scores(self, text: str, vector: Any) -> list[AnswerMatch]:
        """Every answer with its score for this post, best first."""
        import numpy as np

        if not self.answers:
            return []
        row = self._centre(np.asarray(vector, dtype=np.float32)[None, :], [text])[0]
        out = []
        for answer, qs in zip(self.answers, self.questions):
            sims = qs @ row
            k = int(np.argmax(sims))
            out.append(AnswerMatch(answer.name, round(float(sims[k]), 4), answer.questions[k]))
        return sorted(out, key=lambda m: -m.score)

    def best(self, text: str, vector: Any) -> AnswerMatch | None:
        """The answer for this question, or None when none is close enough or two are about as close."""
        ranked = self.scores(text, vector)
        if not ranked or ranked[0].score < self.threshold:
            return None
        if len(ranked) > 1 and ranked[0].score - ranked[1].score < self.margin:
            return None
        return ranked[0]

    def answer(self, name: str) -> Answer:
        return next(a for a in self.answers if a.name == name)


@functools.lru_cache(maxsize=4)
def _index(answers: "tuple[Answer, ...]", threshold: float) -> AnswerIndex:
    from ..models.sentiment import reference_e5

    return AnswerIndex(answers, reference_e5(), threshold)


def index(config: Any) -> AnswerIndex | None:
    """The configured knowledge base, its questions embedded once per process; None when there is none."""
    if not config.answers:
        return None
    return _index(tuple(config.answers), config.get("drafts", "answer_threshold"))
