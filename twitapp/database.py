"""Keeping the database connections honest: the health check, a SQLite file that is replaced or lost, and a
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
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from flask import Flask

from twitapp.extensions import db
from twitapp.models import User

log = logging.getLogger(__name__)

# How long the health check waits for SQLite's write lock before calling the database locked.
WRITE_TIMEOUT_S = 1.0
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


# -- the health check ------------------------------------------------------------------------------------


def problem() -> str | None:
    """What is wrong with the database, in a few words, or None when it answers, has its tables, and (on
    SQLite) takes writes. The details go to the log, not to whoever asked."""
    engine = db.engine
    path = sqlite_file(engine)
    if path is not None:
        found = _sqlite_write_problem(engine)
        if found:
            return found
    return _read_problem(engine)


def _read_problem(engine: sa.Engine) -> str | None:
    try:
        db.session.execute(sa.select(User.id).limit(1))
        if engine.dialect.name == "postgresql":
            read_only, standby = db.session.execute(
                sa.select(sa.func.current_setting("transaction_read_only"), sa.func.pg_is_in_recovery())
            ).one()
            if standby:
                return "read-only: the server is a standby in recovery"
            if read_only == "on":
                return "read-only: transactions here are read-only"
    except sa.exc.SQLAlchemyError as error:
        rollback()
        detail = _first_line(error)
        log.warning("health check: the database did not answer a query: %s", detail)
        if detail.startswith("no such table") or getattr(getattr(error, "orig", None), "pgcode", None) == "42P01":
            return "no tables: the users table is missing (is the database migrated?)"
        return "unreachable"
    return None


def _probe_target(engine: sa.Engine) -> str:
    """The URI of the engine's SQLite file, opened read-write but never created."""
    (target, *_), options = engine.dialect.create_connect_args(engine.url)
    if options.get("uri"):
        if "mode=" in urlsplit(target).query:
            return target
        return target + ("&" if "?" in target else "?") + "mode=rw"
    return "file:" + quote(os.path.abspath(target)) + "?mode=rw"


def _sqlite_write_problem(engine: sa.Engine) -> str | None:
    """Start a write on a connection of its own and roll it back.

    A fresh connection, because one opened before the file became read-only keeps its write access. BEGIN
    IMMEDIATE takes the write lock (a locked database answers within WRITE_TIMEOUT_S), but on a file SQLite
    could only open read-only it quietly begins a read instead; rewriting the header's user_version with its
    own value is a write that fails there, and the rollback undoes it.
    """
    try:
        probe = sqlite3.connect(_probe_target(engine), uri=True, timeout=WRITE_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as error:
        return _describe_sqlite(error)
    try:
        probe.execute("BEGIN IMMEDIATE")
        (version,) = probe.execute("PRAGMA user_version").fetchone()
        probe.execute(f"PRAGMA user_version = {int(version)}")
    except sqlite3.Error as error:
        return _describe_sqlite(error)
    finally:
        probe.close()  # rolls back the write that was begun
    return None


def _describe_sqlite(error: sqlite3.Error) -> str:
    name = getattr(error, "sqlite_errorname", "")
    log.warning("health check: SQLite took no write: %s (%s)", error, name or "no code")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"locked: no write could start within {WRITE_TIMEOUT_S:g} s"
    if name.startswith("SQLITE_READONLY"):
        return "read-only: the database file takes no writes"
    if name.startswith("SQLITE_CANTOPEN"):
        return "missing: the database file cannot be opened"
    return "unreachable"
