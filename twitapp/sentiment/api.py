"""``POST /api/sentiment`` (labels, scores and word weights for texts) and ``GET /api/topic`` (a query's
recent posts, labelled)."""

from __future__ import annotations

from flask import Blueprint, abort, request

from twitapp.sentiment import model as sentiment
from twitapp.sentiment import topic
from twitapp.sentiment.topic import topic_limit
from twitapp.sources.x import XAPIError
from twitapp.web.api import api_limit, json_object

bp = Blueprint("sentiment", __name__)


@bp.get("/sentiment/models")
@api_limit
def sentiment_models():
    """Every trained sentiment model, newest first, and which one is in service (none: VADER scores)."""
    return {"models": sentiment.history()}


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
