"""The shell every capability hangs its pages on: the home and account pages with their panels, errors
answered as HTML or JSON, security headers and rate limits, template filters, ``/healthz``, and the
``/api`` parent blueprint that every capability's API nests under."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from twitapp.web import errors, filters, panels, routes, security

    app.register_blueprint(routes.bp)
    errors.init_app(app)
    security.init_app(app)
    filters.init_app(app)
    panels.init_app(app)
