"""One pair of error handlers for the whole app, answering HTML or JSON as the caller prefers."""

from __future__ import annotations

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db


def wants_json() -> bool:
    """JSON for the API and for callers that ask for it over HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, title: str, message: str):
    if wants_json():
        return {"error": title, "message": message}, status
    return render_template("error.html", status=status, title=title, message=message), status


def handle_http_error(exc: HTTPException):
    return error_response(exc.code or 500, exc.name, exc.description or exc.name)


def handle_server_error(exc: InternalServerError):
    # The request's transaction may be half-done; roll it back so nothing partial is committed later.
    db.session.rollback()
    return error_response(500, exc.name, "Something went wrong on our side. Your stored data is unchanged.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    # Unhandled exceptions reach this as a 500 in production; in tests and debug they propagate.
    app.register_error_handler(InternalServerError, handle_server_error)
