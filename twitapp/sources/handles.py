"""Handles as people type them and as files give them: one set of rules for every way in, every network.

One field takes every network's handle, and its form says which network it is of:

- ``ana`` or ``@ana`` (1 to 15 letters, digits or underscores) is X;
- ``ana.bsky.social``, ``@ana.bsky.social`` or any domain (``@example.com``) is Bluesky, and so is a DID;
- ``@ana@mastodon.social`` (or ``ana@mastodon.social``) is Mastodon;

and a profile's address pasted from a browser (``https://bsky.app/profile/...``, ``https://instance/@ana``,
``https://x.com/ana``) is read as the handle it shows. ``parse`` does the reading.

A handle is stored in full, without its @ ("ana", "ana.bsky.social", "ana@mastodon.social"), as the
network gives it, and compared without regard to case; the forms never overlap, so a full handle names one
account whichever network it is on. Beyond that, a handle arriving from a file may not be a look-alike of
another stored account's ("harb0rbaker" beside "harborbaker", "rnia" beside "mia"): a visitor reading the
list could not tell them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from twitapp.errors import UserError

PLATFORMS = ("x", "bluesky", "mastodon")
NETWORK_NAMES = {"x": "X", "bluesky": "Bluesky", "mastodon": "Mastodon"}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"(?=.{{4,253}}$)(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
DOMAIN = re.compile(_DOMAIN)  # a host name: a Mastodon instance, a Bluesky handle
BLUESKY_HANDLE = DOMAIN
BLUESKY_DID = re.compile(r"did:(?:plc:[a-z2-7]{24}|web:[A-Za-z0-9.-]{4,180})")
MASTODON_USER = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,28}[A-Za-z0-9_])?")
MASTODON_HANDLE = re.compile(rf"{MASTODON_USER.pattern}@{_DOMAIN.replace('$', '')}")
# Handles as stored: X's (and a file's, for an imported account: up to 50 characters), Bluesky's, Mastodon's.
FILE_HANDLE = re.compile(r"[A-Za-z0-9_]{1,50}")
MAX_HANDLE_CHARS = 300
STORED_HANDLE = re.compile(rf"{FILE_HANDLE.pattern}|{BLUESKY_HANDLE.pattern}|{MASTODON_HANDLE.pattern}")
# What names an account in a page's address or a job: a stored handle, or a Bluesky DID (an account added
# by its DID is named by it until its handle is known).
ACCOUNT_NAME = re.compile(rf"{STORED_HANDLE.pattern}|{BLUESKY_DID.pattern}")
# A handle typed for an imported file's account, as X allows it.
TYPED_HANDLE = re.compile(rf"^{X_HANDLE.pattern}$")

THREE_FORMS = (
    "Type an X username (ana or @ana), a Bluesky handle (ana.bsky.social, or a domain such as @example.com) "
    "or a Mastodon address (@ana@mastodon.social)."
)

# Characters and pairs that read alike in the fonts pages use (a small, ASCII part of Unicode's
# confusables: handles are letters, digits and underscores only). Capitals are mapped before lowercasing:
# "I" reads like "l", where "i" does not.
_ALIKE = str.maketrans({"0": "o", "O": "o", "1": "l", "I": "l"})
_ALIKE_PAIRS = (("rn", "m"), ("vv", "w"))


class HandleError(UserError, ValueError):
    """A handle that cannot be stored as given; the message says why."""


def skeleton(handle: str) -> str:
    """What a handle looks like to a reader: look-alike characters folded together, case ignored."""
    folded = handle.translate(_ALIKE).lower()
    for pair, alike in _ALIKE_PAIRS:
        folded = folded.replace(pair, alike)
    return folded


def check_stored_form(handle: str) -> str:
    """A handle as the database keeps it (a file's 1 to 50 letters, digits or underscores, a Bluesky or a
    Mastodon handle), or a HandleError."""
    if not isinstance(handle, str) or len(handle) > MAX_HANDLE_CHARS or not STORED_HANDLE.fullmatch(handle):
        shown = handle[:40] + ("…" if len(handle) > 40 else "") if isinstance(handle, str) else repr(handle)
        raise HandleError(
            f"{shown!r} is not a username this app stores: use 1 to 50 letters, digits or underscores "
            "(or a Bluesky or Mastodon handle)."
        )
    return handle


@dataclass(frozen=True, slots=True)
class Handle:
    """A handle read from what a person typed: its network and the handle in full, without its @."""

    platform: str
    name: str

    @property
    def network(self) -> str:
        return NETWORK_NAMES[self.platform]

    def __str__(self) -> str:
        return "@" + self.name


def parse(text: str) -> Handle:
    """The handle a person typed or pasted, with the network its form says; a HandleError showing the three
    forms when it is none of them."""
    raw = (text or "").strip()
    if not raw:
        raise HandleError("Type the handle of the account. " + THREE_FORMS)
    if len(raw) > MAX_HANDLE_CHARS + 100:
        raise HandleError(f"That is {len(raw):,} characters, too long for a handle. " + THREE_FORMS)
    pasted = "://" in raw or raw.lower().startswith(("bsky.app/", "x.com/", "twitter.com/"))
    handle = _from_address(raw) if pasted else _from_handle(raw.removeprefix("@"))
    if handle is None:
        shown = raw[:60] + ("…" if len(raw) > 60 else "")
        if re.fullmatch(r"@?[A-Za-z0-9_]{16,}", raw):
            raise HandleError(f"{shown!r} is too long for an X username (at most 15 characters). " + THREE_FORMS)
        raise HandleError(f"{shown!r} is not a handle this app can read. " + THREE_FORMS)
    return handle


def _from_handle(name: str) -> Handle | None:
    if X_HANDLE.fullmatch(name):
        return Handle("x", name)
    if "@" in name:
        return Handle("mastodon", _lower_domain(name)) if MASTODON_HANDLE.fullmatch(name) else None
    if BLUESKY_DID.fullmatch(name):
        return Handle("bluesky", name)
    if BLUESKY_HANDLE.fullmatch(name):
        return Handle("bluesky", name.lower())  # Bluesky's handles are domains, and domains have no case
    return None


def _from_address(raw: str) -> Handle | None:
    """The handle of a profile's address: bsky.app/profile/NAME, INSTANCE/@USER, x.com/NAME."""
    parts = urlsplit(raw if "://" in raw else "https://" + raw)
    host = (parts.hostname or "").lower()
    path = [unquote(p) for p in parts.path.split("/") if p]
    if host in ("bsky.app", "www.bsky.app") and len(path) >= 2 and path[0] == "profile":
        return _from_handle(path[1].removeprefix("@")) if "@" not in path[1].lstrip("@") else None
    if host in ("x.com", "twitter.com", "www.x.com", "www.twitter.com", "mobile.twitter.com") and path:
        return Handle("x", path[0].lstrip("@")) if X_HANDLE.fullmatch(path[0].lstrip("@")) else None
    if path and path[0].startswith("@") and BLUESKY_HANDLE.fullmatch(host):
        user = path[0][1:]
        if "@" in user:  # an account of another instance, as this one shows it: /@ana@elsewhere.social
            return _from_handle(user)
        return _from_handle(f"{user}@{host}")
    return None


def _lower_domain(handle: str) -> str:
    user, _, domain = handle.partition("@")
    return f"{user}@{domain.lower()}"


def check_platform(platform: str) -> str:
    """One of ``PLATFORMS``; a ValueError (a mistake in the code, not in what was typed) otherwise."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown network {platform!r}")
    return platform


def typed(username: str) -> str:
    """A handle as a person types it, without the spaces around it or a leading @."""
    return (username or "").strip().lstrip("@")


def check_typed(username: str) -> str:
    """A typed handle (with or without its @) as X allows it, or a HandleError a person can act on."""
    handle = typed(username)
    if not TYPED_HANDLE.match(handle):
        raise HandleError(f"{username!r} is not a valid X username: use 1 to 15 letters, digits or underscores")
    return handle


def shapes_of(stored: list[tuple[str, int]]) -> list[tuple[str, int, str]]:
    """(handle, account id) pairs with each handle's skeleton, worked out once for checking many handles."""
    return [(name, owner, skeleton(name)) for name, owner in stored]


def look_alike(
    handle: str,
    shapes: list[tuple[str, int, str]],
    account_id: int | None = None,
    ignore: set[int] | frozenset = frozenset(),
) -> str | None:
    """The stored handle of another account (not ``account_id``, not one of ``ignore``) among ``shapes``
    (``shapes_of`` the stored handles) that reads like ``handle`` without being it, if any."""
    shape = skeleton(handle)
    for stored, owner, stored_shape in shapes:
        if owner != account_id and owner not in ignore and stored.lower() != handle.lower() and stored_shape == shape:
            return stored
    return None
