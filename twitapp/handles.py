"""Usernames as people type them and as files give them: one set of rules for every way in.

A handle is stored as the source gives it, and compared without regard to case. Beyond that, a handle
arriving from a file may not be a look-alike of another stored account's ("harb0rbaker" beside
"harborbaker", "rnia" beside "mia"): a visitor reading the list could not tell them apart.
"""

from __future__ import annotations

import sqlalchemy as sa

from .extensions import db
from .models import User
from .records import STORED_HANDLE

# Characters and pairs that read alike in the fonts pages use (a small, ASCII part of Unicode's
# confusables: handles are letters, digits and underscores only). Capitals are mapped before lowercasing:
# "I" reads like "l", where "i" does not.
_ALIKE = str.maketrans({"0": "o", "O": "o", "1": "l", "I": "l"})
_ALIKE_PAIRS = (("rn", "m"), ("vv", "w"))


class HandleError(ValueError):
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


def stored_shapes() -> list[tuple[str, int, str]]:
    """Every stored handle with its account id and skeleton, read once for checking many handles."""
    return [(name, owner, skeleton(name)) for name, owner in db.session.execute(sa.select(User.username, User.id))]


def look_alike(
    handle: str,
    account_id: int | None = None,
    ignore: set[int] | frozenset = frozenset(),
    shapes: list[tuple[str, int, str]] | None = None,
) -> str | None:
    """The stored handle of another account (not one of ``ignore``) that reads like ``handle`` without
    being it, if any; ``shapes``: ``stored_shapes()`` when many handles are checked at once."""
    shape = skeleton(handle)
    for stored, owner, stored_shape in stored_shapes() if shapes is None else shapes:
        if owner != account_id and owner not in ignore and stored.lower() != handle.lower() and stored_shape == shape:
            return stored
    return None


def check_new(handle: str, account_id: int | None = None) -> str:
    """A handle from a file for the account ``account_id``: in the stored form, and no look-alike of
    another stored account's; a HandleError naming the problem otherwise."""
    check_stored_form(handle)
    other = look_alike(handle, account_id)
    if other is not None:
        raise HandleError(
            f"@{handle} reads like @{other}, another stored account, so people could take one for the other; "
            "import it under a name that cannot be mistaken."
        )
    return handle
