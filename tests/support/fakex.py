"""A fake X API v2, served on loopback, for tests that drive tweepy's real HTTP code.

Point an ``XClient`` at ``FakeXAPI.url`` (config ``X_API_URL``) and it talks to this server instead of
api.twitter.com. Only the endpoints the app reads are here, answering in X's shapes, including X's habit of
reporting an unknown username as a 200 with an ``errors`` array. ``fail_next`` and ``serve_next`` inject the
failures (bad token, rate limits, outages, garbage) that are hard to get from the real service on demand.

Post dicts given to ``add_user``/``add_posts`` look like::

    {"id": 1, "text": "hello", "created_at": "2026-01-02T03:04:05.000Z",
     "like_count": 0, "retweet_count": 0, "reply_count": 0, "lang": "en"}

``"media": True`` attaches a photo. ``created_at`` may be left out (it is then derived from the id, as X's
snowflake ids encode it), and
``"is_reply": True`` / ``"is_retweet": True`` mark posts that ``exclude=replies,retweets`` must drop. A post
without ``"text"`` is served without one, to imitate a corrupt payload.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, Response, request

from tests.support.loopback import LoopbackServer

RESOURCE_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
TIMELINE_CAP = 3200
SNOWFLAKE_EPOCH_MS = 1288834974657
_OPTIONAL_FIELDS = ("created_at", "lang", "author_id")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _created_from_id(post_id: int) -> str:
    millis = (post_id >> 22) + SNOWFLAKE_EPOCH_MS
    return _iso(datetime.fromtimestamp(millis / 1000, tz=UTC))


class FakeXAPI(LoopbackServer):
    """A threaded loopback server imitating the parts of X API v2 the app uses."""

    def __init__(self, bearer_token: str = "test-token") -> None:
        self.bearer_token = bearer_token
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.delay = 0.0  # seconds each answer takes, to imitate a slow X
        self.request_headers: list[dict[str, str]] = []
        self._users: dict[int, dict[str, Any]] = {}
        self._posts: dict[int, dict[int, dict[str, Any]]] = {}
        self._queued: list[tuple[int, Any, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._app = self._build_app()
        self.name = "fake-x-api"

    # -- test data -------------------------------------------------------------------------------------

    def add_user(
        self,
        id: int,
        username: str,
        name: str,
        posts: list[dict[str, Any]] | None = None,
        *,
        protected: bool = False,
        followers: int = 0,
    ) -> None:
        """An account; a ``protected`` one shows its posts only to approved followers, as on X."""
        with self._lock:
            self._users[int(id)] = {
                "id": str(int(id)),
                "name": name,
                "username": username,
                "protected": protected,
                "public_metrics": {"followers_count": followers, "following_count": 0, "tweet_count": 0},
            }
            self._posts.setdefault(int(id), {})
        if posts:
            self.add_posts(username, posts)

    def add_posts(self, username: str, posts: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            user = self._user_by_name(username)
            if user is None:
                raise KeyError(f"no fake user @{username}; call add_user first")
            store = self._posts[int(user["id"])]
            for post in posts:
                stored = dict(post)
                stored["id"] = int(post["id"])
                store[stored["id"]] = stored

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests (any route) with X's error for ``status``."""
        merged = dict(_default_error_headers(status))
        merged.update(headers or {})
        self.serve_next(status, _default_error_body(status), times=times, headers=merged)

    def serve_next(self, status: int, body: Any, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests verbatim: ``body`` is JSON-encoded unless it is a str/bytes."""
        with self._lock:
            self._queued.extend((status, body, dict(headers or {})) for _ in range(times))

    # -- HTTP ------------------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.before_request(self._gatekeeper)
        app.add_url_rule("/2/users/by/username/<username>", view_func=self._user_by_username)
        app.add_url_rule("/2/users/<user_id>/tweets", view_func=self._user_tweets)
        app.add_url_rule("/2/tweets/search/recent", view_func=self._search_recent)
        app.register_error_handler(404, lambda _e: _json({"title": "Not Found", "status": 404}, 404))
        return app

    def _gatekeeper(self) -> Response | None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.requests.append((request.path, request.args.to_dict()))
            self.request_headers.append(dict(request.headers))
            queued = self._queued.pop(0) if self._queued else None
        if queued is not None:
            status, body, headers = queued
            return _raw(body, status, headers)
        if request.headers.get("Authorization") != f"Bearer {self.bearer_token}":
            body = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
            return _json(body, 401)
        return None

    def _user_by_username(self, username: str) -> Response:
        with self._lock:
            user = self._user_by_name(username)
        if user is None:
            return _json({"errors": [_not_found("username", username)]})
        fields = set(request.args.get("user.fields", "").split(","))
        data = {key: value for key, value in user.items() if key in ("id", "name", "username") or key in fields}
        return _json({"data": data})

    def _user_tweets(self, user_id: str) -> Response:
        if not user_id.isdigit():
            return _invalid("id", user_id, f"The `id` query parameter value [{user_id}] is not valid")
        max_results, problem = _int_param("max_results", 10, 5, 100)
        if problem is not None:
            return problem
        exclude = set(filter(None, request.args.get("exclude", "").split(",")))
        if not exclude <= {"replies", "retweets"}:
            return _invalid("exclude", request.args["exclude"], "The `exclude` value is not valid")
        with self._lock:
            if int(user_id) not in self._users:
                return _json({"errors": [_not_found("id", user_id)]})
            if self._users[int(user_id)]["protected"]:
                return _json({"errors": [_not_authorized(user_id)]})
            posts = self._newest_first(int(user_id))[:TIMELINE_CAP]
        posts = [
            p
            for p in posts
            if not ("replies" in exclude and p.get("is_reply")) and not ("retweets" in exclude and p.get("is_retweet"))
        ]
        return self._page(posts, max_results, "pagination_token")

    def _search_recent(self) -> Response:
        query = request.args.get("query", "")
        if not query.strip():
            return _invalid("query", query, "The `query` parameter can not be empty")
        max_results, problem = _int_param("max_results", 10, 10, 100)
        if problem is not None:
            return problem
        with self._lock:
            everything = [(post, uid) for uid in self._posts for post in self._newest_first(uid)]
            users = dict(self._users)
        matches = [(p, uid) for p, uid in everything if _matches(query, p, users[uid])]
        matches.sort(key=lambda pair: pair[0]["id"], reverse=True)
        authors = {id(p): uid for p, uid in matches}
        return self._page([p for p, _ in matches], max_results, "next_token", authors, users)

    def _page(
        self,
        posts: list[dict[str, Any]],
        max_results: int,
        token_param: str,
        authors: dict[int, int] | None = None,
        users: dict[int, dict[str, Any]] | None = None,
    ) -> Response:
        """Apply since_id/until_id and the page token to newest-first ``posts`` and shape X's answer."""
        since_id, problem = _int_param("since_id", 0, 1, None)
        if problem is not None:
            return problem
        until_id, problem = _int_param("until_id", 0, 1, None)
        if problem is not None:
            return problem
        posts = [p for p in posts if p["id"] > since_id and (not until_id or p["id"] < until_id)]
        token = request.args.get(token_param)
        if token:
            before = _decode_token(token)
            if before is None:
                return _invalid(token_param, token, f"The `{token_param}` query parameter value is not valid")
            posts = [p for p in posts if p["id"] < before]
        page, rest = posts[:max_results], posts[max_results:]
        if not page:
            return _json({"meta": {"result_count": 0}})
        fields = set(filter(None, request.args.get("tweet.fields", "").split(",")))
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": str(page[0]["id"]),
            "oldest_id": str(page[-1]["id"]),
        }
        if rest:
            meta["next_token"] = _encode_token(page[-1]["id"])
        body: dict[str, Any] = {"data": [_serve_post(p, fields, (authors or {}).get(id(p))) for p in page]}
        expansions = set(filter(None, request.args.get("expansions", "").split(",")))
        if "author_id" in expansions and authors is not None and users is not None:
            author_ids = dict.fromkeys(authors[id(p)] for p in page)
            body["includes"] = {"users": [dict(users[uid]) for uid in author_ids]}
        body["meta"] = meta
        return _json(body)

    # -- helpers that need the lock held -----------------------------------------------------------------

    def _user_by_name(self, username: str) -> dict[str, Any] | None:
        wanted = username.lower()
        return next((u for u in self._users.values() if u["username"].lower() == wanted), None)

    def _newest_first(self, user_id: int) -> list[dict[str, Any]]:
        store = self._posts.get(user_id, {})
        return [store[key] for key in sorted(store, reverse=True)]


@pytest.fixture
def fake_x() -> Iterator[FakeXAPI]:
    """A started fake X expecting the bearer token ``test-token``; stopped after the test."""
    with FakeXAPI(bearer_token="test-token") as api:
        yield api


def _serve_post(post: dict[str, Any], fields: set[str], author_id: int | None) -> dict[str, Any]:
    served: dict[str, Any] = {"id": str(post["id"]), "edit_history_tweet_ids": [str(post["id"])]}
    if post.get("text") is not None:
        served["text"] = post["text"]
    extra = {
        "created_at": post.get("created_at") or _created_from_id(post["id"]),
        "lang": post.get("lang", "en"),
        "author_id": str(author_id) if author_id is not None else None,
    }
    for name in _OPTIONAL_FIELDS:
        if name in fields and extra[name] is not None:
            served[name] = extra[name]
    if "public_metrics" in fields:
        served["public_metrics"] = {
            "retweet_count": int(post.get("retweet_count", 0)),
            "reply_count": int(post.get("reply_count", 0)),
            "like_count": int(post.get("like_count", 0)),
            "quote_count": int(post.get("quote_count", 0)),
            "bookmark_count": 0,
            "impression_count": 0,
        }
    if "attachments" in fields and post.get("media"):  # X leaves the field out when a post has no media
        served["attachments"] = {"media_keys": [f"3_{post['id']}"]}
    return served


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def _matches(query: str, post: dict[str, Any], user: dict[str, Any]) -> bool:
    """A small subset of X's search language: plain terms and "phrases" (all must appear, any case),
    ``from:``, ``lang:`` and ``-is:retweet`` / ``-is:reply``. Other operators are ignored."""
    text = str(post.get("text") or "").lower()
    for phrase, word in _TERM.findall(query):
        term = phrase if phrase else word
        lowered = term.lower()
        if lowered == "-is:retweet" and post.get("is_retweet"):
            return False
        if lowered == "-is:reply" and post.get("is_reply"):
            return False
        if lowered.startswith("from:") and lowered[5:].lstrip("@") != user["username"].lower():
            return False
        if lowered.startswith("lang:") and lowered[5:] != str(post.get("lang", "en")).lower():
            return False
        if word and (word.startswith("-") or ":" in word or word in ("OR", "AND")):
            continue
        if lowered and lowered not in text:
            return False
    return True


def _encode_token(oldest_served_id: int) -> str:
    return f"fx{oldest_served_id:x}"


def _decode_token(token: str) -> int | None:
    if not token.startswith("fx"):
        return None
    try:
        return int(token[2:], 16)
    except ValueError:
        return None


def _int_param(name: str, default: int, low: int, high: int | None) -> tuple[int, Response | None]:
    raw = request.args.get(name)
    if raw is None:
        return default, None
    value = int(raw) if raw.isdigit() else None
    if value is None or value < low or (high is not None and value > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        return default, _invalid(name, raw, f"The `{name}` query parameter value [{raw}] is not {limits}")
    return value, None


def _not_found(parameter: str, value: str) -> dict[str, Any]:
    return {
        "value": value,
        "detail": f"Could not find user with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": "user",
        "parameter": parameter,
        "resource_id": value,
        "type": RESOURCE_NOT_FOUND,
    }


def _invalid(parameter: str, value: str, message: str) -> Response:
    body = {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": INVALID_REQUEST,
    }
    return _json(body, 400)


def _default_error_headers(status: int) -> dict[str, str]:
    if status == 429:
        return {
            "x-rate-limit-limit": "1500",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time()) + 900),
        }
    return {}


def _default_error_body(status: int) -> dict[str, Any]:
    if status == 403:
        return {
            "title": "Client Forbidden",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
            "tokens from a Twitter developer App that is attached to a Project.",
            "reason": "client-not-enrolled",
            "required_enrollment": "Appropriate Level of API Access",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
        }
    titles = {
        401: "Unauthorized",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    title = titles.get(status, "Error")
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _raw(body, status, headers or {})


def _raw(body: Any, status: int, headers: dict[str, str]) -> Response:
    if isinstance(body, str | bytes):
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
    else:
        response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    response.headers.setdefault("x-rate-limit-limit", "1500")
    response.headers.setdefault("x-rate-limit-remaining", "1499")
    for key, value in headers.items():
        response.headers[key] = value
    return response


def _not_authorized(user_id: str) -> dict[str, Any]:
    return {
        "resource_id": user_id,
        "resource_type": "user",
        "parameter": "id",
        "title": "Authorization Error",
        "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
        "detail": f"Sorry, you are not authorized to see the user with id: [{user_id}].",
    }
