"""Pages of a listing, read from ``?page=&per_page=`` with every bad value refused with a message."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, request
from flask_sqlalchemy.pagination import Pagination

from twitapp.extensions import db

# Far past any account's last page, yet small enough that no offset computed from it overflows.
MAX_PAGE = 1_000_000


def whole_number(name: str, raw: str | None, default: int, highest: int | None = None) -> int:
    """A positive whole number (at most ``highest``) read from a query parameter's text, ``default`` when
    it is not given; a ValueError saying what the parameter must be otherwise."""
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 40 else 0
    if number < 1 or (highest is not None and number > highest):
        span = f"from 1 to {highest:,}" if highest is not None else "from 1 up"
        raise ValueError(f'"{name}" must be a whole number {span}, not {raw[:30]!r}.')
    return number


def _whole(name: str, default: int, highest: int | None = None) -> int:
    """A positive whole number from the query string (at most ``highest``), or a 400 that says so."""
    try:
        return whole_number(name, request.args.get(name), default, highest)
    except ValueError as exc:
        abort(400, description=str(exc))


def page_of(statement: sa.Select, what: str, per_page: int, max_per_page: int | None = None) -> Pagination:
    """The requested page of ``statement`` (``per_page`` items, or ``?per_page=`` up to ``max_per_page``).

    A page past the last one is a 404 that says how many there are; ``what`` names the listing in it.
    """
    page = _whole("page", 1)
    if max_per_page is not None:
        per_page = _whole("per_page", per_page, max_per_page)
    if page > MAX_PAGE:
        abort(404, description=f"There is no page {page:,} of {what}.")
    found = db.paginate(statement, page=page, per_page=per_page, error_out=False)
    if page > 1 and not found.items:
        pages = found.pages or 1
        abort(404, description=f"There is no page {page:,} of {what}: there {'is' if pages == 1 else 'are'} {pages:,}.")
    return found
