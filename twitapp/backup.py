"""Export every stored account and post to one JSONL file, and restore such a file.

The file's first line names the format; then each account is a line ``{"account": {...}}`` followed by
its posts, one ``{"post": {...}}`` per line, ids as strings. Embeddings and n-gram features are left
out: they are derived from the text and recomputed on restore.

An export is written to a temporary file beside the target and renamed at the end, so a failed export
never leaves a truncated file under the real name. A restore reads and checks the whole file before
writing anything, then stores each account in its own transaction (``ingest.import_tweets``); restoring
the same file again changes nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from .archive import ArchiveError, decode_utf8, json_lines, parse_id, parse_time, post_record, read_file_bytes
from .extensions import db
from .ingest import IngestResult, import_tweets
from .models import Tweet, User
from .records import AccountRecord, PostRecord

FORMAT = "hypotweet-export"
VERSION = 1
SOURCES = ("x", "archive", "demo")

Progress = Callable[[int, int], None]


@dataclass
class SavedAccount:
    record: AccountRecord
    source: str
    newest_tweet_id: int | None
    fetched_at: datetime | None
    posts: list[PostRecord]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def records() -> Iterator[dict]:
    """The export, one JSON object per line: the header, then each account followed by its posts."""
    yield {"format": FORMAT, "version": VERSION, "exported_at": _iso(datetime.now(UTC))}
    for user in db.session.scalars(sa.select(User).order_by(User.id)).all():
        yield {
            "account": {
                "id": str(user.id),
                "username": user.username,
                "name": user.name,
                "source": user.source,
                "newest_tweet_id": str(user.newest_tweet_id) if user.newest_tweet_id else None,
                "fetched_at": _iso(user.fetched_at),
            }
        }
        posts = db.session.scalars(
            sa.select(Tweet).where(Tweet.user_id == user.id).order_by(Tweet.id).execution_options(yield_per=500)
        )
        for tweet in posts:
            yield {
                "post": {
                    "id": str(tweet.id),
                    "text": tweet.text,
                    "created_at": _iso(tweet.created_at),
                    "lang": tweet.lang,
                    **({} if tweet.has_media is None else {"has_media": tweet.has_media}),
                    "public_metrics": {
                        "like_count": tweet.like_count,
                        "retweet_count": tweet.retweet_count,
                        "reply_count": tweet.reply_count,
                    },
                }
            }


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def export(path: str | Path, progress: Progress | None = None) -> tuple[int, int]:
    """Write every account and post to ``path``; returns (accounts, posts)."""
    target = Path(path)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Tweet)) or 0
    accounts = written = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for record in records():
                out.write(line(record))
                accounts += "account" in record
                if "post" in record:
                    written += 1
                    if progress is not None and written % 500 == 0:
                        progress(written, total)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        db.session.rollback()
    if progress is not None:
        progress(written, total)
    return accounts, written


def read_export(path: str | Path) -> list[SavedAccount]:
    """Parse and check a whole export file; any problem raises ArchiveError naming its line."""
    return parse_export(read_file_bytes(path), str(path))


def parse_export(raw: bytes, name: str) -> list[SavedAccount]:
    """An export's accounts and posts from its bytes (a file's, or one sent through a page), all checked."""
    rows = list(json_lines(decode_utf8(raw, Path(name))))
    if not rows or rows[0][1].get("format") != FORMAT:
        raise ArchiveError(f"{name} is not a HypoTweet export (its first line should name {FORMAT!r})")
    if rows[0][1].get("version") != VERSION:
        raise ArchiveError(f"{name} is export version {rows[0][1].get('version')!r}; this app reads {VERSION}")
    accounts: list[SavedAccount] = []
    seen_accounts: set[int] = set()
    seen_posts: set[int] = set()
    for where, row in rows[1:]:
        if "account" in row:
            accounts.append(_account(row["account"], where))
            if accounts[-1].record.id in seen_accounts:
                raise ArchiveError(f"{where}: account {accounts[-1].record.id} appears twice")
            seen_accounts.add(accounts[-1].record.id)
        elif "post" in row:
            if not accounts:
                raise ArchiveError(f"{where}: a post before any account")
            post = _post(row["post"], where)
            if post.id in seen_posts:
                raise ArchiveError(f"{where}: post {post.id} appears twice")
            seen_posts.add(post.id)
            accounts[-1].posts.append(post)
        else:
            raise ArchiveError(f'{where}: expected an "account" or a "post"')
    return accounts


def _account(value: object, where: str) -> SavedAccount:
    if not isinstance(value, dict):
        raise ArchiveError(f"{where}: the account is not an object")
    username = value.get("username")
    if not isinstance(username, str) or not username.strip():
        raise ArchiveError(f"{where}: the account has no username")
    source = value.get("source")
    if source not in SOURCES:
        raise ArchiveError(f"{where}: unknown source {source!r}")
    name = value.get("name") if isinstance(value.get("name"), str) else ""
    newest = value.get("newest_tweet_id")
    fetched = value.get("fetched_at")
    return SavedAccount(
        record=AccountRecord(parse_id(value.get("id"), where, "account id"), username.strip(), name),
        source=source,
        newest_tweet_id=parse_id(newest, where, "newest_tweet_id") if newest is not None else None,
        fetched_at=parse_time(fetched, where) if fetched is not None else None,
        posts=[],
    )


def _post(value: object, where: str) -> PostRecord:
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
        where, value.get("id"), value.get("text"), value.get("created_at"), value.get("lang"), media, **counts
    )


def restore_accounts(
    accounts: list[SavedAccount], progress: Callable[[int, int, str], None] | None = None
) -> list[IngestResult]:
    """Store parsed export accounts, each in its own transaction."""
    results = []
    for number, saved in enumerate(accounts, start=1):
        label = f"@{saved.record.username} ({number} of {len(accounts)})"

        def step(done: int, total: int, label: str = label) -> None:
            if progress is not None:
                progress(done, total, f"Restoring {label}: {done:,} of {total:,} posts.")

        results.append(
            import_tweets(
                saved.record,
                saved.posts,
                source=saved.source,
                progress=step,
                fetched_at=saved.fetched_at,
                newest_tweet_id=saved.newest_tweet_id,
            )
        )
    return results
