"""Reading accounts and their posts from X (API v2), through tweepy.

Everything that talks to X lives here so the rest of the app deals only in ``AccountRecord`` and
``PostRecord`` and in the ``XAPIError`` family below. tweepy raises a mix of its own exceptions and
``requests`` ones, and X reports some failures (an unknown username) inside a 200 answer; this module folds
all of that into a few errors whose text tells a person what to do next.

tweepy always sends to ``https://api.twitter.com``. ``api_url`` (config ``X_API_URL``) points the client at
another server instead, which is how the tests run tweepy's real request code against a fake X on loopback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
import tweepy
from flask import current_app
from requests.adapters import HTTPAdapter

from twitapp.sources import errors
from twitapp.sources.records import MAX_POST_CHARS, AccountRecord, PostRecord, count
from twitapp.sources.transport import is_loopback, retries_of_passing_failures, timed_out

X_HOST = "https://api.twitter.com"
TIMELINE_CAP = 3200  # X serves at most this many of an account's most recent posts.
PAGE_MAX = 100
PAGE_MIN = 5  # X answers 400 to users/:id/tweets with max_results below this.
TWEET_FIELDS = ["created_at", "public_metrics", "lang", "attachments"]
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")


class XAPIError(errors.SourceError):
    """Any failure to get what was asked of X; the message is written for the person who asked."""


class AccountNotFound(XAPIError, errors.AccountNotFound):
    """X knows no such account, or no longer shows it (suspended or deactivated)."""


class AccountProtected(XAPIError, errors.AccountProtected):
    """The account's posts are protected: X shows them only to followers it approved."""


class XAuthError(XAPIError, errors.SourceAuthError):
    """X refused our credentials (401) or our access level (403); retrying will not help."""


class XRateLimited(XAPIError, errors.RateLimited):
    """X wants us to slow down; ``reset_at`` is when the window reopens, when X said so."""


class XUnavailable(XAPIError, errors.SourceUnavailable):
    """X could not be reached or answered with something unusable; worth retrying later."""


class _RedactBearer(logging.Filter):
    """tweepy logs each request's headers at DEBUG, bearer token included; logs must never hold it."""

    PATTERN = re.compile(r"(Bearer\s+)[^\s'\",}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Bearer" in message:
            record.msg, record.args = self.PATTERN.sub(r"\1[redacted]", message), ()
        return True


logging.getLogger("tweepy.client").addFilter(_RedactBearer())


class _XTransport(HTTPAdapter):
    """Gives every request to X a timeout and, for tests or proxies, sends it to another base URL.

    tweepy passes no timeout, so without this a stalled connection would hang a page load or a job forever.
    Reads are retried a few times, with exponential backoff, when X fails in ways that pass: a 5xx answer,
    a refused or reset connection, a timeout.
    """

    def __init__(self, timeout: float, base_url: str | None = None, retries: int = 3, backoff: float = 0.5) -> None:
        super().__init__(max_retries=retries_of_passing_failures(retries, backoff))
        self._timeout = timeout
        self._base_url = base_url.rstrip("/") if base_url else None
        self._direct = self._base_url is not None and is_loopback(self._base_url)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        if self._base_url is not None and url.startswith(X_HOST):
            request.url = self._base_url + url[len(X_HOST) :]
            if self._direct:
                # Proxies from the environment were chosen for api.twitter.com; a loopback server is local.
                proxies = {}
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


class XClient:
    """A read-only X client for one app-only bearer token."""

    def __init__(
        self,
        bearer_token: str,
        *,
        api_url: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if not bearer_token or not bearer_token.strip():
            raise ValueError("an X bearer token is required")
        self._api_url = api_url.rstrip("/") if api_url else None
        self._timeout = timeout
        # return_type=dict keeps tweepy's request path and errors but lets this module check the payload
        # itself, instead of tweepy's models raising bare KeyErrors (or warning) on odd data.
        self._tweepy = tweepy.Client(bearer_token=bearer_token.strip(), return_type=dict, wait_on_rate_limit=False)
        self._tweepy.session.mount(X_HOST + "/", _XTransport(timeout, self._api_url, retries, backoff))

    def close(self) -> None:
        self._tweepy.session.close()

    def __enter__(self) -> XClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lookup_user(self, username: str) -> AccountRecord:
        """Resolve a handle (with or without ``@``, any case) to the account X has under it.

        A handle X could never accept is reported as not found without asking X: tweepy puts the name into
        the URL path unescaped, and the person typing it needs the same answer either way.
        """
        handle = username.strip().removeprefix("@")
        if not _USERNAME.fullmatch(handle):
            raise AccountNotFound(
                f"'{username.strip()}' is not a valid X username: use 1-15 letters, digits or underscores."
            )
        doing = f"looking up @{handle}"
        with self._translating(doing):
            payload = self._tweepy.get_user(username=handle, user_fields=["protected", "public_metrics"])
        body = _expect_object(payload, doing)
        data = body.get("data")
        if data is None:
            raise AccountNotFound(_not_found_message(f"No X account is named @{handle}.", body))
        user = _expect_object(data, doing)
        username_found = user.get("username")
        if not isinstance(username_found, str) or not username_found:
            raise XUnavailable(f"X sent a malformed user while {doing}: it has no username.")
        if user.get("protected") is True:
            raise AccountProtected(_protected_message(username_found))
        name = user.get("name")
        metrics = user.get("public_metrics")
        followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
        return AccountRecord(
            id=_as_id(user.get("id"), doing),
            username=username_found,
            name=name if isinstance(name, str) else username_found,
            followers_count=followers if isinstance(followers, int) and followers >= 0 else None,
        )

    def fetch_timeline(
        self,
        user_id: int | str,
        *,
        since_id: int | str | None = None,
        since_time: datetime | None = None,
        limit: int = 400,
        progress: Callable[[int], None] | None = None,
    ) -> list[PostRecord]:
        """Collect an account's own posts (no replies or reposts), newest first, as X orders them.

        ``since_id`` asks only for posts newer than one already stored, so a refresh costs one small page
        (X's ids count up with time, so ``since_time``, which other networks use, is not needed).
        ``limit`` is capped at 3200 because X will not page further back than that anyway.
        """
        wanted = min(max(limit, 0), TIMELINE_CAP)
        posts: list[PostRecord] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        doing = f"reading the timeline of X user {user_id}"
        while len(posts) < wanted:
            remaining = wanted - len(posts)
            page = self._timeline_page(user_id, since_id, token, max(PAGE_MIN, min(PAGE_MAX, remaining)))
            posts.extend(_parse_post(item, doing) for item in _page_items(page, doing)[:remaining])
            if progress is not None:
                progress(len(posts))
            token = _next_token(page)
            if token is None or token in seen_tokens:
                break
            seen_tokens.add(token)
        return posts

    def search_recent(
        self, query: str, *, since_id: int | None = None, limit: int = 100
    ) -> list[tuple[PostRecord, str]]:
        """Posts of the last seven days matching ``query`` (X's search language), newest first, with authors."""
        doing = f"searching X for {query!r}"
        with self._translating(doing):
            payload = self._tweepy.search_recent_tweets(
                query,
                since_id=since_id,
                max_results=max(10, min(100, limit)),
                tweet_fields=[*TWEET_FIELDS, "author_id"],
                expansions=["author_id"],
                user_fields=["username"],
            )
        body = _expect_object(payload, doing)
        if "data" not in body and body.get("errors"):
            raise XAPIError(f"X refused while {doing}: {_error_details(body)}")
        includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
        names = {
            str(u.get("id")): str(u.get("username"))
            for u in includes.get("users") or []
            if isinstance(u, dict) and u.get("username")
        }
        out = []
        for item in _page_items(body, doing)[:limit]:
            post = _parse_post(item, doing)
            out.append((post, names.get(str(item.get("author_id")), "")))
        return out

    def _timeline_page(self, user_id: int, since_id: int | None, token: str | None, max_results: int) -> dict[str, Any]:
        doing = f"reading the timeline of X user {user_id}"
        with self._translating(doing):
            payload = self._tweepy.get_users_tweets(
                user_id,
                exclude=["replies", "retweets"],
                tweet_fields=TWEET_FIELDS,
                max_results=max_results,
                since_id=since_id,
                pagination_token=token,
            )
        body = _expect_object(payload, doing)
        if "data" not in body and body.get("errors"):
            if _is_missing_resource(body):
                raise AccountNotFound(_not_found_message(f"X has no account with id {user_id}.", body))
            if any(str(e.get("type", "")).endswith("/not-authorized-for-resource") for e in _errors(body)):
                raise AccountProtected(_protected_message(f"the account with id {user_id}"))
            raise XAPIError(f"X refused while {doing}: {_error_details(body)}")
        return body

    @contextmanager
    def _translating(self, doing: str) -> Iterator[None]:
        """Turn whatever tweepy or requests raised into the matching ``XAPIError``."""
        try:
            yield
        except tweepy.TooManyRequests as exc:
            reset_at = _reset_time(exc.response)
            raise XRateLimited(_rate_limit_message(reset_at), reset_at) from exc
        except tweepy.Unauthorized as exc:
            raise XAuthError(
                "X rejected the bearer token (401 Unauthorized). Check X_BEARER_TOKEN: it may be mistyped, "
                "revoked or expired; a new one can be generated in the X developer portal."
            ) from exc
        except tweepy.Forbidden as exc:
            raise XAuthError(
                f"X refused access while {doing} (403 Forbidden){_detail_suffix(exc)}. The app's X API "
                "access level may not include this; check the project's plan in the X developer portal."
            ) from exc
        except tweepy.NotFound as exc:
            raise XUnavailable(
                f"X answered 404 Not Found while {doing}; the API endpoint is missing (if X_API_URL is set, "
                f"check it points at an X API server: {self._api_url or X_HOST})."
            ) from exc
        except tweepy.TwitterServerError as exc:
            raise XUnavailable(
                f"X is having trouble ({_status_line(exc.response)}) while {doing}. Try again in a few minutes."
            ) from exc
        except tweepy.HTTPException as exc:
            raise XAPIError(
                f"X rejected the request while {doing} ({_status_line(exc.response)}){_detail_suffix(exc)}."
            ) from exc
        except requests.JSONDecodeError as exc:
            raise XUnavailable(f"X sent a malformed (non-JSON) answer while {doing}.") from exc
        except requests.RequestException as exc:
            if timed_out(exc):
                raise XUnavailable(
                    f"X did not answer within {self._timeout:g} seconds while {doing}. Try again later."
                ) from exc
            raise XUnavailable(
                f"Could not reach the X API at {self._api_url or X_HOST} while {doing}: {exc}. "
                "Check the network connection (and X_API_URL if it is set)."
            ) from exc
        except tweepy.TweepyException as exc:
            raise XAPIError(f"tweepy failed while {doing}: {exc}") from exc


def online() -> bool:
    """Whether accounts can be fetched from X here: a bearer token is set (the app runs offline without)."""
    return bool(current_app.config.get("X_BEARER_TOKEN"))


def client_from_config(config: Mapping[str, Any]) -> XClient | None:
    """Build the client the app's config describes; ``None`` means X is simply not configured.

    Callers treat ``None`` as "offer archives and demo data only" rather than as an error.
    """
    token = config.get("X_BEARER_TOKEN")
    if not isinstance(token, str) or not token.strip():
        return None
    return XClient(token, api_url=config.get("X_API_URL") or None, backoff=float(config.get("X_RETRY_BACKOFF", 0.5)))


def _expect_object(value: Any, doing: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise XUnavailable(f"X sent a malformed answer while {doing}: expected a JSON object.")
    return value


def _as_id(value: Any, doing: str) -> int:
    """X sends ids as decimal strings (they overflow JavaScript numbers); anything else is corrupt."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise XUnavailable(f"X sent a malformed answer while {doing}: missing or invalid id {value!r}.")
    try:
        number = int(value)
    except ValueError:
        raise XUnavailable(f"X sent a malformed answer while {doing}: invalid id {value!r}.") from None
    if number <= 0:
        raise XUnavailable(f"X sent a malformed answer while {doing}: invalid id {value!r}.")
    return number


def _page_items(page: dict[str, Any], doing: str) -> list[Any]:
    data = page.get("data", [])
    if not isinstance(data, list):
        raise XUnavailable(f"X sent a malformed page while {doing}: 'data' is not a list.")
    return data


def _next_token(page: dict[str, Any]) -> str | None:
    meta = page.get("meta")
    token = meta.get("next_token") if isinstance(meta, dict) else None
    return token if isinstance(token, str) and token else None


def _parse_post(item: Any, doing: str) -> PostRecord:
    post = _expect_object(item, doing)
    text = post.get("text")
    if not isinstance(text, str):
        raise XUnavailable(f"X sent a malformed post while {doing}: a post has no text.")
    if len(text) > MAX_POST_CHARS:
        raise XUnavailable(f"X sent a malformed post while {doing}: a post of {len(text):,} characters.")
    metrics = post.get("public_metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    lang = post.get("lang")
    return PostRecord(
        id=_as_id(post.get("id"), doing),
        text=text,
        created_at=_parse_created_at(post.get("created_at"), doing),
        like_count=count(metrics.get("like_count")),
        retweet_count=count(metrics.get("retweet_count")),
        reply_count=count(metrics.get("reply_count")),
        lang=lang if isinstance(lang, str) and lang else None,
        has_media=_has_media(post),
    )


def _has_media(post: dict[str, Any]) -> bool:
    """Asked for with tweet.fields=attachments: a post without the field has no media."""
    attachments = post.get("attachments")
    return isinstance(attachments, dict) and bool(attachments.get("media_keys"))


def _parse_created_at(value: Any, doing: str) -> datetime:
    if not isinstance(value, str):
        raise XUnavailable(f"X sent a malformed post while {doing}: a post has no created_at.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise XUnavailable(f"X sent a malformed post while {doing}: bad created_at {value!r}.") from None
    # X always says "Z"; a timestamp without an offset is still UTC by X's convention.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors")
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _protected_message(who: str) -> str:
    name = who if who.startswith("the ") else f"@{who}"
    return (
        f"{name[0].upper()}{name[1:]}'s posts are protected: X shows them only to followers the account "
        "approved, so the app cannot fetch them. Import the account's own X archive instead."
    )


def _is_missing_resource(body: dict[str, Any]) -> bool:
    return any(str(e.get("type", "")).endswith("/resource-not-found") for e in _errors(body))


def _error_details(body: dict[str, Any]) -> str:
    texts = [str(e.get("detail") or e.get("message") or e.get("title") or "") for e in _errors(body)]
    return "; ".join(t for t in texts if t) or "no reason given"


def _not_found_message(lead: str, body: dict[str, Any]) -> str:
    details = _error_details(body)
    if details == "no reason given":
        return lead + " Check the spelling; suspended and deactivated accounts cannot be read."
    return f"{lead} X said: {details}"


def _detail_suffix(exc: tweepy.HTTPException) -> str:
    messages = [m for m in exc.api_messages if isinstance(m, str) and m]
    return f": {'; '.join(messages)}" if messages else ""


def _status_line(response: Any) -> str:
    status = getattr(response, "status_code", "?")
    reason = getattr(response, "reason", "") or ""
    return f"{status} {reason}".strip()


def _reset_time(response: Any) -> datetime | None:
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("x-rate-limit-reset")
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC) if raw is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _rate_limit_message(reset_at: datetime | None) -> str:
    if reset_at is None:
        return "X rate limit reached. X's windows are 15 minutes long; wait that long before trying again."
    return f"X rate limit reached. Try again {errors.when_to_retry(reset_at)}."
