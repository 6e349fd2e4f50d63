"""Every table: accounts and their posts, jobs, uploads, trained models, and the operators who run it all."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import abort
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from twitapp.extensions import db
from twitapp.sources.handles import BLUESKY_DID, MAX_HANDLE_CHARS, NETWORK_NAMES, PLATFORMS, STORED_HANDLE, typed

# A surrogate key that counts up by itself on both backends: SQLite does so only for an INTEGER PRIMARY
# KEY (its 64-bit rowid), PostgreSQL for an identity column.
SurrogateKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware timestamp on every backend.

    PostgreSQL keeps the offset; SQLite stores naive text, so values are normalised to UTC on the way in
    and marked as UTC on the way out. Naive datetimes are refused rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored in a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class User(db.Model):
    """An account whose posts are stored, on one network: known there as ``platform_id``, here as ``id``.

    ``platform_id``: X's number (negative for an account known only from a file without it), a Bluesky DID,
    or a Mastodon instance and the account's id there ("mastodon.social/1093..."). ``username`` is the full
    handle without its @ ("ana", "ana.bsky.social", "ana@mastodon.social"), unique per network whatever
    its case.
    """

    __tablename__ = "users"
    __table_args__ = (
        sa.Index("uq_users_platform_id", "platform", "platform_id", unique=True),
        sa.Index("uq_users_username_lower", "platform", sa.func.lower(sa.column("username")), unique=True),
        {"sqlite_autoincrement": True},  # a key is never given again, so no cache takes a new account for a gone one
    )

    id: Mapped[int] = mapped_column(SurrogateKey, sa.Identity(), primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(16), server_default="x")
    platform_id: Mapped[str] = mapped_column(sa.String(200))
    username: Mapped[str] = mapped_column(sa.String(MAX_HANDLE_CHARS))
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    # X's id of the newest post stored (X's ids count up with time); other networks' are not numbers.
    newest_tweet_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Where the posts came from: "x" (the X API), "bluesky", "mastodon", "archive" (an imported file) or
    # "demo".
    source: Mapped[str] = mapped_column(sa.String(16))
    # When the source gives it (the X API does; archives do not).
    followers_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tweets: WriteOnlyMapped[Tweet] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<User @{self.username} on {self.platform}>"

    @property
    def network(self) -> str:
        """The network's name as pages show it."""
        return NETWORK_NAMES.get(self.platform, self.platform)

    @property
    def fetchable(self) -> bool:
        """Whether the account's posts come from its network (and an update can fetch newer ones)."""
        return self.source in PLATFORMS  # a network's own account's source is the network's name

    @property
    def profile_url(self) -> str | None:
        """The account's public profile on its network (none for an account made up for a demo)."""
        if self.source == "demo":
            return None
        if self.platform == "bluesky":
            return f"https://bsky.app/profile/{self.username}"
        if self.platform == "mastodon":
            user, _, instance = self.username.partition("@")
            return f"https://{instance}/@{user}"
        return f"https://x.com/{self.username}"

    def post_url(self, post_id: str) -> str | None:
        """A stored post's address on its network."""
        if self.source == "demo":
            return None
        if self.platform == "bluesky":
            rkey = post_id.rsplit("/", 1)[-1]
            return f"https://bsky.app/profile/{self.username}/post/{rkey}"
        if self.platform == "mastodon":  # the post's own instance: the account may have moved since
            user, instance = self.username.partition("@")[0], post_id.rpartition("/")[0]
            return f"https://{instance}/@{user}/{post_id.rsplit('/', 1)[-1]}"
        return f"https://x.com/{self.username}/status/{post_id}" if post_id.isdigit() else None


class PostFields:
    """The columns a stored post (``Tweet``) and a post staged by an import (``StagedPost``) share."""

    text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # NULL where the source did not give the count (a file without it): unknown, not zero.
    like_count: Mapped[int | None]
    retweet_count: Mapped[int | None]
    reply_count: Mapped[int | None]
    lang: Mapped[str | None] = mapped_column(sa.String(8))
    # A photo, video or GIF attached; NULL where the source did not say.
    has_media: Mapped[bool | None] = mapped_column(sa.Boolean)
    # Hashed n-gram counts from features.encode(); NULL or an older version is recomputed on first use.
    features: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


# What an import copies from a staged post into a stored one, besides the id and the embedding.
POST_FIELDS = tuple(PostFields.__annotations__)


class Tweet(PostFields, db.Model):
    """One original post with its public metrics and its spaCy document vector.

    ``post_id`` is the network's id for it: X's number, a Bluesky post's AT URI, a Mastodon status's
    instance and id ("mastodon.social/1131..."); ``id`` is the key here.
    """

    __tablename__ = "tweets"
    __table_args__ = (
        sa.Index("ix_tweets_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_tweets_user_id_id", "user_id", "id"),  # an export's pages of an account's posts
        sa.Index("uq_tweets_platform_post_id", "platform", "post_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SurrogateKey, sa.Identity(), primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(16), server_default="x")
    post_id: Mapped[str] = mapped_column(sa.String(MAX_HANDLE_CHARS))
    user_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"))
    # float32 bytes from embed.to_bytes(); never a pickle, which would run code on load.
    embedding: Mapped[bytes] = mapped_column(sa.LargeBinary)

    user: Mapped[User] = relationship(back_populates="tweets")

    def __repr__(self) -> str:
        return f"<Tweet {self.platform}:{self.post_id} by {self.user_id}>"


def find_user(username: str) -> User | None:
    """The stored account with this full handle, whatever its case (and with or without a leading @).

    Handles of different networks never share a form (see ``handles``), so the full handle names one
    account on whichever network it is.
    """
    handle = typed(username).lower()
    if BLUESKY_DID.fullmatch(handle):  # an account added by its DID, as a bsky.app address may give it
        return find_account("bluesky", handle)
    if len(handle) > MAX_HANDLE_CHARS or not STORED_HANDLE.fullmatch(handle):
        return None  # no stored handle looks like this, and odd characters never reach the database
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.username) == handle).limit(1))


def find_account(platform: str, platform_id: int | str) -> User | None:
    """The stored account the network knows by ``platform_id``."""
    return db.session.scalar(
        sa.select(User).where(User.platform == platform, User.platform_id == str(platform_id)).limit(1)
    )


def find_user_or_404(username: str) -> User:
    """The stored account, or a 404 whose message names the handle (HTML or JSON by the error handler)."""
    user = find_user(username)
    if user is None:
        abort(404, description=f"No stored account is called @{typed(username)[:MAX_HANDLE_CHARS]}.")
    return user


def newest_posts(user: User) -> sa.Select:
    """An account's posts, newest first (ties broken by id, so pages never overlap)."""
    return sa.select(Tweet).where(Tweet.user_id == user.id).order_by(Tweet.created_at.desc(), Tweet.id.desc())


def tweet_counts() -> dict[int, int]:
    """Stored posts per account id, in one query."""
    rows = db.session.execute(sa.select(Tweet.user_id, sa.func.count()).group_by(Tweet.user_id))
    return {user_id: count for user_id, count in rows}


class Job(db.Model):
    """Work done outside a request (fetching, importing, training): its state and progress, for all to see.

    States: queued, running, waiting (for a rate limit to reset), done, failed. ``heartbeat_at`` moves
    with every progress report, so a job whose worker died is recognised as stale.
    """

    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_username_created_at", "username", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    username: Mapped[str | None] = mapped_column(sa.String(MAX_HANDLE_CHARS))
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    state: Mapped[str] = mapped_column(sa.String(16), default="queued")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(sa.String(300), default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The process that holds the job ("host:pid:start" for a web process's job thread, "rq" for Redis),
    # so a job whose process died is recognised at once on the same machine, and by its silence elsewhere.
    worker: Mapped[str | None] = mapped_column(sa.String(120))


class SentimentModel(db.Model):
    """A trained sentiment model: its bytes with their hash, what it learned from, how it scored.

    The bytes are arrays and text (artefacts.py), never a pickle. The newest row of the current ``format``
    whose bytes still match ``sha256`` and read back as a model is in service; older rows stay as the history.
    """

    __tablename__ = "sentiment_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(sa.JSON)  # files, their hashes, rows used and dropped
    metrics: Mapped[dict] = mapped_column(sa.JSON)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    artefact: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)  # read only to load the model


class Upload(db.Model):
    """A file sent through a page, kept until the job that reads it is over.

    Jobs may run on another machine (an RQ worker), so what they read travels in the database, not on disk.
    The bytes are stored in parts of at most a mebibyte (``UploadPart``), so neither the request that
    stores a file nor the job that reads it holds the whole of it in memory.
    """

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


class UploadPart(db.Model):
    """One piece of an upload's bytes, in order of ``number`` (0 first)."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[int] = mapped_column(sa.ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class StagedPost(PostFields, db.Model):
    """A post read and embedded by an import that is not over yet, waiting to be stored with the rest.

    An import writes its posts here a batch at a time (each batch its own short transaction, so memory
    stays flat and other writers are not locked out for long), then moves them all into ``tweets`` in one
    last transaction: a stopped import leaves no account half-written, only rows here, which are dropped.
    ``known``: the post is stored already; the row only carries the file's counts for a replace.
    """

    __tablename__ = "staged_posts"

    batch: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    # The network's id for the post, as ``Tweet.post_id`` (a batch is one account's, so of one network).
    post_id: Mapped[str] = mapped_column(sa.String(MAX_HANDLE_CHARS), primary_key=True)
    known: Mapped[bool] = mapped_column(default=False)
    embedding: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # none for a post stored already
    staged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))


class ModelVersion(db.Model):
    """A trained model in the registry: what it learned from, how it scored, and its standing.

    ``status``: "champion" (in service; one per kind and subject, which the database enforces),
    "challenger" (trained, lost its comparison; its bytes are dropped, its figures kept) or "retired" (a
    former champion). ``decision`` records the comparison that set the status. Queries: registry.py.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        sa.Index("ix_model_versions_kind_status", "kind", "status"),
        # One champion per (kind, subject). A virality model has no subject (NULL), and NULLs never clash
        # in a unique index, so the subject is indexed as '' there.
        sa.Index(
            "uq_model_versions_champion",
            "kind",
            sa.func.coalesce(sa.column("subject"), sa.literal_column("''")),
            unique=True,
            sqlite_where=sa.text("status = 'champion'"),
            postgresql_where=sa.text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    # What the model is of, where it is of one thing: the account, for a style model.
    subject: Mapped[str | None] = mapped_column(sa.String(MAX_HANDLE_CHARS))
    format: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    trained_from: Mapped[datetime] = mapped_column(UTCDateTime)
    trained_to: Mapped[datetime] = mapped_column(UTCDateTime)
    params: Mapped[dict] = mapped_column(sa.JSON)
    metrics: Mapped[dict] = mapped_column(sa.JSON)
    decision: Mapped[dict] = mapped_column(sa.JSON)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    # Read only to load the model; empty for a refused challenger (pruned: nothing loads it).
    artefact: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)


class Operator(db.Model):
    """A person who runs this deployment: signs in to add, import, restore, export, delete and train.

    ``session_token`` goes into the signed session cookie beside the id; a new one (a new password, or
    ``flask operator signout``) ends every session signed in before.
    """

    __tablename__ = "operators"
    __table_args__ = (sa.Index("uq_operators_name_lower", sa.func.lower(sa.column("name")), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    session_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tokens: WriteOnlyMapped[ApiToken] = relationship(
        back_populates="operator", cascade="all, delete-orphan", passive_deletes=True
    )

    # What Flask-Login asks of a user object.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def __repr__(self) -> str:
        return f"<Operator {self.name}>"


class ApiToken(db.Model):
    """A named API token of an operator. Only its SHA-256 is stored: the token is shown once, when made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(sa.ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    operator: Mapped[Operator] = relationship(back_populates="tokens")
