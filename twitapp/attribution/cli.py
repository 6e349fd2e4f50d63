"""``flask predict`` and ``flask evaluate``: attribution and its held-out accuracy on the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from twitapp.attribution.model import PredictionError, evaluate_accounts, predict_author
from twitapp.web.filters import format_percent

commands = AppGroup("attribution")


@commands.command("predict")
@click.argument("usernames", nargs=-1, required=True)
@click.option(
    "--text", "texts", required=True, multiple=True, help="The hypothetical post; repeat it for a thread of posts."
)
def predict(usernames: tuple[str, ...], texts: tuple[str, ...]) -> None:
    """Rank USERNAMES by how likely each is to have posted TEXT (every --text together, as a thread)."""
    try:
        prediction = predict_author(list(usernames), list(texts))
    except PredictionError as exc:
        raise click.ClickException(str(exc)) from None
    for candidate in prediction.ranking:
        click.echo(f"{format_percent(candidate.probability):>7}  @{candidate.username}")
    click.echo(f"(chance level: {prediction.chance:.1%})")
    if len(prediction.posts) > 1:
        top = prediction.ranking[0].username
        click.echo(f"\nPost by post, each answered alone ({len(prediction.posts)} posts, ranked together above):")
        for number, post in enumerate(prediction.posts, start=1):
            elsewhere = "" if post.username == top else "  (points elsewhere)"
            share = format_percent(post.probability)
            click.echo(f"  {number:>2}. {share:>7}  @{post.username}{elsewhere}: {_short(post.text)}")
    click.echo("\n" + _trust_sentence(prediction))
    for warning in prediction.warnings:  # "no better than chance" first, when it is not
        click.echo(f"Warning: {warning}")
    reasons = prediction.reasons

    def grams(shown: list[tuple[str, float]]) -> str:
        listed = [f"{g!r}" + (f" (in {reasons.within[g]})" if g in reasons.within else "") for g, _ in shown]
        return ", ".join(listed) or "nothing in particular"

    click.echo("\nWhy: what points to each account, against the others:")
    for account in reasons.accounts:
        click.echo(f"  toward @{account.username}: {grams(account.toward)}")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _trust_sentence(prediction) -> str:
    """How far to trust the answer, for a single post or for threads of the prediction's length."""
    trust, accounts, posts = prediction.trust, len(prediction.ranking), len(prediction.posts)
    if trust.accuracy is None:
        return "How far to trust it: too few posts to hold some out and measure how often the model is right."
    bounds = f"at least {trust.accuracy_low:.0%} at 95% confidence; chance {prediction.chance:.0%}"
    if posts == 1 or trust.length == 1:
        lead = "" if posts == 1 else "too few posts were held out to measure threads; for single posts, "
        return (
            f"How far to trust it: {lead}for these {accounts} accounts the same model picked the right one for "
            f"{trust.accuracy:.0%} of their {trust.tested} newest posts, held out of training ({bounds})."
        )
    measured = (
        "" if trust.length == posts else f" (the longest their held-out posts could measure; this one has {posts})"
    )
    return (
        f"How far to trust it: for these {accounts} accounts, threads of {trust.length} posts{measured} were "
        f"attributed right {trust.accuracy:.0%} of the time: {trust.tested} threads at a time drawn from their "
        f"{trust.posts} newest posts, held out of training ({bounds})."
    )


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
