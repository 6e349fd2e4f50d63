"""Usernames as people type them and as files give them: one set of rules for every way in.

A handle is stored as the source gives it, and compared without regard to case. Beyond that, a handle
arriving from a file may not be a look-alike of another stored account's ("harb0rbaker" beside
"harborbaker", "rnia" beside "mia"): a visitor reading the list could not tell them apart.
"""

from __future__ import annotations

import re

from twitapp.errors import UserError

# Handles as stored: X's are 1 to 15 of these characters; the column allows 50 (for other networks' and
# files' names).
STORED_HANDLE = re.compile(r"[A-Za-z0-9_]{1,50}")
# A handle typed into a form, the API or the command line, as X allows it.
TYPED_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")

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
    """A handle as the database keeps it (1 to 50 letters, digits or underscores), or a HandleError."""
    if not isinstance(handle, str) or not STORED_HANDLE.fullmatch(handle):
        shown = handle[:40] + ("…" if len(handle) > 40 else "") if isinstance(handle, str) else repr(handle)
        raise HandleError(f"{shown!r} is not a username this app stores: use 1 to 50 letters, digits or underscores.")
    return handle


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
