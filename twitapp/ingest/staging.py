"""The statements on ``staged_posts``, the table where an import's posts wait for its last transaction.

Each works in the session's transaction and never commits: ``store`` decides when a batch is staged and
when the staged rows move into ``tweets``, all in one last transaction (see ``store``'s docstring).
A row is a new post (embedded, with its features) or, ``known``, the counts of a post stored already.
A batch is one account's, so its posts are of one network (``platform``), and a staged row's ``post_id``
matches a stored post of that network by its ``post_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.models import POST_FIELDS, StagedPost, Tweet
from twitapp.sources.records import PostRecord

COUNTS = ("like_count", "retweet_count", "reply_count")


def key(post: PostRecord) -> str:
    """The network's id for a post, as ``post_id`` stores it."""
    return str(post.id)


def _stored_as(platform: str, post_id) -> sa.ColumnElement[bool]:
    return sa.and_(Tweet.platform == platform, Tweet.post_id == post_id)


def staged_row(batch: str, post: PostRecord, text: str, vector: bytes | None, blob: bytes | None, known=False) -> dict:
    """A row to stage: a new post with its cleaned text, embedding and features, or (``known``) a stored
    post's counts from the source."""
    return {
        "batch": batch,
        "post_id": key(post),
        "known": known,
        "text": text,
        "created_at": post.created_at,
        "like_count": post.like_count,
        "retweet_count": post.retweet_count,
        "reply_count": post.reply_count,
        "lang": post.lang,
        "has_media": post.has_media,
        "embedding": vector,
        "features": blob,
        "staged_at": datetime.now(UTC),
    }


def restage_counts(batch: str, platform: str, post: PostRecord) -> None:
    """A later copy of a post already read: its counts replace the staged ones, or, where the first copy
    matched what is stored (nothing staged), are staged now if the post is stored."""
    updated = db.session.execute(
        sa.update(StagedPost)
        .where(StagedPost.batch == batch, StagedPost.post_id == key(post))
        .values(**{c: getattr(post, c) for c in COUNTS})
    ).rowcount
    if not updated and db.session.scalar(sa.select(Tweet.id).where(_stored_as(platform, key(post)))) is not None:
        db.session.execute(sa.insert(StagedPost), [staged_row(batch, post, "", None, None, known=True)])


def differs(post: PostRecord, row) -> bool:
    """Whether the source gives a count other than the stored one (a count it does not give differs from none)."""
    return any((given := getattr(post, c)) is not None and given != getattr(row, c) for c in COUNTS)


def count_differing(batch: str, platform: str) -> int:
    """How many stored posts have counts staged that differ from theirs (unknown ones staged do not)."""
    differing = sa.or_(
        *(
            sa.and_(getattr(StagedPost, c).is_not(None), getattr(Tweet, c).is_distinct_from(getattr(StagedPost, c)))
            for c in COUNTS
        )
    )
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(StagedPost)
        .join(Tweet, _stored_as(platform, StagedPost.post_id))
        .where(StagedPost.batch == batch, StagedPost.known, differing)
    )


def move_new_posts(batch: str, platform: str, account_id: int) -> int:
    """Copy the staged new posts into ``tweets`` (those stored meanwhile left out), oldest first so the
    keys count up with time as the posts do; how many went in."""
    staged = sa.select(StagedPost).where(StagedPost.batch == batch).subquery()
    columns = ["post_id", "embedding", *POST_FIELDS]
    inserted = db.session.execute(
        sa.insert(Tweet).from_select(
            [*columns, "platform", "user_id"],
            sa.select(
                *(staged.c[c] for c in columns), sa.literal(platform, sa.String), sa.literal(account_id, sa.BigInteger)
            )
            .where(~staged.c.known, ~sa.exists().where(_stored_as(platform, staged.c.post_id)))
            .order_by(staged.c.created_at, staged.c.post_id),
        )
    )
    return inserted.rowcount


def apply_staged_counts(batch: str, platform: str) -> None:
    """Stored posts take their staged counts (and media, where the source says): a refresh or a replace."""
    refreshed = sa.select(StagedPost).where(StagedPost.batch == batch, StagedPost.known).subquery()
    this = sa.and_(Tweet.platform == platform, refreshed.c.post_id == Tweet.post_id)
    # A count the source does not give (NULL) leaves the stored one, as media does.
    values = {
        c: sa.func.coalesce(sa.select(refreshed.c[c]).where(this).scalar_subquery(), getattr(Tweet, c)) for c in COUNTS
    }
    values["has_media"] = sa.func.coalesce(
        sa.select(refreshed.c.has_media).where(this).scalar_subquery(), Tweet.has_media
    )
    db.session.execute(
        sa.update(Tweet)
        .where(Tweet.platform == platform, Tweet.post_id.in_(sa.select(refreshed.c.post_id)))
        .values(**values),
        execution_options={"synchronize_session": False},
    )
