"""Fixtures: an app on SQLite and, when a server can be started, the same app on PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.fakex import fake_x  # noqa: F401  (a fixture other test files use)
from tests.pgserver import PostgresServer, PostgresUnavailable
from tests.redisserver import RedisServer, RedisUnavailable
from twitapp import create_app, jobs
from twitapp.config import normalise_database_url
from twitapp.extensions import db
from twitapp.sources.records import AccountRecord, PostRecord


def require(component: str, reason: str):
    """Skip when a real component is missing, unless CI demands it (REQUIRE_<COMPONENT>=1)."""
    if os.environ.get(f"REQUIRE_{component.upper()}") == "1":
        pytest.fail(f"{component} is required here but unavailable: {reason}")
    pytest.skip(f"{component} unavailable: {reason}")


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
            "RATELIMIT_ENABLED": False,  # tests/test_security.py turns them on
            "SIGN_IN_REQUIRED": False,  # the local default (make run); tests/test_auth.py turns it on
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


# Short made-up voices, distinct enough for a small model to separate them.
VOICES = {
    "baker": [
        "fresh sourdough out of the oven at six, come early before it sells out",
        "the rye loaves are proving slowly today, cold kitchen, warm hearts",
        "flour everywhere again. croissants are worth it though",
        "new cinnamon buns on the counter this morning, still warm",
        "we ran out of baguettes by nine, sorry friends, more tomorrow at dawn",
        "butter, flour, salt, patience. that is the whole secret of good bread",
    ],
    "commuter": [
        "Route 12 was 14 minutes late again. Third time this week. #transit",
        "Bike lane on 5th Street finally open: 2.3 km of protected track, 0 potholes.",
        "Timetable update: the 7:42 express now leaves at 7:38. Plan accordingly.",
        "Bus bunching on route 9: three buses at once, then nothing for 25 minutes.",
        "Counted 41 cyclists at the bridge between 8 and 9am. Up from 28 last month.",
        "Signal fault at Central station, trains delayed 10-15 min. #transit",
    ],
    "coder": [
        "deployed on a friday. rolled back on a friday. classic",
        "spent three hours on a bug that was a missing `await`",
        "tests green, coffee cold, merge button pressed",
        "refactored the parser today, 400 lines deleted, nothing broke",
        "the flaky test is flaky again. adding retries feels like giving up",
        "new laptop, new dotfiles, same typos in git commit messages",
    ],
}


def make_posts(texts: list[str], start_id: int, start: datetime | None = None) -> list[PostRecord]:
    start = start or datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    return [
        PostRecord(id=start_id + i, text=text, created_at=start + timedelta(hours=i), like_count=i % 4, lang="en")
        for i, text in enumerate(texts)
    ]


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


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def stored(*files: tuple[str, bytes]) -> list[int]:
    """Files stored as a page stores what is sent (in the app context the caller holds); their upload ids."""
    import io

    from twitapp.jobs import uploads

    return uploads.store([(name, io.BytesIO(raw)) for name, raw in files])
