"""The pages a person uses: the account list, adding an account, an account's posts, comparing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import jobs, labelled, sentiment, topic, uploads
from .archive import ArchiveError
from .extensions import db, limiter
from .forms import AddAccountForm, CompareForm, SentimentForm, TrainSentimentForm, UpdateForm
from .models import Job, SentimentModel, User, find_user, find_user_or_404, newest_posts, tweet_counts
from .predict import MAX_TEXT_CHARS, PredictionError, predict_author
from .twitter import XAPIError

bp = Blueprint("main", __name__)

POSTS_PER_PAGE = 25
# An account page shows its latest job while it runs, and its outcome for this long after.
RECENT_JOB = timedelta(minutes=10)
MODEL_HISTORY = 10  # trained sentiment models listed on the page


def _recent(job: Job | None) -> dict | None:
    """A job worth showing: under way, or ended within RECENT_JOB."""
    if job is None or not (job.state in jobs.ACTIVE or jobs.now() - job.created_at < RECENT_JOB):
        return None
    return jobs.as_dict(job)


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


def _limit(setting: str, methods: tuple[str, ...] = ("POST",)):
    """A rate limit read from the config when a request comes (so tests and deployments can set it)."""
    return limiter.limit(lambda: current_app.config[setting], methods=list(methods))


@bp.post("/users")
@_limit("RATELIMIT_ADD")
def add_user():
    """Start fetching an account through the X API (a stored one gets its newer posts); watch it run."""
    form = AddAccountForm()
    if not form.validate_on_submit():
        return _index(add_form=form, status=400)
    if not current_app.config.get("X_BEARER_TOKEN"):
        form.username.errors.append(jobs.NO_TOKEN)
        return _index(add_form=form, status=400)
    job = jobs.submit("add", form.username.data)
    return redirect(url_for("main.user", username=job.username))


@bp.post("/user/<username>/update")
@_limit("RATELIMIT_ADD")
def update_user(username: str):
    """Fetch an account's newer posts, as a job shown on its page."""
    account = find_user_or_404(username)
    if UpdateForm().validate_on_submit() and current_app.config.get("X_BEARER_TOKEN") and account.source == "x":
        jobs.submit("add", account.username)
    return redirect(url_for("main.user", username=account.username))


@bp.get("/user/<username>")
def user(username: str):
    """An account's stored posts, newest first, and the progress or outcome of its latest fetch."""
    account = find_user(username)
    job = _recent(jobs.latest_for(username))
    if account is None:
        if job is None:
            find_user_or_404(username)  # answers the 404
        return render_template("pending.html", username=job["username"], job=job)
    page = db.paginate(newest_posts(account), per_page=POSTS_PER_PAGE, max_per_page=POSTS_PER_PAGE)
    can_update = bool(current_app.config.get("X_BEARER_TOKEN")) and account.source == "x"
    mix = sentiment.account_mix(account.id)
    return render_template(
        "user.html",
        user=account,
        page=page,
        mix=mix[-12:],
        mix_most=max((sum(counts.values()) for _, counts in mix[-12:]), default=1),
        job=job,
        update_form=UpdateForm() if can_update else None,
    )


@bp.post("/compare")
@_limit("RATELIMIT_COMPARE")
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


def _sentiment_page(form: SentimentForm, train_form: TrainSentimentForm, result=None, status: int = 200):
    row, _ = sentiment.in_service()
    strongest = max((abs(v) for _, v in result.words), default=0.0) if result else 0.0
    history = db.session.scalars(
        sa.select(SentimentModel).order_by(SentimentModel.id.desc()).limit(MODEL_HISTORY)
    ).all()
    return (
        render_template(
            "sentiment.html",
            form=form,
            train_form=train_form,
            result=result,
            model=row,
            history=history,
            job=_recent(jobs.latest_of("sentiment-train")),
            strongest=strongest or 1.0,
            max_chars=sentiment.MAX_TEXT_CHARS,
            upload_mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 2**20,
        ),
        status,
    )


@bp.route("/sentiment", methods=["GET", "POST"])
@_limit("RATELIMIT_COMPARE")
def sentiment_page():
    """Type a text, see its label, a score bar and the words that drove it; train a model on your files."""
    form = SentimentForm()
    result, status = None, 200
    if form.validate_on_submit():
        try:
            _, _, (result,) = sentiment.analyse([form.text.data or ""])
        except sentiment.SentimentError as exc:
            form.text.errors.append(str(exc))
            status = 400
    elif form.is_submitted():
        status = 400
    return _sentiment_page(form, TrainSentimentForm(formdata=None), result, status)


@bp.post("/sentiment/train")
@_limit("RATELIMIT_ADD")
def train_sentiment():
    """Check the labelled files now (a bad one is named at once), then train on them as a job."""
    form = TrainSentimentForm()
    if not form.validate_on_submit():
        return _sentiment_page(SentimentForm(formdata=None), form, status=400)
    sent = [(f.filename or "file", f.read()) for f in form.files.data or [] if f and f.filename]
    try:
        if not sent:
            raise sentiment.SentimentError("Choose one or more labelled files to train on.")
        rows = []
        for name, raw in sent:
            rows += labelled.parse_labelled(raw, name)
        sentiment.check_training(labelled.deduplicate(rows)[0])
    except (ArchiveError, sentiment.SentimentError) as exc:
        form.files.errors = [str(exc)]
        return _sentiment_page(SentimentForm(formdata=None), form, status=400)
    active = jobs.latest_of("sentiment-train")
    if active is not None and active.state in jobs.ACTIVE and not jobs.is_stale(active):
        form.files.errors = ["A model is being trained already; wait for it to finish, then send these again."]
        return _sentiment_page(SentimentForm(formdata=None), form, status=409)
    jobs.submit("sentiment-train", uploads=uploads.store(sent))
    return redirect(url_for("main.sentiment_page") + "#training")


@bp.get("/topic")
@_limit("RATELIMIT_COMPARE", methods=("GET",))
def topic_page():
    """Recent posts for a hashtag or query, each labelled, with the mix; new ones appear as they come."""
    query = request.args.get("q", "")
    found, error, status = None, None, 200
    if query.strip():
        try:
            found = topic.recent(query)
        except topic.TopicError as exc:
            error, status = str(exc), 400
        except XAPIError as exc:
            error, status = str(exc), 502
    online = bool(current_app.config.get("X_BEARER_TOKEN"))
    return render_template("topic.html", query=query, found=found, error=error, online=online), status


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


@bp.app_template_filter("percent")
def format_percent(probability: float) -> str:
    """A probability as a person reads it: one decimal, and no false certainty at either end."""
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability * 100:.1f}%"
