"""``POST /api/predict``: the accounts ranked for a text or a thread of posts, as the result page shows them."""

from __future__ import annotations

from flask import Blueprint, abort

from twitapp.attribution.model import PredictionError, predict_author
from twitapp.web.api import api_limit, json_object

bp = Blueprint("attribution", __name__)


@bp.post("/predict")
@api_limit
def predict():
    """``{"usernames": [...], "text": "..."}`` or ``"texts": [...]`` (a thread of up to 25 posts) -> the
    accounts ranked by probability for the whole thread, with chance level and each post's own top account.

    Beside the ranking: the held-out accuracy (for threads of that length) with the lower end of its 95%
    interval, and ``better_than_chance`` (false when that lower end is not above chance, null when
    nothing was held out), and each account's reasons, in ranking order.
    """
    body = json_object('{"usernames": ["a", "b"], "text": "..."}')
    usernames, text, texts = body.get("usernames"), body.get("text"), body.get("texts")
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        abort(400, description='"usernames" must be a list of account names.')
    if text is not None and not isinstance(text, str):
        abort(400, description='"text" must be a string.')
    if texts is not None:
        if text is not None:
            abort(400, description='Send "text" (one post) or "texts" (a thread of posts), not both.')
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            abort(400, description='"texts" must be a list of posts, each a string.')
    try:
        prediction = predict_author(usernames, text if texts is None else texts)
    except PredictionError as exc:
        abort(exc.status, description=str(exc))
    return prediction.as_dict()
