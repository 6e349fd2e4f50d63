"""The recipe of an attribution model: from the n-gram counts stored with posts to calibrated probabilities.

A multinomial logistic regression over the hashed n-gram counts stored with each post (features.py),
weighted by TF-IDF over the training posts, each block normalised to unit length and scaled by a weight
chosen on development data; its probabilities are the logits divided by a temperature (fitted in
trust.py). The request (model.py), the trust figure (trust.py) and the reasons (reasons.py) all build
on it, and bench/authorship.py fits and scores it on its own.

Speed: a request without a cached model makes two fits (held out, then final), so both share one
TF-IDF design. With up to SPAN_MAX_ROWS posts they are solved in the span of the posts (SpanFits),
otherwise over the n-gram columns with the sparse products split over two threads (PrimalFits); the
two reach the same model. bench/authorship.py prints the latency.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg.blas import daxpy as axpy
from threadpoolctl import ThreadpoolController

from twitapp.ingest import features

# Chosen on the development data (bench/authorship.py --tune prints the grid they came from).
# Any change to the recipe must bump model.MODEL_VERSION, which is part of every cache key.
BLOCK_WEIGHTS = {"chars": 1.0, "words": 1.0}
C = 20.0
MIN_DF = 2
# The temperature when there is nothing held out to fit it on, and the prior that the fitted one is
# drawn toward (trust.fit_temperature).
TEMPERATURE = 1.2
MAX_ITER = 100
GTOL = 1e-3
# Fits over more stored entries than this split their sparse products over two threads.
PARALLEL_NNZ = 200_000
# Up to this many training posts a fit works in the span of the posts (SpanFits), beyond it over the
# n-gram columns; GRAM_DENSE_DF: columns in more posts than this go through BLAS in the Gram matrix.
SPAN_MAX_ROWS = 1200
GRAM_DENSE_DF = 40
# Below this many stored entries, Weighting.transform maps columns by binary search instead of a table.
SEARCH_MAX_NNZ = 20_000


@dataclass
class TrainingData:
    """The posts a model learns from: their stored n-gram counts, whose they are, and how recent."""

    counts: sp.csr_matrix
    labels: np.ndarray  # account id of each row
    newest_first_rank: np.ndarray  # 0 for each account's newest post, 1 for the next, ...


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

    def contributions(self, counts: sp.csr_matrix, weights: np.ndarray) -> dict[int, np.ndarray]:
        """For one text: each of its hashed features' share of ``weights @ x``, keyed by hashed index.

        ``weights`` has a row per class (the classifier's ``coef``, or any rows over the transformed
        columns); a feature's share is its transformed value times its column of them, one entry per row,
        so over the features the shares add up to each row's ``w @ x``, the logit less the intercept.
        The transformed columns are the kept hashed indices in ascending order (blocks are laid out in
        order), so the hashed index of a transformed column is found by position.
        """
        row = self.transform(counts)
        kept = np.concatenate(self.columns)
        weights = np.atleast_2d(weights)
        shares = row.data.astype(np.float64)[:, None] * weights[:, row.indices].T
        return {int(kept[c]): share for c, share in zip(row.indices.tolist(), shares, strict=True)}


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
        with one_blas_thread():
            classifier, _ = fits_for(weighting.transform(counts)).fit(np.ones(len(labels), dtype=bool), labels)
        return cls(weighting, classifier, TEMPERATURE)

    @property
    def classes(self) -> np.ndarray:
        return self.classifier.classes

    def logits(self, counts: sp.csr_matrix) -> np.ndarray:
        """The untempered decision function: a row of class scores per post (what threads pool)."""
        return self.classifier.decision_function(self.weighting.transform(counts))

    def probabilities(self, counts: sp.csr_matrix) -> np.ndarray:
        """Calibrated class probabilities: the logits divided by the fitted temperature."""
        return softmax(self.logits(counts) / self.temperature)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Each row of scores as probabilities (the rows' largest score subtracted first, so nothing overflows)."""
    logits = logits - logits.max(axis=1, keepdims=True)
    expd = np.exp(logits)
    return expd / expd.sum(axis=1, keepdims=True)


_blas: ThreadpoolController | None = None


def one_blas_thread():
    """Keep BLAS to one thread while fitting.

    NumPy and SciPy each bring an OpenBLAS with its own thread pool; on a small machine the two pools
    spin against each other and the products and factorisations of a fit take two to four times longer.
    """
    global _blas
    with _pool_lock:
        if _blas is None:
            _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")
