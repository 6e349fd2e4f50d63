"""``flask`` commands that bring posts in and take them out: seed-demo, add, update, import, export,
restore, delete and reset. Long ones run as jobs in the foreground, with their progress drawn."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from twitapp.extensions import db
from twitapp.ingest import backup
from twitapp.ingest import store as ingest
from twitapp.ingest.jobs import Busy, delete_account, import_account
from twitapp.ingest.store import IngestError, delete_all, import_tweets
from twitapp.jobs.cli import JobLine, bar_progress, run_job
from twitapp.models import Job, User
from twitapp.sources import archive, demo, handles, networks
from twitapp.sources.formats import ParsedArchive
from twitapp.sources.records import AccountRecord

commands = AppGroup("ingest")


def _import(account: AccountRecord, parsed: ParsedArchive, source: str, label: str):
    progress, close = bar_progress(label)
    try:
        return import_tweets(account, parsed.posts, source=source, progress=progress)
    finally:
        close()


@commands.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when any account is already stored.")
def seed_demo(if_empty: bool) -> None:
    """Load the bundled fictional demo accounts."""
    if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        click.echo("Accounts are already stored; leaving them as they are.")
        return
    for account, parsed in demo.demo_accounts():
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


@commands.command("import")
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
        handle = handles.check_typed(username)
        if replace:
            posts = archive.PostFile.on_disk(path)
            account = import_account(posts.check(), handle, posts.name, name)
            _confirm_replace([ingest.plan(account, posts.posts())], yes)
    except (archive.ArchiveError, handles.HandleError) as exc:
        raise click.ClickException(str(exc)) from None
    params = {"path": str(Path(path).resolve()), "name": name, "policy": "replace" if replace else "keep"}
    job = run_job("import-file", handle, **params)
    click.echo(job.message + (" Run again with --replace to take the file's." if _withheld(job) else ""))


def _withheld(job: Job) -> bool:
    return bool((job.result or {}).get("withheld")) and (job.params or {}).get("policy") != "replace"


@commands.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export(path: str) -> None:
    """Write every account and post, with metrics, to PATH as JSONL (for `flask restore`)."""
    line = JobLine()
    try:
        accounts, posts = backup.export(path, progress=lambda done, total: line(done, total, "Exporting posts."))
    except OSError as exc:
        raise click.ClickException(f"Cannot write {path}: {exc.strerror}") from None
    finally:
        line.close()
    click.echo(f"Exported {accounts} accounts and {posts} posts to {path}.")


@commands.command("restore")
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
    job = run_job("restore", path=str(Path(path).resolve()), policy="replace" if replace else "keep")
    click.echo(job.message + (" Run again with --replace to take the file's." if _withheld(job) else ""))


@commands.command("add")
@click.argument("username")
def add(username: str) -> None:
    """Fetch an account's posts from its network (a stored account gets its newer posts).

    USERNAME: an X username (ana), a Bluesky handle (ana.bsky.social) or a Mastodon address
    (ana@mastodon.social); only X needs X_BEARER_TOKEN."""
    try:
        handle = handles.parse(username)
    except handles.HandleError as exc:
        raise click.ClickException(str(exc)) from None
    if not networks.online(handle.platform):
        raise click.ClickException("X_BEARER_TOKEN is not set; see the README on getting an X API token.")
    click.echo(f"Reading {handle} as a {handle.network} account.")
    click.echo(run_job("add", handle.name).message)


@commands.command("update")
def update() -> None:
    """Fetch newer posts for every account that came from X, Bluesky or Mastodon (X's need X_BEARER_TOKEN)."""
    job = run_job("update-all")
    for account in (job.result or {}).get("updated", []):
        click.echo(f"@{account['username']}: {account['added']} new posts.")
    failed = (job.result or {}).get("failed") or {}
    for handle, why in failed.items():
        click.echo(f"@{handle}: {why}", err=True)
    click.echo(job.message)
    if failed:
        accounts = len(failed) + len(job.result["updated"])
        raise click.ClickException(f"{len(failed)} of {accounts} accounts could not be updated.")


@commands.command("delete")
@click.argument("username")
@click.confirmation_option(prompt="Delete this account with its posts and style models?")
def delete(username: str) -> None:
    """Delete one stored account with its posts, its style models and its jobs."""
    try:
        handle, posts = delete_account(username)
    except (IngestError, Busy) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deleted @{handle} and its {posts:,} posts.")


@commands.command("reset")
@click.confirmation_option(prompt="Delete every stored account and post?")
def reset() -> None:
    """Delete every stored account and post (the schema stays)."""
    users, tweets = delete_all()
    click.echo(f"Deleted {users} accounts and {tweets} posts.")
