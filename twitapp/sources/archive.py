"""Readers for posts that arrive as files: X data exports, JSONL, CSV, and the bundled demo accounts.

Files are read as streams, a line (or an export's post) at a time, so a large file never has to be held
in memory as posts. A file is read twice: ``PostFile.check`` reads it whole to refuse a malformed line
anywhere (nothing reaches the database then) and to count its posts, then ``PostFile.posts`` reads it
again for the ingest path. Reposts and replies are skipped, matching what the X API timeline fetch keeps:
the account's own original posts.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from twitapp.errors import UserError
from twitapp.sources.records import PostRecord

# tweets.js is one JSON array, read whole; other files are read as streams and have no size limit.
MAX_FILE_BYTES = 200 * 1024 * 1024
_YTD_PREFIX = re.compile(r"^\s*window\.YTD\.[A-Za-z0-9_]+\.part\d+\s*=\s*")
_ACCOUNT_PREFIX = re.compile(r"^\s*window\.YTD\.account\.part\d+\s*=")
# Python's JSON parser gives up on arrays or objects nested about a thousand deep; no post needs more than a few.
TOO_DEEP = "nested too deeply to be read as posts (arrays or objects inside each other hundreds of times)"


class ArchiveError(UserError, ValueError):
    """The file cannot be imported; the message says where and why."""


@dataclass
class ParsedArchive:
    """What a file held: its posts, the account if the file says which, and what was left out."""

    posts: list[PostRecord]
    account_id: int | None = None
    username: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class _Skip:
    reason: str


@dataclass(frozen=True, slots=True)
class _Author:
    id: int | None
    username: str | None


_Event = PostRecord | _Skip | _Author


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


def parse_count(value: object, where: str, what: str) -> int:
    if value in (None, ""):
        return 0
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
    **counts,
) -> PostRecord:
    """A checked PostRecord from a file's raw fields; ``counts`` are like_count, retweet_count, reply_count."""
    if not isinstance(text, str) or not text.strip():
        raise ArchiveError(f"{where}: the post has no text")
    return PostRecord(
        id=parse_id(id_, where),
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


def _is_repost(text: str) -> bool:
    return text.startswith("RT @")


def _json_reason(exc: json.JSONDecodeError) -> str:
    """The decoder's complaint without its dangling "at" ("Unterminated string starting at"): the
    message gives the place itself."""
    return exc.msg.removesuffix(" starting at").removesuffix(" at")


# ---------------------------------------------------------------------------------------------------
# tweets.js: one JSON array after a ``window.YTD.tweets.part0 =`` prefix, decoded an item at a time


def _array_items(data: str, start: int) -> Iterator[object]:
    """Each item of the JSON array that begins at ``data[start:]`` (after blanks), decoded one by one."""
    decoder = json.JSONDecoder()
    blank = re.compile(r"\s*")
    position = blank.match(data, start).end()

    def failure(exc: json.JSONDecodeError) -> ArchiveError:
        return ArchiveError(
            f"tweets.js is not valid JSON after its first line: {_json_reason(exc)} at line {exc.lineno}"
        )

    if data[position : position + 1] != "[":
        try:
            json.loads(data[position:])
        except json.JSONDecodeError as exc:
            raise failure(exc) from None
        except RecursionError:
            raise ArchiveError(f"tweets.js is {TOO_DEEP}") from None
        raise ArchiveError("tweets.js should hold a list of posts")
    position = blank.match(data, position + 1).end()
    if data[position : position + 1] == "]":
        return
    while True:
        try:
            item, position = decoder.raw_decode(data, position)
        except json.JSONDecodeError as exc:
            raise failure(exc) from None
        except RecursionError:
            raise ArchiveError(f"tweets.js is {TOO_DEEP}") from None
        yield item
        position = blank.match(data, position).end()
        mark = data[position : position + 1]
        if mark == "]":
            if data[position + 1 :].strip().rstrip(";").strip():
                line = data.count("\n", 0, position) + 1
                raise ArchiveError(f"tweets.js is not valid JSON after its first line: Extra data at line {line}")
            return
        if mark != ",":
            line = data.count("\n", 0, position) + 1
            raise ArchiveError(
                f"tweets.js is not valid JSON after its first line: Expecting ',' delimiter at line {line}"
            )
        position = blank.match(data, position + 1).end()


def _tweets_js_events(data: str) -> Iterator[_Event]:
    match = _YTD_PREFIX.match(data)
    if not match:
        raise ArchiveError("this is not an X archive tweets.js file (it should start with window.YTD.tweets.part0 =)")
    for n, item in enumerate(_array_items(data, match.end()), start=1):
        where = f"post {n}"
        tweet = item.get("tweet", item) if isinstance(item, dict) else None
        if not isinstance(tweet, dict):
            raise ArchiveError(f"{where}: expected an object with a 'tweet' field")
        text = tweet.get("full_text", tweet.get("text"))
        if isinstance(text, str) and _is_repost(text):
            yield _Skip("reposts")
            continue
        if tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"):
            yield _Skip("replies")
            continue
        if isinstance(text, str):
            # Exports escape &, < and > as HTML entities, and shorten links to t.co; restore both.
            text = html.unescape(text)
            entities = tweet.get("entities")
            for url in (entities.get("urls") if isinstance(entities, dict) else None) or []:
                if (
                    isinstance(url, dict)
                    and isinstance(url.get("url"), str)
                    and isinstance(url.get("expanded_url"), str)
                ):
                    text = text.replace(url["url"], url["expanded_url"])
        yield post_record(
            where,
            tweet.get("id_str", tweet.get("id")),
            text,
            tweet.get("created_at"),
            tweet.get("lang"),
            media_in(tweet),
            like_count=tweet.get("favorite_count"),
            retweet_count=tweet.get("retweet_count"),
        )


def read_account_js(data: str) -> tuple[int, str] | None:
    """The account id and handle from an export's ``account.js``, when it is there to read."""
    match = _YTD_PREFIX.match(data)
    try:
        items = json.loads(data[match.end() :]) if match else None
        account = items[0]["account"]
        return parse_id(account["accountId"], "account.js"), str(account["username"])
    except (ArchiveError, json.JSONDecodeError, LookupError, TypeError, RecursionError):
        return None


# ---------------------------------------------------------------------------------------------------
# JSONL and CSV: a line (a row) at a time


def json_lines(lines: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """Each non-blank line's JSON object, with "line N" for messages; anything else is an ArchiveError.

    Lines are split as a file splits them (at \\n, \\r or \\r\\n), never inside a JSON string: a post
    may hold a line or paragraph separator (U+2028, U+2029), which ``str.splitlines`` would cut at.
    """
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ArchiveError(f"{where}, column {exc.colno}: not valid JSON ({_json_reason(exc)})") from None
        except RecursionError:
            raise ArchiveError(f"{where}: {TOO_DEEP}") from None
        if not isinstance(obj, dict):
            raise ArchiveError(f"{where}: expected a JSON object")
        yield where, obj


def _jsonl_events(lines: Iterable[str]) -> Iterator[_Event]:
    """One X API v2 post object per line, as the API returns them (the layout of the dev data)."""
    for where, obj in json_lines(lines):
        post_id = parse_id(obj.get("id"), where)  # checked first: a bad id is an error even on a skipped post
        text = obj.get("text")
        references = obj.get("referenced_tweets")
        refs = {r.get("type") for r in references if isinstance(r, dict)} if isinstance(references, list) else set()
        if "retweeted" in refs or (isinstance(text, str) and _is_repost(text)):
            yield _Skip("reposts")
            continue
        conversation = obj.get("conversation_id")
        if (
            "replied_to" in refs
            or obj.get("in_reply_to_user_id")
            or (conversation is not None and str(conversation) != str(post_id))
        ):
            yield _Skip("replies")
            continue
        metrics = obj.get("public_metrics") or {}
        if not isinstance(metrics, dict):
            raise ArchiveError(f"{where}: public_metrics should be an object")
        yield post_record(
            where,
            obj.get("id"),
            text,
            obj.get("created_at"),
            obj.get("lang"),
            media_in(obj),
            like_count=metrics.get("like_count"),
            retweet_count=metrics.get("retweet_count"),
            reply_count=metrics.get("reply_count"),
        )
        author = parse_id(obj["author_id"], where, "author_id") if obj.get("author_id") is not None else None
        username = str(obj["username"]) if obj.get("username") else None
        if author is not None or username:
            yield _Author(author, username)


CSV_COLUMNS = ("id", "created_at", "text")
CSV_COUNTS = ("like_count", "retweet_count", "reply_count")


def _csv_events(lines: Iterable[str]) -> Iterator[_Event]:
    """A CSV with a header row: ``id,created_at,text`` and optionally the three count columns."""
    reader = csv.DictReader(lines)
    try:
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise ArchiveError(
                f"the CSV header must name id, created_at and text (missing: {', '.join(missing)}); "
                "like_count, retweet_count and reply_count are optional"
            )
        reader.fieldnames = header
        for n, row in enumerate(reader, start=2):
            where = f"row {n}"
            if None in row:
                raise ArchiveError(f"{where}: more fields than the header names")
            text = row.get("text") or ""
            if _is_repost(text):
                yield _Skip("reposts")
                continue
            counts = {c: row.get(c) for c in CSV_COUNTS}
            yield post_record(where, row.get("id"), text, row.get("created_at"), **counts)
    except csv.Error as exc:
        raise ArchiveError(f"the CSV cannot be read: {exc}") from None


def _lines(data: str) -> io.StringIO:
    return io.StringIO(data, newline="")


def _collect(events: Iterable[_Event]) -> ParsedArchive:
    parsed = ParsedArchive(posts=[])
    summary = _Summary()
    for event in events:
        summary.add(event)
        if isinstance(event, PostRecord):
            parsed.posts.append(event)
    parsed.account_id, parsed.username, parsed.skipped = summary.account_id, summary.username, summary.skipped
    return parsed


def read_tweets_js(data: str) -> ParsedArchive:
    """An X data export's ``data/tweets.js``: ``window.YTD.tweets.part0 = [{"tweet": {...}}, ...]``."""
    return _collect(_tweets_js_events(data))


def read_jsonl(data: str) -> ParsedArchive:
    return _collect(_jsonl_events(_lines(data)))


def read_csv(data: str) -> ParsedArchive:
    return _collect(_csv_events(_lines(data)))


# ---------------------------------------------------------------------------------------------------
# A file of one account's posts, from disk or from an upload


@dataclass
class _Summary:
    """What a pass over a file found: its posts counted, its account, what was left out."""

    posts: int = 0
    account_id: int | None = None
    username: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    _authors: set[int] = field(default_factory=set)

    def add(self, event: _Event) -> None:
        if isinstance(event, PostRecord):
            self.posts += 1
        elif isinstance(event, _Skip):
            self.skipped[event.reason] = self.skipped.get(event.reason, 0) + 1
        else:
            if event.id is not None and event.id not in self._authors:
                self._authors.add(event.id)
                if len(self._authors) > 1:
                    raise ArchiveError("the file mixes posts by several accounts; import one account per file")
                self.account_id = event.id
            if event.username and not self.username:
                self.username = event.username


def head_of(raw: bytes) -> str:
    return raw[:200].decode("utf-8-sig", errors="replace")


def is_tweets_js(raw: bytes) -> bool:
    """Whether these bytes start like an X archive's data file other than account.js (tweets.js)."""
    head = head_of(raw)
    return bool(_YTD_PREFIX.match(head)) and not _ACCOUNT_PREFIX.match(head)


def is_account_js(raw: bytes) -> bool:
    """Whether these bytes are an X archive's account.js (sent beside tweets.js, it names the account)."""
    return bool(_ACCOUNT_PREFIX.match(head_of(raw)))


def kind_of(head: str, name: str) -> str:
    """ "tweets.js", "jsonl" or "csv", from a file's name and first characters; an ArchiveError otherwise."""
    head = head.lstrip("\ufeff").lstrip()
    suffix = Path(name).suffix.lower()
    if _ACCOUNT_PREFIX.match(head):
        raise ArchiveError(f"{name} is an archive's account.js; the posts are in tweets.js, in the same data folder")
    if _YTD_PREFIX.match(head):
        return "tweets.js"
    if suffix in (".jsonl", ".ndjson", ".json") or head.startswith("{"):
        return "jsonl"
    if suffix == ".csv" or head.lower().startswith(("id,", '"id"')):
        return "csv"
    raise ArchiveError(f"{name}: unknown format; expected tweets.js from an X archive, JSONL or CSV")


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

    def _events(self) -> Iterator[_Event]:
        with self.opener() as raw:
            try:
                if self.kind == "tweets.js":
                    data = raw.read(MAX_FILE_BYTES + 1)
                    if len(data) > MAX_FILE_BYTES:
                        raise ArchiveError(f"{self.name} is larger than {MAX_FILE_BYTES // 2**20} MB")
                    yield from _tweets_js_events(decode_utf8(data, Path(self.name)))
                    if self.account_js:
                        found = read_account_js(decode_utf8(self.account_js, Path("account.js")))
                        if found:
                            yield _Author(*found)
                    return
                lines = text_stream(raw)
                yield from (_jsonl_events(lines) if self.kind == "jsonl" else _csv_events(lines))
            except UnicodeDecodeError:
                raise ArchiveError(f"{self.name} is not UTF-8 text") from None

    def check(self, limit: int | None = None, more: str = "") -> FileSummary:
        """Read the whole file: every post checked (an ArchiveError names the first bad one) and counted.

        ``limit``: the most posts allowed, beyond which a TooManyPosts error says so (``more``: how to import
        more). The check stops there, so an oversized file costs no more than the limit's reading.
        """
        summary = _Summary()
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
        return _collect(self._events())


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
