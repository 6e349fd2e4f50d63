"""Plain records that every source produces and the ingest path consumes.

Sources (the X API, archives, the demo accounts) only fetch and normalise into these; they never touch
the database. Keeping them free of Flask and SQLAlchemy lets the readers be tested on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The longest post any source may bring. X's own longest posts are 25,000 characters; more is not a post
# (and the embedding's pipeline refuses a text of a million characters).
MAX_POST_CHARS = 50_000


def clean_text(text: str) -> str:
    """Text as it can be stored and hashed everywhere: no NUL characters, lone surrogates as U+FFFD.

    PostgreSQL refuses NUL in text, and a lone surrogate (possible in JSON's \\uD800 escapes) cannot be
    encoded as UTF-8; neither carries meaning in a post.
    """
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def count(value: object) -> int | None:
    """A count a network sent (likes, reposts, replies, followers): a whole number from 0, or None where it
    sent none or nonsense (unknown, which is not 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def checked_text(text: str | None, max_chars: int, empty: str, error: type[Exception], noun: str = "A post") -> str:
    """Typed text, cleaned and trimmed, or ``error`` saying what to change when it is empty or too long."""
    text = clean_text(text or "").strip()
    if not text:
        raise error(empty)
    if len(text) > max_chars:
        raise error(f"{noun} can be at most {max_chars} characters; this one has {len(text)}.")
    return text


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account as a source knows it: the platform's id for it, its full handle and display name.

    ``id``: X's number; a Bluesky DID ("did:plc:..."); for Mastodon, the instance and the account's id
    there ("mastodon.social/109..."), since an id means something only on its instance. ``username``: the
    full handle without its @ ("ana", "ana.bsky.social", "ana@mastodon.social").
    """

    id: int | str
    username: str
    name: str
    followers_count: int | None = None  # when the source gives it
    platform: str = "x"  # "x", "bluesky" or "mastodon"
    # The id the account had before it moved (a Mastodon account that moved instance): the stored account
    # under that id follows it.
    moved_from: str | None = None


@dataclass(frozen=True, slots=True)
class PostRecord:
    """One original post, normalised. ``created_at`` is always timezone-aware (UTC).

    ``id``: the platform's id for the post: X's number, a Bluesky post's AT URI, a Mastodon status's
    instance and id ("mastodon.social/1131...").
    """

    id: int | str
    text: str
    created_at: datetime
    # None where the source does not say (a file without the column): unknown, not zero.
    like_count: int | None = None
    retweet_count: int | None = None
    reply_count: int | None = None
    lang: str | None = None
    has_media: bool | None = None  # a photo, video or GIF attached; None where the source does not say
