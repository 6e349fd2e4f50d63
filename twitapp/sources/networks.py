"""Which network serves an account's posts, and the client that reads them there.

X needs the operator's bearer token (``X_BEARER_TOKEN``); Bluesky's public AppView and Mastodon's
instances serve public posts to anyone, so their clients need no setting at all. Every client answers
``lookup_user``, ``fetch_timeline`` and ``search_recent`` with the records of ``records`` and raises the
errors of ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from twitapp.sources import bluesky, mastodon, x
from twitapp.sources.handles import NETWORK_NAMES

NO_X_TOKEN = (
    "No X API token is set, so accounts cannot be fetched from X (Bluesky and Mastodon accounts need none). "
    "Set X_BEARER_TOKEN to fetch accounts from X (see the README)."
)


def online(platform: str) -> bool:
    """Whether accounts of this network can be fetched here (X only with a token)."""
    return x.online() if platform == "x" else platform in NETWORK_NAMES


def client_for(platform: str, config: Mapping[str, Any] | None = None):
    """The network's client as the app's config describes it; None for X without a token."""
    config = current_app.config if config is None else config
    if platform == "bluesky":
        return bluesky.client_from_config(config)
    if platform == "mastodon":
        return mastodon.client_from_config(config)
    if platform == "x":
        return x.client_from_config(config)
    raise ValueError(f"unknown network {platform!r}")
