"""Finding the Mastodon server of a handle whose domain is not the server's own, by WebFinger (RFC 7033).

A server may hand out handles under another domain than its own (Mastodon's ``LOCAL_DOMAIN`` and
``WEB_DOMAIN``): ``@ana@example.com`` served from ``social.example.com``. The handle's domain then answers
the API with its web site, but names the server at ``/.well-known/webfinger``, in the ``href`` of its
``self`` link to the ActivityPub actor. One such question is asked, never a chain of them.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from twitapp.sources.handles import DOMAIN
from twitapp.sources.transport import is_loopback

MAX_BYTES = 64 * 1024  # a WebFinger answer is a few hundred bytes; more is not one
MAX_REDIRECTS = 3  # a domain may send the question on to its server's host
ACTOR_TYPES = ("application/activity+json", 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"')


class WebFingerError(Exception):
    """The domain is no Mastodon API and names no Mastodon server by WebFinger; the text says so to a person."""


class _Refused(Exception):
    """Why the WebFinger answer names no server, as the end of a sentence about the domain."""


def session_for(base_url: str, retry: Retry) -> requests.Session:
    """A session for requests to ``base_url``, asked again after passing failures as ``retry`` says."""
    session = requests.Session()
    # Proxies from the environment were chosen for the internet; a loopback server is local.
    session.trust_env = not is_loopback(base_url)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def is_web_page(response: requests.Response | None) -> bool:
    """Whether an answer is a web page (HTML), not the JSON an API sends."""
    kind = response.headers.get("Content-Type", "").lower() if response is not None else "json"
    return "html" in kind or ("json" not in kind and response is not None and response.content.lstrip()[:1] == b"<")


def not_the_api(response: requests.Response | None) -> str | None:
    """How the answer shows its domain is no Mastodon API (worth asking WebFinger), or None if it could be:
    a web page short of a server error, or a 404 without the API's ``{"error": ...}``."""
    if response is None:
        return None
    if is_web_page(response) and response.status_code < 500:
        return "answered with a web page"
    if response.status_code == 404 and not _api_error_body(response):
        return "answered 404 Not Found without the API's JSON"
    return None


def webfinger_server(user: str, domain: str, what: str, url_template: str, timeout: float, retry: Retry) -> str:
    """The host of the server that holds ``user@domain``, as the domain's WebFinger names it, asked at
    ``url_template`` for the domain as the API is; ``what`` (from ``not_the_api``) goes in the error."""
    try:
        return _ask(user, domain, url_template, timeout, retry)
    except _Refused as refused:
        raise WebFingerError(
            f"{domain} {what}, not the Mastodon API: is it a Mastodon server? Nor does it point to one by WebFinger: "
            f"{refused}. Check the instance's name (while looking up @{user}@{domain})."
        ) from refused


def _ask(user: str, domain: str, url_template: str, timeout: float, retry: Retry) -> str:
    base_url = url_template.format(instance=domain)
    with session_for(base_url, retry) as session:
        session.max_redirects = MAX_REDIRECTS
        try:
            with session.get(
                f"{base_url}/.well-known/webfinger",
                params={"resource": f"acct:{user}@{domain}"},
                headers={"Accept": "application/jrd+json, application/json"},
                timeout=timeout,
                stream=True,
            ) as response:
                body = response.raw.read(MAX_BYTES + 1, decode_content=True)
                status = response.status_code
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Refused(f"its WebFinger could not be reached, or did not answer within {timeout:g} seconds") from exc
    if status != 200:
        raise _Refused(f"its WebFinger answered {status}, not the account's address")
    if len(body) > MAX_BYTES:
        raise _Refused(f"its WebFinger answer is over {MAX_BYTES // 1024} KiB, too long to be one")
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise _Refused("its WebFinger answer is not JSON") from exc
    links = answer.get("links") if isinstance(answer, dict) else None
    actor = next(
        (
            link.get("href")
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict) and link.get("rel") == "self" and link.get("type") in ACTOR_TYPES
        ),
        None,
    )
    if not isinstance(actor, str):
        raise _Refused(f"its WebFinger names no ActivityPub account for @{user}")
    return _server_of(actor, domain)


def _server_of(actor: str, domain: str) -> str:
    """The host of an actor's address: a plain domain (no port, no user, no IP address) reached over http(s)."""
    shown = repr(actor[:80])
    try:
        parts = urlsplit(actor)
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = None, ""
    if parts is None or parts.scheme.lower() not in ("http", "https"):
        raise _Refused(f"its WebFinger points to {shown}, which is not an http(s) address")
    if not DOMAIN.fullmatch(host) or parts.netloc.lower() != host:
        raise _Refused(f"its WebFinger points to {shown}, whose host is not a server's domain")
    if host == domain:
        raise _Refused("its WebFinger points back to the domain itself")
    return host


def _api_error_body(response: requests.Response) -> bool:
    """Whether the answer is the API's own error, a JSON object with ``error``."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body
