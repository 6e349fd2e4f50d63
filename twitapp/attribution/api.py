"""``POST /api/predict``: the accounts ranked for a text, as the result page shows them."""

from __future__ import annotations

from flask import Blueprint, abort

from twitapp.attribution.model import PredictionError, predict_author
from twitapp.web.api import api_limit, json_object

bp = Blueprint("attribution", __name__)


@bp.post("/predict")
@api_limit
def predict():
    """``{"usernames": [...], "text": "..."}`` -> the accounts ranked by probability, with chance level.

    Beside the ranking: the held-out accuracy with the lower end of its 95% interval, and
    ``better_than_chance`` (false when that lower end is not above chance, null when nothing was held
    out), and each account's reasons, in ranking order.
    """
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
