"""Author attribution: which of the chosen accounts would most likely post a text, how sure, and why.

A multinomial logistic regression is fitted at request time on the chosen accounts' stored posts, so
any combination of accounts works without a training step. Its features are the hashed n-gram counts
stored with each post (features.py), weighted by TF-IDF over the chosen accounts' posts, each block
normalised to unit length and scaled by a weight chosen on development data.

Besides the ranking, every answer carries:
- probabilities divided by a temperature, so that "70%" comes true about 70% of the time: fitted on
  the held-out posts of the trust figure below, drawn toward a prior chosen on development data, as
  how sure a model may be depends on how alike the chosen accounts are (bench/authorship.py prints
  the reliability table);
- a trust figure: the same recipe fitted on all but each account's newest posts and scored on those;
- reasons: what each word of the text contributed toward the top account against the runner-up.

Speed: a request without a cached model makes two fits (held out, then final), so both share one
TF-IDF design. With up to SPAN_MAX_ROWS posts they are solved in the span of the posts (SpanFits),
otherwise over the n-gram columns with the sparse products split over two threads (PrimalFits); the
two reach the same model. bench/authorship.py prints the latency.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
import sqlalchemy as sa
from scipy.linalg.blas import daxpy as axpy
from sklearn.utils import murmurhash3_32
from threadpoolctl import ThreadpoolController

from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.ingest import features
from twitapp.models import Tweet, User, find_user
from twitapp.sources.records import checked_text

MAX_TEXT_CHARS = 280
MAX_CANDIDATES = 20

# Chosen on the development data (bench/authorship.py --tune prints the grid they came from).
# MODEL_VERSION is part of every cache key: bump it with any change to the recipe.
MODEL_VERSION = 2
BLOCK_WEIGHTS = {"chars": 1.0, "words": 1.0}
C = 20.0
MIN_DF = 2
# The temperature when there is nothing held out to fit it on, and the prior it is drawn toward:
# the fitted one minimises held-out log loss + TEMPERATURE_PULL * (log T - log TEMPERATURE)^2.
TEMPERATURE = 1.2
TEMPERATURE_PULL = 0.05
TEMPERATURE_RANGE = (0.3, 5.0)
# A request fits at most this many of each account's newest posts: style drifts, and fitting time grows
# with the posts while accuracy hardly does past a thousand.
MAX_TRAIN_POSTS = 1000
MAX_ITER = 100
GTOL = 1e-3
# Fits over more stored entries than this split their sparse products over two threads.
PARALLEL_NNZ = 200_000
# Up to this many training posts a fit works in the span of the posts (SpanFits), beyond it over the
# n-gram columns; GRAM_DENSE_DF: columns in more posts than this go through BLAS in the Gram matrix.
SPAN_MAX_ROWS = 1200
GRAM_DENSE_DF = 40

# The trust figure holds out each account's newest posts: this share of them, at most this many.
HOLDOUT_SHARE = 0.2
HOLDOUT_MAX = 50
# Below this many posts an account's style is too thinly sampled for a fair answer.
FEW_POSTS = 50

CACHE_ENTRIES = 16
# Below this many stored entries, Weighting.transform maps columns by binary search instead of a table.
SEARCH_MAX_NNZ = 20_000


class PredictionError(UserError, ValueError):
    """The request cannot be answered as asked; the message says what to change."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------------
# The recipe


@dataclass
class Weighting:
    """TF-IDF as learned from training posts: per block, the kept columns and their IDF."""

    columns: list[np.ndarray]
    idf: list[np.ndarray]

    @classmethod
    def fit(cls, counts: sp.csr_matrix) -> Weighting:
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=features.N_FEATURES)
        columns, idf = [], []
        for block in features.BLOCKS:
            block_df = df[block.offset : block.offset + features.BLOCK_SIZE]
            keep = np.flatnonzero(block_df >= MIN_DF)
            columns.append((keep + block.offset).astype(np.int64))
            idf.append((np.log((1.0 + n) / (1.0 + block_df[keep])) + 1.0).astype(np.float32))
        return cls(columns, idf)

    def transform(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear TF times IDF; each block scaled to unit length, then by its weight.

        Done on the arrays of the sparse matrix: hashed indices are mapped to kept columns (kept is in
        ascending order), many times faster than selecting columns of a 2^21-wide matrix. Many entries
        (a fit) go through a lookup table; a few (a typed text) through binary search, which saves
        building the 8 MB table on every answer.
        """
        kept = np.concatenate(self.columns)
        if counts.nnz > SEARCH_MAX_NNZ:
            lookup = np.full(features.N_FEATURES, -1, dtype=np.int32)
            lookup[kept] = np.arange(len(kept), dtype=np.int32)
            columns = lookup[counts.indices]
        elif len(kept):
            columns = np.minimum(np.searchsorted(kept, counts.indices), len(kept) - 1).astype(np.int32)
            columns[kept[columns] != counts.indices] = -1
        else:
            columns = np.full(counts.nnz, -1, dtype=np.int32)
        present = columns >= 0
        n = counts.shape[0]
        rows = np.repeat(np.arange(n), np.diff(counts.indptr))[present]
        columns = columns[present]
        idf = np.concatenate(self.idf)
        data = np.log1p(counts.data[present].astype(np.float32)) * idf[columns]
        block = counts.indices[present] >> features.BLOCK_BITS  # blocks are BLOCK_SIZE apart
        slot = rows * len(features.BLOCKS) + block
        lengths = np.sqrt(np.bincount(slot, weights=data.astype(np.float64) ** 2, minlength=n * len(features.BLOCKS)))
        lengths[lengths == 0] = 1.0
        weights = np.array([BLOCK_WEIGHTS[b.name] for b in features.BLOCKS])
        data *= (weights[block] / lengths[slot]).astype(np.float32)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return sp.csr_matrix((data, columns, indptr), shape=(n, len(kept)))

    def contributions(self, counts: sp.csr_matrix, delta: np.ndarray) -> dict[int, float]:
        """For one text: each of its hashed features' share of ``delta @ x``, keyed by hashed index.

        The transformed columns are the kept hashed indices in ascending order (blocks are laid out in
        order), so the hashed index of a transformed column is found by position.
        """
        row = self.transform(counts)
        kept = np.concatenate(self.columns)
        return {int(kept[c]): float(v * delta[c]) for c, v in zip(row.indices, row.data, strict=True)}


def minimise_lbfgs(fun, x0: np.ndarray, *, max_iter: int, gtol: float, memory: int = 10) -> np.ndarray:
    """Limited-memory BFGS with a backtracking line search, for ``fun(x) -> (value, gradient)``.

    scipy's L-BFGS-B spends about 7 ms of bookkeeping per iteration on the 10^5 to 10^6 parameters of
    an n-gram model here, more than the objective itself costs; this plain NumPy version spends well
    under a millisecond, which is most of what a request-time fit is made of.
    """
    x = np.ascontiguousarray(x0, dtype=np.float64)
    value, grad = fun(x)
    history: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(max_iter):
        if np.max(np.abs(grad)) <= gtol:
            break
        direction = grad.copy()  # the two-loop recursion turns this into H @ grad
        alphas = []
        for s, y, rho in reversed(history):
            alpha = rho * (s @ direction)
            axpy(y, direction, a=-alpha)  # in place: no temporary the size of the model
            alphas.append(alpha)
        if history:
            s, y, _ = history[-1]
            direction *= (s @ y) / (y @ y)
        else:
            direction /= max(1.0, float(np.linalg.norm(grad)))
        for (s, y, rho), alpha in zip(history, reversed(alphas), strict=True):
            axpy(s, direction, a=alpha - rho * (y @ direction))
        direction *= -1.0
        slope = grad @ direction
        if slope >= 0:  # not a descent direction: forget the curvature pairs, follow the gradient
            direction, slope, history = -grad, -(grad @ grad), []
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_grad = fun(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-8:
                break
            step /= 2
        s, y = candidate - x, new_grad - grad
        if (sy := s @ y) > 1e-12:
            history.append((s, y, 1.0 / sy))
            del history[:-memory]
        converged = abs(value - new_value) <= 1e-9 * max(1.0, abs(value))
        x, value, grad = candidate, new_value, new_grad
        if converged:
            break
    return x


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """Two worker threads, made on first use so that each (forked) server process gets its own."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hypotweet-fit")
        return _pool


class _Product:
    """``X @ W`` and ``X.T @ G`` for a fixed sparse X, the bulk of every objective evaluation.

    X is kept in float32 in both orientations; large products are cut in two halves computed on two
    threads (scipy's sparse kernels release the GIL), which nearly halves a big fit's time.
    """

    def __init__(self, X: sp.csr_matrix | np.ndarray) -> None:
        if not sp.issparse(X):  # a dense design (the span coordinates below): BLAS does it in one go
            self.rows, self.columns = [np.asarray(X, dtype=np.float64)], [np.ascontiguousarray(X.T, dtype=np.float64)]
            return
        X = sp.csr_matrix(X, dtype=np.float32)
        XT = X.T.tocsr()
        parts = 2 if X.nnz >= PARALLEL_NNZ else 1
        self.rows = [X[chunk] for chunk in _halves(X.shape[0], parts)]
        self.columns = [XT[chunk] for chunk in _halves(XT.shape[0], parts)]

    @staticmethod
    def _apply(pieces: list, M: np.ndarray) -> np.ndarray:
        if isinstance(pieces[0], np.ndarray):
            return pieces[0] @ M
        M = M.astype(np.float32)
        if len(pieces) == 1:
            return (pieces[0] @ M).astype(np.float64)
        return np.vstack(list(_threads().map(lambda piece: piece @ M, pieces))).astype(np.float64)

    def times(self, W: np.ndarray) -> np.ndarray:
        return self._apply(self.rows, W)

    def transposed_times(self, G: np.ndarray) -> np.ndarray:
        return self._apply(self.columns, G)


def _halves(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


@dataclass
class Softmax:
    """Multinomial logistic regression: one weight row and intercept per class."""

    classes: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray

    @classmethod
    def fit(cls, X: sp.csr_matrix, labels: np.ndarray, *, init: Softmax | None = None) -> Softmax:
        """Minimise mean cross-entropy plus ||W||^2 / (2 C n): scikit-learn's objective, rescaled."""
        classes, y = np.unique(labels, return_inverse=True)
        n, d = X.shape
        k = len(classes)
        onehot = np.zeros((n, k))
        onehot[np.arange(n), y] = 1.0
        product = _Product(X)
        reg = 1.0 / (C * n)

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W, b = theta[: d * k].reshape(d, k), theta[d * k :]
            Z = product.times(W) + b
            Z -= Z.max(axis=1, keepdims=True)
            expz = np.exp(Z)
            norm = expz.sum(axis=1, keepdims=True)
            weights = theta[: d * k]
            loss = float((np.log(norm).ravel() - (Z * onehot).sum(axis=1)).mean() + 0.5 * reg * (weights @ weights))
            G = (expz / norm - onehot) / n
            gradient = np.empty_like(theta)
            gradient[: d * k] = product.transposed_times(G).ravel()
            axpy(weights, gradient[: d * k], a=reg)
            gradient[d * k :] = G.sum(axis=0)
            return loss, gradient

        theta0 = np.zeros(d * k + k)
        if init is not None and np.array_equal(init.classes, classes) and init.coef.shape == (k, d):
            theta0 = np.concatenate([init.coef.T.ravel(), init.intercept])
        theta = minimise_lbfgs(objective, theta0, max_iter=MAX_ITER, gtol=GTOL)
        return cls(classes, theta[: d * k].reshape(d, k).T.copy(), theta[d * k :].copy())

    def decision_function(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept


class PrimalFits:
    """Fits on subsets of the rows of one weighted design, over its feature columns."""

    def __init__(self, X: sp.csr_matrix) -> None:
        self.X = X

    def fit(self, rows: np.ndarray, labels: np.ndarray, start: object = None) -> tuple[Softmax, object]:
        model = Softmax.fit(self.X[rows], labels[rows], init=start)
        return model, model


class SpanFits:
    """The same fits, computed in the span of the posts' rows: exact, and far cheaper for few posts.

    With an L2 penalty the optimal weights are a combination of the training rows, W = X_r.T @ A.
    Writing the rows' Gram matrix X_r @ X_r.T = L @ L.T (Cholesky), the coordinates U = L.T @ A give
    X_r @ W = L @ U and ||W|| = ||U||: the same objective over an n x n dense design instead of
    n x (tens of thousands) sparse one. L-BFGS then takes the very same steps on vectors a few
    thousand long, and the Gram matrix is computed once for the held-out fit and the final fit.
    """

    def __init__(self, X: sp.csr_matrix) -> None:
        self.X = X
        self.gram = gram(X)

    def fit(self, rows: np.ndarray, labels: np.ndarray, start: object = None) -> tuple[Softmax, object]:
        index = np.flatnonzero(rows)
        K = self.gram[np.ix_(index, index)]
        # A touch of ridge keeps the factorisation defined when posts repeat or have no kept features.
        jitter = 1e-6 * max(float(np.trace(K)) / len(index), 1e-12)
        L = scipy.linalg.cholesky(K + jitter * np.eye(len(index)), lower=True, check_finite=False)
        init = None
        if start is not None:
            previous, coefficients = start
            init = Softmax(previous.classes, (L.T @ coefficients[index]).T, previous.intercept)
        span = Softmax.fit(L, labels[index], init=init)
        A = scipy.linalg.solve_triangular(L.T, span.coef.T, lower=False, check_finite=False)
        coefficients = np.zeros((self.X.shape[0], A.shape[1]))
        coefficients[index] = A
        weights = np.asarray(self.X[index].T @ A).T
        model = Softmax(span.classes, weights, span.intercept)
        return model, (model, coefficients)


def gram(X: sp.csr_matrix) -> np.ndarray:
    """``X @ X.T`` as a dense array: frequent columns through BLAS, the long tail as a sparse product.

    Both parts run in single precision, about twice as fast; the rounding is far below the ridge that
    SpanFits adds before factorising.
    """
    X = sp.csc_matrix(X, dtype=np.float32)
    frequent = np.diff(X.indptr) > GRAM_DENSE_DF
    dense = X[:, frequent].toarray()
    rare = X[:, ~frequent].tocsr()
    return (dense @ dense.T).astype(np.float64) + (rare @ rare.T).toarray().astype(np.float64)


def fits_for(X: sp.csr_matrix) -> PrimalFits | SpanFits:
    return SpanFits(X) if X.shape[0] <= SPAN_MAX_ROWS else PrimalFits(X)


@dataclass
class Model:
    """A fitted attribution model over some accounts (classes are account ids)."""

    weighting: Weighting
    classifier: Softmax
    temperature: float = TEMPERATURE

    @classmethod
    def fit(cls, counts: sp.csr_matrix, labels: np.ndarray) -> Model:
        """One model on all these posts, the way a request fits (no trust figure)."""
        weighting = Weighting.fit(counts)
        with _one_blas_thread():
            classifier, _ = fits_for(weighting.transform(counts)).fit(np.ones(len(labels), dtype=bool), labels)
        return cls(weighting, classifier, TEMPERATURE)

    @property
    def classes(self) -> np.ndarray:
        return self.classifier.classes

    def probabilities(self, counts: sp.csr_matrix) -> np.ndarray:
        """Calibrated class probabilities: the logits divided by the fitted temperature."""
        logits = self.classifier.decision_function(self.weighting.transform(counts)) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        expd = np.exp(logits)
        return expd / expd.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Data


@dataclass
class TrainingData:
    counts: sp.csr_matrix
    labels: np.ndarray  # account id of each row
    newest_first_rank: np.ndarray  # 0 for each account's newest post, 1 for the next, ...


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
# Trust


@dataclass
class Trust:
    """How the recipe did on these accounts' own newest posts when they were held out."""

    tested: int
    correct: int
    classes: list[int]
    confusion: np.ndarray  # rows: true account, columns: predicted account, in ``classes`` order

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tested if self.tested else None


def holdout_mask(data: TrainingData) -> np.ndarray:
    """Each account's newest posts, HOLDOUT_SHARE of them up to HOLDOUT_MAX (none under 5 posts)."""
    mask = np.zeros(len(data.labels), dtype=bool)
    for uid in np.unique(data.labels):
        rows = data.labels == uid
        n = int(rows.sum())
        held = min(HOLDOUT_MAX, int(n * HOLDOUT_SHARE)) if n >= 5 else 0
        mask |= rows & (data.newest_first_rank < held)
    return mask


def evaluate_held_out(
    data: TrainingData, fits: PrimalFits | SpanFits, classes: Sequence[int]
) -> tuple[Trust, float, object]:
    """Fit on all but each account's newest posts and score those.

    Returns the trust figure, the temperature fitted on those posts, and where to start the next fit.

    The design is every post weighted by the TF-IDF fitted on all of them (document frequencies only,
    no labels), so the held-out model lives in the same feature space as the final one and starts it.
    """
    test = holdout_mask(data)
    train = ~test
    classes = list(classes)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    trained_on = set(np.unique(data.labels[train]).tolist())
    if not test.any() or trained_on != set(classes):
        return Trust(0, 0, classes, confusion), TEMPERATURE, None
    model, start = fits.fit(train, data.labels)
    logits = model.decision_function(fits.X[test])
    predicted = model.classes[logits.argmax(axis=1)]
    index = {uid: i for i, uid in enumerate(classes)}
    for truth, guess in zip(data.labels[test], predicted, strict=True):
        confusion[index[int(truth)], index[int(guess)]] += 1
    truth = np.searchsorted(model.classes, data.labels[test])
    trust = Trust(int(test.sum()), int(np.trace(confusion)), classes, confusion)
    return trust, fit_temperature(logits, truth), start


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that makes these held-out answers most likely, drawn toward TEMPERATURE.

    A handful of held-out posts with no mistakes would otherwise ask for a model sure of everything;
    the pull keeps such a figure near the value found on development data.
    """
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(scaled).sum(axis=1)) - scaled[rows, truth]))
        return nll + TEMPERATURE_PULL * (log_t - np.log(TEMPERATURE)) ** 2

    low, high = np.log(TEMPERATURE_RANGE)
    return float(np.exp(scipy.optimize.minimize_scalar(loss, bounds=(low, high), method="bounded").x))


def fit_with_trust(data: TrainingData, classes: Sequence[int]) -> Fitted:
    """The held-out model for the trust figure, then the final model on every post, started from it."""
    with _one_blas_thread():
        weighting = Weighting.fit(data.counts)
        fits = fits_for(weighting.transform(data.counts))
        trust, temperature, start = evaluate_held_out(data, fits, classes)
        model, _ = fits.fit(np.ones(len(data.labels), dtype=bool), data.labels, start)
    return Fitted(Model(weighting, model, temperature), trust)


_blas: ThreadpoolController | None = None


def _one_blas_thread():
    """Keep BLAS to one thread while fitting.

    NumPy and SciPy each bring an OpenBLAS with its own thread pool; on a small machine the two pools
    spin against each other and the products and factorisations of a fit take two to four times longer.
    """
    global _blas
    with _pool_lock:
        if _blas is None:
            _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


# ---------------------------------------------------------------------------------------------------
# Reasons


@dataclass(frozen=True)
class Reasons:
    """Why the top account beat the runner-up: every word's pull, and the strongest n-grams each way."""

    top: str
    runner_up: str
    pieces: list[tuple[str, int, float]]  # (text, shade -3..3, score); gaps have shade 0 and score 0
    toward_top: list[tuple[str, float]]
    toward_runner_up: list[tuple[str, float]]
    within: dict[str, str]  # a piece of a word (a character n-gram) shown above: the word it came from


_WORD_TOKEN = re.compile(features.WORD_PATTERN)


def _hash_index(gram: str, block: features.Block) -> int:
    return block.offset + abs(murmurhash3_32(gram, seed=0)) % features.BLOCK_SIZE


def explain(
    model: Model, text: str, top: int, runner_up: int, names: dict[int, str], counts: sp.csr_matrix | None = None
) -> Reasons:
    """Split the log-odds of top against runner-up over the words of ``text``.

    Each feature's contribution is its value times the difference of the two classes' weights; the
    contributions add up to the log-odds (less the intercepts). A feature that occurs several times is
    shared among its occurrences; a word bigram is shared between its two words.
    """
    weights = model.classifier.coef
    classes = list(model.classes)
    delta = weights[classes.index(top)] - weights[classes.index(runner_up)]
    if counts is None:  # the caller usually has the text's counts already
        counts = features.count_matrix([text])
    shares = model.weighting.contributions(counts, delta)
    occurrences = dict(zip(counts.indices.tolist(), counts.data.tolist(), strict=True))

    def contribution(index: int) -> float:
        return shares.get(index, 0.0) / occurrences.get(index, 1.0)

    chars, words = features.BLOCKS
    char_analyzer = chars.vectorizer.build_analyzer()
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    scores = [0.0] * len(spans)
    by_gram: dict[str, float] = {}
    within: dict[str, str] = {}
    tokens: list[tuple[int, str]] = []  # (span number, word token) in order, for unigrams and bigrams
    for n, (start, end) in enumerate(spans):
        normalised = features.normalise(text[start:end])
        for gram in char_analyzer(normalised):
            value = contribution(_hash_index(gram, chars))
            scores[n] += value
            by_gram[gram.strip()] = by_gram.get(gram.strip(), 0.0) + value
            within.setdefault(gram.strip(), text[start:end])
        tokens.extend((n, token) for token in _WORD_TOKEN.findall(normalised.lower()))
    for _, token in tokens:  # a whole word of the text is not a piece of another, even if it is one too
        within.pop(token, None)
    for i, (n, token) in enumerate(tokens):
        value = contribution(_hash_index(token, words))
        scores[n] += value
        by_gram[token] = by_gram.get(token, 0.0) + value
        if i + 1 < len(tokens):
            m, following = tokens[i + 1]
            gram = f"{token} {following}"
            value = contribution(_hash_index(gram, words))
            scores[n] += value / 2
            scores[m] += value / 2
            by_gram[gram] = by_gram.get(gram, 0.0) + value

    strongest = max((abs(s) for s in scores), default=0.0) or 1.0
    pieces: list[tuple[str, int, float]] = []
    cursor = 0
    for (start, end), score in zip(spans, scores, strict=True):
        if start > cursor:
            pieces.append((text[cursor:start], 0, 0.0))
        shade = int(np.sign(score) * min(3, int(np.ceil(3 * abs(score) / strongest - 1e-9)))) if score else 0
        pieces.append((text[start:end], shade, score))
        cursor = end
    if cursor < len(text):
        pieces.append((text[cursor:], 0, 0.0))

    # Whole words and bigrams read better than fragments; show n-grams of 3+ characters besides.
    ranked = sorted(((g, v) for g, v in by_gram.items() if len(g) >= 3 or " " in g), key=lambda gv: gv[1])
    toward_top = _strongest((g, v) for g, v in reversed(ranked) if v > 0)
    toward_runner = _strongest((g, -v) for g, v in ranked if v < 0)
    shown = {g for g, _ in toward_top + toward_runner}
    within = {g: word for g, word in within.items() if g in shown}
    return Reasons(names[top], names[runner_up], pieces, toward_top, toward_runner, within)


def _strongest(grams, count: int = 6) -> list[tuple[str, float]]:
    """Up to ``count`` of the strongest n-grams, strongest first, without showing a piece beside its whole.

    "sour" and "dou" say nothing that "sourdough" beside them does not; a piece of an n-gram already
    shown is skipped, and a longer n-gram takes the place of its pieces, so the places go to other words.
    """
    shown: list[tuple[str, float]] = []
    for gram, value in grams:
        if " " not in gram and any(gram in other for other, _ in shown):
            continue
        shown = [(other, v) for other, v in shown if " " in other or other not in gram]
        shown.append((gram, value))
        if len(shown) == count:
            break
    return sorted(shown, key=lambda gv: -gv[1])


# ---------------------------------------------------------------------------------------------------
# The cache


@dataclass
class Fitted:
    model: Model
    trust: Trust


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
    trust: Trust
    warnings: list[str]
    reasons: Reasons

    @property
    def chance(self) -> float:
        """What guessing would score: one in the number of accounts."""
        return 1.0 / len(self.ranking)

    def as_dict(self) -> dict:
        trust = self.trust
        return {
            "text": self.text,
            "chance": round(self.chance, 4),
            "ranking": [
                {"username": c.username, "name": c.name, "probability": round(c.probability, 6), "posts": c.posts}
                for c in self.ranking
            ],
            "trust": {
                "held_out_accuracy": None if trust.accuracy is None else round(trust.accuracy, 4),
                "tested_posts": trust.tested,
                "chance": round(self.chance, 4),
            },
            "warnings": self.warnings,
            "reasons": {
                "top": self.reasons.top,
                "runner_up": self.reasons.runner_up,
                "words": [{"text": t, "score": round(s, 4)} for t, shade, s in self.reasons.pieces if t.strip()],
                "toward_top": [self._gram(g, v) for g, v in self.reasons.toward_top],
                "toward_runner_up": [self._gram(g, v) for g, v in self.reasons.toward_runner_up],
            },
        }

    def _gram(self, gram: str, weight: float) -> dict:
        """An n-gram of the reasons; a piece of a word says which word (``"in"``)."""
        word = self.reasons.within.get(gram)
        return {"ngram": gram, "weight": round(weight, 4)} | ({"in": word} if word else {})


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


def predict_author(usernames: Sequence[str], text: str | None) -> Prediction:
    """Rank the chosen accounts by how likely each is to have posted ``text``, with trust and reasons."""
    text = check_text(text)
    users = resolve_users(usernames)
    fitted, stats = fitted_for(users)
    counts = features.count_matrix([text])
    proba = fitted.model.probabilities(counts)[0]
    by_id = {int(uid): float(p) for uid, p in zip(fitted.model.classes, proba, strict=True)}
    ranking = sorted(
        (Candidate(u.username, u.name, by_id[u.id], stats[u.id][0]) for u in users),
        key=lambda c: c.probability,
        reverse=True,
    )
    id_of = {u.username: u.id for u in users}
    names = {u.id: u.username for u in users}
    reasons = explain(fitted.model, text, id_of[ranking[0].username], id_of[ranking[1].username], names, counts)
    warnings = [
        f"@{u.username} has only {stats[u.id][0]} stored posts; with fewer than {FEW_POSTS} its style is thinly "
        "sampled and answers involving it are less reliable."
        for u in users
        if stats[u.id][0] < FEW_POSTS
    ]
    return Prediction(text, ranking, fitted.trust, warnings, reasons)


def evaluate_accounts(usernames: Sequence[str]) -> tuple[list[User], Trust]:
    """The trust figure and confusion table for these accounts (the page's figure, from the same code)."""
    users = resolve_users(usernames)
    fitted, _ = fitted_for(users)
    return users, fitted.trust
