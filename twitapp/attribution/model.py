"""Author attribution: which of the chosen accounts would most likely post a text, how sure, and why.

A multinomial logistic regression (recipe.py) is fitted at request time on the chosen accounts' stored
posts, so any combination of accounts works without a training step. This module answers a request:
it checks the text and the accounts, loads the stored features of their posts, fits the model with its
trust figure (or takes both from the cache while the posts are unchanged), and ranks the accounts.

Besides the ranking, every answer carries:
- probabilities divided by a temperature, so that "70%" comes true about 70% of the time (trust.py);
- a trust figure: the same recipe fitted on all but each account's newest posts and scored on those
  (trust.py);
- whether that figure is clearly better than chance, and a warning when it is not (trust.py);
- reasons: what each word of the text pulls toward each account against the others (reasons.py).

A request may carry a thread: several posts answered as one (thread.py pools them), each post also
answered alone so that one pointing elsewhere shows (answer.py holds the answer's shape).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import sqlalchemy as sa

from twitapp.attribution.answer import Candidate, PostAnswer, Prediction
from twitapp.attribution.reasons import colour_of, explain
from twitapp.attribution.recipe import Model, TrainingData, Weighting, fits_for, one_blas_thread, softmax
from twitapp.attribution.thread import MAX_POSTS, Threads, pool
from twitapp.attribution.trust import Trust, chance_warning, evaluate_held_out
from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.ingest import features
from twitapp.models import Tweet, User, find_user
from twitapp.sources.records import checked_text

__all__ = ["Candidate", "Fitted", "PostAnswer", "Prediction", "PredictionError", "predict_author"]

MAX_TEXT_CHARS = 280
MAX_CANDIDATES = 20
# Part of every cache key: bump it with any change to the recipe (recipe.py, trust.py).
MODEL_VERSION = 3
# A request fits at most this many of each account's newest posts: style drifts, and fitting time grows
# with the posts while accuracy hardly does past a thousand.
MAX_TRAIN_POSTS = 1000
# Below this many posts an account's style is too thinly sampled for a fair answer.
FEW_POSTS = 50

CACHE_ENTRIES = 16


class PredictionError(UserError, ValueError):
    """The request cannot be answered as asked; the message says what to change."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------------
# Data


def account_stats(ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per account: stored posts and the newest post id, in one query (the cache key's substance)."""
    rows = db.session.execute(
        sa.select(Tweet.user_id, sa.func.count(), sa.func.max(Tweet.id))
        .where(Tweet.user_id.in_(ids))
        .group_by(Tweet.user_id)
    )
    stats = {uid: (0, 0) for uid in ids}
    stats.update({uid: (int(count), int(newest)) for uid, count, newest in rows})
    return stats


def load_training_data(ids: Sequence[int]) -> TrainingData:
    """The stored features of each account's newest MAX_TRAIN_POSTS posts, newest first.

    Features that are missing or were written by older code are computed and saved on the way.
    """
    rank = (
        sa.func.row_number()
        .over(partition_by=Tweet.user_id, order_by=(Tweet.created_at.desc(), Tweet.id.desc()))
        .label("rank")
    )
    # Rank on the narrow columns first and fetch the feature blobs of the chosen posts only: sorting
    # rows that carry their blobs is several times slower on SQLite.
    ranked = sa.select(Tweet.id, Tweet.user_id, rank).where(Tweet.user_id.in_(ids)).subquery()
    rows = db.session.execute(
        sa.select(ranked.c.id, ranked.c.user_id, Tweet.features, ranked.c.rank)
        .join(Tweet, Tweet.id == ranked.c.id)
        .where(ranked.c.rank <= MAX_TRAIN_POSTS)
        .order_by(ranked.c.user_id, ranked.c.rank)
    ).all()
    blobs = [r.features for r in rows]
    stale = [i for i, blob in enumerate(blobs) if not features.is_current(blob)]
    if stale:
        blobs = _refresh_features(rows, blobs, stale)
    labels = np.fromiter((r.user_id for r in rows), dtype=np.int64, count=len(rows))
    newest_first = np.fromiter((r.rank - 1 for r in rows), dtype=np.int64, count=len(rows))
    return TrainingData(features.decode(blobs), labels, newest_first)


def _refresh_features(rows, blobs: list, stale: list[int]) -> list:
    """Compute features for posts stored before they existed (or by older code), and keep them."""
    ids = [rows[i].id for i in stale]
    texts = dict(db.session.execute(sa.select(Tweet.id, Tweet.text).where(Tweet.id.in_(ids))).all())
    fresh = features.encode([texts[i] for i in ids])
    try:
        db.session.execute(sa.update(Tweet), [{"id": i, "features": b} for i, b in zip(ids, fresh, strict=True)])
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()  # saving is an optimisation; the answer does not depend on it
    blobs = list(blobs)
    for i, blob in zip(stale, fresh, strict=True):
        blobs[i] = blob
    return blobs


# ---------------------------------------------------------------------------------------------------
# The fit and its cache


@dataclass
class Fitted:
    """A model with its trust figures, as a request fits them and the cache keeps them."""

    model: Model
    trust: Trust
    threads: Threads  # how a thread of n posts is pooled, and its own trust figure (thread.py)


def fit_with_trust(data: TrainingData, classes: Sequence[int]) -> Fitted:
    """The held-out model for the trust figure, then the final model on every post, started from it."""
    with one_blas_thread():
        weighting = Weighting.fit(data.counts)
        fits = fits_for(weighting.transform(data.counts))
        trust, temperature, start, held_out = evaluate_held_out(data, fits, classes)
        model, _ = fits.fit(np.ones(len(data.labels), dtype=bool), data.labels, start)
    threads = Threads(held_out, temperature, trust)
    return Fitted(Model(weighting, model, threads.temperature(1)), trust, threads)


class ModelCache:
    """Fitted models by the exact state of their accounts' posts; least recently used ones go first.

    The key holds each account's post count and newest post id and MODEL_VERSION, so new posts or a
    new recipe miss the cache instead of being served a stale model.
    """

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[tuple, Fitted] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Fitted | None:
        with self._lock:
            fitted = self._items.get(key)
            if fitted is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return fitted

    def put(self, key: tuple, fitted: Fitted) -> None:
        with self._lock:
            self._items[key] = fitted
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


cache = ModelCache()


# ---------------------------------------------------------------------------------------------------
# Requests


def check_text(text: str | None) -> str:
    """The text to attribute, trimmed, or an error for an empty or over-long one."""
    return checked_text(text, MAX_TEXT_CHARS, "Type the text of a post to attribute.", PredictionError)


def resolve_users(usernames: Sequence[str]) -> list[User]:
    """The stored accounts for these handles, checked: two or more, distinct, known."""
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


def fitted_for(users: Sequence[User]) -> tuple[Fitted, dict[int, tuple[int, int]]]:
    """The model and trust figure for these accounts, from the cache when their posts are unchanged."""
    ids = sorted(u.id for u in users)
    stats = account_stats(ids)
    empty = [u for u in users if stats[u.id][0] == 0]
    if empty:
        raise PredictionError(
            f"@{empty[0].username} has no stored posts yet, so there is nothing to learn its style from. "
            "Fetch or import its posts first."
        )
    key = (MODEL_VERSION, features.FEATURE_VERSION, tuple((uid, *stats[uid]) for uid in ids))
    fitted = cache.get(key)
    if fitted is None:
        fitted = fit_with_trust(load_training_data(ids), ids)
        cache.put(key, fitted)
    return fitted, stats


def check_posts(texts: str | Sequence[str | None] | None) -> list[str]:
    """The posts of a thread, each trimmed, or an error that names the post to change.

    A single text (or a thread of one) gets the single text's messages.
    """
    if texts is None or isinstance(texts, str):
        return [check_text(texts)]
    texts = list(texts)
    if len(texts) > MAX_POSTS:
        raise PredictionError(f"A thread holds at most {MAX_POSTS} posts; this one has {len(texts)}.")
    if len(texts) <= 1:
        return [check_text(texts[0] if texts else None)]
    return [
        checked_text(
            text,
            MAX_TEXT_CHARS,
            f"Post {number} is empty: type its text or take it out of the thread.",
            PredictionError,
            noun=f"Post {number}",
        )
        for number, text in enumerate(texts, start=1)
    ]


def predict_author(usernames: Sequence[str], texts: str | Sequence[str | None] | None) -> Prediction:
    """Rank the chosen accounts by how likely each is to have posted ``texts`` (one text or a thread's
    posts), with the trust figure for threads of that length, each post's own answer, and reasons."""
    posts = check_posts(texts)
    users = resolve_users(usernames)
    fitted, stats = fitted_for(users)
    counts = features.count_matrix(posts)
    logits = fitted.model.logits(counts)
    # A thread of one: softmax(logits / T_1), exactly Model.probabilities.
    proba = pool(logits, fitted.threads.temperature(len(posts)))
    by_id = {int(uid): float(p) for uid, p in zip(fitted.model.classes, proba, strict=True)}
    ranked = sorted(
        (Candidate(u.username, u.name, by_id[u.id], stats[u.id][0]) for u in users),
        key=lambda c: c.probability,
        reverse=True,
    )
    ranking = [replace(c, colour=colour_of(place)) for place, c in enumerate(ranked)]
    place_of = {c.username: place for place, c in enumerate(ranking)}
    names = {u.id: u.username for u in users}
    alone = softmax(logits / fitted.model.temperature)  # each post as it would be answered by itself
    answers = []
    for post, row in zip(posts, alone, strict=True):
        username = names[int(fitted.model.classes[row.argmax()])]
        answers.append(PostAnswer(post, username, float(row.max()), ranking[place_of[username]].colour))
    id_of = {u.username: u.id for u in users}
    reasons = explain(fitted.model, posts, [id_of[c.username] for c in ranking], names, counts)
    trust = fitted.threads.trust(len(posts))
    warnings = [w for w in [chance_warning(trust)] if w] + [
        f"@{u.username} has only {stats[u.id][0]} stored posts; with fewer than {FEW_POSTS} its style is thinly "
        "sampled and answers involving it are less reliable."
        for u in users
        if stats[u.id][0] < FEW_POSTS
    ]
    return Prediction(posts, ranking, trust, warnings, reasons, answers)


def evaluate_accounts(usernames: Sequence[str]) -> tuple[list[User], Trust]:
    """The trust figure and confusion table for these accounts (the page's figure, from the same code)."""
    users = resolve_users(usernames)
    fitted, _ = fitted_for(users)
    return users, fitted.trust
