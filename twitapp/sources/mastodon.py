"""Reading accounts and their public posts from Mastodon instances, through Mastodon.py.

Ids mean something only on their own instance, so every id handed out carries it ("mastodon.social/109302").
Each instance gets its own Mastodon.py client, made when first needed, at ``url_template`` (config
``MASTODON_INSTANCE_URL``, ``https://{instance}`` or a loopback fake's); one that refuses anonymous reads needs
a token of an account there in ``MASTODON_TOKENS``. A handle whose domain is not its server's (``@ana@example.com``
on ``social.example.com``) is found by WebFinger (``mastodon_webfinger``). Errors become the ``MastodonError``
family below, whose text names the instance and tells a person what to do next.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonIllegalArgumentError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonWarning,
)
from mastodon.errors import MastodonError as _LibraryError

from twitapp.sources import errors
from twitapp.sources.handles import DOMAIN as _DOMAIN
from twitapp.sources.handles import MASTODON_USER
from twitapp.sources.mastodon_html import html_to_text
from twitapp.sources.mastodon_webfinger import WebFingerError, is_web_page, not_the_api, session_for, webfinger_server
from twitapp.sources.records import MAX_POST_CHARS, AccountRecord, PostRecord, clean_text, count
from twitapp.sources.transport import retries_of_passing_failures, timed_out

DEFAULT_URL = "https://{instance}"
DEFAULT_TOPIC_INSTANCE = "mastodon.social"
PAGE_MAX = 40  # Mastodon serves at most 40 statuses a page.
MAX_MOVES = 3  # an account that moved more often than this is not followed further
TOKENS_FORM = '"instance=token,other.instance=token"'
_LOCAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HASHTAG = re.compile(r"#?(\w{1,100})")
_GONE = "{} is suspended or taken down on {}: the instance no longer shows it or its posts."


class MastodonError(errors.SourceError):
    """Any failure to get what was asked of a Mastodon instance; the message is written for a person."""


class MastodonAccountNotFound(MastodonError, errors.AccountNotFound):
    """The instance knows no such account, or no longer shows it (suspended, taken down, moved away)."""


class MastodonAuthError(MastodonError, errors.SourceAuthError):
    """The instance refuses to answer without a token of its own, or refused the token it was given."""


class MastodonRateLimited(MastodonError, errors.RateLimited):
    """The instance wants us to slow down; ``reset_at`` is when it said its window reopens."""


class MastodonUnavailable(MastodonError, errors.SourceUnavailable):
    """The instance could not be reached or answered with something unusable; worth retrying later."""


class MastodonQueryError(MastodonError, ValueError):
    """What was asked cannot be asked of Mastodon (a search that is not one hashtag, a foreign id)."""


class MastodonClient:
    """A read-only client for any number of Mastodon instances, anonymous unless a token is set for one."""

    def __init__(
        self,
        *,
        url_template: str = DEFAULT_URL,
        tokens: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        topic_instance: str = DEFAULT_TOPIC_INSTANCE,
    ) -> None:
        if "{instance}" not in url_template:
            raise ValueError(f"MASTODON_INSTANCE_URL must contain {{instance}}, as in {DEFAULT_URL}: {url_template!r}")
        self._template = url_template.strip().rstrip("/")
        for instance, token in (tokens or {}).items():
            if not _DOMAIN.fullmatch(str(instance)) or not isinstance(token, str) or not token.strip():
                raise ValueError(f"MASTODON_TOKENS: {instance!r} needs an instance's domain and a token for it.")
        self._tokens = {str(instance).lower(): token.strip() for instance, token in (tokens or {}).items()}
        self._timeout = timeout
        self._retry = retries_of_passing_failures(retries, backoff)
        self._topic_instance = topic_instance.strip().lower()
        if not _DOMAIN.fullmatch(self._topic_instance):
            raise ValueError(f"MASTODON_TOPIC_INSTANCE is not an instance's domain, such as {DEFAULT_TOPIC_INSTANCE}.")
        self._apis: dict[str, Mastodon] = {}
        self._lock = threading.Lock()
        self._last = threading.local()  # the last answer this thread received, for its headers and type

    def close(self) -> None:
        with self._lock:
            apis, self._apis = list(self._apis.values()), {}
        for api in apis:
            api.session.close()

    def __enter__(self) -> MastodonClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lookup_user(self, handle: str) -> AccountRecord:
        """The account under ``user@instance`` (any case, a leading @ allowed), asked of its own instance (or the
        server its WebFinger names); one that moved is followed (``MAX_MOVES`` at most), ``moved_from`` naming the
        account first found."""
        user, instance = _split_handle(handle)
        moved_from: str | None = None
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_MOVES + 1):
            seen.add((user.lower(), instance))
            account, server = self._lookup(user, instance)
            if not (moved := account.get("moved")):
                return _account_record(account, server, moved_from, instance)
            moved_from = moved_from or _prefixed(server, account.get("id"), "account")
            user, instance = _split_handle(_acct(moved, server, "answer: a moved account without its new address"))
            if (user.lower(), instance) in seen:
                raise MastodonAccountNotFound(
                    f"@{handle.strip().lstrip('@')} moved to @{user}@{instance}, which says it moved back: "
                    "the move goes round in a loop and cannot be followed."
                )
        raise MastodonAccountNotFound(
            f"@{handle.strip().lstrip('@')} moved more than {MAX_MOVES} times; the app follows no further. "
            f"Look up its newest address (@{user}@{instance}) instead."
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
        """An account's own posts (no replies to others, no boosts), newest first, ``limit`` at most, newer
        than ``since_id`` (ignored if of another instance, from before a move) and ``since_time``."""
        instance, local_id = _split_id(account_id, "account")
        since = _local_since(since_id, instance)
        doing = f"reading the posts of account {account_id}"

        def page(max_id: str | None, count: int) -> Any:
            with self._translating(instance, doing, gone=f"The account {account_id}"):
                return self._api(instance).account_statuses(
                    local_id, max_id=max_id, since_id=since, limit=count, exclude_replies=True, exclude_reblogs=True
                )

        found = self._collect(instance, page, limit, doing, since_time=since_time, progress=progress)
        return [post for post, _ in found]

    def search_recent(
        self, query: str, *, since_id: str | None = None, limit: int = 100
    ) -> list[tuple[PostRecord, str]]:
        """Recent posts with one hashtag on the topic instance, newest first, each with its author's handle."""
        match = _HASHTAG.fullmatch(query.strip())
        if match is None:
            raise MastodonQueryError(
                f"{query.strip()[:60]!r} is not a hashtag: Mastodon search here reads one hashtag "
                "(letters, digits and underscores, with or without #), such as #python."
            )
        tag, instance = match.group(1), self._topic_instance
        since = _local_since(since_id, instance)
        doing = f"reading #{tag} on {instance}"

        def page(max_id: str | None, count: int) -> Any:
            with self._translating(instance, doing), warnings.catch_warnings():
                # Mastodon.py warns when the instance says the feed needs signing in; the answer says it too.
                warnings.simplefilter("ignore", MastodonWarning)
                return self._api(instance).timeline_hashtag(tag, max_id=max_id, since_id=since, limit=count)

        found = self._collect(instance, page, limit, doing, strangers=True)
        malformed = f"status while {doing}: it has no author"
        return [(post, _acct(status.get("account"), instance, malformed)) for post, status in found]

    def _api(self, instance: str) -> Mastodon:
        with self._lock:
            if instance not in self._apis:
                base_url = self._template.format(instance=instance)
                session = session_for(base_url, self._retry)
                session.hooks["response"].append(lambda response, *_, **__: setattr(self._last, "response", response))
                self._apis[instance] = Mastodon(
                    api_base_url=base_url,
                    access_token=self._tokens.get(instance),
                    version_check_mode="none",
                    request_timeout=self._timeout,
                    ratelimit_method="throw",
                    session=session,
                )
            return self._apis[instance]

    def _lookup(self, user: str, instance: str) -> tuple[Any, str]:
        """The account and its server: ``instance``, or if that is no Mastodon API, the one its WebFinger names."""
        try:
            return self._lookup_on(user, instance, instance), instance
        except MastodonError as exc:
            if not (what := not_the_api(getattr(self._last, "response", None))):
                raise
            try:
                server = webfinger_server(user, instance, what, self._template, self._timeout, self._retry)
            except WebFingerError as failed:
                raise MastodonUnavailable(str(failed)) from exc
        return self._lookup_on(user, instance, server), server

    def _lookup_on(self, user: str, instance: str, server: str) -> Any:
        doing = f"looking up @{user}@{instance}" + (f" on {server} (by WebFinger)" if server != instance else "")
        missing = f"{server} has no account @{user}. Check the spelling of the handle (user@instance)."
        with self._translating(server, doing, missing=missing, gone=f"@{user}@{instance}"):
            account = self._api(server).account_lookup(user if server == instance else f"{user}@{instance}")
        if not isinstance(account, dict) or account.get("id") is None:
            raise MastodonUnavailable(f"{server} sent a malformed answer while {doing}: expected an account.")
        if account.get("suspended") is True:
            raise MastodonAccountNotFound(_GONE.format(f"@{user}@{instance}", server))
        return account

    def _collect(
        self,
        instance: str,
        page: Callable[[str | None, int], Any],
        limit: int,
        doing: str,
        *,
        since_time: datetime | None = None,
        progress: Callable[[int], None] | None = None,
        strangers: bool = False,
    ) -> list[tuple[PostRecord, Any]]:
        """Page back through newest-first statuses with ``max_id`` until ``limit``, the end, or ``since_time``.

        ``strangers``: the statuses are anyone's (a hashtag's), so a malformed one is left out rather than
        failing the rest; an account's own malformed status fails its fetch, as nothing is half-stored."""
        wanted = max(limit, 0)
        found: list[tuple[PostRecord, Any]] = []
        max_id: str | None = None
        seen: set[str] = set()
        while len(found) < wanted:
            count = min(PAGE_MAX, wanted - len(found))
            statuses = page(max_id, count)
            if not isinstance(statuses, list):
                raise MastodonUnavailable(f"{instance} sent a malformed answer while {doing}: expected a list.")
            reached_old = False
            for status in statuses:
                if isinstance(status, dict) and (status.get("reblog") or not _public(status)):
                    continue  # a boost is someone else's post; a private one is not for everyone to read
                try:
                    post = _post_record(status, instance, doing)
                except MastodonUnavailable:
                    if strangers:
                        continue
                    raise
                if reached_old := since_time is not None and post.created_at < _utc(since_time):
                    break
                found.append((post, status))
            del found[wanted:]
            if progress is not None:
                progress(len(found))
            max_id = self._next_max_id(statuses, count)
            if reached_old or max_id is None or max_id in seen:
                break
            seen.add(max_id)
        return found

    def _next_max_id(self, statuses: list[Any], asked: int) -> str | None:
        """Where the next page starts: the ``Link`` header's, or after a full page the oldest status."""
        if not statuses:
            return None
        pagination = getattr(statuses, "_pagination_next", None)
        if isinstance(pagination, dict) and pagination.get("max_id") is not None:
            return str(pagination["max_id"])
        response = getattr(self._last, "response", None)
        if response is not None and response.headers.get("Link"):
            return None  # the server paginates, and named no next page: this was the last
        oldest = statuses[-1]
        return str(oldest.get("id")) if len(statuses) >= asked and isinstance(oldest, dict) else None

    @contextmanager
    def _translating(
        self, instance: str, doing: str, *, missing: str | None = None, gone: str | None = None
    ) -> Iterator[None]:
        """Turn whatever Mastodon.py or requests raised into the matching ``MastodonError``."""
        self._last.response = None
        try:
            yield
        except MastodonRatelimitError as exc:
            raise _rate_limited(instance, getattr(self._last, "response", None)) from exc
        except MastodonNetworkError as exc:
            if timed_out(exc.__context__):
                raise MastodonUnavailable(
                    f"{instance} did not answer within {self._timeout:g} seconds while {doing}. Try again later."
                ) from exc
            raise MastodonUnavailable(
                f"Could not reach {instance} ({self._template.format(instance=instance)}) while {doing}. "
                "Check the instance's name and the network connection."
            ) from exc
        except MastodonAPIError as exc:
            raise self._api_error(exc, instance, doing, missing, gone) from exc
        except MastodonIllegalArgumentError as exc:
            raise MastodonQueryError(f"Mastodon.py refused the request while {doing}: {exc}") from exc
        except _LibraryError as exc:
            raise MastodonError(f"Mastodon.py failed while {doing}: {exc}") from exc

    def _api_error(
        self, exc: MastodonAPIError, instance: str, doing: str, missing: str | None, gone: str | None
    ) -> MastodonError:
        response = getattr(self._last, "response", None)
        status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        detail = exc.args[3] if len(exc.args) > 3 and isinstance(exc.args[3], str) else None
        if is_web_page(response) and (status is None or status < 500):
            return MastodonUnavailable(
                f"{instance} answered with a web page, not the Mastodon API: is it a Mastodon server? "
                f"Check the instance's name (while {doing})."
            )
        if status is None:
            return MastodonUnavailable(f"{instance} sent a malformed (non-JSON) answer while {doing}.")
        said = f"{status} {getattr(response, 'reason', '') or ''}".strip() + (f": {detail}" if detail else "")
        if status == 404:
            return MastodonAccountNotFound(missing or f"{instance} answered 404 Not Found while {doing} ({said}).")
        if status == 410:
            return MastodonAccountNotFound(_GONE.format(gone or "The account", instance))
        if status in (401, 403, 422):
            return MastodonAuthError(
                f"{instance} refused the token set for it in MASTODON_TOKENS while {doing} ({said}). "
                "It may be mistyped or revoked; make a new one in the instance's settings (Development)."
                if instance in self._tokens
                else f"{instance} does not show its posts without signing in ({said}). Set a token of an account "
                f"there for it in MASTODON_TOKENS ({TOKENS_FORM}), made in the instance's settings (Development)."
            )
        if status >= 500:
            return MastodonUnavailable(
                f"{instance} is having trouble ({said}) while {doing}. Try again in a few minutes."
            )
        return MastodonError(f"{instance} refused the request while {doing} ({said}).")


def client_from_config(config: Mapping[str, Any]) -> MastodonClient:
    """The client the app's config describes; Mastodon needs no credentials, so there always is one."""
    raw_tokens = config.get("MASTODON_TOKENS") or {}
    return MastodonClient(
        url_template=config.get("MASTODON_INSTANCE_URL") or DEFAULT_URL,
        tokens=parse_tokens(raw_tokens) if isinstance(raw_tokens, str) else dict(raw_tokens),
        topic_instance=config.get("MASTODON_TOPIC_INSTANCE") or DEFAULT_TOPIC_INSTANCE,
        backoff=float(config.get("SOURCE_RETRY_BACKOFF", 0.5)),
    )


def parse_tokens(raw: str) -> dict[str, str]:
    """``"instance=token,other.instance=token"`` as a dict; a ValueError naming a wrong entry by its place
    (never by its text, which may hold a token)."""
    tokens: dict[str, str] = {}
    for number, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        instance, sep, token = (part.strip() for part in entry.partition("="))
        if not sep or not token or not _DOMAIN.fullmatch(instance):
            raise ValueError(
                f"Entry {number} of MASTODON_TOKENS is not of the form instance=token; write the setting as "
                f"{TOKENS_FORM}, one instance's domain and its token per entry."
            )
        if instance.lower() in tokens:
            raise ValueError(f"MASTODON_TOKENS gives {instance.lower()} twice (entry {number}); keep one token.")
        tokens[instance.lower()] = token
    return tokens


def _split_handle(handle: str) -> tuple[str, str]:
    user, _, instance = (handle or "").strip().removeprefix("@").rpartition("@")
    if not MASTODON_USER.fullmatch(user) or not _DOMAIN.fullmatch(instance):
        raise MastodonAccountNotFound(
            f"{(handle or '').strip()[:80]!r} is not a Mastodon address: write it as user@instance, "
            "such as ana@mastodon.social."
        )
    return user, instance.lower()


def _split_id(value: str, kind: str) -> tuple[str, str]:
    instance, _, local = str(value).rpartition("/")
    if not _DOMAIN.fullmatch(instance) or not _LOCAL_ID.fullmatch(local):
        raise MastodonQueryError(f"{value!r} is not a Mastodon {kind} id, which reads instance/ID.")
    return instance.lower(), local


def _local_since(since_id: str | None, instance: str) -> str | None:
    """The id to pass on as ``since_id``: none for a status of another instance, whose ids mean nothing here."""
    if since_id is None:
        return None
    since_instance, local = _split_id(since_id, "status")
    return local if since_instance == instance else None


def _prefixed(instance: str, local: Any, kind: str) -> str:
    text = str(local) if local is not None else ""
    if not _LOCAL_ID.fullmatch(text):
        raise MastodonUnavailable(f"{instance} sent a malformed {kind}: its id is {local!r}.")
    return f"{instance}/{text}"


def _acct(account: Any, instance: str, malformed: str) -> str:
    """An account's ``acct`` as ``instance`` shows it ("user@elsewhere", or "user" when local), in full."""
    acct = account.get("acct") if isinstance(account, dict) else None
    if not isinstance(acct, str) or not acct:
        raise MastodonUnavailable(f"{instance} sent a malformed {malformed}.")
    user, _, domain = acct.partition("@")
    return f"{user}@{(domain or instance).lower()}"


def _account_record(account: Any, server: str, moved_from: str | None, domain: str) -> AccountRecord:
    username, name = account.get("username"), account.get("display_name")
    if not isinstance(username, str) or not MASTODON_USER.fullmatch(username):
        raise MastodonUnavailable(f"{server} sent a malformed account: its username is {username!r}.")
    return AccountRecord(
        id=_prefixed(server, account.get("id"), "account"),
        username=f"{username}@{domain}",
        name=clean_text(name).strip() if isinstance(name, str) and name.strip() else username,
        followers_count=count(account.get("followers_count")),
        platform="mastodon",
        moved_from=moved_from,
    )


def _public(status: dict) -> bool:
    """Whether everyone may read the status: public or unlisted. With a token an instance also serves the
    posts the token's account may see (followers only, direct), which are not the app's to store."""
    return (status.get("visibility") or "public") in ("public", "unlisted")


def _post_record(status: Any, instance: str, doing: str) -> PostRecord:
    malformed = f"{instance} sent a malformed status while {doing}"
    content = status.get("content") if isinstance(status, dict) else None
    if not isinstance(content, str):
        raise MastodonUnavailable(f"{malformed}: it has no content.")
    text = html_to_text(content) if len(content) <= 20 * MAX_POST_CHARS else content
    spoiler = status.get("spoiler_text")
    if isinstance(spoiler, str) and spoiler.strip():
        text = f"CW: {clean_text(spoiler).strip()}\n\n{text}".strip()
    if len(text) > MAX_POST_CHARS:
        raise MastodonUnavailable(f"{malformed}: a post of {len(text):,} characters.")
    created_at, lang = status.get("created_at"), status.get("language")
    if isinstance(created_at, str):  # Mastodon.py reads the timestamp, unless it could not
        with suppress(ValueError):
            created_at = datetime.fromisoformat(created_at)
    if not isinstance(created_at, datetime):
        raise MastodonUnavailable(f"{malformed}: it has no valid created_at.")
    return PostRecord(
        id=_prefixed(instance, status.get("id"), "status"),
        text=text,
        created_at=_utc(created_at),
        like_count=count(status.get("favourites_count")),
        retweet_count=count(status.get("reblogs_count")),
        reply_count=count(status.get("replies_count")),
        lang=lang if isinstance(lang, str) and lang else None,
        has_media=bool(status.get("media_attachments")),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rate_limited(instance: str, response: requests.Response | None) -> MastodonRateLimited:
    """The error for a 429, when ``X-RateLimit-Reset`` says: ISO 8601 from Mastodon, epoch seconds from others."""
    raw = response.headers.get("X-RateLimit-Reset") if response is not None else None
    moment = None
    with suppress(ValueError, OverflowError, OSError):
        if raw:
            moment = datetime.fromtimestamp(int(raw), tz=UTC) if raw.isdigit() else datetime.fromisoformat(raw)
    if moment is None:
        message = f"{instance} rate limit reached. Mastodon's windows are 5 minutes long; wait that long and try again."
        return MastodonRateLimited(message, None)
    reset_at = _utc(moment)
    return MastodonRateLimited(f"{instance} rate limit reached. Try again {errors.when_to_retry(reset_at)}.", reset_at)
