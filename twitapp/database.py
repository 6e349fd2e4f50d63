"""Keeping the database connections honest: a SQLite file that is replaced or lost, and a
connection that dies in the middle of a request.

SQLite keeps an open connection on the file it opened. When another file is moved over the path (a restored
backup) or the file is deleted, pooled connections go on reading the old, unlinked file and refuse every write
("attempt to write a readonly database"), until the process restarts. Each checkout therefore compares the
file at the path with the one the connection opened, and a connection whose file is gone is replaced.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import Flask

from .extensions import db

log = logging.getLogger(__name__)

_FILE_KEY = "sqlite_file"  # in a connection record's info: (st_dev, st_ino) of the file it opened


def init_app(app: Flask) -> None:
    """Call after ``db.init_app``: the teardown registered here must run before Flask-SQLAlchemy's."""
    with app.app_context():
        for engine in db.engines.values():
            path = sqlite_file(engine)
            if path is not None:
                _follow_the_file(engine, path)
    # Teardown functions run in reverse order of registration, so this one ends the session first.
    app.teardown_appcontext(end_session)


def sqlite_file(engine: sa.Engine) -> str | None:
    """The path of the engine's SQLite file, or None for another database or an in-memory one."""
    if engine.dialect.name != "sqlite":
        return None
    (target, *_), options = engine.dialect.create_connect_args(engine.url)
    if options.get("uri"):
        parts = urlsplit(target)
        if "mode=memory" in parts.query or parts.path in ("", ":memory:"):
            return None
        return os.path.abspath(unquote(parts.path))
    if target in ("", ":memory:"):
        return None
    return os.path.abspath(target)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _follow_the_file(engine: sa.Engine, path: str) -> None:
    """Replace pooled connections whose file was replaced or deleted, and never recreate a lost file."""
    opened = {"once": False}

    @sa.event.listens_for(engine, "do_connect")
    def refuse_to_start_afresh(dialect, record, cargs, cparams):
        # SQLite would create an empty file, and the app would answer from a database without its data.
        if opened["once"] and _identity(path) is None:
            raise sqlite3.OperationalError(
                f"the database file {path} is gone (deleted or moved away); put it back, "
                "or run `flask db upgrade` to start an empty one"
            )

    @sa.event.listens_for(engine, "connect")
    def remember_the_file(dbapi_connection, record):
        record.info[_FILE_KEY] = _identity(path)
        if record.info[_FILE_KEY] is not None:
            opened["once"] = True

    @sa.event.listens_for(engine, "checkout")
    def check_the_file(dbapi_connection, record, proxy):
        expected = record.info.get(_FILE_KEY)
        if expected is None:
            return
        found = _identity(path)
        if found != expected:
            reason = "was deleted or moved away" if found is None else "was replaced by another file"
            log.warning("the SQLite file %s %s; a connection still on the old one is dropped", path, reason)
            # The pool discards this connection and opens a new one on whatever is at the path now.
            raise sa.exc.DisconnectionError(f"the database file {reason}")


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
