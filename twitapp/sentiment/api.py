"""``POST /api/sentiment`` (labels, scores and word weights for texts) and ``GET /api/topic`` (a query's
recent posts, labelled)."""

from __future__ import annotations

from flask import Blueprint, abort, request

from twitapp.sentiment import model as sentiment
from twitapp.sentiment import topic
from twitapp.sentiment.topic import topic_limit
from twitapp.sources.errors import SourceError
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
    # VADER has no held-out check of its own: whether it beats chance is not known (null).
    model = {"backend": backend, "version": row.id if row else None, "better_than_chance": None}
    if row is not None:
        model["held_out_macro_recall"] = row.metrics["held_out"]["macro_recall"]
        model["held_out_macro_recall_low"] = sentiment.macro_recall_low(row.metrics["held_out"])
        model["chance"] = round(sentiment.CHANCE, 4)
        model["better_than_chance"] = sentiment.better_than_chance(row.metrics)
    return {"model": model, "results": [s.as_dict() for s in scored]}


@bp.get("/topic")
@api_limit
@topic_limit
def topic_posts():
    """``?q=QUERY[&network=x|mastodon|bluesky|stored][&since_id=ID]`` -> recent posts for the query, newest
    first, labelled, with the mix; ``since_id`` is the ``newest_id`` of an earlier answer."""
    since = request.args.get("since_id", "")
    if since and not (since.isascii() and since.isprintable() and " " not in since and len(since) <= 300):
        abort(400, description='"since_id" must be a post id: the "newest_id" of an earlier answer.')
    try:
        found = topic.recent(request.args.get("q"), since or None, request.args.get("network"))
    except topic.TopicError as exc:
        abort(400, description=str(exc))
    except SourceError as exc:
        abort(502, description=str(exc))
    return found.as_dict()
