"""``flask`` commands: seed the demo accounts, import files, fetch and refresh accounts, predict, reset."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import archive, backup, generate, ingest, jobs, labelled, sentiment, virality
from .extensions import db
from .ingest import IngestError, delete_all, import_tweets
from .models import ModelVersion, User
from .predict import PredictionError, evaluate_accounts, predict_author
from .records import AccountRecord
from .views import format_percent


def _bar_progress(label: str):
    """A ``progress(done, total)`` callback drawing a click progress bar, and the bar to close."""
    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)

    return progress, close


def _import(account: AccountRecord, parsed: archive.ParsedArchive, source: str, label: str):
    progress, close = _bar_progress(label)
    try:
        return import_tweets(account, parsed.posts, source=source, progress=progress)
    finally:
        close()


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing when any account is already stored.")
def seed_demo(if_empty: bool) -> None:
    """Load the bundled fictional demo accounts."""
    if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        click.echo("Accounts are already stored; leaving them as they are.")
        return
    for account, parsed in archive.demo_accounts():
        try:
            result = _import(account, parsed, "demo", f"@{account.username}")
        except IngestError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"@{result.username}: {result.added} new posts, {result.total} stored.")


replace_option = click.option(
    "--replace",
    is_flag=True,
    help="Take the file's handles, names and counts where they differ from the stored ones (shown first).",
)
yes_option = click.option("--yes", is_flag=True, help="With --replace: do not ask before replacing.")


def _confirm_replace(plans: list, yes: bool) -> None:
    """Show what a replace will change, and ask (unless ``yes``); nothing to change is said and allowed."""
    counts = sum(p.differ for p in plans)
    renames = [(p.username, p.kept_handle) for p in plans if p.kept_handle]
    names = [(p.username, p.kept_name) for p in plans if p.kept_name]
    if not (counts or renames or names):
        click.echo("The file agrees with what is stored; --replace changes nothing.")
        return
    click.echo("Replacing will change:")
    if counts:
        click.echo(f"  the likes, reposts or replies of {counts:,} stored posts")
    for old, new in renames:
        click.echo(f"  the handle @{old} to @{new}")
    for handle, name in names:
        click.echo(f"  the display name of @{handle} to {name!r}")
    if not yes:
        click.confirm("Replace them?", abort=True)


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--username", required=True, help="The account the posts belong to.")
@click.option("--name", default=None, help="Display name, for an account not stored yet.")
@replace_option
@yes_option
def import_file(path: str, username: str, name: str | None, replace: bool, yes: bool) -> None:
    """Import posts from an X archive's tweets.js, a JSONL file of X API posts, or a CSV.

    CSV columns: id,created_at,text and optionally like_count,retweet_count,reply_count. Posts already
    stored keep their counts, and the account its handle and name, unless --replace is given.
    """
    try:
        handle = archive.check_username(username)
        if replace:
            posts = archive.PostFile.on_disk(path)
            account = jobs.import_account(posts.check(), handle, posts.name, name)
            _confirm_replace([ingest.plan(account, posts.posts())], yes)
    except archive.ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    params = {"path": str(Path(path).resolve()), "name": name, "policy": "replace" if replace else "keep"}
    job = _run_job("import-file", handle, **params)
    click.echo(job.message + (" Run again with --replace to take the file's." if _withheld(job) else ""))


def _withheld(job: jobs.Job) -> bool:
    return bool((job.result or {}).get("withheld")) and (job.params or {}).get("policy") != "replace"


@click.command("export")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export(path: str) -> None:
    """Write every account and post, with metrics, to PATH as JSONL (for `flask restore`)."""
    line = _JobLine()
    try:
        accounts, posts = backup.export(path, progress=lambda done, total: line(done, total, "Exporting posts."))
    except OSError as exc:
        raise click.ClickException(f"Cannot write {path}: {exc.strerror}") from None
    finally:
        line.close()
    click.echo(f"Exported {accounts} accounts and {posts} posts to {path}.")


@click.command("restore")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False))
@replace_option
@yes_option
def restore(path: str, replace: bool, yes: bool) -> None:
    """Store every account and post of a `flask export` file. What is stored already is matched and kept
    (handles, names, counts) unless --replace is given; the whole file is checked before anything is written."""
    if replace:
        try:
            export = backup.ExportFile.on_disk(path)
            export.check(policy="replace")
            plans = [ingest.plan(saved.record, posts) for saved, posts in export.accounts()]
        except archive.ArchiveError as exc:
            raise click.ClickException(str(exc)) from None
        _confirm_replace(plans, yes)
    job = _run_job("restore", path=str(Path(path).resolve()), policy="replace" if replace else "keep")
    click.echo(job.message + (" Run again with --replace to take the file's." if _withheld(job) else ""))


def _require_token() -> None:
    if not current_app.config.get("X_BEARER_TOKEN"):
        raise click.ClickException("X_BEARER_TOKEN is not set; see the README on getting an X API token.")


class _JobLine:
    """A job's progress drawn on stderr as one line that rewrites itself: a bar, a share and the message."""

    WIDTH = 24

    def __init__(self) -> None:
        self.drawn = False

    def __call__(self, done: int, total: int, message: str) -> None:
        if total > 0:
            filled = round(self.WIDTH * min(done, total) / total)
            line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {min(done, total) / total:4.0%}  {message}"
        else:
            line = message
        click.echo(f"\r{line[:110]:<110}", nl=False, err=True)
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            click.echo(err=True)


def _run_job(kind: str, username: str | None = None, **params) -> jobs.Job:
    line = _JobLine()
    try:
        job = jobs.run_here(kind, username, echo=line, **params)
    finally:
        line.close()
    if job.state != "done":
        raise click.ClickException(job.error or "The job failed.")
    return job


@click.command("add")
@with_appcontext
@click.argument("username")
def add(username: str) -> None:
    """Fetch an account's posts through the X API (a stored account gets its newer posts)."""
    try:
        handle = archive.check_username(username)
    except archive.ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    _require_token()
    click.echo(_run_job("add", handle).message)


@click.command("update")
@with_appcontext
def update() -> None:
    """Fetch newer posts for every account that came from the X API."""
    _require_token()
    job = _run_job("update-all")
    for account in (job.result or {}).get("updated", []):
        click.echo(f"@{account['username']}: {account['added']} new posts.")
    failed = (job.result or {}).get("failed") or {}
    for handle, why in failed.items():
        click.echo(f"@{handle}: {why}", err=True)
    click.echo(job.message)
    if failed:
        accounts = len(failed) + len(job.result["updated"])
        raise click.ClickException(f"{len(failed)} of {accounts} accounts could not be updated.")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for more jobs.")
def worker(burst: bool) -> None:
    """Run jobs from Redis (REDIS_URL) until stopped: the Procfile's worker process."""
    from rq import Worker

    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        raise click.ClickException("REDIS_URL is not set; without Redis, jobs run inside the web process.")
    queue = jobs.rq_queue(redis_url, for_worker=True)
    failed = jobs.sweep(rq_worker_alive=True)  # what stopped with the last workers; this one takes the queue
    if failed:
        click.echo(f"{failed} job(s) whose process had ended were marked as stopped.", err=True)
    Worker([queue], connection=queue.connection).work(burst=burst, with_scheduler=False)


@click.command("predict")
@with_appcontext
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
            f"(chance {prediction.chance:.0%})."
        )
    for warning in prediction.warnings:
        click.echo(f"Warning: {warning}")
    reasons = prediction.reasons

    def grams(shown: list[tuple[str, float]]) -> str:
        listed = [f"{g!r}" + (f" (in {reasons.within[g]})" if g in reasons.within else "") for g, _ in shown]
        return ", ".join(listed) or "nothing in particular"

    click.echo(f"\nWhy @{reasons.top} rather than @{reasons.runner_up}:")
    click.echo(f"  toward @{reasons.top}: {grams(reasons.toward_top)}")
    click.echo(f"  toward @{reasons.runner_up}: {grams(reasons.toward_runner_up)}")


@click.command("evaluate")
@with_appcontext
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


@click.command("delete")
@with_appcontext
@click.argument("username")
@click.confirmation_option(prompt="Delete this account with its posts and style models?")
def delete(username: str) -> None:
    """Delete one stored account with its posts, its style models and its jobs."""
    try:
        handle, posts = jobs.delete_account(username)
    except (IngestError, jobs.Busy) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deleted @{handle} and its {posts:,} posts.")


@click.command("reset")
@with_appcontext
@click.confirmation_option(prompt="Delete every stored account and post?")
def reset() -> None:
    """Delete every stored account and post (the schema stays)."""
    users, tweets = delete_all()
    click.echo(f"Deleted {users} accounts and {tweets} posts.")


sentiment_cli = click.Group("sentiment", help="Train, evaluate and use the sentiment model.")


@sentiment_cli.command("train")
@with_appcontext
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
def sentiment_train(paths: tuple[str, ...]) -> None:
    """Train a model on labelled files (SemEval TSV, Sentiment140 CSV, or CSV with text,label) and serve it."""
    click.echo(_run_job("sentiment-train", paths=[str(Path(p).resolve()) for p in paths]).message)


@sentiment_cli.command("evaluate")
@with_appcontext
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


@sentiment_cli.command("score")
@with_appcontext
@click.argument("text")
def sentiment_score(text: str) -> None:
    """Label one text with the model in service."""
    try:
        _, row, (scored,) = sentiment.analyse([text])
    except sentiment.SentimentError as exc:
        raise click.ClickException(str(exc)) from None
    model = f"trained model {row.id}" if row else "VADER"
    click.echo(f"{scored.label} ({scored.score:+.2f} on a scale from -1 to +1) by {model}")
    ranked = sorted(scored.words, key=lambda wv: wv[1])
    for direction, pulls in (
        ("positive", [w for w in reversed(ranked) if w[1] > 0]),
        ("negative", [w for w in ranked if w[1] < 0]),
    ):
        if pulls:
            click.echo(f"  toward {direction}: " + ", ".join(f"{word} ({weight:+.2f})" for word, weight in pulls[:5]))


virality_cli = click.Group("virality", help="Train and use the model of whether a post gets likes.")
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


@virality_cli.command("train")
@with_appcontext
@threshold_option
@margin_option
def virality_train(threshold: int | None, margin: float) -> None:
    """Train a challenger on the stored posts and promote it only if it beats the champion by the margin."""
    click.echo(_run_job("virality-train", threshold=threshold, margin=margin).message)


@virality_cli.command("score")
@with_appcontext
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


@virality_cli.command("models")
@with_appcontext
def virality_models() -> None:
    """The registry: every version, its standing and its held-out ROC AUC."""
    rows = db.session.scalars(
        sa.select(ModelVersion).where(ModelVersion.kind == virality.KIND).order_by(ModelVersion.id)
    )
    for row in rows:
        click.echo(
            f"{row.id:>4}  {row.status:<10}  {row.created_at:%Y-%m-%d %H:%M}  ROC AUC {row.metrics['roc_auc']}  "
            f"on {row.metrics['rows']:,} posts  {row.decision['reason']}"
        )


generate_cli = click.Group("generate", help="Write posts in the style of a stored account.")


@generate_cli.command("train")
@with_appcontext
@click.argument("username")
@click.option("--engine", type=click.Choice(generate.ENGINES), default="kneser-ney", show_default=True)
def generate_train(username: str, engine: str) -> None:
    """Train the model that writes like USERNAME on its stored posts (the LSTM engine needs PyTorch)."""
    click.echo(_run_job("style-train", username.strip().lstrip("@"), engine=engine).message)


@generate_cli.command("write")
@with_appcontext
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


@generate_cli.command("evaluate")
@with_appcontext
@click.argument("username")
@click.option("--against", multiple=True, help="An account to tell it from (three by default: the largest others).")
@click.option("--count", default=50, show_default=True, type=click.IntRange(5, 500), help="Posts to generate.")
@click.option("--engine", type=click.Choice(generate.ENGINES), default="kneser-ney", show_default=True)
def generate_evaluate(username: str, against: tuple[str, ...], count: int, engine: str) -> None:
    """Held-out bits per character, distance to the real posts, copy rate and style fidelity."""
    try:
        figures = generate.evaluate_account(username, list(against), count, engine)
    except generate.StyleError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"@{figures['username']}: trained on the oldest 90% of {figures['posts']:,} posts, tested on the rest")
    shape = f"order {figures['order']}" if "order" in figures else f"LSTM, {figures['epochs']} epochs"
    click.echo(f"  {shape}, held-out bits per character {figures['bits_per_char']:.3f}")
    click.echo(f"  {figures['generated']} generated posts at temperature {figures['temperature']}:")
    click.echo(f"    mean TF-IDF cosine distance to the nearest real post {figures['distance']:.3f}")
    click.echo(
        f"    copy rate {figures['copy_rate']:.0%} of drafts repeated 40 characters of a real post "
        f"({figures['copies_drawn_again']} drawn again; none is among the posts)"
    )
    if "fidelity" in figures:
        others = ", ".join(f"@{h}" for h in figures["against"])
        click.echo(f"    style fidelity {figures['fidelity']:.0%} (attributed back among it and {others})")


@click.command("refresh")
@with_appcontext
@threshold_option
@margin_option
def refresh(threshold: int | None, margin: float) -> None:
    """For cron or Heroku Scheduler: fetch newer posts for every account, retrain, compare, promote."""
    click.echo(_run_job("refresh", threshold=threshold, margin=margin).message)


def init_app(app: Flask) -> None:
    for command in (
        seed_demo,
        import_file,
        export,
        restore,
        add,
        update,
        worker,
        predict,
        evaluate,
        delete,
        reset,
        sentiment_cli,
        virality_cli,
        refresh,
        generate_cli,
    ):
        app.cli.add_command(command)
