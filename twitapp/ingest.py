"""The one path by which posts enter the database, whatever their source.

Normalise and dedupe, embed only what is new, then write the account and its posts in one transaction:
a failure anywhere leaves the database exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from . import embed, features
from .extensions import db
from .models import Job, ModelVersion, Tweet, User, find_user
from .records import AccountRecord, PostRecord, clean_text

# An update fetches again the posts of this last stretch, to refresh their likes, reposts and replies.
METRICS_WINDOW = timedelta(days=7)
CHUNK = 500  # ids per IN (...) query: well under SQLite's limit on bound parameters


class IngestError(ValueError):
    """The posts cannot be stored as given; nothing was written."""


@dataclass(frozen=True)
class IngestResult:
    username: str
    added: int
    updated: int
    total: int
    created: bool


Progress = Callable[[int, int], None]


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def import_tweets(
    account: AccountRecord,
    posts: Iterable[PostRecord],
    *,
    source: str,
    progress: Progress | None = None,
    fetched_at: datetime | None = None,
    newest_tweet_id: int | None = None,
) -> IngestResult:
    """Store ``account`` and ``posts``: new posts are embedded and added, known ones get fresh metrics.

    ``progress(done, total)`` is called as embedding batches finish. Raises :class:`IngestError` when
    the handle is taken by a different account or a post belongs to another account. ``fetched_at``
    and ``newest_tweet_id`` restore an exported account's own values instead of now and its newest post.
    """
    unique: dict[int, PostRecord] = {}
    for post in posts:
        unique[post.id] = post  # a later copy of the same post carries the fresher metrics
    try:
        return _store(account, unique, source, progress, fetched_at, newest_tweet_id)
    except sa.exc.IntegrityError:
        # Another process stored some of the same rows between our reads and our commit (two workers
        # fetching one account at once). Its rows are committed now, so a second pass matches them.
        try:
            return _store(account, unique, source, progress, fetched_at, newest_tweet_id)
        except sa.exc.IntegrityError:
            raise IngestError(
                f"@{account.username} was being written by another process at the same time; try again."
            ) from None


def _store(
    account: AccountRecord,
    unique: dict[int, PostRecord],
    source: str,
    progress: Progress | None,
    fetched_at: datetime | None,
    newest_tweet_id: int | None,
) -> IngestResult:
    try:
        user = db.session.get(User, account.id)
        holder = find_user(account.username)
        if holder is not None and holder.id != account.id:
            raise IngestError(
                f"@{holder.username} is already stored as a different account (id {holder.id}); "
                "it may have been renamed. Reset it or import under another name."
            )
        known: dict[int, Tweet] = {}
        ids = list(unique)
        for part in _chunks(ids):
            for tweet in db.session.scalars(sa.select(Tweet).where(Tweet.id.in_(part))):
                known[tweet.id] = tweet
        foreign = [t.id for t in known.values() if t.user_id != account.id]
        if foreign:
            raise IngestError(
                f"{len(foreign)} of these posts (for example {foreign[0]}) are stored under another "
                "account; a file must hold one account's posts"
            )
        new_posts = [p for p in unique.values() if p.id not in known]
        texts = [clean_text(p.text) for p in new_posts]
        vectors = _embed_with_progress(texts, progress)
        hashed = features.encode(texts)

        created = user is None
        if created:
            user = User(id=account.id, username=account.username, name=account.name, source=source)
            db.session.add(user)
        else:
            user.username = account.username
            user.name = account.name or user.name
            if user.source == "demo" and source != "demo":
                user.source = source
        if account.followers_count is not None:
            user.followers_count = account.followers_count
        for post in unique.values():
            tweet = known.get(post.id)
            if tweet is not None:
                tweet.like_count = post.like_count
                tweet.retweet_count = post.retweet_count
                tweet.reply_count = post.reply_count
                if post.has_media is not None:
                    tweet.has_media = post.has_media
        for post, vector, blob in zip(new_posts, vectors, hashed, strict=True):
            db.session.add(
                Tweet(
                    id=post.id,
                    user_id=account.id,
                    text=clean_text(post.text),
                    created_at=post.created_at,
                    like_count=post.like_count,
                    retweet_count=post.retweet_count,
                    reply_count=post.reply_count,
                    lang=post.lang,
                    has_media=post.has_media,
                    embedding=embed.to_bytes(vector),
                    features=blob,
                )
            )
        newest = max([*unique, newest_tweet_id or 0, user.newest_tweet_id or 0])
        user.newest_tweet_id = newest or None
        user.fetched_at = fetched_at or datetime.now(UTC)
        db.session.flush()
        total = db.session.scalar(sa.select(sa.func.count()).where(Tweet.user_id == account.id)) or 0
        username = user.username
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return IngestResult(username, len(new_posts), len(known), total, created)


def _embed_with_progress(texts: list[str], progress: Progress | None):
    model = current_app.config["SPACY_MODEL"]
    if progress is None:
        return embed.embed_texts(texts, model)
    rows = []
    total = len(texts)
    progress(0, total)
    for start in range(0, total, embed.BATCH_SIZE):
        rows.extend(embed.embed_texts(texts[start : start + embed.BATCH_SIZE], model))
        progress(min(start + embed.BATCH_SIZE, total), total)
    return rows


def add_or_update_user(
    username: str, client, *, progress: Progress | None = None, fetched: Callable[[int], None] | None = None
) -> IngestResult:
    """Fetch an account through the X API and store it; a stored account gets only its newer posts.

    ``fetched(count)`` is called after each page of posts arrives; ``progress`` as for import_tweets.
    """
    account = client.lookup_user(username)
    since = refresh_since(account.id)
    db.session.rollback()  # no transaction stays open while the network is slow
    limit = current_app.config["TWEETS_PER_USER"]
    posts = client.fetch_timeline(account.id, since_id=since, limit=limit, progress=fetched)
    return import_tweets(account, posts, source="x", progress=progress)


def refresh_since(user_id: int) -> int | None:
    """Where a fetch starts: after the newest stored post older than METRICS_WINDOW.

    So an update brings the newer posts and, for the recent ones already stored, their likes, reposts
    and replies as they stand now (the virality model learns from them). None fetches the whole history.
    """
    cutoff = datetime.now(UTC) - METRICS_WINDOW
    return db.session.scalar(
        sa.select(sa.func.max(Tweet.id)).where(Tweet.user_id == user_id, Tweet.created_at < cutoff)
    )


def delete_account(username: str) -> tuple[str, int]:
    """Remove one account with its posts, its style models and its jobs, in one transaction.

    Returns the account's handle and how many posts went. Virality models keep what they learned: their
    registry rows record windows of posts, not particular accounts.
    """
    account = find_user(username)
    if account is None:
        raise IngestError(f"No stored account is called @{username.strip().lstrip('@')}.")
    handle = account.username
    try:
        posts = db.session.execute(sa.delete(Tweet).where(Tweet.user_id == account.id)).rowcount
        db.session.execute(sa.delete(ModelVersion).where(ModelVersion.subject == handle.lower()))  # models of it
        db.session.execute(sa.delete(Job).where(sa.func.lower(Job.username) == handle.lower()))
        db.session.delete(account)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return handle, posts


def delete_all() -> tuple[int, int]:
    """Remove every account and post; returns how many of each were removed."""
    try:
        tweets = db.session.execute(sa.delete(Tweet)).rowcount
        users = db.session.execute(sa.delete(User)).rowcount
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return users, tweets
