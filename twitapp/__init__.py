"""HypoTweet: who would post this? Machine learning on posts from X, served by Flask."""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from twitapp.config import LOOPBACK_HOSTS, ensure_secret_key, settings_from_env


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
    register_capabilities(app)
    register_proxies(app)
    return app


def register_extensions(app: Flask) -> None:
    from twitapp import database, models  # noqa: F401  (the tables must be known before migrate looks at them)
    from twitapp.extensions import csrf, db, migrate

    db.init_app(app)
    # After db.init_app: its session teardown must run first (teardowns run last registered, first run).
    database.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    csrf.init_app(app)


def register_proxies(app: Flask) -> None:
    """Believe X-Forwarded-For and -Proto from exactly the configured proxies (Heroku's router is one),
    and X-Forwarded-Host only where asked: a client can send any of them itself."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        host = hops if app.config["TRUST_FORWARDED_HOST"] else 0
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=host)  # type: ignore[method-assign]


def register_capabilities(app: Flask) -> None:
    """The shell, sign-in and the job runner, then each capability: its pages, API (nested under /api),
    commands, job handlers and panels on the shared pages. Adding one is a line here."""
    from twitapp import attribution, auth, ingest, jobs, sentiment, style, virality, web
    from twitapp.web.api import Api

    api = Api()
    web.register(app)
    auth.init_app(app)
    for capability in (jobs, ingest, attribution, sentiment, virality, style):
        capability.register(app, api)
    api.register(app)
