"""HTTP security: headers on every answer (Flask-Talisman) and per-address rate limits (Flask-Limiter).

The pages load only their own static files and run no inline script, so the Content-Security-Policy can
forbid everything else; framing is refused outright. Over HTTPS (config ``HTTPS``) plain HTTP is
redirected, HSTS is sent and the session cookie is marked Secure.
"""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask_limiter.errors import RateLimitExceeded
from flask_talisman import Talisman

from twitapp.extensions import limiter
from twitapp.web.errors import error_response

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def init_app(app: Flask) -> None:
    https = bool(app.config.get("HTTPS"))
    Talisman(
        app,
        force_https=https,
        strict_transport_security=https,
        session_cookie_secure=https,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy="same-origin",
    )
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    app.extensions["rate_limits"] = rate_limit_scope(app)
    if app.extensions["rate_limits"] == "per process" and not app.testing and click.get_current_context(True) is None:
        # Served by gunicorn (no flask command around it): each worker would count on its own.
        log.warning(PER_PROCESS)


PER_PROCESS = (
    "Rate limits are counted in each process's memory (REDIS_URL is not set): with several gunicorn "
    "workers or dynos, each lets the whole limit through. Set REDIS_URL to count them in one place."
)


def rate_limit_scope(app: Flask) -> str:
    """Where rate limits are counted: "shared" (Redis, which every process reaches), "per process", or "off"."""
    if not app.config.get("RATELIMIT_ENABLED", True):
        return "off"
    return "per process" if app.config.get("RATELIMIT_STORAGE_URI", "memory://").startswith("memory") else "shared"


def too_many_requests(exc: RateLimitExceeded):
    response = error_response(
        429,
        "Too Many Requests",
        f"Too many requests from your address: at most {exc.description} here. Wait a little and try again.",
    )
    return response


def rate_limit(setting: str, methods: tuple[str, ...] = ("POST",)):
    """A page's rate limit, read from the config when a request comes (so tests and deployments can set it)."""
    return limiter.limit(lambda: current_app.config[setting], methods=list(methods))
