"""Who is an operator: sessions (Flask-Login), API tokens, passwords, and ``operator_required``."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import wraps
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort, current_app, flash, g, make_response, redirect, request, url_for
from flask_login import current_user
from werkzeug.security import check_password_hash, generate_password_hash

from twitapp.extensions import db, login_manager
from twitapp.models import ApiToken, Operator
from twitapp.web.errors import error_response

log = logging.getLogger(__name__)

TOKEN_PREFIX = "ht_"
# A token's last use is written at most this often, so the API is not slowed by a write per call.
LAST_USED_EVERY = timedelta(minutes=1)
NO_OPERATOR = (
    "No operator account exists yet. Create one where the app runs: `flask operator create NAME` "
    "(on Heroku: `heroku run flask operator create NAME`)."
)
API_NEEDS_TOKEN = (
    "This needs an operator's API token: send the header `Authorization: Bearer TOKEN` "
    "(`flask operator token NAME` makes one)."
)
API_BAD_TOKEN = "That API token is not known, or it has been revoked."


@functools.cache
def _nobody() -> str:
    """A hash to check against when the name is unknown, so a wrong name takes as long as a wrong password.
    Made at the first sign-in, not at import: an scrypt hash takes a tenth of a second and 32 MiB."""
    return generate_password_hash(secrets.token_hex(16))


@login_manager.user_loader
def load_operator(user_id: str) -> Operator | None:
    """The operator a session cookie names, if its session token is still the operator's current one."""
    number, _, token = user_id.partition(":")
    if not (number.isascii() and number.isdigit()) or len(number) > 9:
        return None
    try:
        operator = db.session.get(Operator, int(number))
    except sa.exc.SQLAlchemyError:  # the database is away: a visitor for now, and the page says why
        db.session.rollback()
        return None
    if operator is None or not hmac.compare_digest(operator.session_token, token):
        return None
    return operator


def sign_in_required() -> bool:
    return bool(current_app.config.get("SIGN_IN_REQUIRED", True))


def _is_api() -> bool:
    return request.path.startswith("/api/")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_operator() -> Operator | None:
    """The operator whose live API token the request carries (looked up once per request)."""
    if "token_operator" in g:
        return g.token_operator
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    found = None
    token = token.strip()
    if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) and len(token) <= 200:
        digest = token_digest(token)
        row = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)))
        if row is not None and hmac.compare_digest(row.token_hash, digest):
            found = row.operator
            _note_use(row)
    g.token_operator = found
    return found


def _note_use(row: ApiToken) -> None:
    moment = datetime.now(UTC)
    if row.last_used_at is None or moment - row.last_used_at > LAST_USED_EVERY:
        try:
            with db.engine.begin() as connection:  # its own transaction: the request's stays its own
                connection.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=moment))
        except sa.exc.SQLAlchemyError:  # bookkeeping: a locked database must not fail the call itself
            log.warning("could not record the use of API token %s", row.id, exc_info=True)


def is_operator() -> bool:
    """Whether this request may change what is stored."""
    if not sign_in_required():
        return True
    if _is_api():
        return token_operator() is not None
    return bool(current_user.is_authenticated)


def operators_exist() -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Operator)) > 0


def operator_required(view):
    """Only operators: a visitor's page request is sent to sign in (and back), an API call gets a 401."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if is_operator():
            return view(*args, **kwargs)
        if _is_api():
            sent = request.headers.get("Authorization", "").strip()
            message = API_BAD_TOKEN if sent else API_NEEDS_TOKEN
            response = error_response(401, "Unauthorized", message)
            abort(make_response(*response, {"WWW-Authenticate": 'Bearer realm="HypoTweet"'}))
        flash(
            "Sign in as an operator to do that." if operators_exist() else NO_OPERATOR,
            "error",
        )
        return redirect(url_for("auth.sign_in", next=_come_back_to()))

    return guarded


def sign_in_url() -> str:
    """The sign-in page, coming back to this page where it can be asked for again (a GET), else to the
    page the form that led here was on."""
    return url_for("auth.sign_in", next=_come_back_to())


def _come_back_to() -> str:
    """Where to return after signing in: the page itself for a GET, the page the form was on for a POST."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and safe_next(referrer.path):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("web.index")


def safe_next(target: str | None) -> str | None:
    """A path on this site to go to after signing in, or None for anything that could lead elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


def new_session_token() -> str:
    return secrets.token_hex(16)


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # werkzeug's scrypt, salted


def check_password(name: str, password: str) -> Operator | None:
    """The operator with this name and password; None for either being wrong, in the same time."""
    operator = find_operator(name)
    if operator is None:
        check_password_hash(_nobody(), password)
        return None
    return operator if check_password_hash(operator.password_hash, password) else None


OPERATOR_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,50}")


def find_operator(name: str) -> Operator | None:
    """The operator of this name (any case); None for a name no operator could have, before any query."""
    name = (name or "").strip()
    if not OPERATOR_NAME.fullmatch(name):
        return None
    return db.session.scalar(sa.select(Operator).where(sa.func.lower(Operator.name) == name.lower()))
