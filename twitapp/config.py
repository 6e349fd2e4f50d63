"""Settings read from the environment, with a ``.env`` file loaded first.

gunicorn and ``flask run`` both import this module, so loading ``.env`` here (rather than relying on the
flask CLI's own dotenv support) gives every entry point the same settings.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

load_dotenv()

DEFAULT_TWEETS_PER_USER = 400
MAX_TWEETS_PER_USER = 3200  # the X API serves at most the newest 3,200 posts of a timeline


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable and how to fix it."""


def database_url(instance_path: str) -> str:
    """``DATABASE_URL`` or a SQLite file in the instance folder.

    Heroku hands out ``postgres://``, which SQLAlchemy no longer accepts, and SQLAlchemy 2.1 reads a bare
    ``postgresql://`` as psycopg 3; both are pinned to the installed psycopg2 driver.
    """
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "twitapp.sqlite3")
    return normalise_database_url(url)


def normalise_database_url(url: str) -> str:
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme) :]
    return url


def tweets_per_user(raw: str | None, name: str = "TWEETS_PER_USER") -> int:
    """How many of an account's newest posts to fetch: 1 to 3,200, default 400."""
    if raw is None or not raw.strip():
        return DEFAULT_TWEETS_PER_USER
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number from 1 to 3200, not {raw!r}.") from None
    if not 1 <= value <= MAX_TWEETS_PER_USER:
        raise ConfigError(f"{name} must be from 1 to {MAX_TWEETS_PER_USER}, not {value}.")
    return value


def posts_per_account() -> int:
    """``POSTS_PER_ACCOUNT``, or the older name ``TWEETS_PER_USER`` where only that is set."""
    if (os.environ.get("POSTS_PER_ACCOUNT") or "").strip():
        return tweets_per_user(os.environ["POSTS_PER_ACCOUNT"], "POSTS_PER_ACCOUNT")
    return tweets_per_user(os.environ.get("TWEETS_PER_USER"))


def mastodon_tokens(raw: str | None) -> dict[str, str]:
    """``MASTODON_TOKENS``: a token per instance that refuses anonymous reads ("instance=token,...")."""
    from twitapp.sources.mastodon import parse_tokens

    if not (raw or "").strip():
        return {}
    try:
        return parse_tokens(raw)
    except ValueError as exc:
        raise ConfigError(f"MASTODON_TOKENS: {exc}") from None


DEFAULT_UPLOAD_MB = 32


def upload_limit(raw: str | None) -> int:
    """``MAX_UPLOAD_MB`` (default 32) in bytes."""
    if raw is None or not raw.strip():
        return DEFAULT_UPLOAD_MB * 2**20
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"MAX_UPLOAD_MB must be a whole number of megabytes, not {raw!r}.") from None
    if value < 1:
        raise ConfigError(f"MAX_UPLOAD_MB must be at least 1, not {value}.")
    return value * 2**20


def trusted_proxies(raw: str | None) -> int:
    """How many proxies in front of the app add X-Forwarded-For/-Proto (``TRUSTED_PROXIES``, default 0).

    None are trusted unless configured, since a client can send those headers itself. Heroku's router is
    one proxy, and a Heroku app that left this unset would redirect itself forever over HTTPS (it would
    see every request as plain HTTP), so there the setting must be given.
    """
    if raw is None or not raw.strip():
        if "DYNO" in os.environ:
            raise ConfigError(
                "TRUSTED_PROXIES is not set. On Heroku the router is one proxy: "
                "heroku config:set TRUSTED_PROXIES=1 (0 if nothing stands in front of the app)."
            )
        return 0
    if not (raw.strip().isascii() and raw.strip().isdigit()) or int(raw) > 10:
        raise ConfigError(f"TRUSTED_PROXIES must be a whole number of proxies from 0 to 10, not {raw!r}.")
    return int(raw)


def trusted_hosts(raw: str | None) -> list[str] | None:
    hosts = [h.strip() for h in (raw or "").split(",") if h.strip()]
    return hosts or None


LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]


def settings_from_env(instance_path: str) -> dict:
    """The app's configuration as read from the environment at start-up."""
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "SQLALCHEMY_DATABASE_URI": database_url(instance_path),
        # A database restarted under the app (Heroku maintenance, a failover) would otherwise hand out
        # dead pooled connections until every one had failed once.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "X_BEARER_TOKEN": os.environ.get("X_BEARER_TOKEN") or None,
        # Only for tests and local fakes: where to send X API requests instead of the real host.
        "X_API_URL": os.environ.get("X_API_URL") or None,
        "SPACY_MODEL": os.environ.get("SPACY_MODEL") or "en_core_web_sm",
        **network_settings(),
        # With Redis, jobs go to RQ workers (`flask worker`); without, to a thread in the web process.
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        # Served over HTTPS (on by default on Heroku, whose dynos set DYNO): redirect plain HTTP, send
        # HSTS, and keep the session cookie off plain HTTP.
        "HTTPS": flag("HTTPS", default="DYNO" in os.environ),
        # Only signed-in operators (pages) and operators' API tokens change what is stored; `make run`,
        # which serves on 127.0.0.1 only, turns this off so a laptop needs no account.
        "SIGN_IN_REQUIRED": flag("SIGN_IN_REQUIRED", default=True),
        "SESSION_COOKIE_SAMESITE": "Lax",
        # A signed session cookie is honoured this long at most (an operator signs in again after it).
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        # Host names the app answers to (comma-separated); empty: any, except where no sign-in is asked for,
        # where only the loopback names are (a page elsewhere cannot reach the app by a name of its own).
        "TRUSTED_HOSTS": trusted_hosts(os.environ.get("TRUSTED_HOSTS")),
        # Per client address; counted in Redis when REDIS_URL is set, so every process shares the count.
        "RATELIMIT_ENABLED": flag("RATELIMIT_ENABLED", default=True),
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ADD": os.environ.get("RATELIMIT_ADD") or "10 per minute",
        "RATELIMIT_COMPARE": os.environ.get("RATELIMIT_COMPARE") or "30 per minute",
        "RATELIMIT_API": os.environ.get("RATELIMIT_API") or "120 per minute",
        "RATELIMIT_SIGN_IN": os.environ.get("RATELIMIT_SIGN_IN") or "5 per minute",
        # A topic read from X spends the operator's quota: limited per address, and each query's results
        # are kept this many seconds for everyone who asks.
        "RATELIMIT_TOPIC": os.environ.get("RATELIMIT_TOPIC") or "10 per minute",
        "TOPIC_CACHE_SECONDS": whole_number("TOPIC_CACHE_SECONDS", default=15),
        # Proxies whose X-Forwarded-For and -Proto are believed; X-Forwarded-Host only when also asked.
        "TRUSTED_PROXIES": trusted_proxies(os.environ.get("TRUSTED_PROXIES")),
        "TRUST_FORWARDED_HOST": flag("TRUST_FORWARDED_HOST", default=False),
        # The largest request body, files sent through a page included; bigger files go through the CLI.
        "MAX_CONTENT_LENGTH": upload_limit(os.environ.get("MAX_UPLOAD_MB")),
        # The most posts one import sent through a page stores (the CLI takes any number).
        "MAX_IMPORT_POSTS": whole_number("MAX_IMPORT_POSTS", default=50_000),
        # How often a web process says it still holds its jobs, and sweeps away those no process holds.
        "JOB_BEAT_SECONDS": whole_number("JOB_BEAT_SECONDS", default=30),
    }


def network_settings() -> dict:
    """How the app reads Bluesky and Mastodon (neither needs a setting), and how many posts of an account."""
    return {
        # How many of an account's newest posts a fetch reads, on every network.
        "TWEETS_PER_USER": posts_per_account(),
        # Bluesky's public AppView serves profiles and feeds to anyone; searching (for /topic) needs an
        # account's handle and an app password, signed in at BLUESKY_SERVICE_URL.
        "BLUESKY_APPVIEW_URL": os.environ.get("BLUESKY_APPVIEW_URL") or None,
        "BLUESKY_SERVICE_URL": os.environ.get("BLUESKY_SERVICE_URL") or None,
        "BLUESKY_HANDLE": os.environ.get("BLUESKY_HANDLE") or None,
        "BLUESKY_APP_PASSWORD": os.environ.get("BLUESKY_APP_PASSWORD") or None,
        # Mastodon instances serve public posts to anyone; some refuse anonymous reads and need a token.
        "MASTODON_TOKENS": mastodon_tokens(os.environ.get("MASTODON_TOKENS")),
        # Where /topic reads a hashtag's timeline from.
        "MASTODON_TOPIC_INSTANCE": os.environ.get("MASTODON_TOPIC_INSTANCE") or None,
        # Only for tests and local fakes: the address of every instance, "{instance}" standing for its name.
        "MASTODON_INSTANCE_URL": os.environ.get("MASTODON_INSTANCE_URL") or None,
    }


def whole_number(name: str, *, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name} must be a whole number (0 or more), not {os.environ[name]!r}.")
    return int(raw)


def flag(name: str, *, default: bool) -> bool:
    """An on/off variable: 1/true/yes/on or 0/false/no/off; anything else is an error, not a guess."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={os.environ[name]!r} is not an on/off value; use 1 or 0.")


def ensure_secret_key(config: dict, *, debug: bool) -> None:
    """Fail at start-up without a ``SECRET_KEY``, except in debug and tests where a throwaway one is fine.

    A default key committed to the repo would let anyone forge session cookies and CSRF tokens.
    """
    if config.get("SECRET_KEY"):
        return
    if debug or config.get("TESTING"):
        config["SECRET_KEY"] = secrets.token_hex(32)
        return
    raise ConfigError(
        "SECRET_KEY is not set. Put a long random value in the environment or in .env, for example:\n"
        "  python -c 'import secrets; print(secrets.token_hex(32))'\n"
        "(`make run` writes one into .env for you.)"
    )
