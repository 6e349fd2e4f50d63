"""``flask predict`` and ``flask evaluate``: attribution and its held-out accuracy on the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from twitapp.attribution.model import PredictionError, evaluate_accounts, predict_author
from twitapp.web.filters import format_percent

commands = AppGroup("attribution")


@commands.command("predict")
@click.argument("usernames", nargs=-1, required=True)
@click.option("--text", required=True, help="The hypothetical post.")
def predict(usernames: tuple[str, ...], text: str) -> None:
    """Rank USERNAMES by how likely each is to have posted TEXT."""
    try:
        prediction = predict_author(list(usernames), text)
    except PredictionError as exc:
        raise click.ClickException(str(exc)) from None
    for candidate in prediction.ranking:
        click.echo(f"{format_percent(candidate.probability):>7}  @{candidate.username}")
    click.echo(f"(chance level: {prediction.chance:.1%})")
    trust, accounts = prediction.trust, len(prediction.ranking)
    if trust.accuracy is None:
        click.echo("\nHow far to trust it: too few posts to hold some out and measure how often the model is right.")
    else:
        click.echo(
            f"\nHow far to trust it: for these {accounts} accounts the same model picked the right one for "
            f"{trust.accuracy:.0%} of their {trust.tested} newest posts, held out of training "
            f"(at least {trust.accuracy_low:.0%} at 95% confidence; chance {prediction.chance:.0%})."
        )
    for warning in prediction.warnings:  # "no better than chance" first, when it is not
        click.echo(f"Warning: {warning}")
    reasons = prediction.reasons

    def grams(shown: list[tuple[str, float]]) -> str:
        listed = [f"{g!r}" + (f" (in {reasons.within[g]})" if g in reasons.within else "") for g, _ in shown]
        return ", ".join(listed) or "nothing in particular"

    click.echo("\nWhy: what points to each account, against the others:")
    for account in reasons.accounts:
        click.echo(f"  toward @{account.username}: {grams(account.toward)}")


@commands.command("evaluate")
@click.argument("usernames", nargs=-1, required=True)
def evaluate(usernames: tuple[str, ...]) -> None:
    """Held-out accuracy and confusion table of author attribution for USERNAMES.

    Each account's newest posts are held out, the model is fitted on the rest and scores them: the
    trust figure the result page shows for the same accounts.
    """
    try:
        users, trust = evaluate_accounts(list(usernames))
    except PredictionError as exc:
        raise click.ClickException(str(exc)) from None
    if trust.accuracy is None:
        raise click.ClickException("Too few posts to hold any out; store more posts for these accounts.")
    names = {u.id: f"@{u.username}" for u in users}
    labels = [names[uid] for uid in trust.classes]
    click.echo(f"Held-out accuracy: {trust.accuracy:.1%} on {trust.tested} newest posts (chance {1 / len(users):.1%}).")
    width = max(len(label) for label in [*labels, "true \\ predicted"]) + 2
    widest_count = len(str(trust.confusion.max()))
    cells = [max(len(label), widest_count) + 2 for label in labels]  # whole names, and room for the counts
    click.echo(
        "true \\ predicted".ljust(width)
        + "".join(name.rjust(c) for name, c in zip(labels, cells, strict=True))
        + "   recall"
    )
    for label, row in zip(labels, trust.confusion, strict=True):
        recall = row[labels.index(label)] / row.sum() if row.sum() else 0.0
        counts = "".join(f"{n:{c}d}" for n, c in zip(row, cells, strict=True))
        click.echo(label.ljust(width) + counts + f"   {recall:6.1%}")
