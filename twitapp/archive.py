"""Readers for posts that arrive as files: X data exports, JSONL, CSV, and the bundled demo accounts.

Every reader parses the whole input before returning, so a malformed line anywhere rejects the file
and nothing reaches the database. Reposts and replies are skipped, matching what the X API timeline
fetch keeps: the account's own original posts.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from .records import AccountRecord, PostRecord

DEMO_DIR = Path(__file__).parent / "data" / "demo"
MAX_FILE_BYTES = 200 * 1024 * 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_YTD_PREFIX = re.compile(r"^\s*window\.YTD\.[A-Za-z0-9_]+\.part\d+\s*=\s*")
_ACCOUNT_PREFIX = re.compile(r"^\s*window\.YTD\.account\.part\d+\s*=")


# Python's JSON parser gives up on arrays or objects nested about a thousand deep; no post needs more than a few.
TOO_DEEP = "nested too deeply to be read as posts (arrays or objects inside each other hundreds of times)"


class ArchiveError(ValueError):
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


def parse_id(value: object, where: str, what: str = "id") -> int:
    """A platform id, which exports give as a string and the API as a string or number."""
    if isinstance(value, bool):
        raise ArchiveError(f"{where}: {what} must be a number")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ArchiveError(f"{where}: {what} must be a number, not {str(value)[:30]!r}") from None
    if not 0 < number < 2**63:
        raise ArchiveError(f"{where}: {what} {number} is out of range")
    return number


def parse_count(value: object, where: str, what: str) -> int:
    if value in (None, ""):
        return 0
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ArchiveError(f"{where}: {what} must be a whole number, not {str(value)[:30]!r}") from None
    if number < 0:
        raise ArchiveError(f"{where}: {what} cannot be negative")
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
        lang=lang if isinstance(lang, str) and lang else None,
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


def read_tweets_js(data: str) -> ParsedArchive:
    """An X data export's ``data/tweets.js``: ``window.YTD.tweets.part0 = [{"tweet": {...}}, ...]``."""
    match = _YTD_PREFIX.match(data)
    if not match:
        raise ArchiveError("this is not an X archive tweets.js file (it should start with window.YTD.tweets.part0 =)")
    try:
        items = json.loads(data[match.end() :])
    except json.JSONDecodeError as exc:
        raise ArchiveError(
            f"tweets.js is not valid JSON after its first line: {_json_reason(exc)} at line {exc.lineno}"
        ) from None
    except RecursionError:
        raise ArchiveError(f"tweets.js is {TOO_DEEP}") from None
    if not isinstance(items, list):
        raise ArchiveError("tweets.js should hold a list of posts")
    parsed = ParsedArchive(posts=[])
    for n, item in enumerate(items, start=1):
        where = f"post {n}"
        tweet = item.get("tweet", item) if isinstance(item, dict) else None
        if not isinstance(tweet, dict):
            raise ArchiveError(f"{where}: expected an object with a 'tweet' field")
        text = tweet.get("full_text", tweet.get("text"))
        if isinstance(text, str) and _is_repost(text):
            parsed.skip("reposts")
            continue
        if tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"):
            parsed.skip("replies")
            continue
        if isinstance(text, str):
            # Exports escape &, < and > as HTML entities, and shorten links to t.co; restore both.
            text = html.unescape(text)
            for url in (tweet.get("entities") or {}).get("urls") or []:
                if isinstance(url, dict) and url.get("url") and url.get("expanded_url"):
                    text = text.replace(url["url"], url["expanded_url"])
        parsed.posts.append(
            post_record(
                where,
                tweet.get("id_str", tweet.get("id")),
                text,
                tweet.get("created_at"),
                tweet.get("lang"),
                media_in(tweet),
                like_count=tweet.get("favorite_count"),
                retweet_count=tweet.get("retweet_count"),
            )
        )
    return parsed


def read_account_js(data: str) -> tuple[int, str] | None:
    """The account id and handle from an export's ``account.js``, when it is there to read."""
    match = _YTD_PREFIX.match(data)
    try:
        items = json.loads(data[match.end() :]) if match else None
        account = items[0]["account"]
        return parse_id(account["accountId"], "account.js"), str(account["username"])
    except (ArchiveError, json.JSONDecodeError, LookupError, TypeError, RecursionError):
        return None


def _json_reason(exc: json.JSONDecodeError) -> str:
    """The decoder's complaint without its dangling "at" ("Unterminated string starting at"): the
    message gives the place itself."""
    return exc.msg.removesuffix(" starting at").removesuffix(" at")


def json_lines(data: str) -> Iterator[tuple[str, dict]]:
    """Each non-blank line's JSON object, with "line N" for messages; anything else is an ArchiveError."""
    for n, line in enumerate(data.splitlines(), start=1):
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


def read_jsonl(data: str) -> ParsedArchive:
    """One X API v2 post object per line, as the API returns them (the layout of the dev data)."""
    parsed = ParsedArchive(posts=[])
    authors: set[int] = set()
    for where, obj in json_lines(data):
        post_id = parse_id(obj.get("id"), where)  # checked first: a bad id is an error even on a skipped post
        text = obj.get("text")
        references = obj.get("referenced_tweets")
        refs = {r.get("type") for r in references if isinstance(r, dict)} if isinstance(references, list) else set()
        if "retweeted" in refs or (isinstance(text, str) and _is_repost(text)):
            parsed.skip("reposts")
            continue
        conversation = obj.get("conversation_id")
        if (
            "replied_to" in refs
            or obj.get("in_reply_to_user_id")
            or (conversation is not None and str(conversation) != str(post_id))
        ):
            parsed.skip("replies")
            continue
        metrics = obj.get("public_metrics") or {}
        if not isinstance(metrics, dict):
            raise ArchiveError(f"{where}: public_metrics should be an object")
        parsed.posts.append(
            post_record(
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
        )
        if obj.get("author_id") is not None:
            authors.add(parse_id(obj["author_id"], where, "author_id"))
        if obj.get("username") and not parsed.username:
            parsed.username = str(obj["username"])
    if len(authors) > 1:
        raise ArchiveError("the file mixes posts by several accounts; import one account per file")
    parsed.account_id = authors.pop() if authors else None
    return parsed


CSV_COLUMNS = ("id", "created_at", "text")
CSV_COUNTS = ("like_count", "retweet_count", "reply_count")


def read_csv(data: str) -> ParsedArchive:
    """A CSV with a header row: ``id,created_at,text`` and optionally the three count columns."""
    reader = csv.DictReader(io.StringIO(data, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ArchiveError(
            f"the CSV header must name id, created_at and text (missing: {', '.join(missing)}); "
            "like_count, retweet_count and reply_count are optional"
        )
    reader.fieldnames = header
    parsed = ParsedArchive(posts=[])
    try:
        for n, row in enumerate(reader, start=2):
            where = f"row {n}"
            if None in row:
                raise ArchiveError(f"{where}: more fields than the header names")
            text = row.get("text") or ""
            if _is_repost(text):
                parsed.skip("reposts")
                continue
            counts = {c: row.get(c) for c in CSV_COUNTS}
            parsed.posts.append(post_record(where, row.get("id"), text, row.get("created_at"), **counts))
    except csv.Error as exc:
        raise ArchiveError(f"the CSV cannot be read: {exc}") from None
    return parsed


def read_file_bytes(path: str | Path) -> bytes:
    """A file's bytes, or an ArchiveError saying why not (missing, too large, unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ArchiveError(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB")
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
    """Read any supported file, choosing the reader by its name and first characters.

    For an X archive's tweets.js, the account.js beside it (when there) names the account.
    """
    path = Path(path)
    raw = read_file_bytes(path)
    account_js = path.with_name("account.js")
    beside = is_tweets_js(raw) and account_js.is_file()  # only an export's tweets.js has one to read
    return parse_file(raw, path.name, read_file_bytes(account_js) if beside else None)


def is_tweets_js(raw: bytes) -> bool:
    """Whether these bytes start like an X archive's data file other than account.js (tweets.js)."""
    head = raw[:200].decode("utf-8-sig", errors="replace")
    return bool(_YTD_PREFIX.match(head)) and not _ACCOUNT_PREFIX.match(head)


def is_account_js(raw: bytes) -> bool:
    """Whether these bytes are an X archive's account.js (sent beside tweets.js, it names the account)."""
    return bool(_ACCOUNT_PREFIX.match(raw[:200].decode("utf-8-sig", errors="replace")))


def parse_file(raw: bytes, name: str, account_js: bytes | None = None) -> ParsedArchive:
    """A file's posts from its bytes (a path's, or a file sent through a page), by its name and first
    characters; ``account_js``: the archive's account.js, whose account id and username go with tweets.js."""
    data = decode_utf8(raw, Path(name))
    head = data.lstrip()[:200]
    suffix = Path(name).suffix.lower()
    if _ACCOUNT_PREFIX.match(head):
        raise ArchiveError(f"{name} is an archive's account.js; the posts are in tweets.js, in the same data folder")
    if _YTD_PREFIX.match(head):
        parsed = read_tweets_js(data)
        found = read_account_js(decode_utf8(account_js, Path("account.js"))) if account_js else None
        if found:
            parsed.account_id, parsed.username = found
        return parsed
    if suffix in (".jsonl", ".ndjson", ".json") or head.startswith("{"):
        return read_jsonl(data)
    if suffix == ".csv" or head.lower().startswith(("id,", '"id"')):
        return read_csv(data)
    raise ArchiveError(f"{name}: unknown format; expected tweets.js from an X archive, JSONL or CSV")


def local_account_id(username: str) -> int:
    """A stable id for an account known only from a file that does not carry its platform id.

    Negative, so it can never collide with a real X id (always positive).
    """
    digest = hashlib.sha256(username.lower().encode()).digest()
    return -(int.from_bytes(digest[:8], "big") >> 1) or -1


def check_username(username: str) -> str:
    """The handle without a leading @, or an error a person can act on."""
    handle = (username or "").strip().lstrip("@")
    if not USERNAME_RE.match(handle):
        raise ArchiveError(f"{username!r} is not a valid X username: use 1 to 15 letters, digits or underscores")
    return handle


def demo_accounts() -> list[tuple[AccountRecord, ParsedArchive]]:
    """The bundled fictional accounts, each with its posts."""
    listing = json.loads((DEMO_DIR / "accounts.json").read_text(encoding="utf-8"))
    out = []
    for entry in listing:
        parsed = read_jsonl((DEMO_DIR / f"{entry['username']}.jsonl").read_text(encoding="utf-8"))
        account = AccountRecord(id=int(entry["id"]), username=entry["username"], name=entry["name"])
        out.append((account, parsed))
    return out
