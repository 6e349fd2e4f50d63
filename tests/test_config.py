"""Settings from the environment, and a clear refusal to start without a secret key."""

import pytest

from twitapp import create_app
from twitapp.config import ConfigError, database_url, flag, tweets_per_user


def test_database_url_defaults_to_sqlite_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url(str(tmp_path)) == f"sqlite:///{tmp_path}/twitapp.sqlite3"


@pytest.mark.parametrize("given", ["postgres://u:p@host:5432/db", "postgresql://u:p@host:5432/db"])
def test_heroku_postgres_urls_use_psycopg2(monkeypatch, given):
    monkeypatch.setenv("DATABASE_URL", given)
    assert database_url("/unused") == "postgresql+psycopg2://u:p@host:5432/db"


def test_tweets_per_user_is_bounded():
    assert tweets_per_user(None) == 400
    assert tweets_per_user("3200") == 3200
    for bad in ("0", "3201", "lots"):
        with pytest.raises(ConfigError, match="TWEETS_PER_USER"):
            tweets_per_user(bad)


def test_posts_per_account_is_read_before_the_older_name(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("TWEETS_PER_USER", "50")
    monkeypatch.delenv("POSTS_PER_ACCOUNT", raising=False)
    assert create_app({"TESTING": True}).config["TWEETS_PER_USER"] == 50  # an older .env keeps working
    monkeypatch.setenv("POSTS_PER_ACCOUNT", "120")
    assert create_app({"TESTING": True}).config["TWEETS_PER_USER"] == 120
    monkeypatch.setenv("POSTS_PER_ACCOUNT", "9999")
    with pytest.raises(ConfigError, match="POSTS_PER_ACCOUNT must be from 1 to 3200"):
        create_app({"TESTING": True})


def test_mastodon_tokens_are_read_per_instance_and_a_bad_entry_stops_the_start(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("MASTODON_TOKENS", "closed.example=abc123, other.example=def456")
    tokens = create_app({"TESTING": True}).config["MASTODON_TOKENS"]
    assert tokens == {"closed.example": "abc123", "other.example": "def456"}
    monkeypatch.setenv("MASTODON_TOKENS", "closed.example=abc123,secret-without-instance")
    with pytest.raises(ConfigError, match="MASTODON_TOKENS") as refused:
        create_app({"TESTING": True})
    assert "secret-without-instance" not in str(refused.value)  # a token never reaches a log
    assert "abc123" not in str(refused.value)


def test_the_app_refuses_to_start_without_a_secret_key_in_production(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()
    assert create_app({"TESTING": True}).config["SECRET_KEY"]


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("X_BEARER_TOKEN", "token-123")
    monkeypatch.setenv("TWEETS_PER_USER", "50")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    app = create_app()
    assert (app.config["SECRET_KEY"], app.config["X_BEARER_TOKEN"], app.config["TWEETS_PER_USER"]) == (
        "from-env",
        "token-123",
        50,
    )
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True


def test_https_is_on_by_default_only_on_heroku(monkeypatch):
    monkeypatch.delenv("HTTPS", raising=False)
    monkeypatch.delenv("DYNO", raising=False)
    assert create_app({"TESTING": True}).config["HTTPS"] is False
    monkeypatch.setenv("DYNO", "web.1")
    monkeypatch.setenv("TRUSTED_PROXIES", "1")  # Heroku's router (required there)
    assert create_app({"TESTING": True}).config["HTTPS"] is True
    monkeypatch.setenv("HTTPS", "0")
    assert create_app({"TESTING": True}).config["HTTPS"] is False


def test_sign_in_is_required_unless_turned_off(monkeypatch):
    monkeypatch.delenv("SIGN_IN_REQUIRED", raising=False)
    assert create_app({"TESTING": True}).config["SIGN_IN_REQUIRED"] is True
    monkeypatch.setenv("SIGN_IN_REQUIRED", "0")
    assert create_app({"TESTING": True}).config["SIGN_IN_REQUIRED"] is False


def test_on_off_settings_refuse_a_guess(monkeypatch):
    monkeypatch.setenv("RATELIMIT_ENABLED", "maybe")
    with pytest.raises(ConfigError, match="RATELIMIT_ENABLED='maybe' is not an on/off value"):
        flag("RATELIMIT_ENABLED", default=True)
    monkeypatch.setenv("RATELIMIT_ENABLED", "Off")
    assert flag("RATELIMIT_ENABLED", default=True) is False
