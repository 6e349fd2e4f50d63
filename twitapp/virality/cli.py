"""``flask virality train|score|models``, and ``flask refresh``: the whole loop for a scheduler."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from twitapp import registry
from twitapp.jobs.cli import run_job
from twitapp.virality import model as virality
from twitapp.web.filters import format_percent

commands = AppGroup("virality", help="Train and use the model of whether a post gets likes.")
top = AppGroup("virality-top")


# The question and the bar a virality run works to, shared by `virality train` and `refresh`.
threshold_option = click.option(
    "--threshold",
    default=None,
    type=click.IntRange(min=0),
    help="Likes to exceed. Default: the champion's; with none, 0 (or the median when 0 splits too few).",
)


margin_option = click.option(
    "--margin", default=virality.MARGIN, show_default=True, type=float, help="ROC AUC a challenger must gain."
)


@commands.command("train")
@threshold_option
@margin_option
def virality_train(threshold: int | None, margin: float) -> None:
    """Train a challenger on the stored posts and promote it only if it beats the champion by the margin."""
    click.echo(run_job("virality-train", threshold=threshold, margin=margin).message)


@commands.command("score")
@click.argument("text")
@click.option("--username", default=None, help="A stored account the post would come from.")
def virality_score(text: str, username: str | None) -> None:
    """The champion's probability that a post gets likes."""
    try:
        probability, row = virality.predict(text, username)
    except virality.ViralityError as exc:
        raise click.ClickException(str(exc)) from None
    threshold = row.params["threshold"]
    click.echo(f"{format_percent(probability)} chance of more than {threshold} likes (model {row.id})")
    if not virality.better_than_chance(row.metrics):
        click.echo(
            f"Model {row.id} is no better than chance on its held-out posts (ROC AUC {row.metrics.get('roc_auc')}): "
            "do not lean on this figure."
        )


@commands.command("models")
def virality_models() -> None:
    """The registry: every version, its standing and its held-out ROC AUC."""
    for row in registry.versions(virality.KIND):
        click.echo(
            f"{row.id:>4}  {row.status:<10}  {row.created_at:%Y-%m-%d %H:%M}  ROC AUC {row.metrics['roc_auc']}  "
            f"on {row.metrics['rows']:,} posts  {row.decision['reason']}"
        )


@top.command("refresh")
@threshold_option
@margin_option
def refresh(threshold: int | None, margin: float) -> None:
    """For cron or Heroku Scheduler: fetch newer posts for every account, retrain, compare, promote."""
    click.echo(run_job("refresh", threshold=threshold, margin=margin).message)
