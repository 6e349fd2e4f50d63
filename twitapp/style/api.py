"""``POST /api/users/<username>/generate`` (posts in an account's voice) and ``.../style`` (train its model)."""

from __future__ import annotations

from flask import Blueprint, abort

from twitapp import jobs
from twitapp.auth import operator_required
from twitapp.jobs.routes import job_url
from twitapp.models import find_user_or_404
from twitapp.style import model as generate
from twitapp.web.api import api_limit, json_object, model_json

bp = Blueprint("style", __name__)


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
    return {
        "username": account.username,
        "posts": posts,
        "model": model_json(row),
        # Its held-out bits per character against guessing each character at random; null: not recorded.
        "better_than_chance": generate.better_than_chance(row),
    }


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
    job = jobs.submit(generate.TRAIN_JOB, account.username, engine=engine)
    url = job_url(job)
    return {**jobs.as_dict(job), "url": url}, 202, {"Location": url}
