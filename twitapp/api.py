"""The JSON API. Ids are strings, as in the X API, since they exceed what JavaScript numbers hold."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, request, url_for

from . import generate, jobs, sentiment, topic, virality
from .archive import ArchiveError, check_username
from .auth import operator_required
from .extensions import db, limiter
from .ingest import IngestError
from .models import Job, ModelVersion, Tweet, User, find_user_or_404, newest_posts, tweet_counts
from .paging import page_of
from .predict import PredictionError, predict_author
from .security import topic_limit
from .twitter import XAPIError

bp = Blueprint("api", __name__)
# One budget per client address shared by the API's routes; the job endpoint that pages poll is left out.
api_limit = limiter.shared_limit(lambda: current_app.config["RATELIMIT_API"], scope="api")

PER_PAGE = 20
MAX_PER_PAGE = 100


@bp.before_request
def only_json_bodies():
    """A POST to the API says it sends JSON, even when its body may be left out. A form on another site
    can post only as text, form data or a file, never as JSON, so this keeps such a form from reaching the
    API, which takes no CSRF token (where no sign-in is asked for, it would act for anyone)."""
    if request.method == "POST" and request.mimetype != "application/json":
        abort(415, description="Send the body as JSON, with Content-Type: application/json (even an empty one).")


def json_object(example: str, required: str | None = None, optional: bool = False) -> dict:
    """The request's JSON object (``{}`` for no body when ``optional``), or a 400 showing ``example``.

    ``required`` names a field that must be there as a string.
    """
    if optional and not request.get_data():
        return {}  # no body at all; a body that is not JSON is refused like any other
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser gives up on arrays or objects nested some thousand deep
        abort(400, description="The JSON is nested too deeply to read; no request needs that.")
    if not isinstance(body, dict) or (required and not isinstance(body.get(required), str)):
        abort(400, description=f"Send a JSON object: {example}.")
    return body


def user_json(user: User, count: int) -> dict:
    return {
        "id": str(user.id),
        "username": user.username,
        "name": user.name,
        "source": user.source,
        "tweet_count": count,
        "newest_tweet_id": str(user.newest_tweet_id) if user.newest_tweet_id else None,
        "fetched_at": user.fetched_at.isoformat() if user.fetched_at else None,
    }


def tweet_json(tweet: Tweet) -> dict:
    return {
        "id": str(tweet.id),
        "text": tweet.text,
        "created_at": tweet.created_at.isoformat(),
        "lang": tweet.lang,
        "public_metrics": {
            "like_count": tweet.like_count,
            "retweet_count": tweet.retweet_count,
            "reply_count": tweet.reply_count,
        },
    }


@bp.get("/users")
@api_limit
def users():
    """Every stored account with its post count."""
    counts = tweet_counts()
    rows = db.session.scalars(sa.select(User).order_by(sa.func.lower(User.username)))
    return {"users": [user_json(u, counts.get(u.id, 0)) for u in rows]}


@bp.get("/users/<username>/tweets")
@api_limit
def user_tweets(username: str):
    """An account's posts, newest first; ``page`` and ``per_page`` (at most 100) page through them."""
    user = find_user_or_404(username)
    page = page_of(newest_posts(user), f"@{user.username}'s posts", PER_PAGE, MAX_PER_PAGE)
    return {
        "user": user_json(user, page.total or 0),
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "total": page.total,
        "tweets": [tweet_json(t) for t in page.items],
    }


@bp.post("/predict")
@api_limit
def predict():
    """``{"usernames": [...], "text": "..."}`` -> the accounts ranked by probability, with chance level."""
    body = json_object('{"usernames": ["a", "b"], "text": "..."}')
    usernames, text = body.get("usernames"), body.get("text")
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        abort(400, description='"usernames" must be a list of account names.')
    if text is not None and not isinstance(text, str):
        abort(400, description='"text" must be a string.')
    try:
        prediction = predict_author(usernames, text)
    except PredictionError as exc:
        abort(exc.status, description=str(exc))
    return prediction.as_dict()


@bp.post("/users")
@api_limit
@operator_required
def add_user():
    """``{"username": "..."}`` -> 202 and the job that fetches the account (poll its ``url``)."""
    body = json_object('{"username": "an X username"}', required="username")
    try:
        handle = check_username(body["username"])
    except ArchiveError as exc:
        abort(400, description=str(exc))
    if not current_app.config.get("X_BEARER_TOKEN"):
        abort(503, description=jobs.NO_TOKEN)
    job = jobs.submit("add", handle)
    url = url_for("api.job", job_id=job.id)
    return {**jobs.as_dict(job), "url": url}, 202, {"Location": url}


@bp.delete("/users/<username>")
@api_limit
@operator_required
def delete_user(username: str):
    """Remove the account with its posts, style models and jobs: ``{"deleted": "...", "posts": N}``."""
    account = find_user_or_404(username)
    try:
        handle, posts = jobs.delete_account(account.username)
    except jobs.Busy as exc:
        abort(409, description=str(exc))
    except IngestError as exc:  # gone in the meantime
        abort(404, description=str(exc))
    return {"deleted": handle, "posts": posts}


@bp.get("/export")
@api_limit
@operator_required
def export_all():
    """Every account and post, as the home page's download gives it (for backups on a schedule)."""
    from .views import export_response

    return export_response()


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    """A job's state and progress: what the pages poll."""
    found = db.session.get(Job, job_id) if job_id < 2**31 else None  # larger ids are never made
    if found is None:
        abort(404, description=f"There is no job {job_id}.")
    return {**jobs.as_dict(found), "url": url_for("api.job", job_id=job_id)}


@bp.post("/sentiment")
@api_limit
def score_sentiment():
    """``{"texts": [...]}`` -> a label, score and per-word weights for each text.

    Optional: ``"backend": "vader" | "trained"``, and ``"words": false`` to skip the per-word weights
    (several times faster for large batches).
    """
    body = json_object('{"texts": ["...", "..."]}')
    explain = body.get("words", True)
    if not isinstance(explain, bool):
        abort(400, description='"words" must be true or false.')
    try:
        backend, row, scored = sentiment.analyse(body.get("texts"), body.get("backend"), explain)
    except sentiment.SentimentError as exc:
        abort(400, description=str(exc))
    model = {"backend": backend, "version": row.id if row else None}
    if row is not None:
        model["held_out_macro_recall"] = row.metrics["held_out"]["macro_recall"]
    return {"model": model, "results": [s.as_dict() for s in scored]}


@bp.get("/topic")
@api_limit
@topic_limit
def topic_posts():
    """``?q=QUERY[&since_id=ID]`` -> recent posts for the query, newest first, labelled, with the mix."""
    since = request.args.get("since_id", "")
    if since and not (since.isascii() and since.isdigit() and len(since) <= 19 and 0 < int(since) < 2**63):
        abort(400, description='"since_id" must be a post id: a whole number from 1 to 9223372036854775807.')
    try:
        found = topic.recent(request.args.get("q"), int(since) if since else None)
    except topic.TopicError as exc:
        abort(400, description=str(exc))
    except XAPIError as exc:
        abort(502, description=str(exc))
    return found.as_dict()


@bp.post("/virality")
@api_limit
def score_virality():
    """``{"text": "...", "username": optional, "media": optional}`` -> the champion's P(the post gets likes)."""
    body = json_object('{"text": "...", "username": "optional"}', required="text")
    username, media = body.get("username"), body.get("media")
    if username is not None and not isinstance(username, str):
        abort(400, description='"username" must be a string.')
    if media is not None and not isinstance(media, bool):
        abort(400, description='"media" must be true or false.')
    try:
        probability, row = virality.predict(body["text"], username, media)
    except virality.NoViralityModel as exc:
        abort(503, description=str(exc))
    except virality.ViralityError as exc:
        abort(400, description=str(exc))
    return {
        "probability": round(probability, 4),
        "threshold": row.params["threshold"],
        "model": model_json(row),
    }


@bp.get("/models")
@api_limit
def models():
    """The registry, oldest first: virality models, or ``?kind=style`` for the accounts' style models."""
    kind = request.args.get("kind", virality.KIND)
    if kind not in (virality.KIND, generate.KIND):
        abort(400, description=f'"kind" must be {virality.KIND} or {generate.KIND}.')
    rows = db.session.scalars(sa.select(ModelVersion).where(ModelVersion.kind == kind).order_by(ModelVersion.id))
    return {"models": [model_json(r) for r in rows]}


def model_json(row: ModelVersion) -> dict:
    return {
        "version": row.id,
        "kind": row.kind,
        "subject": row.subject,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "trained_from": row.trained_from.isoformat(),
        "trained_to": row.trained_to.isoformat(),
        "params": row.params,
        "metrics": row.metrics,
        "decision": row.decision,
    }


@bp.post("/users/<username>/generate")
@api_limit
def generate_posts(username: str):
    """``{"count": 5, "temperature": 0.7, "opening": ""}`` (all optional) -> posts in the account's voice."""
    account = find_user_or_404(username)
    body = json_object('{"count": 5, "temperature": 0.7, "opening": ""}', optional=True)
    try:
        posts, row = generate.write_like(
            account.username,
            body.get("count", 5),
            body.get("temperature", generate.DEFAULT_TEMPERATURE),
            body.get("opening", ""),
        )
    except generate.NoStyleModel as exc:
        abort(409, description=str(exc))
    except generate.StyleError as exc:
        abort(400, description=str(exc))
    return {"username": account.username, "posts": posts, "model": model_json(row)}


@bp.post("/users/<username>/style")
@api_limit
@operator_required
def train_style(username: str):
    """Start training the account's style model (``{"engine": "lstm"}`` where PyTorch is installed); 202 + job."""
    account = find_user_or_404(username)
    engine = json_object('{"engine": "kneser-ney"}', optional=True).get("engine", "kneser-ney")
    try:
        generate.check_engine(engine)
    except generate.StyleError as exc:
        abort(400, description=str(exc))
    job = jobs.submit("style-train", account.username, engine=engine)
    url = url_for("api.job", job_id=job.id)
    return {**jobs.as_dict(job), "url": url}, 202, {"Location": url}
