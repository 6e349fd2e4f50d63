"""The ingest capability's jobs: fetching accounts from X, Bluesky and Mastodon, importing a file of posts,
restoring an export, and deleting an account while no job writes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.ingest import backup
from twitapp.ingest import store as ingest
from twitapp.ingest.fetch import add_or_update_user
from twitapp.ingest.store import IngestError, IngestResult, import_tweets
from twitapp.jobs import JobFailed, Reporter, cleanup, handler, now, under_way_for, uploads
from twitapp.jobs.runner import write_beat
from twitapp.models import User, find_user
from twitapp.sources import archive, handles, networks
from twitapp.sources.errors import RateLimited, SourceError
from twitapp.sources.handles import PLATFORMS
from twitapp.sources.records import AccountRecord, clean_text

# How often a rate-limited job waits for the network's reset before it gives up, and the longest single wait.
RATE_LIMIT_WAITS = 3


LONGEST_WAIT = timedelta(minutes=16)


NO_TOKEN = networks.NO_X_TOKEN


def _with_rate_limit_waits(work: Callable[[], Any], report: Reporter, network: str = "X") -> Any:
    """Run ``work``; when the network says the rate limit is spent, wait for its reset (saying so) and try
    again."""
    for attempt in range(RATE_LIMIT_WAITS + 1):
        try:
            return work()
        except RateLimited as exc:
            if attempt == RATE_LIMIT_WAITS:
                raise
            until = exc.reset_at or now() + timedelta(minutes=1)
            until = min(until, now() + LONGEST_WAIT)
            report.state(
                "waiting", f"{network}'s rate limit is spent; waiting until {until:%H:%M:%S} UTC, then going on."
            )
            while (left := (until - now()).total_seconds()) > 0:
                time.sleep(min(left, 30.0))
                write_beat(report.job_id)  # a heartbeat, so a long wait is not taken for a dead worker
            report.state("running", "Going on after the rate limit reset.")
    raise AssertionError("unreachable")


def _fetch(handle: handles.Handle, client, report: Reporter, by_id: bool = False) -> IngestResult:
    limit = current_app.config["TWEETS_PER_USER"]

    def fetched(count: int) -> None:
        report.progress(count, limit, f"Fetching {handle}'s posts from {handle.network}: {count:,} so far.")

    def embedded(done: int, total: int) -> None:
        report.progress(done, total, f"Reading {handle}'s new posts: {done:,} of {total:,}.")

    return _with_rate_limit_waits(
        lambda: add_or_update_user(handle, client, progress=embedded, fetched=fetched, by_id=by_id),
        report,
        handle.network,
    )


def describe(result: IngestResult) -> str:
    if result.created:
        return f"Added @{result.username} with {result.added:,} posts."
    refreshed = f"; the likes of {result.matched:,} recent posts were refreshed" if result.matched else ""
    if result.added:
        return f"Updated @{result.username}: {result.added:,} new posts, {result.total:,} in all{refreshed}."
    return f"@{result.username} is up to date: no new posts since the last fetch{refreshed}."


def _client(platform: str):
    client = networks.client_for(platform)
    if client is None:
        raise JobFailed(NO_TOKEN)
    return client


@handler("add", writes="account", title="Fetching the account")
def _add(params: dict, report: Reporter) -> tuple[str, dict]:
    """Fetch one account from its network: all of its history the first time, newer posts after.

    ``update``: the stored account is updated, looked up by its network's id for it where the network
    can (so a Bluesky account that took a new handle is followed there)."""
    handle = handles.parse(params["username"])
    with _client(handle.platform) as client:
        result = _fetch(handle, client, report, by_id=bool(params.get("update")))
    return describe(result), {
        "username": result.username,
        "platform": handle.platform,
        "added": result.added,
        "total": result.total,
        "created": result.created,
    }


@handler("update-all", writes="all", title="Fetching every account")
def update_all(params: dict, report: Reporter) -> tuple[str, dict]:
    """Fetch newer posts for every account that came from a network; one failing does not stop the rest.
    X's accounts are left as they are where no X token is set, and the message says so."""
    rows = db.session.execute(
        sa.select(User.username, User.platform, User.platform_id)
        .where(User.source.in_(PLATFORMS))  # accounts fetched from their network
        .order_by(User.username)
    ).all()
    db.session.rollback()
    left = [username for username, platform, _ in rows if not networks.online(platform)]
    rows = [row for row in rows if networks.online(row.platform)]
    without_token = ""
    if left:
        were = "account was" if len(left) == 1 else "accounts were"
        without_token = f" {len(left)} X {were} left as stored: no X token is set."
    if not rows:
        return "No stored account can be fetched again here." + without_token, {
            "updated": [],
            "failed": {},
            "left": left,
        }
    updated, failed = [], {}
    clients: dict[str, Any] = {}
    try:
        for number, (username, platform, platform_id) in enumerate(rows):
            report.progress(number, len(rows), f"Updating @{username} ({number + 1} of {len(rows)}).")
            # A Bluesky account by its DID: the handles read above may have changed hands since.
            handle = handles.Handle(platform, platform_id if platform == "bluesky" else username)
            try:
                if platform not in clients:
                    clients[platform] = _client(platform)
                result = _fetch(handle, clients[platform], report, by_id=True)
            except (SourceError, IngestError, JobFailed) as exc:
                failed[username] = str(exc)
            else:
                updated.append({"username": result.username, "added": result.added})
    finally:
        for client in clients.values():
            client.close()
    report.progress(len(rows), len(rows), "Updated every account.")
    added = sum(u["added"] for u in updated)
    message = f"Updated {len(updated)} of {len(rows)} accounts: {added:,} new posts."
    if failed:
        message += f" {len(failed)} could not be: " + ", ".join(f"@{h}" for h in failed) + "."
    return message + without_token, {"updated": updated, "failed": failed, "left": left}


@handler("import-file", writes="account", title="Importing the file")
def _import_file(params: dict, report: Reporter) -> tuple[str, dict]:
    """Import one account's posts from an X archive's tweets.js, a JSONL file or a CSV.

    The file is a path (the CLI) or files sent through a page (``uploads``: the posts, then an archive's
    account.js if it came too), read here, never in the request that sent them.
    """
    with uploads.inputs(params) as inputs:
        if "path" in params:
            posts = archive.PostFile.on_disk(params["path"])
        else:
            (name, opener), *beside = inputs.files
            account_js = None
            if beside:
                with beside[0][1]() as raw:
                    account_js = raw.read(archive.MAX_FILE_BYTES)
            posts = archive.PostFile(name, opener, account_js)
        message, result = _import_posts(params, posts, report)
        # For a replace, if the operator asks for one; a replace itself is the last use.
        inputs.keep = result["withheld"] > 0 and params.get("policy") != "replace"
        return message, result


MORE_POSTS = "For a larger file, run `flask import FILE --username NAME` where the app runs."


def import_account(found: archive.FileSummary, handle: str, source: str, name: str | None = None) -> AccountRecord:
    """The account a file's posts go to, or an ArchiveError when the file names another one or holds no
    posts to import (only replies and reposts, say): an account is not made empty."""
    if not found.posts:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items()))
        raise archive.ArchiveError(
            f"{source} holds no original posts to import"
            + (f" (only {skipped}, which are left out)." if skipped else ".")
        )
    stored = find_user(handle)
    if stored is not None and stored.platform != "x":
        raise archive.ArchiveError(
            f"@{stored.username} is a {stored.network} account; a file of X posts cannot be imported into it."
        )
    if found.username and found.username.lower() != handle.lower():
        raise archive.ArchiveError(f"{source} holds posts by @{found.username}, not @{handle}.")
    if stored is not None and found.account_id and str(found.account_id) != stored.platform_id:
        raise archive.ArchiveError(
            f"{source} belongs to account id {found.account_id}, but @{stored.username} is stored as "
            f"{stored.platform_id}."
        )
    return AccountRecord(
        id=found.account_id or (int(stored.platform_id) if stored else archive.local_account_id(handle)),
        username=stored.username if stored else handle,
        name=clean_text(name or (stored.name if stored else handle))[:100],
    )


def _import_posts(params: dict, posts: archive.PostFile, report: Reporter) -> tuple[str, dict]:
    report.progress(0, 0, f"Checking {posts.name}.")
    limit = params.get("max_posts")
    found = posts.check(limit, MORE_POSTS if limit else "")
    account = import_account(found, params["username"], posts.name, params.get("name"))
    db.session.rollback()

    def read(done: int, total: int) -> None:
        report.progress(done, total, f"Reading @{account.username}'s posts: {done:,} of {total:,}.")

    result = import_tweets(
        account,
        posts.posts(),
        source="archive",
        policy=params.get("policy", "keep"),
        progress=read,
        total=found.posts,
        check_handle=True,
        label=f"j{report.job_id}",
    )
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items()))
    message = f"@{result.username}: {result.added} new posts, {result.matched} already stored, {result.total} in all"
    message += f" (skipped {skipped})." if skipped else "."
    message += withheld_message([result])
    return message, {
        "username": result.username,
        "added": result.added,
        "total": result.total,
        "skipped": found.skipped,
        "changed": result.changed,
        **withheld([result]),
    }


def withheld(results: list[IngestResult]) -> dict:
    """What the file would change in what is stored, kept as stored by this run ("keep")."""
    return {
        "withheld": sum(r.withheld for r in results),
        "counts_kept": sum(r.differ for r in results),
        "handles_kept": {r.username: r.kept_handle for r in results if r.kept_handle},
        "names_kept": {r.username: r.kept_name for r in results if r.kept_name},
    }


def withheld_message(results: list[IngestResult]) -> str:
    kept = withheld(results)
    if not kept["withheld"]:
        return ""
    parts = []
    if kept["counts_kept"]:
        parts.append(f"{kept['counts_kept']:,} stored posts' likes, reposts or replies")
    if kept["handles_kept"]:
        parts.append(f"{len(kept['handles_kept'])} handle{'s' if len(kept['handles_kept']) > 1 else ''}")
    if kept["names_kept"]:
        parts.append(f"{len(kept['names_kept'])} display name{'s' if len(kept['names_kept']) > 1 else ''}")
    return f" The file differs in {', '.join(parts)}; the stored ones were kept."


@handler("restore", title="Restoring")
def _restore(params: dict, report: Reporter) -> tuple[str, dict]:
    """Store every account and post of an export: a path (the CLI) or a file sent through a page."""
    with uploads.inputs(params) as inputs:
        if "path" in params:
            export = backup.ExportFile.on_disk(params["path"])
        else:
            ((name, opener),) = inputs.files
            export = backup.ExportFile(name, opener)
        report.progress(0, 0, f"Checking {export.name}.")
        summary = export.check(policy=params.get("policy", "keep"))
        db.session.rollback()
        results = backup.restore_accounts(
            export, summary, params.get("policy", "keep"), report.progress, label=f"j{report.job_id}"
        )
        inputs.keep = sum(r.withheld for r in results) > 0 and params.get("policy") != "replace"
    added = sum(r.added for r in results)
    matched = sum(r.matched for r in results)
    message = f"Restored {len(results)} accounts: {added:,} new posts, {matched:,} already stored."
    message += withheld_message(results)
    return message, {
        "accounts": len(results),
        "added": added,
        "already_stored": matched,
        "changed": sum(r.changed for r in results),
        **withheld(results),
    }


class Busy(UserError):
    """The account is being written by a job now; the message says to wait."""


def delete_account(username: str) -> tuple[str, int]:
    """Delete a stored account (``ingest.delete_account``) unless a job is writing its posts now, which
    would bring it back half-made; IngestError for an unknown one, Busy for one being written."""
    stored = find_user(username)
    names = {handles.typed(username), *((stored.platform_id,) if stored is not None else ())}
    if any(under_way_for(name) is not None for name in names):  # a job may name the account by its DID
        raise Busy(f"@{handles.typed(username)} is being fetched or imported; delete it when that is done.")
    return ingest.delete_account(username)


@cleanup
def drop_staged_posts(failed_job_ids: list[int]) -> None:
    """An import that stopped leaves its staged batches: drop them with its job, and any a day old."""
    for job_id in failed_job_ids:
        ingest.drop_staged(prefix=f"j{job_id}-")
    ingest.drop_staged(older_than=uploads.KEEP)
