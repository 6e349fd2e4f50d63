"""The failures every network's source reports, whichever network it is.

Each source (``x``, ``bluesky``, ``mastodon``) raises its own subclasses, whose text names the network
and tells a person what to do next; the jobs and pages catch these bases, so a rate limit is waited out
and an unknown account is reported the same way for every network.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twitapp.errors import UserError


class SourceError(UserError):
    """Any failure to get what was asked of a network; the message is written for the person who asked."""


class AccountNotFound(SourceError):
    """The network knows no such account, or no longer shows it (suspended, deactivated, taken down)."""


class AccountProtected(SourceError):
    """The account's posts are not public: the network shows them only to followers it approved."""


class SourceAuthError(SourceError):
    """The network refused the credentials, or refuses to answer without them; retrying will not help."""


class RateLimited(SourceError):
    """The network wants us to slow down; ``reset_at`` is when the window reopens, when it said so."""

    def __init__(self, message: str, reset_at: datetime | None = None) -> None:
        super().__init__(message)
        self.reset_at = reset_at


def when_to_retry(reset_at: datetime) -> str:
    """When a rate limit's window reopens, as a person reads it: "after 14:05 UTC (in about 3 minutes)"."""
    wait_s = max(0, round((reset_at - datetime.now(UTC)).total_seconds()))
    minutes = max(1, -(-wait_s // 60))
    return f"after {reset_at:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''})"


class SourceUnavailable(SourceError):
    """The network could not be reached or answered with something unusable; worth retrying later."""
