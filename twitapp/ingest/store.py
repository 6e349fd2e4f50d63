"""The one path by which posts enter the database, whatever their source.

Posts arrive as a stream. They are deduplicated, and each batch is embedded and written to
``staged_posts`` in its own short transaction, so memory stays flat however many there are and other
writers wait only moments. Then one last short transaction creates or updates the account and moves the
staged posts into ``tweets``: a failure or a kill at any point before it leaves the stored data exactly as
it was (the staged rows are dropped), and after it everything is there. The statements on the staged rows
are in ``staging``; none of them commits.

What happens to what is stored already is the caller's ``policy``:

- ``"refresh"`` (a network's API, the source of truth): the account takes its new handle and name, and
  stored posts take the counts the network gives now;
- ``"keep"`` (files, the default): only what is missing is added; the account keeps its handle and name,
  stored posts keep their counts, and the result says what the file would have changed;
- ``"replace"`` (files, when the operator asks): the file's handle, name and counts replace the stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

import sqlalchemy as sa
from flask import current_app

from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.ingest import embed, features, staging
from twitapp.ingest.staging import COUNTS, key
from twitapp.models import Job, ModelVersion, StagedPost, Tweet, User, find_account, find_user
from twitapp.sources import handles
from twitapp.sources.records import AccountRecord, PostRecord, clean_text

CHUNK = 500  # ids per IN (...) query: well under SQLite's limit on bound parameters
BATCH = 1000  # posts embedded and staged per transaction (INGEST_BATCH overrides it)
POLICIES = ("refresh", "keep", "replace")


class IngestError(UserError, ValueError):
    """The posts cannot be stored as given; nothing was written."""


@dataclass(frozen=True)
class IngestResult:
    username: str
    added: int  # new posts stored
    matched: int  # posts of the source that were stored already
    total: int  # the account's posts now
    created: bool
    changed: int = 0  # stored posts whose counts were refreshed or replaced
    differ: int = 0  # stored posts whose counts differ from the source's, kept as stored ("keep")
    kept_handle: str | None = None  # the source's other handle for the account, not taken ("keep")
    kept_name: str | None = None  # the source's other display name, not taken ("keep")

    @property
    def withheld(self) -> int:
        """How many things a replace would change that this run kept: posts' counts, the handle, the name."""
        return self.differ + (self.kept_handle is not None) + (self.kept_name is not None)


Progress = Callable[[int, int], None]


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batches(posts: Iterable[PostRecord], size: int) -> Iterator[list[PostRecord]]:
    iterator = iter(posts)
    while batch := list(islice(iterator, size)):
        yield batch


def import_tweets(
    account: AccountRecord,
    posts: Iterable[PostRecord],
    *,
    source: str,
    policy: str = "keep",
    progress: Progress | None = None,
    total: int | None = None,
    fetched_at: datetime | None = None,
    newest_tweet_id: int | None = None,
    check_handle: bool = False,
    label: str | None = None,
) -> IngestResult:
    """Store ``account`` and ``posts`` under ``policy`` (see the module's docstring).

    ``progress(done, total)`` is called as batches are stored; ``total``: how many posts are coming, where
    ``posts`` is a stream (a sequence is counted). Raises IngestError when the handle is taken by another
    account, a post belongs to another account, or (``check_handle``, for handles from files) the handle
    is not one the app stores or reads like another account's. ``fetched_at`` and ``newest_tweet_id``
    restore an exported account's own values where the account is made here. ``label`` starts the key of
    the rows staged (a job's, so its rows can be dropped if its process dies).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    if total is None and isinstance(posts, Sequence):
        total = len(posts)
    handles.check_platform(account.platform)
    batch = f"{label[:12]}-{uuid.uuid4().hex[:19]}" if label else uuid.uuid4().hex  # the uuid part whole
    try:
        takes_handle = _check_account(account, policy, check_handle)
        counts = _stage(account, posts, batch, policy, progress, total)
        try:
            return _finish(account, batch, source, policy, counts, fetched_at, newest_tweet_id, takes_handle)
        except sa.exc.IntegrityError:
            # Another process stored the account or some of these posts between our reads and our commit
            # (two workers fetching one account at once). Its rows are committed now; a second pass skips them.
            db.session.rollback()
            try:
                return _finish(account, batch, source, policy, counts, fetched_at, newest_tweet_id, takes_handle)
            except sa.exc.IntegrityError:
                raise IngestError(
                    f"@{account.username} was being written by another process at the same time; try again."
                ) from None
    finally:
        db.session.rollback()
        drop_staged(batch)


def plan(account: AccountRecord, posts: Iterable[PostRecord]) -> IngestResult:
    """What storing ``posts`` would do, writing nothing: new posts, stored ones, and what a replace would
    change (stored posts whose counts differ, the handle, the name). The CLI shows it before a replace."""
    user = stored_account(account)
    counts = _Counts()
    differ = 0
    seen: set[str] = set()
    for group in _batches(posts, CHUNK):
        fresh = {key(p): p for p in group if key(p) not in seen}
        seen.update(fresh)
        known = _stored(account.platform, list(fresh))
        for post_id, post in fresh.items():
            row = known.get(post_id)
            if row is None:
                counts.added += 1
            else:
                counts.matched += 1
                differ += staging.differs(post, row)
    db.session.rollback()
    other_handle = user is not None and user.username != account.username
    other_name = user is not None and bool(account.name) and account.name != user.name
    return IngestResult(
        user.username if user else account.username,
        counts.added,
        counts.matched,
        0,
        user is None,
        differ=differ,
        kept_handle=account.username if other_handle else None,
        kept_name=account.name if other_name else None,
    )


def drop_staged(batch: str | None = None, older_than: timedelta | None = None, prefix: str | None = None) -> int:
    """Remove staged posts: one import's (``batch``), a job's (``prefix``, its label and a dash), or every
    import's staged before ``older_than`` ago."""
    statement = sa.delete(StagedPost)
    if batch is not None:
        statement = statement.where(StagedPost.batch == batch)
    if prefix is not None:
        statement = statement.where(StagedPost.batch.startswith(prefix, autoescape=True))
    if older_than is not None:
        statement = statement.where(StagedPost.staged_at < datetime.now(UTC) - older_than)
    with db.engine.begin() as connection:  # its own transaction, whatever state the session is in
        return connection.execute(statement).rowcount


def stored_account(account: AccountRecord) -> User | None:
    """The stored account a source's account is: the one its network knows by the same id, or the one it
    moved from (a Mastodon account that moved instance)."""
    user = find_account(account.platform, account.id)
    if user is None and account.moved_from:
        user = find_account(account.platform, account.moved_from)
    return user


def _check_account(account: AccountRecord, policy: str, check_handle: bool) -> bool:
    """Whether the account takes the source's handle (a new one always does); IngestError if the handle
    belongs to another account, or a file's new handle is not one to store."""
    user = stored_account(account)
    holder = find_user(account.username)
    if holder is not None and (user is None or holder.id != user.id):
        raise IngestError(
            f"@{holder.username} is already stored as a different account ({holder.network} id "
            f"{holder.platform_id}); it may have been renamed. Delete it or import under another name."
        )
    takes_handle = user is None or (policy != "keep" and user.username != account.username)
    try:
        if takes_handle:  # whatever the source, a handle the pages could never find is not stored
            handles.check_stored_form(account.username)
        if check_handle and takes_handle:
            check_new_handle(account.username, user.id if user else None)
    except handles.HandleError as exc:
        raise IngestError(str(exc)) from None
    db.session.rollback()
    return takes_handle


@dataclass
class _Counts:
    added: int = 0
    matched: int = 0
    newest: int = 0  # X's id of the newest post (X's ids count up with time; other networks' are not numbers)
    owner: int | None = None  # the stored account's key, where it is stored


def _stage(
    account: AccountRecord,
    posts: Iterable[PostRecord],
    batch: str,
    policy: str,
    progress: Progress | None,
    total: int | None,
) -> _Counts:
    """Embed and stage the new posts (and, for refresh or replace, the counts of stored ones), a batch per
    transaction; stored posts' counts that differ are counted either way."""
    user = stored_account(account)
    counts = _Counts(owner=user.id if user else None)
    db.session.rollback()
    seen: set[str] = set()
    done = 0
    size = int(current_app.config.get("INGEST_BATCH") or BATCH)
    if progress is not None:
        progress(0, total or 0)
    for group in _batches(posts, size):
        fresh = _first_copies(batch, account.platform, group, seen)
        known = _stored(account.platform, list(fresh))
        _refuse_foreign(known, counts.owner)
        new = [p for post_id, p in fresh.items() if post_id not in known]
        rows = _new_post_rows(batch, new) + _stored_count_rows(batch, fresh, known, policy)
        if rows:
            db.session.execute(sa.insert(StagedPost), rows)
        db.session.commit()
        counts.added += len(new)
        counts.matched += len(known)
        if account.platform == "x":
            counts.newest = max([counts.newest, *(int(p.id) for p in fresh.values())])
        done += len(group)
        if progress is not None:
            progress(done, max(total or 0, done))
    if total is not None and done != total:
        raise IngestError(
            f"The source gave {done:,} posts this time and {total:,} when it was checked: it changed while it "
            "was read. Nothing was stored; send it again."
        )
    return counts


def _first_copies(batch: str, platform: str, group: list[PostRecord], seen: set[str]) -> dict[str, PostRecord]:
    """The group's posts not read before, by id (``seen`` takes them); a later copy of a post read in an
    earlier group has its fresher counts restaged instead."""
    fresh: dict[str, PostRecord] = {}
    for post in group:
        if key(post) in seen:
            staging.restage_counts(batch, platform, post)  # a later copy of a post carries the fresher counts
        else:
            fresh[key(post)] = post
    seen.update(fresh)
    return fresh


def _refuse_foreign(known: dict[str, sa.Row], owner: int | None) -> None:
    """IngestError if any of these stored posts belongs to another account than ``owner`` (the stored
    account's key; None for an account not stored yet, which owns none)."""
    foreign = [i for i, row in known.items() if row.user_id != owner]
    if foreign:
        raise IngestError(
            f"{len(foreign)} of these posts (for example {foreign[0]}) are stored under another "
            "account; a file must hold one account's posts"
        )


def _new_post_rows(batch: str, new: list[PostRecord]) -> list[dict]:
    """The staged rows of posts not stored yet: cleaned text, embedding and hashed features."""
    texts = [clean_text(p.text) for p in new]
    vectors = embed.embed_texts(texts, current_app.config["SPACY_MODEL"]) if texts else []
    return [
        staging.staged_row(batch, post, text, embed.to_bytes(vector), blob)
        for post, text, vector, blob in zip(new, texts, vectors, features.encode(texts), strict=True)
    ]


def _stored_count_rows(batch: str, fresh: dict[str, PostRecord], known: dict[str, sa.Row], policy: str) -> list[dict]:
    """The staged rows of stored posts' counts: staged whenever the source's counts differ (or X refreshes
    them all), so the last transaction counts them for a keep and applies them otherwise, a later copy of
    the post included."""
    return [
        staging.staged_row(batch, post, "", None, None, known=True)
        for post_id, post in fresh.items()
        if (row := known.get(post_id)) is not None and (policy == "refresh" or staging.differs(post, row))
    ]


def _stored(platform: str, ids: list[str]) -> dict[str, sa.Row]:
    """The stored posts among these ids of the network's, by id: their account and counts."""
    found = {}
    for part in _chunks(ids):
        query = sa.select(Tweet.post_id, Tweet.user_id, *(getattr(Tweet, c) for c in COUNTS)).where(
            Tweet.platform == platform, Tweet.post_id.in_(part)
        )
        for row in db.session.execute(query):
            found[row.post_id] = row
    return found


def _finish(
    account: AccountRecord,
    batch: str,
    source: str,
    policy: str,
    counts: _Counts,
    fetched_at: datetime | None,
    newest_tweet_id: int | None,
    takes_handle: bool,
) -> IngestResult:
    """The last transaction: the account made or updated, the staged posts moved into ``tweets``.

    Every step below writes in this one transaction, committed at its end or rolled back whole."""
    try:
        user, created, kept_handle, kept_name = _save_account(account, source, policy, counts, fetched_at, takes_handle)
        db.session.flush()
        differ = staging.count_differing(batch, account.platform)
        inserted = staging.move_new_posts(batch, account.platform, user.id)
        if policy != "keep":
            staging.apply_staged_counts(batch, account.platform)
        newest = max(counts.newest, newest_tweet_id or 0, user.newest_tweet_id or 0)
        user.newest_tweet_id = newest or None
        total = db.session.scalar(sa.select(sa.func.count()).where(Tweet.user_id == user.id)) or 0
        username = user.username
        db.session.execute(sa.delete(StagedPost).where(StagedPost.batch == batch))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    # Staged as new but stored meanwhile by another writer: matched, not added.
    raced = counts.added - inserted
    return IngestResult(
        username,
        inserted,
        counts.matched + raced,
        total,
        created,
        changed=differ if policy != "keep" else 0,
        differ=differ if policy == "keep" else 0,
        kept_handle=kept_handle,
        kept_name=kept_name,
    )


def _save_account(
    account: AccountRecord,
    source: str,
    policy: str,
    counts: _Counts,
    fetched_at: datetime | None,
    takes_handle: bool,
) -> tuple[User, bool, str | None, str | None]:
    """The account made, or updated under ``policy`` (not committed): the user, whether it was made, and
    the source's handle and name where a keep did not take them."""
    user = stored_account(account)
    created = user is None
    kept_handle = kept_name = None
    if created:
        user = User(
            platform=account.platform,
            platform_id=str(account.id),
            username=account.username,
            name=account.name,
            source=source,
        )
        user.fetched_at = fetched_at or datetime.now(UTC)
        db.session.add(user)
    else:
        user.platform_id = str(account.id)  # an account that moved is known by its new id from now on
        if takes_handle:
            rename(user, account.username)
        elif account.username != user.username:
            kept_handle = account.username
        if policy != "keep":
            user.name = account.name or user.name
        elif account.name and account.name != user.name:
            kept_name = account.name
        if user.source == "demo" and source != "demo":
            user.source = source
        if counts.added or policy != "keep":
            user.fetched_at = datetime.now(UTC)
    if account.followers_count is not None and (created or policy != "keep"):
        user.followers_count = account.followers_count
    return user, created, kept_handle, kept_name


def rename(user: User, handle: str, ended_jobs_only: bool = False) -> None:
    """The account takes a new handle, with what is kept under its handle: its style models and its jobs
    (not committed)."""
    old = user.username.lower()
    if old != handle.lower():
        jobs = sa.func.lower(Job.username) == old
        if ended_jobs_only:
            jobs = sa.and_(jobs, Job.finished_at.is_not(None))
        for statement in (
            sa.update(ModelVersion).where(ModelVersion.subject == old).values(subject=handle.lower()),
            sa.update(Job).where(jobs).values(username=handle),
        ):
            db.session.execute(statement, execution_options={"synchronize_session": False})
    user.username = handle


def delete_account(username: str) -> tuple[str, int]:
    """Remove one account with its posts, its style models and its jobs, in one transaction.

    Returns the account's handle and how many posts went. Virality models keep what they learned: their
    registry rows record windows of posts, not particular accounts.
    """
    account = find_user(username)
    if account is None:
        raise IngestError(f"No stored account is called @{handles.typed(username)}.")
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
    """Remove every account and post, with the accounts' style models and jobs (as ``delete_account``
    does for one); returns how many accounts and posts were removed."""
    try:
        db.session.execute(sa.delete(ModelVersion).where(ModelVersion.subject.is_not(None)))  # models of accounts
        db.session.execute(sa.delete(Job).where(Job.username.is_not(None)))
        tweets = db.session.execute(sa.delete(Tweet)).rowcount
        users = db.session.execute(sa.delete(User)).rowcount
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return users, tweets


def stored_shapes() -> list[tuple[str, int, str]]:
    """Every stored handle with its account id and skeleton, read once for checking many handles."""
    return handles.shapes_of([tuple(row) for row in db.session.execute(sa.select(User.username, User.id))])


def check_new_handle(handle: str, account_id: int | None = None) -> str:
    """A handle from a file for the account ``account_id``: in the stored form, and no look-alike of
    another stored account's; a HandleError naming the problem otherwise."""
    handles.check_stored_form(handle)
    other = handles.look_alike(handle, stored_shapes(), account_id)
    if other is not None:
        raise handles.HandleError(
            f"@{handle} reads like @{other}, another stored account, so people could take one for the other; "
            "import it under a name that cannot be mistaken."
        )
    return handle
