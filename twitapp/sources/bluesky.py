"""Reading accounts and their posts from Bluesky, through the atproto SDK.

Bluesky's public AppView (``BLUESKY_APPVIEW_URL``) serves profiles and author feeds to anyone; searching
needs an account, so ``search_recent`` signs in (``BLUESKY_HANDLE``, ``BLUESKY_APP_PASSWORD``) at its
service (``BLUESKY_SERVICE_URL``). The SDK's exceptions (some plain ``httpx`` or ``ValueError`` ones) and
XRPC error bodies (``{"error": "AccountTakedown", ...}``) become the ``BlueskyError`` family, whose text
tells a person what to do next. Tests run the SDK's real request code against a fake on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from atproto_client import Client
from atproto_client import exceptions as sdk
from atproto_client.models.utils import get_model_as_dict
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError
from pydantic import ValidationError

from twitapp.sources import errors
from twitapp.sources.handles import BLUESKY_DID, BLUESKY_HANDLE
from twitapp.sources.records import MAX_POST_CHARS, AccountRecord, PostRecord, clean_text, count
from twitapp.sources.transport import PASSING, is_loopback

DEFAULT_APPVIEW = "https://public.api.bsky.app"
DEFAULT_SERVICE = "https://bsky.social"
PAGE_MAX = 100  # getAuthorFeed and searchPosts answer 400 to a larger limit
INVALID_HANDLE = "handle.invalid"  # what Bluesky shows for an account whose handle no longer resolves
NO_UNAUTHENTICATED = "!no-unauthenticated"  # the account's own label: not to be shown to the signed-out
_MEDIA = frozenset(f"app.bsky.embed.{kind}{view}" for kind in ("images", "video") for view in ("#view", ""))
_WITH_MEDIA = frozenset({"app.bsky.embed.recordWithMedia#view", "app.bsky.embed.recordWithMedia"})
_LINK = "app.bsky.richtext.facet#link"
_REPOST = "app.bsky.feed.defs#reasonRepost"
_PIN = "app.bsky.feed.defs#reasonPin"
_APP_PASSWORDS = "Bluesky's Settings → Privacy and security → App passwords"
T = TypeVar("T")


class BlueskyError(errors.SourceError):
    """Any failure to get what was asked of Bluesky; the message is written for the person who asked."""


class BlueskyAccountNotFound(BlueskyError, errors.AccountNotFound):
    """Bluesky knows no such account, or no longer shows it (taken down, deactivated, handle broken)."""


class BlueskyAccountBlocked(BlueskyError, errors.AccountProtected):
    """A block hides the account's posts, or the account asks not to be shown to the signed-out."""


class BlueskyAuthError(BlueskyError, errors.SourceAuthError):
    """Bluesky refused the credentials, or refuses to answer without them; retrying will not help."""


class BlueskyRateLimited(BlueskyError, errors.RateLimited):
    """Bluesky wants us to slow down; ``reset_at`` is when its window reopens, when it said so."""


class BlueskyUnavailable(BlueskyError, errors.SourceUnavailable):
    """Bluesky could not be reached or answered with something unusable; worth retrying later."""


class BlueskyClient:
    """A read-only Bluesky client: anonymous against the AppView, signed in only for searches."""

    def __init__(
        self,
        *,
        appview_url: str = DEFAULT_APPVIEW,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        login: tuple[str, str] | None = None,
        service_url: str = DEFAULT_SERVICE,
    ) -> None:
        self._appview_url = _base_url(appview_url, "BLUESKY_APPVIEW_URL")
        self._service_url = _base_url(service_url, "BLUESKY_SERVICE_URL")
        self._timeout = timeout
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        self._login = login if login and login[0].strip() and login[1] else None
        self._appview = _sdk_client(self._appview_url, timeout)
        self._signed_in: Client | None = None

    def close(self) -> None:
        self._appview.request.close()
        if self._signed_in is not None:
            self._signed_in.request.close()
            self._signed_in = None

    def __enter__(self) -> BlueskyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lookup_user(self, actor: str) -> AccountRecord:
        """Resolve a handle ("ana.bsky.social", any case, "@" allowed) or a DID to the account behind it.

        Something that is neither is reported as not found without asking Bluesky.
        """
        wanted = actor.strip().removeprefix("@")
        if not (BLUESKY_HANDLE.fullmatch(wanted) or BLUESKY_DID.fullmatch(wanted)):
            raise BlueskyAccountNotFound(
                f"'{actor.strip()}' is not a Bluesky handle or DID: a handle is a domain such as "
                "ana.bsky.social or example.com, a DID looks like did:plc:..."
            )
        doing = f"looking up {_who(wanted)}"
        profile = self._call(doing, lambda: self._appview.app.bsky.actor.get_profile({"actor": wanted}), who=wanted)
        did, handle = profile.did, profile.handle
        if not did or not handle:
            raise BlueskyUnavailable(f"Bluesky sent a malformed profile while {doing}: it has no DID or handle.")
        if handle == INVALID_HANDLE:
            raise BlueskyAccountNotFound(
                f"Bluesky shows the account {did} with the handle {INVALID_HANDLE}: its handle no longer resolves "
                "(its domain stopped pointing at it). Look it up by its new handle once its owner has fixed it."
            )
        if _asks_not_to_be_shown(profile):
            raise BlueskyAccountBlocked(
                f"@{handle} asks Bluesky's apps not to show its posts to people who are not signed in, and this "
                "app shows what it stores to anyone, so it does not fetch them."
            )
        followers = profile.followers_count
        return AccountRecord(
            id=did,
            username=handle,
            name=(profile.display_name or "").strip() or handle,
            followers_count=followers if isinstance(followers, int) and followers >= 0 else None,
            platform="bluesky",
        )

    def fetch_timeline(
        self,
        account_id: str,
        *,
        since_id: str | None = None,
        since_time: datetime | None = None,
        limit: int = 400,
        progress: Callable[[int], None] | None = None,
    ) -> list[PostRecord]:
        """The account's own posts (no replies, no reposts), newest first, as Bluesky orders them.

        An update passes the newest stored post's URI (``since_id``) or time (``since_time``): reading stops
        at the first post that old, so it usually costs one page.
        """
        wanted = max(limit, 0)
        posts: list[PostRecord] = []
        seen_posts: set[str] = set()
        seen_cursors: set[str] = set()
        cursor: str | None = None
        doing = f"reading the posts of {account_id}"
        while len(posts) < wanted:
            params = {"actor": account_id, "filter": "posts_no_replies", "limit": PAGE_MAX, "cursor": cursor}
            page = self._call(doing, lambda p=params: self._appview.app.bsky.feed.get_author_feed(p), who=account_id)
            reached_known = False
            for item in page.feed:
                if _left_out(item, account_id):
                    continue
                post = _post_record(item.post, doing)
                if post.id == since_id or (since_time is not None and post.created_at <= since_time):
                    reached_known = True
                    break
                if post.id not in seen_posts:
                    seen_posts.add(post.id)
                    posts.append(post)
                    if len(posts) >= wanted:
                        break
            if progress is not None:
                progress(len(posts))
            cursor = page.cursor
            if reached_known or not cursor or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        return posts

    def search_recent(
        self, query: str, *, since_id: str | None = None, limit: int = 100
    ) -> list[tuple[PostRecord, str]]:
        """Posts matching ``query``, newest first, each with its author's handle; needs a signed-in account.

        ``since_id`` is the URI of a post already shown: only newer ones come back.
        """
        signed_in = self._signed_in_client()
        doing = f"searching Bluesky for {query!r}"
        found: list[tuple[PostRecord, str]] = []
        seen_cursors: set[str] = set()
        cursor: str | None = None
        while len(found) < limit:
            params = {"q": query, "sort": "latest", "limit": min(PAGE_MAX, limit - len(found)), "cursor": cursor}
            page = self._call(doing, lambda p=params: signed_in.app.bsky.feed.search_posts(p), signing_in=True)
            for view in page.posts:
                if view.uri == since_id:
                    return found
                if _asks_not_to_be_shown(view.author):
                    continue
                try:
                    post = _post_record(view, doing)
                except BlueskyUnavailable:  # a stranger's malformed post is left out, not the whole search
                    continue
                found.append((post, view.author.handle))
                if len(found) >= limit:
                    break
            cursor = page.cursor
            if not page.posts or not cursor or cursor in seen_cursors:
                break
            seen_cursors.add(cursor)
        return found

    def _signed_in_client(self) -> Client:
        """A client signed in at the service with the configured app password, made on first use."""
        if self._login is None:
            raise BlueskyAuthError(
                "Bluesky answers searches only for a signed-in account. Set BLUESKY_HANDLE and "
                f"BLUESKY_APP_PASSWORD (an app password, made under {_APP_PASSWORDS}) to search Bluesky."
            )
        if self._signed_in is None:
            handle, password = self._login
            client = _sdk_client(self._service_url, self._timeout)
            try:
                self._call(
                    f"signing in to Bluesky as {handle}",
                    lambda: client.login(handle, password, fetch_bsky_profile=False),
                    signing_in=True,
                )
            except BaseException:
                client.request.close()
                raise
            self._signed_in = client
        return self._signed_in

    def _call(self, doing: str, request: Callable[[], T], *, who: str | None = None, signing_in: bool = False) -> T:
        """Run one SDK request, retrying passing failures with exponential backoff, and translate errors."""
        attempt = 0
        while True:
            try:
                return request()
            except (AtProtocolError, httpx.HTTPError, ValueError) as exc:
                if attempt < self._retries and _passing(exc):
                    time.sleep(min(self._backoff * 2**attempt, 30.0))
                    attempt += 1
                    continue
                raise self._translate(exc, doing, who, signing_in) from exc

    def _translate(self, exc: Exception, doing: str, who: str | None, signing_in: bool) -> BlueskyError:
        server = self._service_url if signing_in else self._appview_url
        setting = "BLUESKY_SERVICE_URL" if signing_in else "BLUESKY_APPVIEW_URL"
        if isinstance(exc, sdk.RateLimitExceededError):
            return BlueskyRateLimited(_rate_limit_message(exc.reset_at), exc.reset_at)
        response = exc.response if isinstance(exc, sdk.RequestErrorBase) else None
        if response is not None:
            return self._translate_answer(response, doing, who, signing_in, f"{server} ({setting})")
        if isinstance(exc, sdk.InvokeTimeoutError | httpx.TimeoutException):
            return BlueskyUnavailable(
                f"Bluesky did not answer within {self._timeout:g} seconds while {doing}. Try again later."
            )
        if isinstance(exc, sdk.NetworkError | httpx.TransportError):
            cause = exc.__cause__ or exc
            return BlueskyUnavailable(
                f"Could not reach Bluesky at {server} while {doing}: {cause or type(cause).__name__}. "
                f"Check the network connection (and {setting} if it is set)."
            )
        if isinstance(exc, sdk.ModelError | ValueError):
            return BlueskyUnavailable(f"Bluesky sent a malformed answer while {doing}: {_model_problem(exc)}.")
        return BlueskyError(f"The atproto SDK failed while {doing}: {exc}")

    def _translate_answer(
        self, response: Any, doing: str, who: str | None, signing_in: bool, server: str
    ) -> BlueskyError:
        status = response.status_code
        name, message = _xrpc_error(response.content)
        said = f"{status} {name}: {message}" if name and message else f"{status} {name or ''}".strip()
        named = _who(who) if who else "the account"
        if name == "AccountTakedown" and not signing_in:
            return BlueskyAccountNotFound(f"Bluesky has taken down {named} (suspended), so its posts cannot be read.")
        if name == "AccountDeactivated" and not signing_in:
            return BlueskyAccountNotFound(f"Bluesky shows {named} as deactivated; its posts are hidden for now.")
        if name in ("BlockedActor", "BlockedByActor"):
            between = "blocks" if name == "BlockedByActor" else "is blocked by"
            return BlueskyAccountBlocked(f"Bluesky hides the posts of {named}, which {between} the app's account.")
        if status == 400 and "not found" in message.lower() and not signing_in:
            if who and who.startswith("did:"):
                return BlueskyAccountNotFound(f"Bluesky has no account {who}. It may have been deleted.")
            return BlueskyAccountNotFound(
                f"Bluesky has no account {named}. Check the spelling (a handle is a domain such as ana.bsky.social)."
            )
        if status in (401, 403):
            return BlueskyAuthError(_auth_message(doing, said, signing_in))
        if status in (404, 501):
            return BlueskyUnavailable(
                f"Bluesky answered {said} while {doing}: the server at {server} does not serve this request. "
                "Check the URL names a Bluesky AppView or account service."
            )
        if status >= 500:
            return BlueskyUnavailable(f"Bluesky is having trouble ({said}) while {doing}. Try again in a few minutes.")
        return BlueskyError(f"Bluesky rejected the request while {doing} ({said}).")


def client_from_config(config: Mapping[str, Any]) -> BlueskyClient:
    """The client the app's config describes; reading needs no credentials, so there always is one."""
    handle, password = (str(config.get(k) or "").strip() for k in ("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"))
    handle = handle.removeprefix("@")
    return BlueskyClient(
        appview_url=config.get("BLUESKY_APPVIEW_URL") or DEFAULT_APPVIEW,
        login=(handle, password) if handle and password else None,
        service_url=config.get("BLUESKY_SERVICE_URL") or DEFAULT_SERVICE,
        backoff=float(config.get("SOURCE_RETRY_BACKOFF", 0.5)),
    )


def _base_url(url: str, setting: str) -> str:
    """The server's address without a trailing "/" or "/xrpc" (the SDK adds "/xrpc" itself)."""
    cleaned = url.strip().rstrip("/").removesuffix("/xrpc")
    if urlsplit(cleaned).scheme not in ("http", "https") or not urlsplit(cleaned).hostname:
        raise ValueError(f"{setting} must be an http(s) address such as {DEFAULT_APPVIEW}, not {url!r}")
    return cleaned


def _sdk_client(url: str, timeout: float) -> Client:
    return Client(base_url=url, request=Request(timeout=httpx.Timeout(timeout), trust_env=not is_loopback(url)))


def _passing(exc: Exception) -> bool:
    """Whether trying again may help: a 5xx answer, a timeout, a failed or dropped connection (never a 4xx)."""
    if isinstance(exc, sdk.RequestErrorBase):
        if exc.response is not None:
            return exc.response.status_code in PASSING
        return isinstance(exc, sdk.NetworkError)
    return isinstance(exc, httpx.TransportError)


def _who(actor: str) -> str:
    """How a message names an account: "@ana.bsky.social", or "the account did:plc:..."."""
    return f"the account {actor}" if actor.startswith("did:") else f"@{actor}"


def _xrpc_error(content: Any) -> tuple[str, str]:
    """The XRPC error's name and message ("InvalidRequest", "Profile not found"); empty when there is none."""
    if isinstance(content, bytes | str | None):  # not JSON, or JSON without Bluesky's fields
        return "", ""
    return str(getattr(content, "error", "") or ""), str(getattr(content, "message", "") or "")


def _auth_message(doing: str, said: str, signing_in: bool) -> str:
    if signing_in:
        return (
            f"Bluesky refused the sign-in while {doing} ({said}). Check BLUESKY_HANDLE and BLUESKY_APP_PASSWORD: "
            f"the password must be an app password, made under {_APP_PASSWORDS}, and may have been revoked."
        )
    return (
        f"Bluesky refused to answer while {doing} ({said}). The public AppView needs no sign-in for this; "
        "if BLUESKY_APPVIEW_URL is set, check it names a public AppView."
    )


def _model_problem(exc: Exception) -> str:
    """What the SDK found wrong with a payload, said briefly ("feed.0.post.uri: Field required")."""
    found = exc.__cause__.errors() if isinstance(exc.__cause__, ValidationError) else []
    if found:
        return f"{'.'.join(str(part) for part in found[0]['loc'])}: {found[0]['msg']}"
    if "JSON is expected" in str(exc) or not isinstance(exc, sdk.ModelError):
        return "it is not a JSON object"
    return str(exc) or type(exc).__name__


def _type_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("$type") or "")
    return str(getattr(value, "py_type", "") or "")


def _left_out(item: Any, account_id: str) -> bool:
    """A repost (the reason says so, or the post is someone else's), the pinned post shown first, or a reply."""
    if _type_of(item.reason) in (_REPOST, _PIN) or item.post.author.did != account_id:
        return True
    return bool(getattr(item.post.record, "reply", None))  # the SDK's record model, or its DotDict


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None or isinstance(value, str | int | float | bool | list):
        return {}
    return value if isinstance(value, dict) else get_model_as_dict(value)


def _asks_not_to_be_shown(profile: Any) -> bool:
    return any(getattr(label, "val", None) == NO_UNAUTHENTICATED for label in getattr(profile, "labels", None) or ())


def _post_record(view: Any, doing: str) -> PostRecord:
    """One post view as a ``PostRecord``; a post without its URI, text or time is a malformed payload."""
    record = _as_dict(view.record)
    uri, text = view.uri, record.get("text")
    if not isinstance(uri, str) or not uri.startswith("at://"):
        raise BlueskyUnavailable(f"Bluesky sent a malformed post while {doing}: a post has no AT URI.")
    if not isinstance(text, str):
        raise BlueskyUnavailable(f"Bluesky sent a malformed post while {doing}: the post {uri} has no text.")
    if len(text) > MAX_POST_CHARS:
        raise BlueskyUnavailable(
            f"Bluesky sent a malformed post while {doing}: the post {uri} has {len(text):,} characters."
        )
    created, indexed = _parse_time(record.get("createdAt")), _parse_time(view.indexed_at)
    if created is None and indexed is None:
        raise BlueskyUnavailable(f"Bluesky sent a malformed post while {doing}: the post {uri} has no valid createdAt.")
    langs = record.get("langs")
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) and langs[0] else None
    return PostRecord(
        id=uri,
        text=clean_text(_expand_links(text, record.get("facets"))),
        # A post's own clock can run ahead (or lie); it cannot have been written after Bluesky saw it.
        # A record whose own time cannot be read takes the time Bluesky saw it.
        created_at=min(t for t in (created, indexed) if t is not None),
        like_count=count(view.like_count),
        retweet_count=count(view.repost_count),
        reply_count=count(view.reply_count),
        lang=lang,
        has_media=_has_media(view.embed, record.get("embed")),
    )


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time ("Z", an offset or none, any fraction of a second) in UTC, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())  # Python 3.11 reads "Z" and fractions of any length
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a time of year 1 that an offset moves out of range
        return None


def _has_media(view_embed: Any, record_embed: Any) -> bool:
    """Images or a video attached, alone or beside a quoted post; the served view says, else the record."""
    embed = view_embed if view_embed is not None else record_embed
    kind = _type_of(embed)
    if kind in _WITH_MEDIA:
        media = embed.get("media") if isinstance(embed, dict) else getattr(embed, "media", None)
        kind = _type_of(media)
    return kind in _MEDIA


def _expand_links(text: str, facets: Any) -> str:
    """The text with each link facet's span replaced by its full URI (Bluesky's clients shorten links).

    Facets index the UTF-8 bytes of the text. One whose range is out of bounds, splits a character or
    overlaps one listed before it is ignored.
    """
    if not isinstance(facets, list) or not facets:
        return text
    data = text.encode("utf-8")
    spans: list[tuple[int, int, str]] = []
    for facet in facets:
        span = _link_span(facet, data)
        if span is not None and all(span[1] <= start or end <= span[0] for start, end, _ in spans):
            spans.append(span)  # the first of overlapping facets (in the record's order) wins
    pieces: list[bytes] = []
    position = 0
    for start, end, uri in sorted(spans):
        pieces += [data[position:start], uri.encode("utf-8")]
        position = end
    pieces.append(data[position:])
    return b"".join(pieces).decode("utf-8")


def _link_span(facet: Any, data: bytes) -> tuple[int, int, str] | None:
    if not isinstance(facet, dict) or not isinstance(facet.get("index"), dict):
        return None
    start, end = facet["index"].get("byteStart"), facet["index"].get("byteEnd")
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data)):
        return None
    if any(0x80 <= data[i] < 0xC0 for i in (start, end) if i < len(data)):  # inside a multibyte character
        return None
    features = facet.get("features")
    for feature in features if isinstance(features, list) else []:
        if isinstance(feature, dict) and feature.get("$type") == _LINK:
            uri = feature.get("uri")
            if isinstance(uri, str) and uri:
                return start, end, uri
    return None


def _rate_limit_message(reset_at: datetime | None) -> str:
    if reset_at is None:
        return "Bluesky's rate limit is spent; its windows last 5 minutes, so try again in 5 minutes."
    return f"Bluesky's rate limit is spent; try again {errors.when_to_retry(reset_at)}."
