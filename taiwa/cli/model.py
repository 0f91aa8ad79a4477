"""`taiwa model ...`: train and evaluate the offline sentiment and intent heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from . import Ctx, cli, console, pass_ctx, progress_bars, progress_task


# ------------------------------------------------------------------------------------------------ the model
@cli.group()
def model() -> None:
    """Train and evaluate the offline sentiment model."""


@model.command()
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the heads (default: the package's)")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/embeddings", show_default=True,
              help="Embedding cache, so a re-run takes seconds")
@click.option("--corrections", is_flag=True, help="Add the team's sentiment corrections from the database")
@pass_ctx
def train(ctx: Ctx, out: str | None, cache_dir: str, corrections: bool) -> None:
    """Reproduce the shipped heads from the packaged data and write a model card (several minutes on CPU).

    Example: taiwa model train --corrections"""
    from ..models import train as tr
    from ..models.sentiment import HEADS_DIR

    extra = tr.corrections_to_examples(ctx.store().sentiment_corrections()) if corrections else []
    out_dir = Path(out) if out else HEADS_DIR
    with progress_bars() as p:
        results = tr.train_all(out_dir=out_dir, cache_dir=Path(cache_dir), corrections=extra,
                               progress_factory=lambda label, total: progress_task(p, label, total))
    for name, m in results["heads"].items():
        console.print(f"{name}: held-out accuracy {m['held_out']['accuracy']:.3f}, "
                      f"macro-F1 {m['held_out']['macro_f1']:.3f} ({m['head']})")
    console.print(f"wrote {out_dir}/minilm.safetensors, e5.safetensors and MODEL_CARD.md")


@model.command("eval")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/embeddings", show_default=True)
@click.option("--hand-only", is_flag=True, help="Only the hand-labelled set (seconds, no corpus needed)")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
def eval_(cache_dir: str, hand_only: bool, device: str) -> None:
    """Accuracy, macro-F1 and confusion matrices on the held-out split and the hand-labelled set.

    Example: taiwa model eval"""
    from ..models import train as tr
    from ..models.sentiment import load_default, LABELS

    routed = load_default(device=device)
    sets: list[tuple[str, Any, list]] = []
    hand = tr.split_hand_labelled(tr.hand_labelled())
    sets.append(("hand-labelled English (routed)", routed.classify, hand["english"]))
    sets.append(("hand-labelled Japanese (routed)", routed.classify, hand["japanese"]))
    if not hand_only:
        split = tr.split_corpus()
        gold = [e.label for e in split.test]
        probs = {}
        with progress_bars() as p:
            for clf in routed.english.members:
                prog = progress_task(p, f"embedding held-out ({clf.encoder.name})", len(split.test))
                x = tr.embed_cached(clf.encoder, [e.text for e in split.test], Path(cache_dir), prog)
                probs[clf.model_id] = clf.head.probs(x)
        for model_id, pr in probs.items():
            _print_metrics(f"held-out split ({len(split.test)} tweets), {model_id} alone",
                           tr.metrics(gold, [LABELS[i] for i in pr.argmax(axis=1)]))
        from ..models import cascade

        route = routed.english
        both, unsure = cascade.route(probs[route.e5.model_id], probs[route.minilm.model_id], route.below)
        _print_metrics(f"held-out split, default ({route.model_id}; MiniLM consulted on {unsure.mean():.0%})",
                       tr.metrics(gold, [LABELS[i] for i in both.argmax(axis=1)]))
    for title, fn, examples in sets:
        _print_metrics(f"{title}, {len(examples)} posts", tr.evaluate(fn, examples))


def _print_metrics(title: str, m: dict) -> None:
    from ..models.sentiment import LABELS

    t = Table(title=f"{title}: accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}")
    t.add_column("true \\ predicted")
    for lab in LABELS:
        t.add_column(lab, justify="right")
    for lab, row in zip(LABELS, m["confusion"]):
        t.add_row(lab, *map(str, row))
    console.print(t)


@model.command("train-intent")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the head (default: the package's)")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=".cache/embeddings", show_default=True)
@click.option("--corrections", is_flag=True, help="Add the team's intent corrections from the database")
@click.option("--no-lobo", is_flag=True, help="Skip the leave-one-brand-out figures (ten more fits)")
@pass_ctx
def train_intent(ctx: Ctx, out: str | None, cache_dir: str, corrections: bool, no_lobo: bool) -> None:
    """Rebuild the intent head from the packaged real and written posts (a minute or two on CPU) and its card.

    Example: taiwa model train-intent --corrections"""
    from ..models import train_intent as ti
    from ..models.sentiment import HEADS_DIR

    extra = ctx.store().intent_corrections() if corrections else []
    out_dir = Path(out) if out else HEADS_DIR
    from ..models.labelled import real_posts

    n = len(ti.examples()) + len(extra) + len(real_posts(("train", "tune", "blind")))
    with progress_bars() as p:
        f = ti.train(out_dir, cache_dir=Path(cache_dir), progress=progress_task(p, f"embedding {n} posts", n),
                     corrections=extra, lobo=not no_lobo)
    worst, value = f["lobo_worst"]
    lobo = f"leave one brand out mean {f['lobo_mean']:.3f}, worst {worst} {value:.3f}; " if value is not None \
        else ""
    console.print(f"intent head: blind real posts {f['blind_accuracy']:.3f}; {lobo}temperature {f['temperature']}; "
                  f"wrote {out_dir}/intent.safetensors and INTENT_CARD.md")
