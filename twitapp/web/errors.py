"""One pair of error handlers for the whole app, answering HTML or JSON as the caller prefers."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge, SecurityError

from twitapp import database
from twitapp.jobs import uploads

log = logging.getLogger(__name__)


def wants_json() -> bool:
    """JSON for the API and for callers that ask for it over HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, title: str, message: str):
    if wants_json():
        return {"error": title, "message": message}, status
    return render_template("web/error.html", status=status, title=title, message=message), status


def handle_http_error(exc: HTTPException):
    return error_response(exc.code or 500, exc.name, exc.description or exc.name)


def handle_too_large(exc: RequestEntityTooLarge):
    limit = uploads.limit_mb()
    return error_response(
        413,
        exc.name,
        f"That is more than this server takes in one request ({limit} MB). Nothing was stored; send less, "
        "or use the command line for big files (`flask import FILE --username NAME`, "
        "`flask sentiment train FILE`).",
    )


def handle_server_error(exc: InternalServerError):
    # The request's transaction may be half-done; roll it back so nothing partial is committed later. A
    # rollback that fails (the connection died) must not turn this page into the server's bare 500.
    database.rollback()
    return error_response(500, exc.name, "Something went wrong on our side. Your stored data is unchanged.")


def handle_database_unavailable(exc: sa.exc.OperationalError):
    """The database is down or restarting: say so with a 503 (try again), not a 500 (our fault)."""
    database.rollback()
    log.warning("database unavailable: %s", str(exc.orig or exc).strip().splitlines()[0])
    response = error_response(
        503,
        "Service Unavailable",
        "The database is not answering just now (it may be restarting). Nothing was changed; try again in a moment.",
    )
    body, status = response
    return body, status, {"Retry-After": "5"}


def handle_untrusted_host(exc: SecurityError):
    """A request for a host name this app does not answer to (TRUSTED_HOSTS): a plain answer, since no page
    can be built for a host that is not ours."""
    return Response(f"{exc.description}\n", 400, mimetype="text/plain")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(SecurityError, handle_untrusted_host)
    app.register_error_handler(RequestEntityTooLarge, handle_too_large)
    # A lost or refused database connection; pool_pre_ping replaces dead pooled connections, but a
    # request that arrives while the server is down still fails here.
    app.register_error_handler(sa.exc.OperationalError, handle_database_unavailable)
    # Unhandled exceptions reach this as a 500 in production; in tests and debug they propagate.
    app.register_error_handler(InternalServerError, handle_server_error)
