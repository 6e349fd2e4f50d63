"""Will it get likes? A model of P(likes > threshold) from what is known when a post goes out.

The model reads a post's text (TF-IDF word and character n-grams) and, unless ``text_only``, its dense
features: shape, time, followers and history (features.py). It is a logistic regression without class
weights, so its probabilities can be read as they are. ``TEXT_ONLY`` recipes use the text alone: the
baseline the full model has to beat (bench/virality.py).

Versions live in the registry (``ModelVersion``, kind "virality"; registry.py): one champion in service,
challengers that lost (their figures and decision kept, their bytes dropped), and retired champions.
``train_and_compare`` trains a challenger on the older posts, scores it and the champion on the same
fresh held-out posts, and lets the contest's rules decide (contest.py); each run is copied to MLflow when
one is set up (tracking.py). The champion is never removed before its successor is stored, so the service
always has a model once it has had one. A model is stored as arrays and text (artefacts.py), never as a
pickle: a row of the registry is data, never code.

This module is the virality capability's model for the pages, API, commands and jobs: the names they and
the tests use from its other modules (``Post``, ``MARGIN``, ``ViralityError``, ...) are here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from twitapp import artefacts, registry
from twitapp.extensions import db
from twitapp.models import ModelVersion
from twitapp.virality import contest
from twitapp.virality.contest import MARGIN
from twitapp.virality.errors import NoViralityModel, ViralityError
from twitapp.virality.features import HISTORY, Post, normalise_text, post_to_score, shape_features, stored_posts
from twitapp.virality.tracking import log_to_mlflow

KIND = "virality"
# Bump when the stored layout changes; older versions are then never loaded. Format 1 was a pickle, which is
# never read: such a champion is not in service, and the next run trains its successor.
FORMAT = 2
C = 1.0


class ViralityModel:
    """TF-IDF text features, and (unless ``text_only``) the dense features, into a logistic regression."""

    def __init__(self, threshold: int = 0, text_only: bool = False) -> None:
        self.threshold = threshold
        self.text_only = text_only
        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"[#@]?\w+")
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=3)
        self.classifier = LogisticRegression(C=C, max_iter=2000)

    def _design(self, posts: Sequence[Post], fit: bool = False) -> sp.csr_matrix:
        texts = [normalise_text(p.text) for p in posts]
        if fit:
            self.words.fit(texts)
            self.chars.fit(texts)
        parts = [self.words.transform(texts), self.chars.transform(texts)]
        if not self.text_only:
            parts.append(sp.csr_matrix(shape_features(posts, self.threshold)))
        return sp.hstack(parts, format="csr")

    def labels(self, posts: Sequence[Post]) -> np.ndarray:
        return np.array([p.likes > self.threshold for p in posts], dtype=int)

    def fit(self, posts: Sequence[Post]) -> ViralityModel:
        y = self.labels(posts)
        if len(set(y.tolist())) < 2:
            raise ViralityError(
                f"Every post has {'more than' if y[0] else 'at most'} {self.threshold} likes: "
                "there is nothing to tell apart."
            )
        self.classifier.fit(self._design(posts, fit=True), y)
        return self

    def probabilities(self, posts: Sequence[Post]) -> np.ndarray:
        return self.classifier.predict_proba(self._design(posts))[:, 1]

    def to_bytes(self) -> bytes:
        """The fitted model as data: its question, the vectorizers' terms and idf, the regression's arrays."""
        words, words_meta = artefacts.vectorizer_parts("words", self.words)
        chars, chars_meta = artefacts.vectorizer_parts("chars", self.chars)
        arrays = {**words, **chars, **artefacts.classifier_parts("classifier", self.classifier)}
        meta = {"kind": KIND, "threshold": int(self.threshold), "text_only": bool(self.text_only)}
        return artefacts.pack(arrays, {**meta, "words": words_meta, "chars": chars_meta})

    @classmethod
    def from_bytes(cls, blob: bytes) -> ViralityModel:
        """A model from ``to_bytes``'s bytes; ArtefactError when they are anything else."""
        arrays, meta = artefacts.unpack(blob)
        artefacts.check(meta.get("kind") == KIND, "not a virality model")
        threshold, text_only = meta.get("threshold"), meta.get("text_only")
        artefacts.check(type(threshold) is int and threshold >= 0, f"threshold {threshold!r} is not a count")
        artefacts.check(isinstance(text_only, bool), "text_only is not true or false")
        model = cls(threshold, text_only)
        artefacts.restore_vectorizer("words", model.words, arrays, meta)
        artefacts.restore_vectorizer("chars", model.chars, arrays, meta)
        dense = 0 if text_only else shape_features([Post("", datetime.now(UTC))], threshold).shape[1]
        n_features = len(model.words.vocabulary_) + len(model.chars.vocabulary_) + dense
        artefacts.restore_classifier("classifier", model.classifier, arrays, n_features)
        classes = model.classifier.classes_.tolist()
        artefacts.check(classes == [0, 1], f"classes {classes} are not [0, 1]")
        return model


def evaluate(probabilities: np.ndarray, truth: np.ndarray) -> dict:
    """Accuracy, balanced accuracy and ROC AUC at a 0.5 cut, beside always answering the majority class,
    and whether the ROC AUC is clearly above chance (``better_than_chance``)."""
    predicted = (probabilities >= 0.5).astype(int)
    majority = int(truth.mean() >= 0.5)
    both = len(set(truth.tolist())) == 2
    metrics = {
        "rows": len(truth),
        "positive_share": round(float(truth.mean()), 4),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(truth, predicted)), 4),
        "roc_auc": round(float(roc_auc_score(truth, probabilities)), 4) if both else None,
        "majority_accuracy": round(float((truth == majority).mean()), 4),
    }
    low = auc_lower_bound(metrics)
    metrics["roc_auc_low"] = round(low, 4) if low is not None else None
    metrics["better_than_chance"] = better_than_chance(metrics)
    return metrics


CHANCE_AUC = 0.5


def auc_lower_bound(metrics: dict) -> float | None:
    """The lower end of the ROC AUC's 95% interval on its held-out posts (Hanley and McNeil's standard
    error, from the AUC and how many posts were on each side); None without an AUC."""
    auc, rows, share = metrics.get("roc_auc"), metrics.get("rows") or 0, metrics.get("positive_share") or 0
    positives = round(rows * share)
    negatives = rows - positives
    if auc is None or positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return auc - 1.96 * max(variance, 0.0) ** 0.5


def better_than_chance(metrics: dict) -> bool:
    """Whether a model's held-out ROC AUC is clearly above chance: its 95% interval lies above 0.5. Rows
    stored before this was recorded are judged from their figures the same way."""
    if "better_than_chance" in metrics:
        return bool(metrics["better_than_chance"])
    low = auc_lower_bound(metrics)
    return low is not None and low > CHANCE_AUC


# ---------------------------------------------------------------------------------------------------
# The registry and the champion in service


def champion_row() -> ModelVersion | None:
    return registry.champion(KIND, FORMAT)


def outdated_champion() -> ModelVersion | None:
    """The newest champion stored in a layout this code no longer reads (a pickle, format 1), if any."""
    return db.session.scalars(registry.champions(KIND).where(ModelVersion.format != FORMAT).limit(1)).first()


def load(row: ModelVersion) -> ViralityModel | None:
    """The row's model, or None when its bytes do not match their hash or are not a model this code stored
    (or were pruned: a refused challenger keeps none)."""
    return registry.read(row, _from_row, "virality model")


def _from_row(row: ModelVersion) -> ViralityModel:
    return ViralityModel.from_bytes(row.artefact)


# The champion, loaded once per process (only if its bytes match their hash and read back as a model; one
# that does not is remembered as such, not read again on every answer, and nothing serves in its place).
_service = registry.ModelCache(
    ModelVersion, lambda subject: registry.champions(KIND, FORMAT), _from_row, what="virality model"
)


def in_service() -> tuple[ModelVersion | None, ViralityModel | None]:
    """(the champion, its model); the model is None when the champion's bytes cannot be used."""
    serving = _service.get()
    return serving.current, serving.model


def predict(text: str, username: str | None = None, media: bool | None = None) -> tuple[float, ModelVersion]:
    row, model = in_service()
    if model is None:
        why = ""
        if row is not None:
            why = " (the champion's stored model cannot be read)"
        elif outdated_champion() is not None:
            why = " (the champion is stored in an older format, which is no longer read, and must be trained again)"
        raise NoViralityModel(f"No virality model is in service yet{why}: train one with `flask virality train`.")
    post = post_to_score(text, username, media=media)
    return float(model.probabilities([post])[0]), row


# ---------------------------------------------------------------------------------------------------
# A training run: the challenger against the champion


def train_and_compare(
    threshold: int | None = None,
    margin: float = MARGIN,
    progress: Callable[[int, int, str], None] | None = None,
) -> ModelVersion:
    """Train a challenger on the older posts, compare it with the champion on the fresh ones, promote or not.

    ``threshold``: the likes a post must exceed. None keeps the champion's question (that of a champion
    stored in an older format too, which is replaced without a contest, being unreadable); with no champion it
    is 0, unless 0 leaves fewer than MIN_PER_CLASS of the held-out posts on one side (accounts whose
    every post gets likes), in which case the training posts' median is asked instead.
    """
    step = progress or (lambda done, total, message: None)
    step(0, 4, "Reading the stored posts.")
    posts = stored_posts()
    champion, champion_model = in_service()
    outdated = outdated_champion() if champion is None else None
    found = contest.standing(champion, champion_model is not None, outdated, threshold)
    db.session.rollback()  # all read: no transaction stays open while the model is fitted
    train, held_out = contest.split_posts(posts, found)
    threshold, because = contest.choose_threshold(train, held_out, found.threshold)
    step(1, 4, f"Training a challenger on {len(train):,} posts.")
    challenger = ViralityModel(threshold).fit(train)
    step(2, 4, f"Scoring it and the champion on the {len(held_out):,} newest posts.")
    metrics, theirs = _score(challenger, champion_model if found.contested else None, held_out)
    decision = contest.decide(metrics, theirs, found, held_out, margin, because)
    step(3, 4, "Recording the outcome.")
    row = _record(challenger, train, metrics, decision)
    log_to_mlflow(row, len(train))
    step(4, 4, "Done.")
    return row


def _score(
    challenger: ViralityModel, champion: ViralityModel | None, held_out: Sequence[Post]
) -> tuple[dict, dict | None]:
    """The challenger's figures on the held-out posts, and the champion's on the same posts (None: none)."""
    truth = challenger.labels(held_out)
    metrics = evaluate(challenger.probabilities(held_out), truth)
    theirs = evaluate(champion.probabilities(held_out), truth) if champion is not None else None
    return metrics, theirs


def _record(challenger: ViralityModel, train: Sequence[Post], metrics: dict, decision: dict) -> ModelVersion:
    """Store the challenger's row: promoted, it becomes the champion and retires the old one in the same
    transaction, before it is stored; refused, its bytes go, and its row, figures and decision stay for the
    registry's pages."""
    promote = decision["promoted"]
    blob = challenger.to_bytes()
    row = ModelVersion(
        kind=KIND,
        format=FORMAT,
        status=registry.CHAMPION if promote else registry.CHALLENGER,
        created_at=datetime.now(UTC),
        trained_from=train[0].created_at,
        trained_to=train[-1].created_at,
        params={"threshold": challenger.threshold, "c": C, "history": HISTORY},
        metrics=metrics,
        decision=decision,
        sha256=artefacts.digest(blob),
        artefact=blob,
    )
    if not promote:
        registry.prune(row)
    registry.record(row)
    db.session.commit()
    _service.clear()
    return row
