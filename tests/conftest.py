"""Fixtures: an app on SQLite and, when a server can be started, the same app on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.data import VOICES, count_rows, make_posts, require, stored, writers  # noqa: F401  (shared with the test files, writers as a fixture)
from tests.support.fakex import fake_x  # noqa: F401  (a fixture other test files use)
from tests.support.pgserver import PostgresServer, PostgresUnavailable
from tests.support.redisserver import RedisServer, RedisUnavailable
from twitapp import create_app, jobs
from twitapp.config import normalise_database_url
from twitapp.extensions import db
from twitapp.sources.records import AccountRecord


@pytest.fixture(scope="session")
def postgres_url():
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        require("postgres", str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url():
    try:
        server = RedisServer().start()
    except RedisUnavailable as exc:
        require("redis", str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Every test that uses the database runs once on SQLite and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return normalise_database_url(request.getfixturevalue("postgres_url"))


def forget_loaded_models() -> None:
    """Each test has a database of its own, whose registry ids start again at 1: models a process keeps
    by id (and caches keyed by account ids) must not carry over from the last test's database."""
    from twitapp.attribution import model as predict
    from twitapp.sentiment import model as sentiment
    from twitapp.sentiment import topic
    from twitapp.style import model as generate
    from twitapp.virality import model as virality

    predict.cache.clear()
    for service in (sentiment._service, virality._service, generate._service):
        service.clear()
    sentiment._mix_cache.clear()
    topic._searches.clear()
    topic._results.clear()


@pytest.fixture
def app(request, database_url, tmp_path):
    settings = {}  # every app_config marker of the test, the closest winning
    for marker in reversed(list(request.node.iter_markers("app_config"))):
        settings.update(marker.kwargs)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WTF_CSRF_ENABLED": False,
            "X_BEARER_TOKEN": None,
            "X_API_URL": None,
            "TWEETS_PER_USER": 400,
            "X_RETRY_BACKOFF": 0.01,
            "RATELIMIT_ENABLED": False,  # tests/web/test_security.py turns them on
            "SIGN_IN_REQUIRED": False,  # the local default (make run); tests/auth/test_auth.py turns it on
            "JOB_BEAT_SECONDS": 0,  # no beating thread outliving its test's database; tests beat by hand
            **settings,
        }
    )
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        db.drop_all()
        db.create_all()
    forget_loaded_models()
    yield app
    jobs.thread_worker.join()  # a job still running would find its tables gone
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def add_account(app):
    """Store an account with the given texts through the real ingest path (embedding included)."""
    from twitapp.ingest.store import import_tweets

    def add(
        username: str,
        texts: list[str],
        *,
        account_id: int | None = None,
        start_id: int | None = None,
        source: str = "archive",
    ):
        account_id = account_id or 1000 + sum(map(ord, username))
        start_id = start_id or account_id * 1000
        with app.app_context():
            return import_tweets(
                AccountRecord(account_id, username, username.title()), make_posts(texts, start_id), source=source
            )

    return add


@pytest.fixture
def voices(add_account):
    """Three stored accounts with distinct voices: baker, commuter and coder."""
    for i, (username, texts) in enumerate(VOICES.items(), start=1):
        add_account(username, texts, account_id=i * 111)
    return list(VOICES)
