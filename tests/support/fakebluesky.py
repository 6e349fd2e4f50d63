"""A fake Bluesky (an AppView and an account service in one), served on loopback, for the atproto SDK's real code.

Point a ``BlueskyClient``'s ``appview_url`` and ``service_url`` at ``FakeBluesky.url`` and the SDK talks to
this server under ``/xrpc/...``. It answers the few methods the app calls in the shapes of Bluesky's
lexicons (``app.bsky.actor.getProfile``, ``app.bsky.feed.getAuthorFeed``, ``app.bsky.feed.searchPosts``,
``com.atproto.server.createSession``), with Bluesky's XRPC errors (``{"error": "InvalidRequest", "message":
"Profile not found"}``). ``fail_next`` and ``serve_next`` inject the failures that are hard to get from the
real service on demand; ``delay`` makes every answer slow.

Post dicts given to ``add_posts`` look like::

    {"rkey": "3kabc", "text": "hello", "created_at": "2026-01-02T03:04:05.000Z" (or a datetime),
     "indexed_at": None, "likes": 0, "reposts": 0, "replies": 0, "quotes": 0, "langs": ["en"],
     "facets": [...], "embed": None}

``embed`` is "images", "video", "external" (a link card), "record" (a quoted post), "recordWithMedia" or
None. ``indexed_at`` defaults to ``created_at``. ``"reply": True`` makes the post a reply (left out by the
``posts_no_replies`` filter); ``"reposted": True`` (or ``"repost_of": <DID>``) makes it a repost: the feed
shows another account's post with a ``reasonRepost``. A post without ``"text"`` or ``"created_at"`` is
served without it, to imitate a corrupt record. ``link_facet`` builds a link facet with the right UTF-8
byte offsets.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, Response, request

from tests.support.loopback import LoopbackServer

OTHER_DID = "did:plc:otherauthorzzzzzzzzzzzzz"
OTHER_HANDLE = "someone-else.bsky.social"
FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads")
_MEDIA = ("images", "video", "recordWithMedia")
_EPOCH = "2023-04-01T00:00:00.000Z"


def link_facet(text: str, shown: str, uri: str) -> dict[str, Any]:
    """A link facet over the first ``shown`` in ``text``, indexed in UTF-8 bytes as Bluesky's are."""
    start = len(text[: text.index(shown)].encode("utf-8"))
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": start + len(shown.encode("utf-8"))},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
    }


def iso(moment: datetime | str) -> str:
    """Bluesky's form of a time: UTC, milliseconds, "Z"."""
    if isinstance(moment, str):
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeBluesky(LoopbackServer):
    """A threaded loopback server imitating the parts of Bluesky the app uses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []  # (method NSID, query parameters)
        self.request_headers: list[dict[str, str]] = []
        self.delay = 0.0  # seconds each answer takes, to imitate a slow Bluesky
        self._accounts: dict[str, dict[str, Any]] = {}
        self._by_handle: dict[str, str] = {}
        self._items: dict[str, dict[str, dict[str, Any]]] = {}  # DID -> rkey -> stored feed item
        self._feeds: dict[tuple[str, str], tuple[list[tuple[str, str]], list[dict[str, Any]]]] = {}
        self._searchable: list[dict[str, Any]] | None = None
        self._passwords: dict[str, str] = {}
        self._tokens: dict[str, str] = {}  # access token -> DID
        self._queued: list[tuple[int, Any, dict[str, str | None]]] = []
        self._lock = threading.Lock()
        self._app = self._build_app()
        self.name = "fake-bluesky"

    # -- test data -------------------------------------------------------------------------------------

    def add_account(
        self,
        did: str,
        handle: str,
        *,
        display_name: str | None = None,
        followers: int | None = 0,
        status: str | None = None,
        app_password: str | None = None,
    ) -> None:
        """An account; ``status`` "takendown" or "deactivated" hides it as Bluesky does."""
        profile: dict[str, Any] = {"did": did, "handle": handle, "labels": [], "createdAt": _EPOCH}
        if display_name is not None:
            profile["displayName"] = display_name
        with self._lock:
            self._accounts[did] = {"profile": profile, "followers": followers, "status": status}
            if handle != "handle.invalid":
                self._by_handle[handle.lower()] = did
            self._items.setdefault(did, {})
            if app_password is not None:
                self._passwords[did] = app_password

    def add_posts(self, did: str, posts: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            if did not in self._accounts:
                raise KeyError(f"no fake account {did}; call add_account first")
            store = self._items[did]
            for post in posts:
                store[str(post["rkey"])] = self._feed_item(did, post)
            self._feeds = {key: feed for key, feed in self._feeds.items() if key[0] != did}
            self._searchable = None

    def item(self, did: str, rkey: str) -> dict[str, Any]:
        """The feed item served for a stored post, to build hand-made pages for ``serve_next``."""
        with self._lock:
            return json.loads(json.dumps(self._items[did][rkey]["served"]))

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str | None] | None = None) -> None:
        """Answer the next ``times`` requests (any method) with Bluesky's XRPC error for ``status``."""
        merged = _default_error_headers(status)
        merged.update(headers or {})
        self.serve_next(status, _default_error_body(status), times=times, headers=merged)

    def serve_next(
        self, status: int, body: Any, *, times: int = 1, headers: dict[str, str | None] | None = None
    ) -> None:
        """Answer the next ``times`` requests verbatim: ``body`` is JSON-encoded unless it is a str/bytes.

        A header given as None is left out (every answer otherwise carries Bluesky's ratelimit-* headers).
        """
        with self._lock:
            self._queued.extend((status, body, dict(headers or {})) for _ in range(times))

    def requests_to(self, nsid: str) -> list[dict[str, str]]:
        """The query parameters of every request made to one method, in order."""
        return [params for name, params in self.requests if name == nsid]

    # -- HTTP ------------------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.before_request(self._gatekeeper)
        app.add_url_rule("/xrpc/app.bsky.actor.getProfile", view_func=self._get_profile)
        app.add_url_rule("/xrpc/app.bsky.feed.getAuthorFeed", view_func=self._get_author_feed)
        app.add_url_rule("/xrpc/app.bsky.feed.searchPosts", view_func=self._search_posts)
        app.add_url_rule("/xrpc/com.atproto.server.createSession", view_func=self._create_session, methods=["POST"])
        app.add_url_rule("/xrpc/<nsid>", view_func=self._not_implemented, methods=["GET", "POST"])
        app.register_error_handler(404, lambda _e: Response("<html>404 Not Found</html>", 404))
        return app

    def _gatekeeper(self) -> Response | None:
        params = request.args.to_dict()
        if request.is_json and isinstance(request.get_json(silent=True), dict):
            params = {"identifier": str(request.get_json().get("identifier"))}  # never the password
        with self._lock:
            self.requests.append((request.path.removeprefix("/xrpc/"), params))
            self.request_headers.append(dict(request.headers))
            queued = self._queued.pop(0) if self._queued else None
        if self.delay:
            time.sleep(self.delay)
        if queued is not None:
            status, body, headers = queued
            return _raw(body, status, headers)
        return None

    def _get_profile(self) -> Response:
        actor = request.args.get("actor")
        if not actor:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "actor"')
        with self._lock:
            account, problem = self._account(actor)
            if problem is not None:
                return problem
            profile = dict(account["profile"])
            if account["followers"] is not None:
                profile["followersCount"] = account["followers"]
            profile.update(followsCount=0, postsCount=len(self._items[profile["did"]]), indexedAt=_EPOCH)
        return _json(profile)

    def _get_author_feed(self) -> Response:
        actor = request.args.get("actor")
        if not actor:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "actor"')
        limit, problem = _limit(50)
        if problem is not None:
            return problem
        kind = request.args.get("filter", "posts_with_replies")
        with self._lock:
            account, problem = self._account(actor)
            if problem is not None:
                return problem
            keys, items = self._feed(account["profile"]["did"], kind if kind in FILTERS else FILTERS[0])
        end = len(keys)
        cursor = request.args.get("cursor")
        if cursor:
            sort_at, _, cid = cursor.partition("::")
            if not cid:
                return _error(400, "InvalidRequest", "Malformed cursor")
            end = bisect.bisect_left(keys, (sort_at, cid))
        start = max(0, end - limit)
        page = items[start:end][::-1]
        body: dict[str, Any] = {"feed": page}
        if start > 0:
            body["cursor"] = "::".join(keys[start])
        return _json(body)

    def _search_posts(self) -> Response:
        if self._signed_in() is None:
            return _error(401, "AuthMissing", "Authentication Required")
        query = request.args.get("q")
        if not query:
            return _error(400, "InvalidRequest", 'Error: Params must have the property "q"')
        limit, problem = _limit(25)
        if problem is not None:
            return problem
        offset = request.args.get("cursor", "0")
        if not offset.isdigit():
            return _error(400, "InvalidRequest", "Malformed cursor")
        with self._lock:
            matches = [item["post"] for item in self._search_index() if _matches(query, item)]
        start = int(offset)
        body: dict[str, Any] = {"posts": matches[start : start + limit], "hitsTotal": len(matches)}
        if start + limit < len(matches):
            body["cursor"] = str(start + limit)
        return _json(body)

    def _create_session(self) -> Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not data.get("identifier") or not data.get("password"):
            return _error(400, "InvalidRequest", 'Error: Input must have the property "identifier"')
        with self._lock:
            identifier = str(data["identifier"])
            did = identifier if identifier in self._accounts else self._by_handle.get(identifier.lower())
            account = self._accounts.get(did or "")
            if account is None or self._passwords.get(did or "") != data["password"]:
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            if account["status"] == "takendown":
                return _error(401, "AccountTakedown", "Account has been taken down")
            access, refresh = _token(did, "com.atproto.appPass"), _token(did, "com.atproto.refresh")
            self._tokens[access] = did
            handle = account["profile"]["handle"]
        return _json({"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did, "active": True})

    def _not_implemented(self, nsid: str) -> Response:
        return _error(501, "MethodNotImplemented", "Method Not Implemented")

    # -- helpers that need the lock held -----------------------------------------------------------------

    def _signed_in(self) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            return self._tokens.get(token) if scheme == "Bearer" else None

    def _account(self, actor: str) -> tuple[dict[str, Any], Response | None]:
        did = actor if actor.startswith("did:") else self._by_handle.get(actor.lower())
        account = self._accounts.get(did or "")
        if account is None:
            return {}, _error(400, "InvalidRequest", "Profile not found")
        if account["status"] == "takendown":
            return {}, _error(400, "AccountTakedown", "Account has been suspended")
        if account["status"] == "deactivated":
            return {}, _error(400, "AccountDeactivated", "Account is deactivated")
        return account, None

    def _feed(self, did: str, kind: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
        """The account's feed for one filter, oldest first, with its sort keys; built once per change."""
        if (did, kind) not in self._feeds:
            stored = sorted(self._items[did].values(), key=lambda item: item["key"])
            kept = [item for item in stored if _passes(item, kind)]
            self._feeds[(did, kind)] = ([item["key"] for item in kept], [item["served"] for item in kept])
        return self._feeds[(did, kind)]

    def _search_index(self) -> list[dict[str, Any]]:
        """Every account's own posts, newest first, as searchPosts with sort=latest orders them."""
        if self._searchable is None:
            own = [item for items in self._items.values() for item in items.values() if not item["repost"]]
            self._searchable = sorted(own, key=lambda item: item["key"], reverse=True)
        return self._searchable

    def _feed_item(self, did: str, post: dict[str, Any]) -> dict[str, Any]:
        """A stored post as the feed serves it (a ``feedViewPost``), prepared once when it is added."""
        rkey = str(post["rkey"])
        author_did = post.get("repost_of") or (OTHER_DID if post.get("reposted") else did)
        author = self._accounts.get(author_did, {}).get("profile") or {"did": author_did, "handle": OTHER_HANDLE}
        created = iso(post["created_at"]) if post.get("created_at") is not None else None
        indexed = iso(post.get("indexed_at") or post.get("created_at") or _EPOCH)
        uri = f"at://{author_did}/app.bsky.feed.post/{rkey}"
        cid = _cid(uri)
        record: dict[str, Any] = {"$type": "app.bsky.feed.post"}
        for key, value in (("text", post.get("text")), ("createdAt", created), ("langs", post.get("langs", ["en"]))):
            if value is not None:
                record[key] = value
        if post.get("facets"):
            record["facets"] = post["facets"]
        view: dict[str, Any] = {"$type": "app.bsky.feed.defs#postView", "uri": uri, "cid": cid, "author": author}
        if post.get("reply"):
            parent = {"uri": f"at://{OTHER_DID}/app.bsky.feed.post/parent{rkey}", "cid": _cid(f"parent{rkey}")}
            record["reply"] = {"root": parent, "parent": parent}
        if post.get("embed"):
            record["embed"], view["embed"] = _embed(str(post["embed"]), rkey)
        view.update(record=record, replyCount=post.get("replies", 0), repostCount=post.get("reposts", 0))
        view.update(likeCount=post.get("likes", 0), quoteCount=post.get("quotes", 0), indexedAt=indexed)
        view.update(viewer={"threadMuted": False, "embeddingDisabled": False}, labels=[])
        served: dict[str, Any] = {"post": view}
        sort_at = min(created or indexed, indexed)
        if author_did != did:
            sort_at = indexed
            owner = self._accounts[did]["profile"]
            served["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": owner, "indexedAt": indexed}
        if post.get("reply"):
            served["reply"] = {"root": _not_found(parent["uri"]), "parent": _not_found(parent["uri"])}
        return {
            "key": (sort_at, cid),
            "served": served,
            "post": view,
            "reply": bool(post.get("reply")),
            "media": post.get("embed") in _MEDIA,
            "repost": author_did != did,
            "text": str(post.get("text") or "").lower(),
            "handle": author["handle"].lower(),
        }


@pytest.fixture
def fake_bluesky() -> Iterator[FakeBluesky]:
    """A started, empty fake Bluesky; stopped after the test."""
    with FakeBluesky() as fake:
        yield fake


def _passes(item: dict[str, Any], kind: str) -> bool:
    if kind in ("posts_no_replies", "posts_and_author_threads"):  # the fake's replies are all to others
        return not item["reply"]
    if kind == "posts_with_media":
        return item["media"] and not item["repost"]
    return True


def _matches(query: str, item: dict[str, Any]) -> bool:
    """All of the query's words appear (any case); ``from:handle`` keeps one author's posts."""
    for word in query.lower().split():
        if word.startswith("from:"):
            if word[5:].lstrip("@") != item["handle"]:
                return False
        elif word not in item["text"]:
            return False
    return True


def _embed(kind: str, rkey: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record's embed and the view of it the AppView serves, for one kind of attachment."""
    blob = {"$type": "blob", "ref": {"$link": _cid(f"blob{rkey}")}, "mimeType": "image/jpeg", "size": 48213}
    cdn = f"https://cdn.bsky.app/img/feed_fullsize/plain/{rkey}@jpeg"
    images = (
        {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]},
        {"$type": "app.bsky.embed.images#view", "images": [{"thumb": cdn, "fullsize": cdn, "alt": ""}]},
    )
    quoted = {"uri": f"at://{OTHER_DID}/app.bsky.feed.post/quoted", "cid": _cid("quoted")}
    quoted_view = {"$type": "app.bsky.embed.record#viewNotFound", "uri": quoted["uri"], "notFound": True}
    if kind == "images":
        return images
    if kind == "video":
        video = dict(blob, mimeType="video/mp4")
        return (
            {"$type": "app.bsky.embed.video", "video": video},
            {"$type": "app.bsky.embed.video#view", "cid": video["ref"]["$link"], "playlist": cdn + ".m3u8"},
        )
    if kind == "external":
        card = {"uri": "https://example.com/", "title": "Example", "description": ""}
        return (
            {"$type": "app.bsky.embed.external", "external": card},
            {"$type": "app.bsky.embed.external#view", "external": card},
        )
    if kind == "record":
        return {"$type": "app.bsky.embed.record", "record": quoted}, {
            "$type": "app.bsky.embed.record#view",
            "record": quoted_view,
        }
    if kind == "recordWithMedia":
        return (
            {"$type": "app.bsky.embed.recordWithMedia", "record": {"record": quoted}, "media": images[0]},
            {
                "$type": "app.bsky.embed.recordWithMedia#view",
                "record": {"record": quoted_view},
                "media": images[1],
            },
        )
    raise ValueError(f"unknown embed kind {kind!r}")


def _not_found(uri: str) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri, "notFound": True}


def _cid(seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower().rstrip("=")
    return f"bafyrei{digest[:52]}"


def _token(did: str, scope: str) -> str:
    """A JWT shaped like Bluesky's (the SDK reads its expiry); the signature is not a real one."""
    now = int(time.time())
    parts = [{"typ": "at+jwt", "alg": "ES256K"}, {"scope": scope, "sub": did, "iat": now, "exp": now + 7200}]
    encoded = [base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in parts]
    nonce = base64.urlsafe_b64encode(hashlib.sha256(f"{did}{scope}{time.time_ns()}".encode()).digest())
    return ".".join([*encoded, nonce.decode().rstrip("=")])


def _limit(default: int) -> tuple[int, Response | None]:
    raw = request.args.get("limit")
    if raw is None:
        return default, None
    if not raw.lstrip("-").isdigit():
        return default, _error(400, "InvalidRequest", "Error: limit must be an integer")
    value = int(raw)
    if value > 100:
        return default, _error(400, "InvalidRequest", "Error: limit can not be greater than 100")
    if value < 1:
        return default, _error(400, "InvalidRequest", "Error: limit can not be less than 1")
    return value, None


_ERROR_NAMES = {
    400: ("InvalidRequest", "Invalid Request"),
    401: ("AuthMissing", "Authentication Required"),
    403: ("Forbidden", "Forbidden"),
    429: ("RateLimitExceeded", "Rate Limit Exceeded"),
    500: ("InternalServerError", "Internal Server Error"),
    502: ("UpstreamFailure", "Upstream Failure"),
    503: ("NotEnoughResources", "Not Enough Resources"),
    504: ("UpstreamTimeout", "Upstream Timeout"),
}


def _default_error_body(status: int) -> dict[str, str]:
    name, message = _ERROR_NAMES.get(status, ("InternalServerError", "Internal Server Error"))
    return {"error": name, "message": message}


def _default_error_headers(status: int) -> dict[str, str | None]:
    if status == 429:
        return {"ratelimit-remaining": "0", "ratelimit-reset": str(int(time.time()) + 300)}
    return {}


def _error(status: int, name: str, message: str) -> Response:
    return _json({"error": name, "message": message}, status)


def _json(body: Any, status: int = 200) -> Response:
    return _raw(body, status, {})


def _raw(body: Any, status: int, headers: dict[str, str | None]) -> Response:
    if isinstance(body, str | bytes):
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
    else:
        response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    response.headers["ratelimit-limit"] = "3000"
    response.headers["ratelimit-remaining"] = "2999"
    response.headers["ratelimit-reset"] = str(int(time.time()) + 300)
    response.headers["ratelimit-policy"] = "3000;w=300"
    for key, value in headers.items():
        if value is None:
            response.headers.pop(key, None)
        else:
            response.headers[key] = value
    return response
