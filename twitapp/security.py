"""HTTP security: headers on every answer (Flask-Talisman) and per-address rate limits (Flask-Limiter).

The pages load only their own static files and run no inline script, so the Content-Security-Policy can
forbid everything else; framing is refused outright. Over HTTPS (config ``HTTPS``) plain HTTP is
redirected, HSTS is sent and the session cookie is marked Secure.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter.errors import RateLimitExceeded
from flask_talisman import Talisman

from .errors import error_response
from .extensions import limiter

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


def too_many_requests(exc: RateLimitExceeded):
    response = error_response(
        429,
        "Too Many Requests",
        f"Too many requests from your address: at most {exc.description} here. Wait a little and try again.",
    )
    return response
