"""``flask sentiment train|evaluate|score``."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from twitapp.jobs.cli import run_job
from twitapp.sentiment import labelled
from twitapp.sentiment import model as sentiment
from twitapp.sources import archive

commands = AppGroup("sentiment", help="Train, evaluate and use the sentiment model.")


@commands.command("train")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
def sentiment_train(paths: tuple[str, ...]) -> None:
    """Train a model on labelled files (SemEval TSV, Sentiment140 CSV, or CSV with text,label) and serve it."""
    click.echo(run_job("sentiment-train", paths=[str(Path(p).resolve()) for p in paths]).message)


@commands.command("evaluate")
@click.argument("path", type=click.Path(dir_okay=False, exists=True))
def sentiment_evaluate(path: str) -> None:
    """Macro-averaged recall on a labelled file: VADER, and the trained model in service if there is one."""
    try:
        rows, _ = labelled.deduplicate(labelled.read_labelled(path))
    except archive.ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    row, model = sentiment.in_service()
    scored = [("VADER", sentiment.evaluate(rows, None))]
    if model is not None:
        scored.append((f"trained model {row.id}", sentiment.evaluate(rows, model)))
    click.echo(f"{len(rows):,} labelled texts in {path}")
    for name, metrics in scored:
        per_class = ", ".join(f"{label} {value:.3f}" for label, value in metrics["recall"].items())
        click.echo(f"{name}: macro-averaged recall {metrics['macro_recall']:.3f} ({per_class})")


@commands.command("score")
@click.argument("text")
def sentiment_score(text: str) -> None:
    """Label one text with the model in service."""
    try:
        _, row, (scored,) = sentiment.analyse([text])
    except sentiment.SentimentError as exc:
        raise click.ClickException(str(exc)) from None
    model = f"trained model {row.id} ({sentiment.quality(row.metrics)})" if row else "VADER"
    click.echo(f"{scored.label} ({scored.score:+.2f} on a scale from -1 to +1) by {model}")
    if row is not None and not sentiment.better_than_chance(row.metrics):
        click.echo(f"Warning: model {row.id} is no better than chance on its held-out texts; do not lean on it.")
    ranked = sorted(scored.words, key=lambda wv: wv[1])
    for direction, pulls in (
        ("positive", [w for w in reversed(ranked) if w[1] > 0]),
        ("negative", [w for w in ranked if w[1] < 0]),
    ):
        if pulls:
            click.echo(f"  toward {direction}: " + ", ".join(f"{word} ({weight:+.2f})" for word, weight in pulls[:5]))


@commands.command("models")
def sentiment_models() -> None:
    """The trained models, newest first: held-out macro-averaged recall beside VADER's, and which serves."""
    listed = sentiment.history()
    if not listed:
        click.echo("No sentiment model is trained yet; VADER scores every text.")
        return
    for m in listed:
        recall, vader = m["held_out_macro_recall"], m["vader_held_out_macro_recall"]
        line = f"{m['version']:>4}  {m['created_at'][:16].replace('T', ' ')}  {m['texts']:>8,} texts  "
        line += f"recall {recall:.3f} (VADER {vader:.3f}, chance {m['chance']:.3f})"
        line += "" if m["better_than_chance"] else "  no better than chance"
        click.echo(line + ("  in service" if m["in_service"] else ""))
