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
