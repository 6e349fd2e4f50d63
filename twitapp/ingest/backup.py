"""Export every stored account and post to one JSONL file, and restore such a file.

The file's first line names the format; then each account is a line ``{"account": {...}}`` followed by
its posts, one ``{"post": {...}}`` per line, ids as strings (the network's own: an account's "platform"
says which network, since version 3); the last line, ``{"end": {...}}``, gives the
counts and the SHA-256 of every line before it, so a file cut short (a download interrupted, a server
timeout) or changed afterwards is refused whole instead of restoring part of a backup. Embeddings and
n-gram features are left out: they are derived from the text and recomputed on restore.

An export reads the database a page of posts at a time, each page its own short transaction, so a large
database is neither held in memory nor locked for the length of a download. A restore reads the whole
file first (every line checked, the end line verified, every handle checked), writing nothing, then
stores each account through the ingest path: what is stored already is kept unless the operator asks to
replace it, and restoring the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.ingest.export_lines import SavedAccount, read_account, read_post
from twitapp.ingest.store import CHUNK, IngestResult, import_tweets, stored_shapes
from twitapp.models import Tweet, User
from twitapp.sources import handles
from twitapp.sources.archive import text_stream
from twitapp.sources.fields import ArchiveError
from twitapp.sources.formats import json_lines
from twitapp.sources.records import PostRecord

FORMAT = "hypotweet-export"
# 2 added the end line and followers_count, 3 the account's platform (its network); older files restore
# as X's accounts.
VERSION = 3
READS = (1, 2, 3)
PAGE = 2000  # posts read per transaction while exporting
CUT_SHORT = (
    "it ends before its last line, so it was cut short (an interrupted download, say); "
    "nothing was restored. Download it again."
)

Progress = Callable[[int, int], None]
COUNT_COLUMNS = (Tweet.like_count, Tweet.retweet_count, Tweet.reply_count)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _post_record(row) -> dict:
    return {
        "post": {
            "id": row.post_id,
            "text": row.text,
            "created_at": _iso(row.created_at),
            "lang": row.lang,
            **({} if row.has_media is None else {"has_media": row.has_media}),
            "public_metrics": {
                "like_count": row.like_count,
                "retweet_count": row.retweet_count,
                "reply_count": row.reply_count,
            },
        }
    }


def lines(progress: Progress | None = None) -> Iterator[str]:
    """The export as text lines: the header, each account and its posts, then the end line."""
    digest, accounts, posts = hashlib.sha256(), 0, 0
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Tweet)) or 0

    def counted(record: dict) -> str:
        text = line(record)
        digest.update(text.encode("utf-8"))
        return text

    yield counted({"format": FORMAT, "version": VERSION, "exported_at": _iso(datetime.now(UTC))})
    users = db.session.scalars(sa.select(User).order_by(User.id)).all()
    db.session.rollback()
    columns = (Tweet.id, Tweet.post_id, Tweet.text, Tweet.created_at, Tweet.lang, Tweet.has_media, *COUNT_COLUMNS)
    for user in users:
        accounts += 1
        yield counted(
            {
                "account": {
                    "platform": user.platform,
                    "id": user.platform_id,
                    "username": user.username,
                    "name": user.name,
                    "source": user.source,
                    "followers_count": user.followers_count,
                    "newest_tweet_id": str(user.newest_tweet_id) if user.newest_tweet_id else None,
                    "fetched_at": _iso(user.fetched_at),
                }
            }
        )
        after = None
        while True:
            query = sa.select(*columns).where(Tweet.user_id == user.id).order_by(Tweet.id).limit(PAGE)
            if after is not None:
                query = query.where(Tweet.id > after)
            rows = db.session.execute(query).all()
            db.session.rollback()  # one short transaction per page
            for row in rows:
                posts += 1
                yield counted(_post_record(row))
            if progress is not None and rows:
                progress(posts, max(total, posts))
            if len(rows) < PAGE:
                break
            after = rows[-1].id
    yield line({"end": {"accounts": accounts, "posts": posts, "sha256": digest.hexdigest()}})


def export(path: str | Path, progress: Progress | None = None) -> tuple[int, int]:
    """Write every account and post to ``path`` (through a temporary file, renamed when whole)."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    end: dict = {}
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for text in lines(progress):
                out.write(text)
                if text.startswith('{"end"'):
                    end = json.loads(text)["end"]
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        db.session.rollback()
    return end["accounts"], end["posts"]


# ---------------------------------------------------------------------------------------------------
# Reading an export back


def export_version(header: dict, name: str) -> int:
    """The version an export's first line names, or an ArchiveError when it is no export this app reads."""
    if header.get("format") != FORMAT:
        raise ArchiveError(f"{name} is not a HypoTweet export (its first line should name {FORMAT!r})")
    version = header.get("version")
    if version not in READS:
        readable = " and ".join(map(str, READS))
        raise ArchiveError(f"{name} is export version {version!r}; this app reads versions {readable}")
    return version


def check_header(head: bytes, name: str) -> None:
    """Refuse, from its first bytes alone, a file that is not an export this app reads (the rest of it is
    read later, by the job that restores it)."""
    first = head.decode("utf-8-sig", errors="replace").lstrip().split("\n", 1)[0]
    try:
        header = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        header = None
    export_version(header if isinstance(header, dict) else {}, name)


@dataclass
class ExportSummary:
    version: int
    accounts: list[SavedAccount] = field(default_factory=list)
    posts: int = 0


class ExportFile:
    """An export file that can be read as often as needed: ``check`` it whole, then restore from it."""

    def __init__(self, name: str, opener: Callable[[], BinaryIO]) -> None:
        self.name = name
        self.opener = opener

    @classmethod
    def on_disk(cls, path: str | Path) -> ExportFile:
        path = Path(path)
        if not path.is_file():
            raise ArchiveError(f"{path}: no such file")
        return cls(path.name, lambda: path.open("rb"))

    def _rows(self, digest=None) -> Iterator[tuple[str, dict]]:
        """Each line's (place, object); ``digest`` takes every line's bytes as they were read."""
        with self.opener() as raw:
            stream = text_stream(raw)

            def read() -> Iterator[str]:
                for text in stream:
                    if digest is not None and text.strip():
                        # Each line as the export wrote it: its own text and a \n, whatever line ends or
                        # blank lines an editor or a transfer added.
                        digest.update((text.rstrip("\r\n") + "\n").encode("utf-8", "surrogatepass"))
                    yield text

            try:
                yield from json_lines(read())
            except UnicodeDecodeError:
                raise ArchiveError(f"{self.name} is not UTF-8 text") from None

    def check(self, check_handles: bool = True, policy: str = "keep") -> ExportSummary:
        """Read the whole file, writing nothing: its layout, every account and post, the end line, and
        (``check_handles``) the handles it would store under ``policy``. An ArchiveError names the first
        problem."""
        digest = _LineDigest()
        rows = self._rows(digest)
        first = next(rows, None)
        summary = ExportSummary(version=export_version(first[1] if first else {}, self.name))
        seen_accounts: set[tuple[str, str]] = set()
        seen_posts: set[tuple[str, str]] = set()
        owned = _OwnedElsewhere(self.name)  # posts of the file stored under another account
        end = None
        for where, row in rows:
            if end is not None:
                raise ArchiveError(f"{where}: nothing may follow the end line")
            if "account" in row:
                saved = read_account(row["account"], where)
                if saved.key in seen_accounts:
                    raise ArchiveError(f"{where}: account {saved.record.id} appears twice")
                seen_accounts.add(saved.key)
                summary.accounts.append(saved)
            elif "post" in row:
                if not summary.accounts:
                    raise ArchiveError(f"{where}: a post before any account")
                platform = summary.accounts[-1].record.platform
                post = read_post(row["post"], where, platform)
                if (platform, str(post.id)) in seen_posts:
                    raise ArchiveError(f"{where}: post {post.id} appears twice")
                seen_posts.add((platform, str(post.id)))
                if check_handles:
                    owned.add(summary.accounts[-1].key, str(post.id), where)
                summary.accounts[-1].posts += 1
                summary.posts += 1
            elif "end" in row and summary.version >= 2:
                end = (where, row["end"], digest.before_last)
            else:
                raise ArchiveError(f'{where}: expected an "account" or a "post"')
        if summary.version >= 2:
            self._verify_end(end, summary)
        if check_handles:
            owned.flush()
            self._check_handles(summary, policy)
        return summary

    def _check_handles(self, summary: ExportSummary, policy: str) -> None:
        shapes = stored_shapes()
        stored = {owner: name for name, owner, _ in shapes}
        keys = _stored_keys()
        db.session.rollback()
        in_file = {keys[saved.key] for saved in summary.accounts if saved.key in keys}
        for saved in summary.accounts:
            _check_handle(saved, self.name, in_file, policy, stored, keys.get(saved.key), shapes)

    def _verify_end(self, end, summary: ExportSummary) -> None:
        if end is None:
            raise ArchiveError(f"{self.name}: {CUT_SHORT}")
        where, values, digest = end
        if not isinstance(values, dict):
            raise ArchiveError(f"{where}: the end line is not an object")
        counts = (values.get("accounts"), values.get("posts"))
        if counts != (len(summary.accounts), summary.posts):
            raise ArchiveError(
                f"{self.name}: its end line counts {counts[0]} accounts and {counts[1]} posts, but the file holds "
                f"{len(summary.accounts)} and {summary.posts}; nothing was restored. Download it again."
            )
        if values.get("sha256") != digest:
            raise ArchiveError(
                f"{self.name} was changed after it was written (its lines do not match the end line's checksum); "
                "nothing was restored."
            )

    def accounts(self) -> Iterator[tuple[SavedAccount, Iterator[PostRecord]]]:
        """Each account of the (checked) file with a stream of its posts, read as the account is stored."""
        rows = self._rows()
        next(rows, None)  # the header
        ahead = next(rows, None)

        def posts_of() -> Iterator[PostRecord]:
            nonlocal ahead
            while True:
                ahead = next(rows, None)
                if ahead is None or "post" not in ahead[1]:
                    return
                yield read_post(ahead[1]["post"], ahead[0], platform)

        while ahead is not None:
            where, row = ahead
            if "account" not in row:  # the end line
                ahead = next(rows, None)
                continue
            saved = read_account(row["account"], where)
            platform = saved.record.platform
            posts = posts_of()
            yield saved, posts
            for _ in posts:  # whatever the caller left unread, so the next account is next
                pass


class _LineDigest:
    """A SHA-256 of every line read that also knows its value before the latest line (the end line's)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.before_last = self._hash.hexdigest()

    def update(self, data: bytes) -> None:
        self.before_last = self._hash.hexdigest()
        self._hash.update(data)


def _stored_keys() -> dict[tuple[str, str], int]:
    """Every stored account's key, by its network and the network's id for it."""
    return {(p, i): key for p, i, key in db.session.execute(sa.select(User.platform, User.platform_id, User.id))}


def _check_handle(
    saved: SavedAccount,
    where: str,
    in_file: set[int],
    policy: str,
    stored: dict[int, str],
    mine: int | None,
    shapes: list,
) -> None:
    """A handle the restore would store follows the rules for handles from files (``handles``): a new
    account's always, a stored one's where a replace takes it. Accounts of the same file may read alike
    (the app stored them side by side); only a look-alike of another stored account is refused.
    ``stored``: stored handles by key; ``mine``: this account's key, where it is stored; ``in_file``: the
    keys of the stored accounts the file holds."""
    try:
        now_stored = stored.get(mine) if mine is not None else None
        kept = now_stored if now_stored is not None and policy == "keep" else saved.record.username
        holder = next((owner for owner, name in stored.items() if name.lower() == kept.lower()), None)
        if holder is not None and holder != mine:
            raise handles.HandleError(
                f"@{stored[holder]} is already stored as a different account; it may have been "
                "renamed. Delete it first, or restore into a database without it."
            )
        if now_stored is None or (policy == "replace" and now_stored != saved.record.username):
            handles.check_stored_form(saved.record.username)
            other = handles.look_alike(saved.record.username, shapes, mine, ignore=in_file)
            if other is not None:
                raise handles.HandleError(
                    f"@{saved.record.username} reads like @{other}, another stored account, so people could "
                    "take one for the other."
                )
    except handles.HandleError as exc:
        raise ArchiveError(f"{where}: account {saved.record.id}: {exc}") from None


class _OwnedElsewhere:
    """Checks, a chunk at a time, that no post of the file is stored under another account: the restore
    stores one account after another, so such a post found while storing would leave the accounts before
    it stored and the rest not."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.account: tuple[str, str] | None = None  # (network, the network's id for the account)
        self.pending: dict[str, str] = {}  # post id -> where in the file

    def add(self, account: tuple[str, str], post_id: str, where: str) -> None:
        if account != self.account or len(self.pending) >= CHUNK:
            self.flush()
            self.account = account
        self.pending[post_id] = where

    def flush(self) -> None:
        if not self.pending or self.account is None:
            return
        platform, platform_id = self.account
        owner = db.session.scalar(sa.select(User.id).where(User.platform == platform, User.platform_id == platform_id))
        query = sa.select(Tweet.post_id, User.username).join(User, User.id == Tweet.user_id)
        query = query.where(Tweet.platform == platform, Tweet.post_id.in_(list(self.pending)))
        if owner is not None:
            query = query.where(Tweet.user_id != owner)
        found = db.session.execute(query.limit(1)).first()
        db.session.rollback()
        if found is not None:
            raise ArchiveError(
                f"{self.pending[found.post_id]}: post {found.post_id} is stored under another account "
                f"(@{found.username}), not account {platform_id}; nothing was restored."
            )
        self.pending.clear()


def restore_accounts(
    export: ExportFile,
    summary: ExportSummary,
    policy: str = "keep",
    progress: Callable[[int, int, str], None] | None = None,
    label: str | None = None,
) -> list[IngestResult]:
    """Store each account of a checked export through the ingest path, each in its own transaction."""
    results = []
    for number, (saved, posts) in enumerate(export.accounts(), start=1):
        shown = f"@{saved.record.username} ({number} of {len(summary.accounts)})"

        def step(done: int, total: int, shown: str = shown) -> None:
            if progress is not None:
                progress(done, total, f"Restoring {shown}: {done:,} of {total:,} posts.")

        results.append(
            import_tweets(
                saved.record,
                posts,
                source=saved.source,
                policy=policy,
                progress=step,
                total=summary.accounts[number - 1].posts,
                fetched_at=saved.fetched_at,
                newest_tweet_id=saved.newest_tweet_id,
                label=label,  # handles were checked with the whole file (ExportFile.check)
            )
        )
    return results
