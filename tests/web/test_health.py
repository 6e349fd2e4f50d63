"""The database under the app going wrong: /healthz says so, a replaced SQLite file is followed, and a
connection that dies mid-request still lets the app give its own answer."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from twitapp import create_app
from twitapp.config import normalise_database_url
from twitapp.extensions import db
from twitapp.models import User

# Tests of what happens to the SQLite file itself run on SQLite only (not skipped on PostgreSQL: not run).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def sqlite_path(app) -> Path:
    """The app's SQLite file (tests that take it are marked ``sqlite_only``)."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    assert url.get_backend_name() == "sqlite", "mark the test sqlite_only"
    return Path(url.database)


def usernames(client) -> list[str]:
    response = client.get("/api/users")
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(user["username"] for user in response.get_json()["users"])


def make_database(path: Path, names: list[str]) -> None:
    """A complete database of the app's tables, holding one user per name, written at ``path``."""
    engine = sa.create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    with engine.begin() as connection:
        for i, name in enumerate(names, start=1):
            connection.execute(
                sa.insert(User).values(id=500 + i, platform_id=str(500 + i), username=name, name="", source="demo")
            )
    engine.dispose()


def names_in_file(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return sorted(name for (name,) in connection.execute("SELECT username FROM users"))


def health(response) -> dict:
    """/healthz's answer without where rate limits are counted (tests/web/test_security.py covers that)."""
    body = response.get_json()
    body.pop("rate_limits", None)
    return body


# -- /healthz --------------------------------------------------------------------------------------------


def test_healthz_reads_a_table_of_the_app(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert health(response) == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_users_table_is_missing(app, client):
    with app.app_context():
        cascade = " CASCADE" if db.engine.dialect.name == "postgresql" else ""
        db.session.execute(sa.text(f"DROP TABLE users{cascade}"))
        db.session.commit()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert health(response) == {
        "status": "error",
        "database": "no tables: the users table is missing (is the database migrated?)",
    }


@sqlite_only
def test_healthz_is_503_when_the_file_is_replaced_by_an_empty_database(client, sqlite_path, tmp_path):
    assert client.get("/healthz").status_code == 200
    empty = tmp_path / "empty.sqlite3"
    with sqlite3.connect(empty) as connection:
        connection.execute("CREATE TABLE unrelated (x)")
    os.replace(empty, sqlite_path)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"].startswith("no tables:")


@sqlite_only
def test_healthz_is_503_within_seconds_when_another_connection_locks_the_database(client, sqlite_path):
    assert client.get("/healthz").status_code == 200
    locker = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started
    finally:
        locker.close()
    assert response.status_code == 503
    assert health(response) == {"status": "error", "database": "locked: no write could start within 1 s"}
    assert elapsed < 3, f"a locked database took {elapsed:.1f} s to be reported"
    assert client.get("/healthz").status_code == 200


@sqlite_only
def test_healthz_is_503_when_the_file_is_made_immutable(client, sqlite_path):
    """The tests run as root, and root writes through permission bits, so ``chmod 444`` changes nothing.
    The immutable attribute (``chattr +i``) binds root too; it needs a filesystem that has it (ext4, xfs,
    btrfs) and the right to set it, which a container may lack, and then this test is skipped.

    The app's pooled connection was opened read-write before the file froze, so only a fresh connection
    finds out."""
    assert client.get("/healthz").status_code == 200
    try:
        frozen = subprocess.run(["chattr", "+i", str(sqlite_path)], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        pytest.skip("chattr is not installed, so no file can be made read-only for root here")
    if frozen.returncode != 0:
        pytest.skip(f"this filesystem or container does not let chattr +i freeze a file: {frozen.stderr.strip()}")
    try:
        response = client.get("/healthz")
    finally:
        subprocess.run(["chattr", "-i", str(sqlite_path)], check=True, timeout=10)
    assert response.status_code == 503
    assert health(response) == {"status": "error", "database": "read-only: the database file takes no writes"}
    assert client.get("/healthz").status_code == 200


@sqlite_only
def test_healthz_is_503_when_the_database_is_opened_read_only(app, sqlite_path):
    """Read-only for root without a special filesystem: SQLite's own ``mode=ro``, here in the app's URL.
    SQLite then begins a read where a write was asked for (BEGIN IMMEDIATE succeeds), so BEGIN IMMEDIATE
    alone would call this database writable; the check has to try a write to notice."""
    read_only = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///file:{sqlite_path}?mode=ro&uri=true"}
    )
    client = read_only.test_client()
    try:
        assert usernames(client) == []  # it reads
        response = client.get("/healthz")
    finally:
        with read_only.app_context():
            db.engine.dispose()
    assert response.status_code == 503
    assert health(response) == {"status": "error", "database": "read-only: the database file takes no writes"}
    assert app.test_client().get("/healthz").status_code == 200  # the same file, opened read-write


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_healthz_is_503_when_postgresql_only_reads(app, client):
    """As on a standby, or with default_transaction_read_only set: every connection here is read-only."""
    with app.app_context():
        engine = db.engine

    def read_only(dbapi_connection, record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_connection.commit()

    sa.event.listen(engine, "connect", read_only)
    engine.dispose()
    try:
        response = client.get("/healthz")
    finally:
        sa.event.remove(engine, "connect", read_only)
        engine.dispose()
    assert response.status_code == 503
    assert health(response) == {"status": "error", "database": "read-only: transactions here are read-only"}
    assert client.get("/healthz").status_code == 200


# -- the SQLite file replaced or lost under a running app ------------------------------------------------


@sqlite_only
def test_a_file_moved_over_the_database_is_written_and_read_without_a_restart(app, client, sqlite_path, tmp_path):
    with app.app_context():
        db.session.add(User(platform_id="1", username="before", source="demo"))
        db.session.commit()
        # Two connections in the pool, both opened on the old file.
        with db.engine.connect() as one, db.engine.connect() as two:
            one.execute(sa.text("SELECT 1 FROM users"))
            two.execute(sa.text("SELECT 1 FROM users"))
        assert db.engine.pool.checkedin() == 2
    assert usernames(client) == ["before"]

    restored = tmp_path / "restored.sqlite3"
    make_database(restored, ["restored"])
    os.replace(restored, sqlite_path)  # as a restore from backup does: the new file takes the old one's name

    with app.app_context():
        # Before: "attempt to write a readonly database", on every write, until a restart.
        db.session.add(User(platform_id="2", username="written", source="demo"))
        db.session.commit()
        with db.engine.connect() as one, db.engine.connect() as two:
            seen = [sorted(c.scalars(sa.text("SELECT username FROM users"))) for c in (one, two)]
    assert seen == [["restored", "written"]] * 2
    assert names_in_file(sqlite_path) == ["restored", "written"]
    assert usernames(client) == ["restored", "written"]
    assert client.get("/healthz").status_code == 200


@sqlite_only
def test_a_deleted_database_file_is_a_503_and_is_not_recreated_empty(app, client, sqlite_path, tmp_path):
    with app.app_context():
        db.session.add(User(platform_id="1", username="kept", source="demo"))
        db.session.commit()
    assert usernames(client) == ["kept"]

    os.remove(sqlite_path)
    response = client.get("/api/users")  # before: 200 and the deleted file's rows, read from a pooled connection
    assert response.status_code == 503 and response.get_json()["error"] == "Service Unavailable"
    page = client.get("/")
    assert page.status_code == 503 and "The database is not answering just now" in page.get_data(as_text=True)
    assert health(client.get("/healthz")) == {
        "status": "error",
        "database": "missing: the database file cannot be opened",
    }
    assert not sqlite_path.exists(), "the app made a new, empty database in place of the lost one"

    make_database(sqlite_path, ["put_back"])  # a restore brings the app back without a restart
    assert usernames(client) == ["put_back"]
    assert client.get("/healthz").status_code == 200


# -- a PostgreSQL connection that dies in the middle of a request ------------------------------------------


@pytest.fixture
def lose_connection(app, postgres_url):
    """Register a test-only route that ends its own connection's backend from a second connection, then
    does ``then`` (answer, raise, or query again), and return a client for it."""
    killer = sa.create_engine(normalise_database_url(postgres_url), isolation_level="AUTOCOMMIT")

    def terminate(pid: int) -> None:
        with killer.connect() as connection:
            assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while connection.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}):
                assert time.monotonic() < deadline, "the backend did not exit"
                time.sleep(0.02)

    @app.get("/test-only/lose-connection/<then>")
    def lose(then: str):
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        terminate(pid)
        if then == "raise":
            raise RuntimeError("boom")
        if then == "query":
            db.session.scalar(sa.text("SELECT 1"))
        return {"answered": True, "pid": pid}

    yield app.test_client()
    killer.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_lost_after_the_last_query_still_gets_the_views_answer(app, lose_connection, caplog):
    client = lose_connection
    with caplog.at_level(logging.WARNING, logger="twitapp.database"):
        # Before: the session's rollback in teardown raised OperationalError here (gunicorn's bare 500).
        response = client.get("/test-only/lose-connection/answer")
    assert response.status_code == 200 and response.get_json()["answered"] is True
    # The teardown's rollback did fail, on the connection the view had used.
    assert "rolling back the session failed (is the database gone?); the connection is invalidated" in caplog.text
    with app.app_context():
        assert db.engine.pool.checkedout() == 0  # the dead connection went back, to be replaced
    assert client.get("/healthz").status_code == 200
    assert client.get("/test-only/lose-connection/answer").get_json()["pid"] != response.get_json()["pid"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_lost_before_an_unexpected_error_still_gets_the_500_page(app, lose_connection):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = lose_connection
    # Before: the 500 handler's own rollback raised on the dead connection, and no page came back at all.
    response = client.get("/test-only/lose-connection/raise")
    assert response.status_code == 500
    assert "Your stored data is unchanged" in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_query_on_a_lost_connection_gets_the_503_answer(lose_connection):
    response = lose_connection.get("/test-only/lose-connection/query", headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.get_json()["error"] == "Service Unavailable"
    assert lose_connection.get("/healthz").status_code == 200
