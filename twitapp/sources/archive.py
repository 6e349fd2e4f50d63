"""A file of one account's posts, from disk or from an upload, read as a stream: a line (or an export's
post) at a time, so a large file never has to be held in memory as posts.

A file is read twice: ``PostFile.check`` reads it whole to refuse a malformed line anywhere (nothing
reaches the database then) and to count its posts, then ``PostFile.posts`` reads it again for the ingest
path. The formats themselves are parsed in ``formats``, their fields in ``fields``; ``ArchiveError``
(from ``fields``) is the error of every reader here.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from twitapp.sources.fields import ArchiveError
from twitapp.sources.formats import (
    Author,
    Event,
    ParsedArchive,
    Summary,
    collect,
    csv_events,
    head_of,
    is_tweets_js,
    jsonl_events,
    kind_of,
    read_account_js,
    tweets_js_events,
)
from twitapp.sources.records import PostRecord

# tweets.js is one JSON array, read whole; other files are read as streams and have no size limit.
MAX_FILE_BYTES = 200 * 1024 * 1024


def text_stream(raw: BinaryIO) -> io.TextIOWrapper:
    """A binary stream read as UTF-8 text (a byte-order mark dropped), split into lines as files are."""
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


@dataclass
class FileSummary:
    posts: int
    account_id: int | None
    username: str | None
    skipped: dict[str, int]


class TooManyPosts(ArchiveError):
    """The file holds more posts than one import through a page may store."""


class PostFile:
    """One account's posts in a file that can be opened as often as needed (on disk, or an upload).

    ``opener`` gives a fresh binary stream each time; ``account_js`` is an archive's account.js, whose
    account goes with a tweets.js.
    """

    def __init__(self, name: str, opener: Callable[[], BinaryIO], account_js: bytes | None = None) -> None:
        self.name = name
        self.opener = opener
        self.account_js = account_js
        with opener() as raw:
            self.kind = kind_of(head_of(raw.read(200)), name)

    @classmethod
    def on_disk(cls, path: str | Path) -> PostFile:
        """A file by its path; for a tweets.js, the account.js beside it (when there) names the account."""
        path = Path(path)
        if not path.is_file():
            raise ArchiveError(f"{path}: no such file")
        beside = path.with_name("account.js")
        with path.open("rb") as raw:
            tweets_js = is_tweets_js(raw.read(200))
        account_js = read_file_bytes(beside) if tweets_js and beside.is_file() else None
        return cls(path.name, lambda: _open_readable(path), account_js)

    @classmethod
    def from_bytes(cls, raw: bytes, name: str, account_js: bytes | None = None) -> PostFile:
        return cls(name, lambda: io.BytesIO(raw), account_js)

    def _events(self) -> Iterator[Event]:
        with self.opener() as raw:
            try:
                if self.kind == "tweets.js":
                    data = raw.read(MAX_FILE_BYTES + 1)
                    if len(data) > MAX_FILE_BYTES:
                        raise ArchiveError(f"{self.name} is larger than {MAX_FILE_BYTES // 2**20} MB")
                    yield from tweets_js_events(decode_utf8(data, Path(self.name)))
                    if self.account_js:
                        found = read_account_js(decode_utf8(self.account_js, Path("account.js")))
                        if found:
                            yield Author(*found)
                    return
                lines = text_stream(raw)
                yield from (jsonl_events(lines) if self.kind == "jsonl" else csv_events(lines))
            except UnicodeDecodeError:
                raise ArchiveError(f"{self.name} is not UTF-8 text") from None

    def check(self, limit: int | None = None, more: str = "") -> FileSummary:
        """Read the whole file: every post checked (an ArchiveError names the first bad one) and counted.

        ``limit``: the most posts allowed, beyond which a TooManyPosts error says so (``more``: how to import
        more). The check stops there, so an oversized file costs no more than the limit's reading.
        """
        summary = Summary()
        for event in self._events():
            summary.add(event)
            if limit is not None and summary.posts > limit:
                raise TooManyPosts(
                    f"{self.name} holds more than {limit:,} posts, the most one import here takes. {more}"
                )
        return FileSummary(summary.posts, summary.account_id, summary.username, summary.skipped)

    def posts(self) -> Iterator[PostRecord]:
        """The file's posts, in file order (read afresh; ``check`` first, so nothing fails half-way)."""
        for event in self._events():
            if isinstance(event, PostRecord):
                yield event

    def read(self) -> ParsedArchive:
        """Every post of the file in memory at once (for small files and tests)."""
        return collect(self._events())


def _open_readable(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ArchiveError(f"{path.name} cannot be read: {exc.strerror}") from None


def read_file_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, or an ArchiveError saying why not (missing, too large, unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    if path.stat().st_size > limit:
        raise ArchiveError(f"{path.name} is larger than {limit // 2**20} MB")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ArchiveError(f"{path.name} cannot be read: {exc.strerror}") from None


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ArchiveError(f"{path.name} is not UTF-8 text") from None


def read_file(path: str | Path) -> ParsedArchive:
    """Read any supported file whole, choosing the reader by its name and first characters."""
    return PostFile.on_disk(path).read()


def local_account_id(username: str) -> int:
    """A stable id for an account known only from a file that does not carry its platform id.

    Negative, so it can never collide with a real X id (always positive).
    """
    digest = hashlib.sha256(username.lower().encode()).digest()
    return -(int.from_bytes(digest[:8], "big") >> 1) or -1
