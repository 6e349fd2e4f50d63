"""The JSON API's parent: every capability's API blueprint nests under ``/api`` here, so the rules that
hold for all of it live in one place: bodies must be JSON, no CSRF token is asked for (the API takes no
cookie's word for who calls), and one per-address rate limit is shared by its routes. Ids are strings, as
in the X API, since they exceed what JavaScript numbers hold.

Also here, the API's read-only view of what the shell shows: the stored accounts and their posts, and
the registry of trained models.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, current_app, request

from twitapp import registry
from twitapp.extensions import csrf, db, limiter
from twitapp.models import ModelVersion, Tweet, User, find_user_or_404, newest_posts, tweet_counts
from twitapp.web.paging import page_of

# One budget per client address shared by the API's routes; the job endpoint that pages poll is left out.
api_limit = limiter.shared_limit(lambda: current_app.config["RATELIMIT_API"], scope="api")

PER_PAGE = 20
MAX_PER_PAGE = 100

accounts = Blueprint("accounts", __name__)


def only_json_bodies():
    """A POST to the API says it sends JSON, even when its body may be left out. A form on another site
    can post only as text, form data or a file, never as JSON, so this keeps such a form from reaching the
    API, which takes no CSRF token (where no sign-in is asked for, it would act for anyone)."""
    if request.method == "POST" and request.mimetype != "application/json":
        abort(415, description="Send the body as JSON, with Content-Type: application/json (even an empty one).")


class Api:
    """The ``/api`` parent of one app: capabilities ``add`` their blueprints, then ``register`` mounts it."""

    def __init__(self) -> None:
        self.bp = Blueprint("api", __name__, url_prefix="/api")
        self.bp.before_request(only_json_bodies)
        self.children: list[Blueprint] = []
        self.add(accounts)

    def add(self, child: Blueprint) -> None:
        self.bp.register_blueprint(child)
        self.children.append(child)

    def register(self, app: Flask) -> None:
        app.register_blueprint(self.bp)
        # CSRF exemptions are looked up by the blueprint that served the request: each nested one (the
        # parent, made anew for every app, serves no view of its own, so it needs none).
        for blueprint in self.children:
            csrf.exempt(blueprint)


def add_model_kind(app: Flask, kind: str) -> None:
    """List ``kind``'s trained models at ``GET /api/models?kind=...`` (the first kind added is the default)."""
    app.extensions.setdefault("model_kinds", []).append(kind)


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
        "id": user.platform_id,  # the network's id for the account (X's number, a DID, instance/id)
        "platform": user.platform,
        "username": user.username,
        "profile_url": user.profile_url,
        "name": user.name,
        "source": user.source,
        "tweet_count": count,
        "newest_tweet_id": str(user.newest_tweet_id) if user.newest_tweet_id else None,
        "fetched_at": user.fetched_at.isoformat() if user.fetched_at else None,
    }


def tweet_json(tweet: Tweet, user: User | None = None) -> dict:
    return {
        "id": tweet.post_id,  # the network's id for the post (X's number, an AT URI, instance/id)
        **({"url": user.post_url(tweet.post_id)} if user is not None else {}),
        "text": tweet.text,
        "created_at": tweet.created_at.isoformat(),
        "lang": tweet.lang,
        "public_metrics": {
            "like_count": tweet.like_count,
            "retweet_count": tweet.retweet_count,
            "reply_count": tweet.reply_count,
        },
    }


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


@accounts.get("/users")
@api_limit
def users():
    """Every stored account with its post count."""
    counts = tweet_counts()
    rows = db.session.scalars(sa.select(User).order_by(sa.func.lower(User.username)))
    return {"users": [user_json(u, counts.get(u.id, 0)) for u in rows]}


@accounts.get("/users/<username>/tweets")
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
        "tweets": [tweet_json(t, user) for t in page.items],
    }


@accounts.get("/models")
@api_limit
def models():
    """The registry, oldest first: virality models, or ``?kind=style`` for the accounts' style models."""
    kinds = current_app.extensions.get("model_kinds", [])
    kind = request.args.get("kind", kinds[0] if kinds else "")
    if kind not in kinds:
        abort(400, description='"kind" must be ' + " or ".join(kinds) + ".")
    return {"models": [model_json(r) for r in registry.versions(kind)]}
