"""Author attribution: which of the chosen accounts would most likely post a text.

A multiclass logistic regression is fitted at request time on the chosen accounts' stored embeddings,
so any combination of accounts works without a training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from flask import current_app
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import embed
from .extensions import db
from .models import Tweet, User, find_user

MAX_TEXT_CHARS = 280
MAX_CANDIDATES = 20


class PredictionError(ValueError):
    """The request cannot be answered as asked; the message says what to change."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Candidate:
    username: str
    name: str
    probability: float
    posts: int


@dataclass(frozen=True)
class Prediction:
    text: str
    ranking: list[Candidate]

    @property
    def chance(self) -> float:
        """What guessing would score: one in the number of accounts."""
        return 1.0 / len(self.ranking)

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "chance": round(self.chance, 4),
            "ranking": [
                {"username": c.username, "name": c.name, "probability": round(c.probability, 4), "posts": c.posts}
                for c in self.ranking
            ],
        }


def check_text(text: str | None) -> str:
    """The text to attribute, trimmed, or an error for an empty or over-long one."""
    text = (text or "").strip()
    if not text:
        raise PredictionError("Type the text of a post to attribute.")
    if len(text) > MAX_TEXT_CHARS:
        raise PredictionError(f"A post can be at most {MAX_TEXT_CHARS} characters; this one has {len(text)}.")
    return text


def resolve_users(usernames: Sequence[str]) -> list[User]:
    """The stored accounts for these handles, checked: two or more, distinct, known, each with posts."""
    handles = [u.strip().lstrip("@") for u in usernames if u and u.strip().lstrip("@")]
    seen: dict[str, str] = {}
    for handle in handles:
        if handle.lower() in seen:
            raise PredictionError(f"@{handle} was chosen twice; pick two or more different accounts.")
        seen[handle.lower()] = handle
    if len(seen) < 2:
        raise PredictionError("Pick at least two different accounts to compare.")
    if len(seen) > MAX_CANDIDATES:
        raise PredictionError(f"Compare at most {MAX_CANDIDATES} accounts at a time; {len(seen)} were chosen.")
    users = []
    for handle in seen.values():
        user = find_user(handle)
        if user is None:
            raise PredictionError(f"No stored account is called @{handle}. Add it first.", status=404)
        users.append(user)
    return users


def load_training_data(users: Sequence[User]) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Every stored embedding of these accounts, with the account id of each row, in one query."""
    ids = [u.id for u in users]
    rows = db.session.execute(
        sa.select(Tweet.user_id, Tweet.embedding).where(Tweet.user_id.in_(ids)).order_by(Tweet.user_id, Tweet.id)
    ).all()
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    features = embed.stack(r[1] for r in rows) if rows else np.zeros((0, embed.DIM), np.float32)
    counts = {uid: int((labels == uid).sum()) for uid in ids}
    return features, labels, counts


def predict_author(usernames: Sequence[str], text: str | None) -> Prediction:
    """Rank the chosen accounts by how likely each is to have posted ``text``."""
    text = check_text(text)
    users = resolve_users(usernames)
    features, labels, counts = load_training_data(users)
    empty = [u for u in users if counts[u.id] == 0]
    if empty:
        raise PredictionError(
            f"@{empty[0].username} has no stored posts yet, so there is nothing to learn its style from. "
            "Fetch or import its posts first."
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(features, labels)
    vector = embed.embed_texts([text], current_app.config["SPACY_MODEL"])
    proba = model.predict_proba(vector)[0]
    by_id = {int(cls): float(p) for cls, p in zip(model.classes_, proba, strict=True)}
    ranking = sorted(
        (Candidate(u.username, u.name, by_id[u.id], counts[u.id]) for u in users),
        key=lambda c: c.probability,
        reverse=True,
    )
    return Prediction(text, ranking)
