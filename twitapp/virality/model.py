"""Will it get likes? A model of P(likes > threshold) from what is known when a post goes out.

Features (all known at posting time):
- the text: word unigrams and bigrams, character n-grams within words (TF-IDF);
- its shape: length, words, hashtags, mentions, links, whether it carries media (as the source recorded
  it, else a photo link in the text), whether it opens with a mention, questions and exclamations;
- when: hour of day and day of week (UTC);
- who: the account's follower count when the source gave one, and how its earlier posts did: the share
  that got likes and their mean likes (log), over its last HISTORY posts at least MATURE old
  when this one went out (younger posts' likes are still coming in).

The model is a logistic regression without class weights, so its probabilities can be read as they are.
``TEXT_ONLY`` recipes use the text alone: the baseline the full model has to beat (bench/virality.py).

Versions live in the registry (``ModelVersion``, kind "virality"; registry.py): one champion in service,
challengers that lost (their figures and decision kept, their bytes dropped), and retired champions.
``train_and_compare`` trains a challenger on the older posts, scores it and the champion on the same
fresh held-out posts (newer than anything either was trained on), and promotes it only when its ROC AUC
is better by ``margin``. The champion is never removed before its successor is stored, so the service
always has a model once it has had one. A model is stored as arrays and text (artefacts.py), never as a
pickle: a row of the registry is data, never code.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from twitapp import artefacts, registry
from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.models import ModelVersion, Tweet, User, find_user
from twitapp.sources.records import checked_text, clean_text

log = logging.getLogger(__name__)

KIND = "virality"
# Bump when the stored layout changes; older versions are then never loaded. Format 1 was a pickle, which is
# never read: such a champion is not in service, and the next run trains its successor.
FORMAT = 2
MAX_TEXT_CHARS = 280
# Posts younger than this may still gather likes: they are neither trained nor tested on.
MATURE = timedelta(days=2)
HELD_OUT = 0.2  # the newest share of posts held out to compare models on
MIN_POSTS = 60
MIN_HELD_OUT = 20
MIN_PER_CLASS = 5  # held-out posts needed on each side of the threshold to measure a model
MARGIN = 0.01  # ROC AUC a challenger must gain over the champion to replace it
HISTORY = 100
HISTORY_PRIOR = 5.0  # pseudo-posts pulling a short history's like share toward the overall share
C = 1.0
MLFLOW_EXPERIMENT = "hypotweet-virality"

_LINK = re.compile(r"https?://\S+|\bpic\.twitter\.com/\S+")
_MEDIA = re.compile(r"\bpic\.twitter\.com/|/photo/\d|/video/\d")


class ViralityError(UserError, ValueError):
    """The request cannot be answered as asked; the message says what to change."""


class NoViralityModel(ViralityError):
    """No model is in service yet (or the champion's bytes no longer match their hash)."""


@dataclass(frozen=True, slots=True)
class Post:
    """A post as the model sees it. ``history`` is the account's earlier (likes, posted at), oldest first."""

    text: str
    created_at: datetime
    likes: int = 0
    followers: int | None = None
    history: tuple[tuple[int, datetime], ...] = ()
    media: bool | None = None  # None: not known, so read from the text (a photo link)


def _normalise(text: str) -> str:
    text = _LINK.sub(" http ", text)
    return re.sub(r"@\w+", "@user", text)


def shape_features(posts: Sequence[Post], threshold: int) -> np.ndarray:
    """The dense part: shape, time, followers and history, roughly on unit scales."""
    rows = []
    for post in posts:
        text = post.text
        hour, weekday = post.created_at.astimezone(UTC).hour, post.created_at.astimezone(UTC).weekday()
        shape = [
            math.log1p(len(text)) / 6,
            math.log1p(len(text.split())) / 4,
            min(text.count("#"), 5) / 5,
            min(len(re.findall(r"@\w+", text)), 5) / 5,
            min(len(_LINK.findall(text)), 3) / 3,
            float(post.media if post.media is not None else bool(_MEDIA.search(text))),
            float(text.lstrip().startswith("@")),
            float("?" in text),
            min(text.count("!"), 3) / 3,
        ]
        when = [0.0] * 31
        when[hour] = 1.0
        when[24 + weekday] = 1.0
        known = post.followers is not None
        who = [float(known), math.log1p(post.followers or 0) / 15 if known else 0.0]
        cutoff = post.created_at - MATURE  # earlier posts count once their likes have settled, as in training
        earlier = [likes for likes, at in post.history if at <= cutoff][-HISTORY:]
        liked = sum(likes > threshold for likes in earlier)
        who += [
            (liked + HISTORY_PRIOR * 0.5) / (len(earlier) + HISTORY_PRIOR),
            math.log1p(np.mean(earlier)) / 10 if earlier else 0.0,
            math.log1p(len(earlier)) / math.log1p(HISTORY),
        ]
        rows.append(shape + when + who)
    return np.asarray(rows, dtype=np.float64)


class ViralityModel:
    """TF-IDF text features, and (unless ``text_only``) the dense features, into a logistic regression."""

    def __init__(self, threshold: int = 0, text_only: bool = False) -> None:
        self.threshold = threshold
        self.text_only = text_only
        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"[#@]?\w+")
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=3)
        self.classifier = LogisticRegression(C=C, max_iter=2000)

    def _design(self, posts: Sequence[Post], fit: bool = False) -> sp.csr_matrix:
        texts = [_normalise(p.text) for p in posts]
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
    """Accuracy, balanced accuracy and ROC AUC at a 0.5 cut, beside always answering the majority class."""
    predicted = (probabilities >= 0.5).astype(int)
    majority = int(truth.mean() >= 0.5)
    both = len(set(truth.tolist())) == 2
    return {
        "rows": len(truth),
        "positive_share": round(float(truth.mean()), 4),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "balanced_accuracy": round(float(balanced_accuracy_score(truth, predicted)), 4),
        "roc_auc": round(float(roc_auc_score(truth, probabilities)), 4) if both else None,
        "majority_accuracy": round(float((truth == majority).mean()), 4),
    }


# ---------------------------------------------------------------------------------------------------
# Posts from the database


def stored_posts() -> list[Post]:
    """Every stored post old enough for its likes to have settled, oldest first, with its account's history."""
    cutoff = datetime.now(UTC) - MATURE
    rows = db.session.execute(
        sa.select(Tweet.user_id, Tweet.text, Tweet.created_at, Tweet.like_count, Tweet.has_media, User.followers_count)
        .join(User, User.id == Tweet.user_id)
        .order_by(Tweet.created_at, Tweet.id)
    ).all()
    histories: dict[int, list[tuple[int, datetime]]] = {}
    posts = []
    for user_id, text, created_at, likes, media, followers in rows:
        history = histories.setdefault(user_id, [])
        if created_at <= cutoff:
            posts.append(Post(clean_text(text), created_at, likes, followers, tuple(history[-2 * HISTORY :]), media))
        history.append((likes, created_at))
    return posts


def post_to_score(text: str, username: str | None = None, media: bool | None = None) -> Post:
    """A typed text as if posted now by a stored account, whose stored posts are its history; ``media``:
    whether a photo or video goes with it (None: read from the text)."""
    text = checked_text(text, MAX_TEXT_CHARS, "Type the text of a post to score.", ViralityError)
    at = datetime.now(UTC)
    if not username:
        return Post(text, at, media=media)
    account = find_user(username)
    if account is None:
        raise ViralityError(f"No stored account is called @{username.strip().lstrip('@')}.")
    history = db.session.execute(
        sa.select(Tweet.like_count, Tweet.created_at)
        .where(Tweet.user_id == account.id)
        .order_by(Tweet.created_at.desc())
        .limit(2 * HISTORY)
    ).all()
    earlier = tuple((likes, when) for likes, when in reversed(history))
    return Post(text, at, 0, account.followers_count, earlier, media)


# ---------------------------------------------------------------------------------------------------
# The registry


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
    champion_id = champion.id if champion is not None else None
    outdated = outdated_champion() if champion is None else None
    asked = champion if champion is not None else outdated  # an outdated champion's question still stands
    champion_threshold = asked.params.get("threshold") if asked is not None else None
    if threshold is None and asked is not None:
        threshold = int(champion_threshold or 0)
    if outdated is not None:
        uncontested = f"The champion (version {outdated.id}) was stored in an older format, which is no longer read."
    elif champion is None:
        uncontested = "No champion was in service."
    elif champion_threshold != threshold:
        champion_model = None  # it answers another question; the challenger replaces it without a contest
        uncontested = "The champion answered another threshold."
    else:
        uncontested = (
            "The champion's stored model could not be loaded (its bytes do not match their hash, "
            "or are not a model this code reads)."
        )
    fresh_after = champion.trained_to if champion_model is not None else None
    db.session.rollback()  # all read: no transaction stays open while the model is fitted
    chosen_because = None
    cut = int(len(posts) * (1 - HELD_OUT))
    if fresh_after is not None:
        cut = max(cut, sum(p.created_at <= fresh_after for p in posts))
    train, held_out = posts[:cut], posts[cut:]
    if len(train) < MIN_POSTS:
        raise ViralityError(
            f"Training needs at least {MIN_POSTS} posts at least {MATURE.days} days old; {len(train)} are stored."
        )
    if len(held_out) < MIN_HELD_OUT:
        raise ViralityError(
            f"Only {len(held_out)} posts are newer than what the champion (version {champion_id}) was trained "
            f"on; at least {MIN_HELD_OUT} are needed to compare fairly. Fetch newer posts first (flask refresh)."
            if fresh_after is not None
            else f"At least {MIN_HELD_OUT} posts must be held out to test on; {len(held_out)} are."
        )
    median = int(np.median([p.likes for p in train]))
    if threshold is None:
        threshold = 0
        rare = _fewer_side(held_out, 0)
        if rare < MIN_PER_CLASS <= _fewer_side(held_out, median):
            threshold = median
            chosen_because = (
                f"Asked about more than {median} likes (the training posts' median): more than 0 left only "
                f"{rare:,} of the {len(held_out):,} newest posts on one side."
            )
    check_question(held_out, threshold, median)
    step(1, 4, f"Training a challenger on {len(train):,} posts.")
    challenger = ViralityModel(threshold).fit(train)
    truth = challenger.labels(held_out)
    step(2, 4, f"Scoring it and the champion on the {len(held_out):,} newest posts.")
    metrics = evaluate(challenger.probabilities(held_out), truth)
    contest = {"margin": margin, "held_out": len(held_out), "held_out_from": held_out[0].created_at.isoformat()}
    if champion_model is not None:
        theirs = evaluate(champion_model.probabilities(held_out), truth)
        contest["champion"] = {"version": champion_id, **theirs}
        gain = metrics["roc_auc"] - theirs["roc_auc"]  # both sides hold posts (check_question), so both are set
        promote = gain >= margin
        contest["reason"] = (
            f"ROC AUC {metrics['roc_auc']} against the champion's {theirs['roc_auc']} on the same posts: "
            + (f"better by {gain:.4f}, at least the margin {margin}." if promote else f"not better by {margin}.")
        )
    else:
        promote = True
        contest["reason"] = uncontested
    if chosen_because:
        contest["reason"] = f"{chosen_because} {contest['reason']}"
    contest["promoted"] = promote
    step(3, 4, "Recording the outcome.")
    blob = challenger.to_bytes()
    row = ModelVersion(
        kind=KIND,
        format=FORMAT,
        status=registry.CHAMPION if promote else registry.CHALLENGER,
        created_at=datetime.now(UTC),
        trained_from=train[0].created_at,
        trained_to=train[-1].created_at,
        params={"threshold": threshold, "c": C, "history": HISTORY},
        metrics=metrics,
        decision=contest,
        sha256=artefacts.digest(blob),
        artefact=blob,
    )
    if not promote:  # it lost: its bytes go, its row, metrics and decision stay for the registry's pages
        registry.prune(row)
    registry.record(row)  # a new champion retires the old one in the same transaction, before it is stored
    db.session.commit()
    _service.clear()
    log_to_mlflow(row, len(train))
    step(4, 4, "Done.")
    return row


def _fewer_side(posts: Sequence[Post], threshold: int) -> int:
    """How many posts fall on the rarer side of ``threshold`` likes."""
    above = sum(p.likes > threshold for p in posts)
    return min(above, len(posts) - above)


def check_question(held_out: Sequence[Post], threshold: int, median: int) -> None:
    """Refuse a threshold that leaves too few held-out posts on one side to measure a model on."""
    fewer = _fewer_side(held_out, threshold)
    if fewer >= MIN_PER_CLASS:
        return
    n, above = len(held_out), sum(p.likes > threshold for p in held_out)
    if fewer == 0:
        counted = f"All {n:,} held-out posts have {'more than' if above else 'at most'} {threshold} likes"
    else:
        side = "at most" if above > n - above else "more than"
        counted = (
            f"Only {fewer:,} of the {n:,} held-out posts {'has' if fewer == 1 else 'have'} {side} {threshold} likes"
        )
    hint = (
        f" A question with two real answers, such as more than {median} likes (the training posts' median), "
        f"can be asked with --threshold {median} or the threshold field on the models page."
        if median != threshold and _fewer_side(held_out, median) >= MIN_PER_CLASS
        else " Wait for more varied posts, or ask about another number of likes."
    )
    raise ViralityError(
        f"{counted}: at least {MIN_PER_CLASS} on each side are needed to tell a model better or worse.{hint}"
    )


def log_to_mlflow(row: ModelVersion, trained_on: int) -> None:
    """With ``MLFLOW_TRACKING_URI`` set (and MLflow installed), record the run there too.

    The registry in the database is what the service reads; MLflow is a copy for people who track runs
    there, so a tracking server that is down is logged and does not undo the training.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    try:
        import mlflow
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but MLflow is not installed (pipenv install mlflow-skinny)")
        return
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(MLFLOW_EXPERIMENT)
        with mlflow.start_run(run_name=f"virality-{row.id}"):
            mlflow.log_params(
                {**row.params, "version": row.id, "trained_on": trained_on, "margin": row.decision["margin"]}
            )
            mlflow.log_metrics({k: v for k, v in row.metrics.items() if isinstance(v, int | float)})
            champion = row.decision.get("champion")
            if champion and champion.get("roc_auc") is not None:
                mlflow.log_metric("champion_roc_auc", champion["roc_auc"])
            mlflow.set_tags({"status": row.status, "promoted": str(row.decision["promoted"]).lower()})
            mlflow.log_dict(row.decision, "decision.json")
    except Exception:
        log.exception("virality model %s could not be logged to MLflow at %s", row.id, uri)
