"""A fake Mastodon, serving several instances at once on loopback, for tests that drive Mastodon.py's real code.

Each instance answers under its own path prefix, ``/{instance}/api/v1/...``, so a ``MastodonClient`` whose
``url_template`` is ``FakeMastodon.url_template`` talks to this server for every instance. The endpoints the
app reads answer in Mastodon's shapes and status codes: 404 ``{"error": "Record not found"}``, a suspended
account's ``suspended: true``, ``moved`` on a moved account, ``Link`` headers for paging, 401 for an
instance that refuses anonymous reads. ``fail_next`` and ``serve_next`` inject the failures (rate limits,
outages, web pages, garbage) that the real servers give only now and then. ``add_webfinger`` makes a domain
with no API of its own (a web site, answering the API with 404 HTML) name an instance as the server of a
handle under it at ``/{domain}/.well-known/webfinger``, as Mastodon's ``LOCAL_DOMAIN``/``WEB_DOMAIN`` split does.

Status dicts given to ``add_statuses`` look like::

    {"id": "110000000000000001", "content": "<p>hello</p>", "created_at": "2026-01-02T03:04:05.000Z",
     "favourites": 0, "reblogs": 0, "replies": 0, "language": "en", "spoiler": "", "media": False,
     "reply": False, "reblog": False, "tags": ["python"], "visibility": "public"}

Only ``id`` is needed: ``created_at`` is then derived from the id (Mastodon's ids encode it), ``reply``
marks a reply to another account and ``reblog`` a boost, both left out by ``exclude_replies`` /
``exclude_reblogs``. A status without ``content`` is served without it, to imitate a corrupt payload.
Statuses are kept sorted, so paging through thousands costs a bisection per page.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask, Response, request

from tests.support.loopback import LoopbackServer

PAGE_MAX = 40
_DEFAULT_ERRORS = {
    401: "This API requires an authenticated user",
    403: "This action is not allowed",
    404: "Record not found",
    410: "Record not found",
    422: "This method requires an authenticated user",
    429: "Too many requests",
    500: "We're sorry, but something went wrong on our end",
    502: "Bad Gateway",
    503: "There was a temporary problem serving your request, please try again",
}


@dataclass
class _Instance:
    """One instance's accounts and statuses; ``token`` set means it refuses anonymous reads."""

    token: str | None = None
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by local id
    by_name: dict[str, str] = field(default_factory=dict)  # lowercased username -> local id
    domains: set[str] = field(default_factory=set)  # other domains whose handles are its own (LOCAL_DOMAIN)
    statuses: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # account id -> id -> status
    sorted_cache: dict[tuple[str, bool, bool], tuple[list[int], list[dict[str, Any]]]] = field(default_factory=dict)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _created_from_id(status_id: int) -> str:
    return _iso(datetime.fromtimestamp((status_id >> 16) / 1000, tz=UTC))


class FakeMastodon(LoopbackServer):
    """A threaded loopback server imitating, for many instances, the parts of Mastodon's API the app uses."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, query) of every request, in order
        self.request_headers: list[dict[str, str]] = []
        self.delay = 0.0  # seconds each answer takes, to imitate a slow instance
        self._instances: dict[str, _Instance] = {}
        self._tags: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}  # tag -> (-id, instance, status)
        self._webfinger: dict[str, dict[str, str]] = {}  # domain -> lowercased user -> actor href
        self._queued: list[tuple[str | None, int, Any, dict[str, str], str | None]] = []
        self._lock = threading.Lock()
        self._app = self._build_app()
        self.name = "fake-mastodon"

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def url_template(self) -> str:
        """What MASTODON_INSTANCE_URL is set to: every instance under its own first path segment."""
        return self.url + "/{instance}"

    # -- test data -------------------------------------------------------------------------------------

    def add_account(
        self,
        instance: str,
        account_id: str | int,
        username: str,
        display_name: str = "",
        followers: int = 0,
        *,
        suspended: bool = False,
        limited: bool = False,
        moved_to: str | None = None,
        require_token: str | None = None,
    ) -> None:
        """An account on ``instance``; ``moved_to`` ("user@other.instance") marks it moved there, and
        ``require_token`` makes the whole instance refuse to answer without that bearer token."""
        with self._lock:
            place = self._instances.setdefault(instance, _Instance())
            if require_token is not None:
                place.token = require_token
            place.accounts[str(account_id)] = {
                "id": str(account_id),
                "username": username,
                "display_name": display_name,
                "followers": followers,
                "suspended": suspended,
                "limited": limited,
                "moved_to": moved_to,
            }
            place.by_name[username.lower()] = str(account_id)
            place.statuses.setdefault(str(account_id), {})

    def add_statuses(self, instance: str, account_id: str | int, statuses: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            place = self._instances[instance]
            store = place.statuses[str(account_id)]
            for status in statuses:
                stored = dict(status, id=int(status["id"]), author=str(account_id))
                store[stored["id"]] = stored
                if not stored.get("reblog"):
                    for tag in stored.get("tags") or ():
                        self._tags.setdefault(tag.lower(), []).append((-stored["id"], instance, stored))
            place.sorted_cache.clear()
            for entries in self._tags.values():
                entries.sort(key=lambda entry: entry[0])

    def add_webfinger(self, domain: str, user: str, server: str, *, href: str | None = None) -> None:
        """Make ``domain``'s WebFinger name ``server`` for ``user@domain`` (by the actor ``href``, unless
        given, ``https://{server}/users/{user}``), and ``server`` take ``user@domain`` as one of its own."""
        with self._lock:
            self._webfinger.setdefault(domain, {})[user.lower()] = href or f"https://{server}/users/{user}"
            self._instances.setdefault(server, _Instance()).domains.add(domain)

    def fail_next(
        self, status: int, times: int = 1, headers: dict[str, str] | None = None, instance: str | None = None
    ) -> None:
        """Answer the next ``times`` API requests (to ``instance``, or any) with Mastodon's error for ``status``.

        Requests for ``/api/v2/instance``, which Mastodon.py makes on its own and survives failing, are
        left alone.
        """
        merged = _default_error_headers(status)
        merged.update(headers or {})
        self.serve_next(
            status, {"error": _DEFAULT_ERRORS.get(status, "Error")}, times=times, headers=merged, instance=instance
        )

    def serve_next(
        self,
        status: int,
        body: Any,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        instance: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Answer the next ``times`` API requests verbatim: ``body`` is JSON-encoded unless it is a str or
        bytes, which are served as a web page unless ``content_type`` says otherwise."""
        with self._lock:
            self._queued.extend((instance, status, body, dict(headers or {}), content_type) for _ in range(times))

    # -- HTTP ------------------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.url_map.strict_slashes = False
        app.before_request(self._gatekeeper)
        app.add_url_rule("/<instance>/api/v1/accounts/lookup", view_func=self._lookup)
        app.add_url_rule("/<instance>/api/v1/accounts/<account_id>/statuses", view_func=self._account_statuses)
        app.add_url_rule("/<instance>/api/v1/timelines/tag/<hashtag>", view_func=self._tag_timeline)
        app.add_url_rule("/<instance>/api/v2/instance/", view_func=self._instance_info)
        app.add_url_rule("/<instance>/.well-known/webfinger", view_func=self._webfinger_answer)
        app.register_error_handler(404, lambda _e: _json({"error": "Record not found"}, 404))
        return app

    def _gatekeeper(self) -> Response | None:
        if self.delay:
            time.sleep(self.delay)
        instance = (request.view_args or {}).get("instance", "")
        with self._lock:
            self.requests.append((request.path, request.args.to_dict()))
            self.request_headers.append(dict(request.headers))
            if request.path.endswith("/.well-known/webfinger"):
                return None  # not the API: neither the queued answers nor the instance's are for it
            place = self._instances.get(instance)
            queued = None
            if not request.path.rstrip("/").endswith("/api/v2/instance"):
                index = next((i for i, q in enumerate(self._queued) if q[0] in (None, instance)), None)
                queued = self._queued.pop(index) if index is not None else None
        if queued is not None:
            _, status, body, headers, content_type = queued
            return _raw(body, status, headers, content_type)
        if place is None:  # no such instance here: whatever web server answers for the name
            return _raw("<html><body><h1>Welcome to nginx!</h1></body></html>", 404, {})
        sent = request.headers.get("Authorization")
        if place.token is not None and not request.path.rstrip("/").endswith("/api/v2/instance"):
            if sent is None:
                return _json({"error": "This API requires an authenticated user"}, 401)
            if sent != f"Bearer {place.token}":
                return _json({"error": "The access token is invalid"}, 401)
        return None

    def _lookup(self, instance: str) -> Response:
        acct = request.args.get("acct", "").removeprefix("@")
        user, _, domain = acct.partition("@")
        with self._lock:
            place = self._instances[instance]
            local_id = place.by_name.get(user.lower()) if domain in ("", instance, *place.domains) else None
            if local_id is None:
                return _json({"error": "Record not found"}, 404)
            return _json(self._account_json(instance, place.accounts[local_id]))

    def _webfinger_answer(self, instance: str) -> Response:
        """A JRD (RFC 7033) for ``acct:user@instance``, as Mastodon serves it; a plain web server's 404 for a
        domain that has no WebFinger here."""
        user, _, domain = request.args.get("resource", "").removeprefix("acct:").partition("@")
        with self._lock:
            known = self._webfinger.get(instance)
            href = (known or {}).get(user.lower()) if domain.lower() == instance else None
        if known is None:
            return _raw("<html><body><h1>404 Not Found</h1></body></html>", 404, {})
        if href is None:
            return _raw("", 404, {}, "text/plain")
        links = [
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": f"https://{instance}/@{user}",
            },
            {"rel": "self", "type": "application/activity+json", "href": href},
        ]
        subject = f"acct:{user}@{instance}"
        return Response(json.dumps({"subject": subject, "links": links}), content_type="application/jrd+json")

    def _account_statuses(self, instance: str, account_id: str) -> Response:
        limit = _limit()
        exclude_replies = request.args.get("exclude_replies") in ("1", "true")
        exclude_reblogs = request.args.get("exclude_reblogs") in ("1", "true")
        with self._lock:
            place = self._instances[instance]
            account = place.accounts.get(account_id)
            if account is None:
                return _json({"error": "Record not found"}, 404)
            if account["suspended"]:
                return _json({"error": "Record not found"}, 410)
            keys, statuses = self._sorted(place, account_id, exclude_replies, exclude_reblogs)
            page = _window(keys, statuses, limit)
            served = [self._status_json(instance, s) for s in page]
        return self._paged(served, limit)

    def _tag_timeline(self, instance: str, hashtag: str) -> Response:
        limit = _limit()
        with self._lock:
            entries = self._tags.get(hashtag.lower(), [])
            keys = [key for key, _, _ in entries]
            page = _window(keys, entries, limit)
            served = [self._status_json(home, s, viewer=instance) for _, home, s in page]
        return self._paged(served, limit)

    def _instance_info(self, instance: str) -> Response:
        access = "authenticated" if self._instances.get(instance, _Instance()).token else "public"
        feeds = {"local": access, "remote": access}
        return _json(
            {
                "domain": instance,
                "title": f"Fake {instance}",
                "version": "4.5.0",
                "configuration": {
                    "urls": {"streaming": f"wss://{instance}"},
                    "timelines_access": {"live_feeds": feeds, "hashtag_feeds": feeds, "trending_link_feeds": feeds},
                },
            }
        )

    def _paged(self, served: list[dict[str, Any]], limit: int) -> Response:
        """Mastodon's ``Link`` header: ``next`` after a full page, ``prev`` whenever there is a page."""
        links = []
        base = request.base_url
        kept = {k: v for k, v in request.args.items() if k not in ("max_id", "since_id", "min_id", "limit")}
        if served and len(served) == limit:
            links.append(f'<{base}?{urlencode({**kept, "limit": limit, "max_id": served[-1]["id"]})}>; rel="next"')
        if served:
            links.append(f'<{base}?{urlencode({**kept, "limit": limit, "min_id": served[0]["id"]})}>; rel="prev"')
        return _json(served, 200, {"Link": ", ".join(links)} if links else {})

    # -- helpers that need the lock held -----------------------------------------------------------------

    def _sorted(
        self, place: _Instance, account_id: str, no_replies: bool, no_reblogs: bool
    ) -> tuple[list[int], list[dict[str, Any]]]:
        key = (account_id, no_replies, no_reblogs)
        if key not in place.sorted_cache:
            store = place.statuses[account_id]
            kept = [
                store[i]
                for i in sorted(store, reverse=True)
                if not (no_replies and store[i].get("reply")) and not (no_reblogs and store[i].get("reblog"))
            ]
            place.sorted_cache[key] = ([-s["id"] for s in kept], kept)
        return place.sorted_cache[key]

    def _account_json(self, home: str, account: dict[str, Any], viewer: str | None = None) -> dict[str, Any]:
        viewer = viewer or home
        suspended = account["suspended"]
        served: dict[str, Any] = {
            "id": account["id"],
            "username": account["username"],
            "acct": account["username"] if viewer == home else f"{account['username']}@{home}",
            "display_name": "" if suspended else account["display_name"],
            "locked": False,
            "bot": False,
            "group": False,
            "created_at": "2022-11-06T00:00:00.000Z",
            "note": "" if suspended else "<p>A fake account.</p>",
            "url": f"https://{home}/@{account['username']}",
            "avatar": f"https://{home}/avatars/original/missing.png",
            "header": f"https://{home}/headers/original/missing.png",
            "followers_count": 0 if suspended else account["followers"],
            "following_count": 0,
            "statuses_count": 0 if suspended else len(self._instances[home].statuses.get(account["id"], {})),
            "last_status_at": None,
            "emojis": [],
            "fields": [],
        }
        if suspended:
            served["suspended"] = True
        if account["limited"]:
            served["limited"] = True
        if account["moved_to"]:
            served["moved"] = self._moved_json(home, account["moved_to"])
        return served

    def _moved_json(self, home: str, moved_to: str) -> dict[str, Any]:
        """The new account as the old instance knows it: its ``acct`` from there, and an id of the old
        instance's own (not the new instance's), as Mastodon keeps a local copy of every remote account."""
        user, _, domain = moved_to.partition("@")
        return {
            "id": str(900_000 + len(moved_to)),
            "username": user,
            "acct": user if domain in ("", home) else moved_to,
            "display_name": user,
            "url": f"https://{domain or home}/@{user}",
            "followers_count": 0,
            "emojis": [],
            "fields": [],
        }

    def _status_json(self, home: str, status: dict[str, Any], viewer: str | None = None) -> dict[str, Any]:
        account = self._account_json(home, self._instances[home].accounts[status["author"]], viewer)
        created = status.get("created_at") or _created_from_id(status["id"])
        spoiler = status.get("spoiler") or ""
        served: dict[str, Any] = {
            "id": str(status["id"]),
            "created_at": _iso(created) if isinstance(created, datetime) else created,
            "in_reply_to_id": str(status["id"] - 1) if status.get("reply") else None,
            "in_reply_to_account_id": "1" if status.get("reply") else None,
            "sensitive": bool(spoiler),
            "spoiler_text": spoiler,
            "visibility": status.get("visibility", "public"),
            "language": status.get("language", "en"),
            "uri": f"https://{home}/users/{account['username']}/statuses/{status['id']}",
            "url": f"https://{home}/@{account['username']}/{status['id']}",
            "replies_count": status.get("replies", 0),
            "reblogs_count": status.get("reblogs", 0),
            "favourites_count": status.get("favourites", 0),
            "edited_at": None,
            "content": status.get("content", ""),
            "reblog": None,
            "account": account,
            "media_attachments": [_media(status["id"])] if status.get("media") else [],
            "mentions": [],
            "tags": [{"name": t, "url": f"https://{home}/tags/{t}"} for t in status.get("tags") or ()],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        if "content" not in status:
            del served["content"]
        if status.get("reblog"):
            original = {k: v for k, v in served.items() if k != "reblog"}
            served.update(content="", reblog=original, spoiler_text="", media_attachments=[])
        return served


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    """A started fake Mastodon serving whatever instances a test adds; stopped after the test."""
    with FakeMastodon() as fake:
        yield fake


def _limit() -> int:
    raw = request.args.get("limit", "20")
    return max(1, min(PAGE_MAX, int(raw))) if raw.isdigit() else 20


def _window(keys: list[int], items: list[Any], limit: int) -> list[Any]:
    """The page of newest-first ``items`` (``keys`` their negated ids, ascending) that max_id, since_id
    and min_id select, as Mastodon pages: min_id gives the oldest ``limit`` newer than it."""
    start, end = 0, len(items)
    for name, bound in (("max_id", "max"), ("since_id", "since"), ("min_id", "min")):
        raw = request.args.get(name, "")
        if not raw.isdigit():
            continue
        if bound == "max":
            start = max(start, bisect.bisect_right(keys, -int(raw)))
        else:
            end = min(end, bisect.bisect_left(keys, -int(raw)))
    if request.args.get("min_id", "").isdigit():
        return items[max(start, end - limit) : end]
    return items[start:end][:limit]


def _media(status_id: int) -> dict[str, Any]:
    return {
        "id": str(status_id + 7),
        "type": "image",
        "url": f"https://files.example/{status_id}.png",
        "preview_url": f"https://files.example/{status_id}-small.png",
        "remote_url": None,
        "description": "A picture",
        "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
    }


def _default_error_headers(status: int) -> dict[str, str]:
    if status == 429:
        reset = datetime.now(UTC) + timedelta(minutes=5)
        return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset.isoformat()}
    return {}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _raw(body, status, headers or {})


def _raw(body: Any, status: int, headers: dict[str, str], content_type: str | None = None) -> Response:
    if isinstance(body, str | bytes):
        response = Response(body, status=status, content_type=content_type or "text/html; charset=utf-8")
    else:
        response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    if status != 429:  # a 429 carries the headers it was given (fail_next's), or none
        reset = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
        response.headers["X-RateLimit-Limit"] = "300"
        response.headers["X-RateLimit-Remaining"] = "299"
        response.headers["X-RateLimit-Reset"] = reset.isoformat().replace("+00:00", "Z")
    for key, value in headers.items():
        response.headers[key] = value
    return response
