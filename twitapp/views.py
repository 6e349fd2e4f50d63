"""The pages a person uses: the account list, adding an account, an account's posts, comparing."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from .extensions import db
from .forms import AddAccountForm, CompareForm
from .ingest import IngestError, add_or_update_user
from .models import User, find_user_or_404, newest_posts, tweet_counts
from .predict import MAX_TEXT_CHARS, PredictionError, predict_author
from .twitter import XAPIError, client_from_config

bp = Blueprint("main", __name__)

POSTS_PER_PAGE = 25
NO_TOKEN_MESSAGE = (
    "No X API token is set, so new accounts cannot be fetched: only the demo accounts and imported "
    "archives are available. Set X_BEARER_TOKEN to fetch accounts from X (see the README)."
)


def _accounts() -> list[tuple[User, int]]:
    users = db.session.scalars(sa.select(User).order_by(sa.func.lower(User.username))).all()
    counts = tweet_counts()
    return [(u, counts.get(u.id, 0)) for u in users]


def _index(add_form: AddAccountForm | None = None, compare_form: CompareForm | None = None, status: int = 200):
    accounts = _accounts()
    compare_form = compare_form or CompareForm()
    compare_form.usernames.choices = [(u.username, f"@{u.username}") for u, _ in accounts]
    return (
        render_template(
            "index.html",
            accounts=accounts,
            add_form=add_form or AddAccountForm(),
            compare_form=compare_form,
            online=bool(current_app.config.get("X_BEARER_TOKEN")),
            max_chars=MAX_TEXT_CHARS,
        ),
        status,
    )


@bp.get("/")
def index():
    """The accounts with their post counts, and the add and compare forms."""
    return _index()


@bp.post("/users")
def add_user():
    """Fetch an account through the X API; a stored one gets its newer posts."""
    form = AddAccountForm()
    if not form.validate_on_submit():
        return _index(add_form=form, status=400)
    client = client_from_config(current_app.config)
    if client is None:
        form.username.errors.append(NO_TOKEN_MESSAGE)
        return _index(add_form=form, status=400)
    try:
        with client:
            result = add_or_update_user(form.username.data, client)
    except (XAPIError, IngestError) as exc:
        form.username.errors.append(str(exc))
        return _index(add_form=form, status=400)
    if result.created:
        flash(f"Added @{result.username} with {result.added} posts.", "success")
    elif result.added:
        flash(f"Updated @{result.username}: {result.added} new posts, {result.total} in all.", "success")
    else:
        flash(f"@{result.username} is up to date: no new posts since the last fetch.", "info")
    return redirect(url_for("main.user", username=result.username))


@bp.get("/user/<username>")
def user(username: str):
    """An account's stored posts, newest first."""
    account = find_user_or_404(username)
    page = db.paginate(newest_posts(account), per_page=POSTS_PER_PAGE, max_per_page=POSTS_PER_PAGE)
    return render_template("user.html", user=account, page=page)


@bp.post("/compare")
def compare():
    """Rank the chosen accounts for the typed text, or show the form again with what to fix."""
    form = CompareForm()
    if not form.validate_on_submit():
        return _index(compare_form=form, status=400)
    try:
        prediction = predict_author(form.usernames.data or [], form.text.data)
    except PredictionError as exc:
        form.text.errors.append(str(exc))
        return _index(compare_form=form, status=exc.status)
    return render_template("result.html", prediction=prediction)


@bp.get("/healthz")
def healthz():
    """For load balancers: the app answers and its database does too."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


@bp.app_template_filter("count")
def format_count(value: int) -> str:
    return f"{value:,}"
