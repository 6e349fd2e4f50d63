"""Keeping the database session honest when its connection dies in the middle of a request."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask

from .extensions import db

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Call after ``db.init_app``: the teardown registered here must run before Flask-SQLAlchemy's."""
    # Teardown functions run in reverse order of registration, so this one ends the session first.
    app.teardown_appcontext(end_session)


def end_session(exc: BaseException | None) -> None:
    """End the request's session, even when its connection died after the view's last query.

    Closing the session rolls its transaction back, the first thing to notice that the server went away,
    and it runs after the response is made: raised here, the error would replace the view's answer with the
    server's bare 500. SQLAlchemy invalidates a connection whose rollback failed for a disconnect, so the
    pool opens a new one; a connection that failed otherwise is checked by the pool's pre-ping before reuse.
    """
    try:
        db.session.remove()
    except sa.exc.SQLAlchemyError as error:
        _rollback_failed(error)
        db.session.registry.clear()  # the session is closed; Flask-SQLAlchemy's own teardown has nothing left


def rollback() -> None:
    """Roll the session back, as the error handlers do, without a dead connection raising a second error."""
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError as error:
        # The session has let go of the connection all the same; the next query starts on a new one.
        _rollback_failed(error)


def _rollback_failed(error: sa.exc.SQLAlchemyError) -> None:
    dropped = "invalidated" if getattr(error, "connection_invalidated", False) else "left to the pool's pre-ping"
    log.warning(
        "rolling back the session failed (is the database gone?); the connection is %s: %s", dropped, _first_line(error)
    )


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
