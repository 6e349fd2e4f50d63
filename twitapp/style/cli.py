"""``flask generate train|write|evaluate``: style models on the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from twitapp.jobs.cli import run_job
from twitapp.sources import handles
from twitapp.style import judge
from twitapp.style import model as generate

commands = AppGroup("generate", help="Write posts in the style of a stored account.")


@commands.command("train")
@click.argument("username")
@click.option("--engine", type=click.Choice(generate.ENGINES), default="kneser-ney", show_default=True)
def generate_train(username: str, engine: str) -> None:
    """Train the model that writes like USERNAME on its stored posts (the LSTM engine needs PyTorch)."""
    click.echo(run_job(generate.TRAIN_JOB, handles.typed(username), engine=engine).message)


@commands.command("write")
@click.argument("username")
@click.option("--count", default=5, show_default=True, type=int)
@click.option("--temperature", default=generate.DEFAULT_TEMPERATURE, show_default=True, type=float)
@click.option("--opening", default="", help="Text every post starts with.")
@click.option("--seed", default=None, type=int, help="Draw the same posts again with the same seed.")
def generate_write(username: str, count: int, temperature: float, opening: str, seed: int | None) -> None:
    """Posts in the voice of USERNAME, none copying 40 characters of its real posts."""
    try:
        posts, _ = generate.write_like(username, count, temperature, opening, seed=seed)
    except generate.StyleError as exc:
        raise click.ClickException(str(exc)) from None
    for post in posts:
        click.echo(post)
    if len(posts) < count:
        click.echo(
            f"({len(posts)} of {count}: the rest kept copying real posts; a higher temperature varies more.)", err=True
        )


@commands.command("evaluate")
@click.argument("username")
@click.option("--against", multiple=True, help="An account to tell it from (three by default: the largest others).")
@click.option("--count", default=50, show_default=True, type=click.IntRange(5, 500), help="Posts to generate.")
@click.option("--engine", type=click.Choice(generate.ENGINES), default="kneser-ney", show_default=True)
def generate_evaluate(username: str, against: tuple[str, ...], count: int, engine: str) -> None:
    """Held-out bits per character, distance to the real posts, copy rate, invented words and style fidelity,
    each beside chance where it has one."""
    try:
        figures = judge.evaluate_account(username, list(against), count, engine)
    except generate.StyleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"@{figures['username']}: trained on its oldest {figures['trained_posts']:,} posts, "
        f"tested on the newest {figures['tested_posts']:,}"
    )
    shape = f"order {figures['order']}" if "order" in figures else f"LSTM, {figures['epochs']} epochs"
    bits, chance = figures["bits_per_char"], figures["chance_bits_per_char"]
    verdict = "" if bits < chance else ": no better than chance"
    click.echo(
        f"  {shape}, held-out bits per character {bits:.3f} (guessing each character at random: {chance:.3f}){verdict}"
    )
    click.echo(f"  {figures['generated']} generated posts at temperature {figures['temperature']}:")
    click.echo(f"    mean TF-IDF cosine distance to the nearest real post {figures['distance']:.3f}")
    click.echo(
        f"    copy rate {figures['copy_rate']:.0%} of drafts repeated 40 characters of a real post "
        f"({figures['copies_drawn_again']} drawn again; none is among the posts)"
    )
    click.echo(
        f"    invented words {figures['invented_words']:.1%} of their {figures['words']:,} words are in no "
        "training post"
    )
    if "fidelity" in figures:
        others = ", ".join(f"@{h}" for h in figures["against"])
        chance = figures["fidelity_chance"]
        click.echo(
            f"    style fidelity {figures['fidelity']:.0%} (attributed back among it and {others}; chance {chance:.0%})"
        )
        if figures["fidelity"] <= chance:
            click.echo(
                "    No better than chance: the app's author attribution gives its posts back to it no more "
                "often than a random pick among these accounts would."
            )
