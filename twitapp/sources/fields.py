"""The fields of a post read from a file, each checked: ids, times, counts, media; and ArchiveError, the one
error of reading a file of posts, whose message says where (``post 3``, ``line 12``, ``row 4``) and why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from twitapp.errors import UserError
from twitapp.sources.records import MAX_POST_CHARS, PostRecord


class ArchiveError(UserError, ValueError):
    """The file cannot be imported; the message says where and why."""


def parse_time(value: object, where: str) -> datetime:
    """ISO 8601 (the API, CSV) or the export's ``Wed Oct 10 20:19:24 +0000 2018``, as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        raise ArchiveError(f"{where}: missing created_at")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                raise ArchiveError(f"{where}: cannot read the date {text[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_id(value: object, where: str, what: str = "id", *, negative: bool = False) -> int:
    """A platform id, which exports give as a string and the API as a string or number.

    ``negative``: an account id may also be one of the app's own local ids (``local_account_id``).
    """
    if isinstance(value, bool):
        raise ArchiveError(f"{where}: {what} must be a number")
    text = str(value).strip()
    try:
        number = int(text) if len(text) <= 40 else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ArchiveError(f"{where}: {what} must be a number, not {str(value)[:30]!r}")
    lowest = -(2**63) if negative else 0
    if not lowest < number < 2**63 or number == 0:
        raise ArchiveError(f"{where}: {what} {number} is out of range")
    return number


def parse_count(value: object, where: str, what: str) -> int | None:
    """A count a file gives (likes, reposts, replies, followers); None where it gives none: unknown, not 0."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        number = int(text) if len(text) <= 20 else None
    except ValueError:
        number = None
    if number is None:
        raise ArchiveError(f"{where}: {what} must be a whole number, not {str(value)[:30]!r}")
    if number < 0:
        raise ArchiveError(f"{where}: {what} cannot be negative")
    if number >= 2**31:
        raise ArchiveError(f"{where}: {what} {number:,} is more than any post has")
    return number


def post_record(
    where: str,
    id_: object,
    text: object,
    created_at: object,
    lang: object = None,
    has_media: bool | None = None,
    *,
    read_id: Callable[[object, str], int | str] | None = None,
    **counts,
) -> PostRecord:
    """A checked PostRecord from a file's raw fields; ``counts`` are like_count, retweet_count, reply_count.
    ``read_id(value, where)`` checks the id (X's number by default)."""
    if not isinstance(text, str) or not text.strip():
        raise ArchiveError(f"{where}: the post has no text")
    if len(text) > MAX_POST_CHARS:
        raise ArchiveError(f"{where}: the post has {len(text):,} characters; a post has at most {MAX_POST_CHARS:,}")
    return PostRecord(
        id=(read_id or parse_id)(id_, where),
        text=text,
        created_at=parse_time(created_at, where),
        lang=lang[:8] if isinstance(lang, str) and lang else None,
        has_media=has_media,
        **{name: parse_count(value, where, name) for name, value in counts.items()},
    )


def media_in(post: dict) -> bool | None:
    """Whether a post object says it carries media: X API v2 ``attachments`` or an export's ``entities``."""
    attachments = post.get("attachments")
    if isinstance(attachments, dict):
        return bool(attachments.get("media_keys"))
    for name in ("extended_entities", "entities"):
        entities = post.get(name)
        if isinstance(entities, dict) and entities.get("media"):
            return True
    # An export (tweets.js) lists media under its entities whenever there are any; an X API v2 post
    # without "attachments" may simply not have been asked for them.
    return False if "full_text" in post or "favorite_count" in post else None
