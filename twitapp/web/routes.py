"""The shell's pages: the home page, an account's page, and ``/healthz``. Capabilities fill them with
panels (``web.panels``); ``home_page`` and ``account_page`` are what they call to show a refused form again."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template

from twitapp import database, jobs
from twitapp.extensions import db
from twitapp.models import Job, User, find_user, find_user_or_404, newest_posts, tweet_counts
from twitapp.sources import x
from twitapp.web.paging import page_of

bp = Blueprint("web", __name__)

POSTS_PER_PAGE = 25
# An account page shows its latest job while it runs, and its outcome for this long after.
RECENT_JOB = timedelta(minutes=10)


@bp.before_app_request
def start_jobs() -> None:
    """Once per process, at its first request: sweep away the jobs earlier processes left, and beat."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.extensions.get("jobs_started"):
        app.extensions["jobs_started"] = True
        jobs.start(app)


def recent(job: Job | None) -> dict | None:
    """A job worth showing: under way, or ended within RECENT_JOB."""
    if job is None or not (job.state in jobs.ACTIVE or jobs.now() - (job.finished_at or job.created_at) < RECENT_JOB):
        return None
    return jobs.as_dict(job)


def accounts() -> list[tuple[User, int]]:
    """Every stored account with its post count, by handle."""
    users = db.session.scalars(sa.select(User).order_by(sa.func.lower(User.username))).all()
    counts = tweet_counts()
    return [(u, counts.get(u.id, 0)) for u in users]


def home_page(status: int = 200, **forms):
    """The home page; ``forms``: a refused form by the name its panel knows it (``compare``, ``add`` ...)."""
    listed = accounts()
    return render_template("web/index.html", accounts=listed, forms=forms, online=x.online()), status


@bp.get("/")
def index():
    """The accounts with their post counts, and every capability's home panel (the compare form first)."""
    return home_page()


def account_page(username: str, status: int = 200, **context):
    """An account's page; ``context`` goes to its panels (a refused form in ``forms``, a panel's result)."""
    account = find_user(username)
    job = recent(jobs.latest_for(username))
    if account is None:
        if job is None:
            find_user_or_404(username)  # answers the 404
        return render_template("web/pending.html", username=job["username"], job=job)
    page = page_of(newest_posts(account), f"@{account.username}'s posts", POSTS_PER_PAGE)
    context.setdefault("forms", {})
    return render_template("web/user.html", user=account, page=page, job=job, context=context), status


@bp.get("/user/<username>")
def user(username: str):
    """An account's stored posts, newest first, the progress or outcome of its latest job, and its panels."""
    return account_page(username)


@bp.get("/healthz")
def healthz():
    """For load balancers: the app answers, and its database reads a table of the app and (SQLite) takes
    writes; otherwise a 503 that says what failed."""
    # Where rate limits are counted: "shared" (Redis), "per process" (each gunicorn worker on its own) or "off".
    limits = current_app.extensions.get("rate_limits", "off")
    problem = database.problem()
    if problem:
        return {"status": "error", "database": problem, "rate_limits": limits}, 503
    return {"status": "ok", "database": "ok", "rate_limits": limits}
