"""``POST /api/virality``: the champion's probability that a post gets likes."""

from __future__ import annotations

from flask import Blueprint, abort

from twitapp.virality import model as virality
from twitapp.web.api import api_limit, json_object, model_json

bp = Blueprint("virality", __name__)


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
        # False: the model's held-out ROC AUC is not clearly above chance; do not lean on the probability.
        "better_than_chance": virality.better_than_chance(row.metrics),
        "model": model_json(row),
    }
