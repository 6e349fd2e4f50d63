"""Plain records that every source produces and the ingest path consumes.

Sources (the X API, archives, the demo accounts) only fetch and normalise into these; they never touch
the database. Keeping them free of Flask and SQLAlchemy lets the readers be tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account as a source knows it: the platform's numeric id, its handle and display name."""

    id: int
    username: str
    name: str


@dataclass(frozen=True, slots=True)
class PostRecord:
    """One original post, normalised. ``created_at`` is always timezone-aware (UTC)."""

    id: int
    text: str
    created_at: datetime
    like_count: int = 0
    retweet_count: int = 0
    reply_count: int = 0
    lang: str | None = None
