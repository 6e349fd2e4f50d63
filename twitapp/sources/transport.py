"""What every network's HTTP client shares: which failures are retried, and how a loopback server (a
test's fake, a local mirror) is reached."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from urllib3.util.retry import Retry

PASSING = (500, 502, 503, 504)  # the answers worth asking again; the last one goes to the client library


def retries_of_passing_failures(retries: int, backoff: float) -> Retry:
    """Reads asked again, with exponential backoff, after failures that pass: a 5xx answer, a refused or
    reset connection, a timeout. Never a 4xx, and a Retry-After is not waited for here (it may say hours):
    a 429 goes to the job, which waits for the reset and says so."""
    return Retry(
        total=retries,
        backoff_factor=backoff,
        backoff_max=30,
        status_forcelist=PASSING,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def timed_out(exc: BaseException | None) -> bool:
    """A timeout, whether requests raised it directly or after the retries ran out (not a refused connection,
    which urllib3 files under its timeouts too)."""
    if isinstance(exc, requests.Timeout):
        return True
    cause = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else None
    reason = getattr(cause, "reason", None) if isinstance(cause, urllib3.exceptions.MaxRetryError) else None
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def is_loopback(url: str) -> bool:
    """Whether the address is this machine's own: environment proxies are for the internet, not for it."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
