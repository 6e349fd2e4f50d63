"""The lines of an export read back as records: an account with the network's ids for it, and its posts.

Files before version 3 name no network: their accounts are X's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twitapp.sources import handles
from twitapp.sources.fields import ArchiveError, parse_count, parse_id, parse_time, post_record
from twitapp.sources.records import AccountRecord, PostRecord, clean_text

SOURCES = (*handles.PLATFORMS, "archive", "demo")


@dataclass
class SavedAccount:
    record: AccountRecord
    source: str
    newest_tweet_id: int | None
    fetched_at: datetime | None
    posts: int = 0  # how many the file holds

    @property
    def key(self) -> tuple[str, str]:
        """The account's network and the network's id for it, as ``users`` keeps them."""
        return self.record.platform, str(self.record.id)


def read_account(value: object, where: str) -> SavedAccount:
    """An export's account line, checked: its network, the network's id for it, handle, name and counts."""
    if not isinstance(value, dict):
        raise ArchiveError(f"{where}: the account is not an object")
    username = value.get("username")
    if not isinstance(username, str) or not username.strip():
        raise ArchiveError(f"{where}: the account has no username")
    source = value.get("source")
    if source not in SOURCES:
        raise ArchiveError(f"{where}: unknown source {source!r}")
    platform = value.get("platform", "x")  # files before version 3 hold X's accounts only
    if platform not in handles.PLATFORMS:
        raise ArchiveError(f"{where}: unknown platform {platform!r}")
    name = value.get("name") if isinstance(value.get("name"), str) else ""
    newest = value.get("newest_tweet_id")
    fetched = value.get("fetched_at")
    followers = value.get("followers_count")
    return SavedAccount(
        record=AccountRecord(
            _network_id(value.get("id"), where, platform, "account id"),
            username.strip(),
            clean_text(name)[:100],
            parse_count(followers, where, "followers_count") if followers is not None else None,
            platform=platform,
        ),
        source=source,
        newest_tweet_id=parse_id(newest, where, "newest_tweet_id") if newest is not None else None,
        fetched_at=parse_time(fetched, where) if fetched is not None else None,
    )


def _network_id(value: object, where: str, platform: str, what: str) -> int | str:
    """An account's or a post's id on its network: X's a number (an account's may be a local, negative
    one), Bluesky's and Mastodon's text (a DID or an AT URI; an instance and an id)."""
    if platform == "x":
        return parse_id(value, where, what, negative=what == "account id")
    if not isinstance(value, str) or not 1 <= len(value) <= 300 or any(c.isspace() for c in value):
        raise ArchiveError(f"{where}: {what} must be the network's id as text, not {str(value)[:30]!r}")
    if platform == "bluesky" and not value.startswith(("did:", "at://")):
        raise ArchiveError(f"{where}: {what} {value[:40]!r} is not a Bluesky DID or AT URI")
    if platform == "mastodon" and "/" not in value:
        raise ArchiveError(f"{where}: {what} {value[:40]!r} does not name its Mastodon instance")
    return value


def read_post(value: object, where: str, platform: str = "x") -> PostRecord:
    """An export's post line, checked, for an account of ``platform``."""
    if not isinstance(value, dict):
        raise ArchiveError(f"{where}: the post is not an object")
    metrics = value.get("public_metrics") or {}
    if not isinstance(metrics, dict):
        raise ArchiveError(f"{where}: public_metrics is not an object")
    counts = {name: metrics.get(name) for name in ("like_count", "retweet_count", "reply_count")}
    media = value.get("has_media")
    if media is not None and not isinstance(media, bool):
        raise ArchiveError(f"{where}: has_media must be true or false")
    return post_record(
        where,
        value.get("id"),
        value.get("text"),
        value.get("created_at"),
        value.get("lang"),
        media,
        read_id=lambda raw, at: _network_id(raw, at, platform, "post id"),
        **counts,
    )
