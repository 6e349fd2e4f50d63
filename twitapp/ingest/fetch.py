"""Fetching an account from its network into the one write path (``store.import_tweets``).

A stored account gets only its newer posts, and those of the last METRICS_WINDOW again, whose counts have
moved since; the network's client does the asking (``sources.networks``), this module decides what to ask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from twitapp.extensions import db
from twitapp.ingest.store import IngestResult, Progress, import_tweets, rename, stored_account
from twitapp.models import Tweet, find_account, find_user
from twitapp.sources import errors, handles
from twitapp.sources.records import AccountRecord

# An update fetches again the posts of this last stretch, to refresh their likes, reposts and replies.
METRICS_WINDOW = timedelta(days=7)


def add_or_update_user(
    username: str | handles.Handle,
    client,
    *,
    progress: Progress | None = None,
    fetched: Callable[[int], None] | None = None,
    by_id: bool = False,
) -> IngestResult:
    """Fetch an account from its network and store it; a stored account gets only its newer posts.

    ``username``: a typed handle (its form says the network) or a parsed one. ``by_id``: an update of a
    stored account, looked up by the id its network knows it by where the network can (a Bluesky DID), so
    it follows a new handle. ``fetched(count)`` is called after each page of posts arrives; ``progress`` as
    for import_tweets.
    """
    handle = username if isinstance(username, handles.Handle) else handles.parse(username)
    stored = find_user(handle.name)
    who = stored.platform_id if by_id and stored is not None and handle.platform == "bluesky" else handle.name
    account = client.lookup_user(who)
    follow_renamed_holder(account, client)
    user = stored_account(account)
    since = refresh_point(user.id) if user is not None else None
    db.session.rollback()  # no transaction stays open while the network is slow
    limit = current_app.config["TWEETS_PER_USER"]
    posts = client.fetch_timeline(
        account.id,
        since_id=since.post_id if since else None,
        since_time=since.created_at if since else None,
        limit=limit,
        progress=fetched,
    )
    return import_tweets(account, posts, source=account.platform, policy="refresh", progress=progress)


def follow_renamed_holder(account: AccountRecord, client) -> None:
    """Where another stored account of the network holds the handle ``account`` has now, that account
    has taken another handle since (a Bluesky handle now points at another DID): it takes the one its
    network gives it now, so both are stored as they are. Networks that look accounts up only by handle
    (X, Mastodon) are left to ``import_tweets``'s message."""
    holder = find_user(account.username)
    if holder is None or holder.platform_id == str(account.id) or holder.platform != "bluesky":
        db.session.rollback()
        return
    held_id = holder.platform_id
    db.session.rollback()
    try:
        now = client.lookup_user(held_id)
    except errors.SourceError:  # gone, or no handle any more: import_tweets says the handle is taken
        return
    if now.username.lower() == account.username.lower():
        return
    holder = find_account("bluesky", held_id)
    if holder is not None and find_user(now.username) is None:
        rename(holder, now.username, ended_jobs_only=True)  # the job under way is the new account's
        db.session.commit()
    db.session.rollback()


@dataclass(frozen=True)
class RefreshPoint:
    post_id: str
    created_at: datetime


def refresh_point(user_id: int) -> RefreshPoint | None:
    """Where a fetch starts: after the newest stored post older than METRICS_WINDOW.

    So an update brings the newer posts and, for the recent ones already stored, their likes, reposts
    and replies as they stand now (the virality model learns from them). None fetches the whole history.
    """
    cutoff = datetime.now(UTC) - METRICS_WINDOW
    row = db.session.execute(
        sa.select(Tweet.post_id, Tweet.created_at)
        .where(Tweet.user_id == user_id, Tweet.created_at < cutoff)
        .order_by(Tweet.created_at.desc(), Tweet.id.desc())
        .limit(1)
    ).first()
    return RefreshPoint(row.post_id, row.created_at) if row else None
