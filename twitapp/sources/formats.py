"""The formats a file of posts comes in, each parsed as a stream of events: X data exports (tweets.js, with
the account named by account.js), JSONL of X API v2 posts, and CSV; and which format a file is.

A parser yields a ``PostRecord`` for each post kept, a ``Skip`` for each left out (reposts and replies,
matching what the X API timeline fetch keeps: the account's own original posts) and an ``Author`` when
the file says whose posts they are. ``Summary`` adds a pass's events up; ``collect`` keeps the posts too.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from twitapp.sources.fields import ArchiveError, media_in, parse_id, post_record
from twitapp.sources.records import PostRecord

_YTD_PREFIX = re.compile(r"^\s*window\.YTD\.[A-Za-z0-9_]+\.part\d+\s*=\s*")
_ACCOUNT_PREFIX = re.compile(r"^\s*window\.YTD\.account\.part\d+\s*=")
# Python's JSON parser gives up on arrays or objects nested about a thousand deep; no post needs more than a few.
TOO_DEEP = "nested too deeply to be read as posts (arrays or objects inside each other hundreds of times)"


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
class Skip:
    reason: str


@dataclass(frozen=True, slots=True)
class Author:
    id: int | None
    username: str | None


Event = PostRecord | Skip | Author


@dataclass
class Summary:
    """What a pass over a file found: its posts counted, its account, what was left out."""

    posts: int = 0
    account_id: int | None = None
    username: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    _authors: set[int] = field(default_factory=set)

    def add(self, event: Event) -> None:
        if isinstance(event, PostRecord):
            self.posts += 1
        elif isinstance(event, Skip):
            self.skipped[event.reason] = self.skipped.get(event.reason, 0) + 1
        else:
            if event.id is not None and event.id not in self._authors:
                self._authors.add(event.id)
                if len(self._authors) > 1:
                    raise ArchiveError("the file mixes posts by several accounts; import one account per file")
                self.account_id = event.id
            if event.username and not self.username:
                self.username = event.username


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


def tweets_js_events(data: str) -> Iterator[Event]:
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
            yield Skip("reposts")
            continue
        if tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"):
            yield Skip("replies")
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


def jsonl_events(lines: Iterable[str]) -> Iterator[Event]:
    """One X API v2 post object per line, as the API returns them (the layout of the dev data)."""
    for where, obj in json_lines(lines):
        post_id = parse_id(obj.get("id"), where)  # checked first: a bad id is an error even on a skipped post
        text = obj.get("text")
        references = obj.get("referenced_tweets")
        refs = {r.get("type") for r in references if isinstance(r, dict)} if isinstance(references, list) else set()
        if "retweeted" in refs or (isinstance(text, str) and _is_repost(text)):
            yield Skip("reposts")
            continue
        conversation = obj.get("conversation_id")
        if (
            "replied_to" in refs
            or obj.get("in_reply_to_user_id")
            or (conversation is not None and str(conversation) != str(post_id))
        ):
            yield Skip("replies")
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
            yield Author(author, username)


CSV_COLUMNS = ("id", "created_at", "text")
CSV_COUNTS = ("like_count", "retweet_count", "reply_count")


def csv_events(lines: Iterable[str]) -> Iterator[Event]:
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
                yield Skip("reposts")
                continue
            counts = {c: row.get(c) for c in CSV_COUNTS}
            yield post_record(where, row.get("id"), text, row.get("created_at"), **counts)
    except csv.Error as exc:
        raise ArchiveError(f"the CSV cannot be read: {exc}") from None


def _lines(data: str) -> io.StringIO:
    return io.StringIO(data, newline="")


def collect(events: Iterable[Event]) -> ParsedArchive:
    """Every post of a pass kept in memory, with the account and the skips its events name."""
    parsed = ParsedArchive(posts=[])
    summary = Summary()
    for event in events:
        summary.add(event)
        if isinstance(event, PostRecord):
            parsed.posts.append(event)
    parsed.account_id, parsed.username, parsed.skipped = summary.account_id, summary.username, summary.skipped
    return parsed


def read_tweets_js(data: str) -> ParsedArchive:
    """An X data export's ``data/tweets.js``: ``window.YTD.tweets.part0 = [{"tweet": {...}}, ...]``."""
    return collect(tweets_js_events(data))


def read_jsonl(data: str) -> ParsedArchive:
    return collect(jsonl_events(_lines(data)))


def read_csv(data: str) -> ParsedArchive:
    return collect(csv_events(_lines(data)))


# ---------------------------------------------------------------------------------------------------
# Which format a file is, from its name and first characters


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
