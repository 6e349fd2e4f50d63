"""HypoTweet: who would post this? Machine learning on posts from X, served by Flask."""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import LOOPBACK_HOSTS, ensure_secret_key, settings_from_env


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: settings from the environment, then ``test_config`` on top, then the parts."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(settings_from_env(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    ensure_secret_key(app.config, debug=app.debug)
    if not app.config.get("SIGN_IN_REQUIRED", True) and not app.config.get("TRUSTED_HOSTS"):
        # Everyone who reaches the app operates it: only by this machine's own names (a page elsewhere
        # that rebinds its own name to 127.0.0.1 gets a 400, not the app).
        app.config["TRUSTED_HOSTS"] = LOOPBACK_HOSTS
    os.makedirs(app.instance_path, exist_ok=True)

    register_extensions(app)
    register_auth(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security(app)
    register_commands(app)
    register_proxies(app)
    return app


def register_extensions(app: Flask) -> None:
    from . import (
        database,
        models,  # noqa: F401  (the tables must be known before migrate looks at them)
    )
    from .extensions import csrf, db, migrate

    db.init_app(app)
    # After db.init_app: its session teardown must run first (teardowns run last registered, first run).
    database.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    csrf.init_app(app)


def register_auth(app: Flask) -> None:
    from .auth import init_app

    init_app(app)


def register_blueprints(app: Flask) -> None:
    from .api import bp as api_bp
    from .extensions import csrf
    from .views import bp as main_bp

    app.register_blueprint(main_bp)
    # The JSON API takes no cookies' word for who is calling, so there is no session to forge.
    csrf.exempt(api_bp)
    app.register_blueprint(api_bp, url_prefix="/api")


def register_errorhandlers(app: Flask) -> None:
    from .errors import init_app

    init_app(app)


def register_security(app: Flask) -> None:
    from .security import init_app

    init_app(app)


def register_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For and -Proto from exactly the configured proxies (Heroku's router is one),
    and X-Forwarded-Host only where asked: a client can send any of them itself."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        host = hops if app.config["TRUST_FORWARDED_HOST"] else 0
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=host)  # type: ignore[method-assign]


def register_commands(app: Flask) -> None:
    from .cli import init_app

    init_app(app)
