"""`taiwa run --worker` for the workers test: the real daemon (scheduler, jobs, leases, claims, senders) with a
quick stand-in for the sentiment model, so 30,000 posts go through in a test's time on two cores. The stand-in is
deterministic: words → label, and each label's post gets the real e5 embedding of one typical post of that kind
(computed once at start), so intent, memory and drafting downstream see real vectors. The test proves who does
the work, not how well.

    python -m tests.support.worker TAIWA_TOML '{"listen:replay": 0.2, ...}'"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from taiwa import config as config_mod
from taiwa.models.sentiment import Sentiment
from taiwa.scheduler import Daemon, setup_logging

NEGATIVE = {"broken", "late", "cracked", "refund", "worst"}
POSITIVE = {"love", "great", "thanks", "happy"}


TYPICAL = {"negative": "my order arrived broken, please help", "positive": "love the new kettle, thanks",
           "neutral": "nice weather for a cup of tea today"}


class QuickModel:
    model_id = "test-quick-words"

    def __init__(self) -> None:
        from taiwa.models.sentiment import shared_e5

        self.vectors = dict(zip(TYPICAL, shared_e5().embed(list(TYPICAL.values()))))

    def classify(self, texts):
        out = []
        for text in texts:
            words = text.lower().replace(",", " ").split()
            neg, pos = sum(w in NEGATIVE for w in words), sum(w in POSITIVE for w in words)
            label = "negative" if neg > pos else "positive" if pos > neg else "neutral"
            scores = {k: (0.8 if k == label else 0.1) for k in ("negative", "neutral", "positive")}
            out.append(Sentiment(label, scores, self.model_id, vector=self.vectors[label]))
        return out


def write_config(folder: Path, database: str, streams: list[Path], brand: str, *, replay: dict | None = None,
                 daemon: dict | None = None) -> Path:
    """taiwa.toml for daemons or workers replaying `streams` into `database` (the workers test and
    bench/workers.py): one brand, the replay platform, the outbox and log in `folder`, plus the keys given."""
    def table(name: str, keys: dict) -> str:
        return f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())

    toml = folder / "taiwa.toml"
    toml.write_text("\n".join([
        table("taiwa", {"database": database, "outbox": str(folder / "outbox.jsonl")}),
        table("[brands]", {"name": brand, "handles": [brand.lower()], "keywords": [brand.lower()]}),
        table("platforms.replay", {"enabled": True, **(replay or {}), "paths": [str(p) for p in streams]}),
        table("daemon", {**(daemon or {}), "log_file": str(folder / "taiwa.log")}),
    ]), encoding="utf-8")
    return toml


def main() -> None:
    cfg = config_mod.load(sys.argv[1])
    intervals = json.loads(sys.argv[2])
    alone = "--daemon" in sys.argv[3:]     # the one-daemon SQLite deployment, for bench/workers.py
    setup_logging(cfg, cfg.resolve(cfg.get("daemon", "log_file")), console=False)
    Daemon(cfg, worker=not alone, jobs=list(intervals), intervals=intervals, model_loader=QuickModel).run_forever()


if __name__ == "__main__":
    main()
