"""Write like them: a character-level language model of one account's posts, and posts drawn from it.

The engine is an interpolated Kneser-Ney model over characters with modified discounts (three per order,
estimated from the counts of counts, then scaled by a factor chosen on held-out posts, as is the order).
Each post is one sequence: padded on the left with start symbols and closed by an end symbol, so the model
learns how posts open and where they stop.

Counting is done with NumPy: every context is hashed (64-bit FNV-style, extended one character at a time),
and each order keeps sorted arrays of (context, next character) keys with their counts, and of contexts
with their totals and how many characters follow them once, twice, or three times or more. Training on a
few thousand posts takes seconds; held-out scoring is vectorised over every position and every order.

An account of a few hundred posts has seen few words, so a model of other accounts' posts can be mixed in
(``Mixture``), with a weight chosen on the account's newest posts. Drafts that repeat 40 characters of any
post a model learned from are drawn again (``CopyIndex``). An optional LSTM engine lives in neural.py.

The arrays are saved with ``numpy.savez`` (no pickle), so a stored model is data, never code.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from sklearn.feature_extraction.text import TfidfVectorizer

from twitapp import artefacts, registry
from twitapp.attribution import model as predict
from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.ingest import features
from twitapp.models import ModelVersion, Tweet, User, find_user, tweet_counts
from twitapp.style import lstm as neural

MAX_ORDER = 12
ORDERS = range(3, MAX_ORDER + 1)
DISCOUNT_SCALES = (0.8, 0.9, 1.0, 1.1)
# The account's own share, tried against the pool. Lower shares fit the held-out posts better still, but
# the drafts then drift toward the other accounts' voices (bench/style.py: style fidelity falls from about
# 90% to 50% at 0.4), so the account keeps at least 80%.
POOL_WEIGHTS = (1.0, 0.9, 0.8)
HELD_OUT = 0.1
MAX_POST_CHARS = 280
COPY_RUN = 40  # a generated post sharing this many consecutive characters with a real one is a copy

# A link, with the " …" some exports put after a shortened one.
_LINK = re.compile(r"(?:https?://\S+|\bpic\.twitter\.com/\S+|\bt\.co/\S+)(?:\s*…)?")
_SPACE = re.compile(r"\s+")

BOS, EOS, UNK = 0, 1, 2  # symbol ids; characters start at 3
_MUL = np.uint64(1099511628211)
_SEED = np.uint64(14695981039346656037)
_KEY_MUL = np.uint64(0x9E3779B97F4A7C15)


class StyleError(UserError, ValueError):
    """A model cannot be trained or used as asked; the message says why."""


class NoStyleModel(StyleError):
    """The account has no usable style model (none trained yet, or the stored one cannot be loaded)."""


def normalise(text: str) -> str:
    """A post as the model learns it: links dropped (generated ones would lead nowhere), spacing tidied."""
    text = html.unescape(_LINK.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def _extend(hashes: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (hashes ^ (symbols.astype(np.uint64) + np.uint64(1))) * _MUL


def _key(contexts: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (contexts ^ ((symbols.astype(np.uint64) + np.uint64(7)) * _KEY_MUL)) * _MUL


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values[key] for each wanted key, 0 where the key is absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(wanted), dtype=values.dtype)
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == wanted, values[at], 0)


@dataclass
class _Order:
    """One order's tables: (context, symbol) keys with counts, and contexts with their summaries."""

    keys: np.ndarray  # uint64, sorted
    counts: np.ndarray  # uint32
    contexts: np.ndarray  # uint64, sorted
    totals: np.ndarray  # uint32: the counts of every key with that context, summed
    ones: np.ndarray  # uint32: keys with count 1 under the context
    twos: np.ndarray
    more: np.ndarray  # count 3 or more
    discounts: np.ndarray  # float64 (D1, D2, D3+)


def _savez(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


class _Sampler:
    """Drawing posts from any model with ``alphabet``, ``index`` and ``next_distribution``."""

    alphabet: str
    index: dict[str, int]

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, temperature: float = 1.0, opening: str = "") -> str:
        """One post: characters drawn until the end symbol or the length limit, cut at a natural boundary."""
        context = [self.index.get(c, UNK) for c in opening]
        text = list(opening)
        while len(text) < MAX_POST_CHARS:
            p = self.next_distribution(context)
            if temperature != 1.0:
                p = np.power(p, 1.0 / temperature)
                p /= p.sum()
            symbol = int(rng.choice(len(p), p=p))
            if symbol == EOS:
                return "".join(text).strip()
            text.append(self.alphabet[symbol - 3])
            context.append(symbol)
        return _cut("".join(text))


class CharModel(_Sampler):
    """Interpolated modified Kneser-Ney over characters, up to ``order`` characters of context + 1."""

    def __init__(self, alphabet: str, order: int, tables: list[_Order], scale: float = 1.0) -> None:
        self.alphabet = alphabet
        self.index = {c: i + 3 for i, c in enumerate(alphabet)}
        self.order = order
        self.tables = tables  # tables[k - 1] is order k (k - 1 characters of context)
        self.top_tables: list[_Order] = []  # while choosing: every order's plain counts
        self.scale = scale

    @property
    def vocabulary(self) -> int:
        return len(self.alphabet) + 3

    # -- training ---------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls, posts: Sequence[str], order: int = MAX_ORDER, alphabet: str | None = None, every_order: bool = False
    ) -> CharModel:
        """Count the posts. ``every_order`` also keeps each order's plain counts, so that ``choose`` can score
        every shorter model as well (a model's top order counts occurrences; the orders below it count the
        different characters seen before each n-gram, as Kneser-Ney has it)."""
        if alphabet is None:
            alphabet = "".join(sorted({c for post in posts for c in post}))
        model = cls(alphabet, order, [])
        sequence, targets = model._encode(posts)
        hashes = np.full(len(targets), _SEED, dtype=np.uint64)  # the empty context, at every target
        raw: list[tuple[np.ndarray, np.ndarray]] = []
        for k in range(1, order + 1):
            if k > 1:
                hashes = _extend(hashes, sequence[targets - (k - 1)])
            raw.append((hashes.copy(), _key(hashes, sequence[targets])))
        model.top_tables = []
        for k in range(1, order + 1):
            contexts, keys = raw[k - 1]
            if k == order or every_order:
                unique, first, counts = np.unique(keys, return_index=True, return_counts=True)
                model.top_tables.append(_summarise(unique, counts.astype(np.uint32), contexts[first]))
            if k < order:
                _, first_long = np.unique(raw[k][1], return_index=True)
                unique, first, counts = np.unique(keys[first_long], return_index=True, return_counts=True)
                model.tables.append(_summarise(unique, counts.astype(np.uint32), contexts[first_long][first]))
        model.tables.append(model.top_tables[-1])
        if not every_order:
            model.top_tables = []
        return model

    def _encode(self, posts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One array of symbols (each post padded with order - 1 starts and closed by an end) and the
        positions of the symbols to predict."""
        pad = self.order - 1
        parts, targets, at = [], [], 0
        for post in posts:
            ids = [self.index.get(c, UNK) for c in post] + [EOS]
            parts.append(np.array([BOS] * pad + ids, dtype=np.int32))
            targets.append(np.arange(at + pad, at + pad + len(ids)))
            at += pad + len(ids)
        if not parts:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        return np.concatenate(parts), np.concatenate(targets)

    # -- scoring ----------------------------------------------------------------------------------------

    def _probabilities_by_order(self, posts: Sequence[str], scale: float | None = None) -> list[np.ndarray]:
        """P(each symbol of the posts) under the models of order 1, 2, ... (needs ``every_order`` tables)."""
        scale = self.scale if scale is None else scale
        sequence, targets = self._encode(posts)
        symbols = sequence[targets]
        hashes = np.full(len(targets), _SEED, dtype=np.uint64)
        lower = np.full(len(targets), 1.0 / self.vocabulary)
        out = []
        for k in range(1, self.order + 1):
            if k > 1:
                hashes = _extend(hashes, sequence[targets - (k - 1)])
            keys = _key(hashes, symbols)
            out.append(_interpolate(self.top_tables[k - 1], hashes, keys, lower, scale))
            if k < self.order:
                lower = _interpolate(self.tables[k - 1], hashes, keys, lower, scale)
        return out

    def probabilities(self, posts: Sequence[str]) -> np.ndarray:
        """P(each symbol of the posts, their ends included) under this model."""
        sequence, targets = self._encode(posts)
        symbols = sequence[targets]
        hashes = np.full(len(targets), _SEED, dtype=np.uint64)
        p = np.full(len(targets), 1.0 / self.vocabulary)
        for k in range(1, self.order + 1):
            if k > 1:
                hashes = _extend(hashes, sequence[targets - (k - 1)])
            p = _interpolate(self.tables[k - 1], hashes, _key(hashes, symbols), p, self.scale)
        return p

    def bits_per_char(self, posts: Sequence[str]) -> float:
        """Mean bits per symbol over the posts (each post's end counts as one, like a newline)."""
        p = self.probabilities(posts)
        return float(-np.log2(p).mean()) if len(p) else float("nan")

    def choose(self, held_out: Sequence[str]) -> tuple[int, float, dict[tuple[int, float], float]]:
        """The order and discount scale that give the held-out posts the fewest bits, and the whole grid."""
        grid = {}
        for scale in DISCOUNT_SCALES:
            for k, p in enumerate(self._probabilities_by_order(held_out, scale), start=1):
                if k in ORDERS:
                    grid[(k, scale)] = float(-np.log2(p).mean())
        (order, scale), _ = min(grid.items(), key=lambda item: item[1])
        return order, scale, grid

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(every symbol) after the given symbols (the last order - 1 of them count)."""
        symbols = np.arange(self.vocabulary)
        context = [BOS] * max(0, self.order - 1 - len(context)) + list(context)[-(self.order - 1) or len(context) :]
        if self.order == 1:
            context = []
        # Every symbol follows the same context, so the context is hashed and looked up once per order.
        context_hash = np.full(1, _SEED, dtype=np.uint64)
        p = np.full(self.vocabulary, 1.0 / self.vocabulary)
        for k in range(1, self.order + 1):
            if k > 1:
                context_hash = _extend(context_hash, np.array([context[-(k - 1)]], dtype=np.int32))
            keys = _key(np.repeat(context_hash, self.vocabulary), symbols)
            higher = _interpolate_after(self.tables[k - 1], context_hash[0], keys, p, self.scale)
            if higher is None:  # a context never seen: no longer one was either, and p stands
                break
            p = higher
        p[BOS] = 0.0
        p[UNK] = 0.0
        return p / p.sum()

    # -- storage ----------------------------------------------------------------------------------------

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {
            f"{prefix}alphabet": np.array([ord(c) for c in self.alphabet], dtype=np.int32),
            f"{prefix}settings": np.array([self.order, self.scale], dtype=np.float64),
        }
        for k, table in enumerate(self.tables, start=1):
            for field in _Order.__dataclass_fields__:
                arrays[f"{prefix}{k}_{field}"] = getattr(table, field)
        return arrays

    @classmethod
    def from_arrays(cls, data, prefix: str = "") -> CharModel:
        alphabet = "".join(chr(int(c)) for c in data[f"{prefix}alphabet"])
        order, scale = int(data[f"{prefix}settings"][0]), float(data[f"{prefix}settings"][1])
        tables = [
            _Order(**{field: data[f"{prefix}{k}_{field}"] for field in _Order.__dataclass_fields__})
            for k in range(1, order + 1)
        ]
        return cls(alphabet, order, tables, scale)

    def to_bytes(self) -> bytes:
        return _savez(self.arrays())

    @classmethod
    def from_bytes(cls, blob: bytes) -> CharModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            if "weight" in data.files:
                return Mixture.from_arrays(data)
            return cls.from_arrays(data)


class Mixture(_Sampler):
    """An account's model mixed with a model of other accounts' posts: ``weight`` x own + the rest x pool.

    An account of a few hundred posts has seen few words; the pool lends it the language, while the
    weight (chosen on the account's newest posts) keeps its voice.
    """

    def __init__(self, own: CharModel, pool: CharModel, weight: float) -> None:
        if own.alphabet != pool.alphabet:
            raise ValueError("a mixture needs both models on one alphabet")
        self.own, self.pool, self.weight = own, pool, weight
        self.alphabet, self.index = own.alphabet, own.index
        self.order, self.scale = own.order, own.scale

    def probabilities(self, posts: Sequence[str]) -> np.ndarray:
        return self.weight * self.own.probabilities(posts) + (1 - self.weight) * self.pool.probabilities(posts)

    def bits_per_char(self, posts: Sequence[str]) -> float:
        p = self.probabilities(posts)
        return float(-np.log2(p).mean()) if len(p) else float("nan")

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        own, pool = self.own.next_distribution(context), self.pool.next_distribution(context)
        return self.weight * own + (1 - self.weight) * pool

    def to_bytes(self) -> bytes:
        return _savez({**self.own.arrays("own_"), **self.pool.arrays("pool_"), "weight": np.array([self.weight])})

    @classmethod
    def from_arrays(cls, data) -> Mixture:
        own, pool = CharModel.from_arrays(data, "own_"), CharModel.from_arrays(data, "pool_")
        return cls(own, pool, float(data["weight"][0]))


def _cut(text: str) -> str:
    """A post that ran to the limit, ended at its last sentence end (or else its last space)."""
    text = text[:MAX_POST_CHARS]
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s|$)", text)]
    if ends and ends[-1] >= MAX_POST_CHARS // 3:
        return text[: ends[-1]].strip()
    space = text.rfind(" ")
    return (text[:space] if space > MAX_POST_CHARS // 3 else text).strip()


def _summarise(keys: np.ndarray, counts: np.ndarray, key_context: np.ndarray) -> _Order:
    order = np.argsort(key_context, kind="stable")
    context_sorted = key_context[order]
    contexts, starts = np.unique(context_sorted, return_index=True)
    sorted_counts = counts[order].astype(np.int64)
    totals = np.add.reduceat(sorted_counts, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    ones = np.add.reduceat((sorted_counts == 1).astype(np.int64), starts) if len(starts) else totals
    twos = np.add.reduceat((sorted_counts == 2).astype(np.int64), starts) if len(starts) else totals
    more = np.add.reduceat((sorted_counts >= 3).astype(np.int64), starts) if len(starts) else totals
    n = [int((counts == i).sum()) for i in (1, 2, 3, 4)]
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + 2 * n[1] else 0.5
    discounts = np.array(
        [
            1 - 2 * y * n[1] / n[0] if n[0] else 0.5,
            2 - 3 * y * n[2] / n[1] if n[1] else 1.0,
            3 - 4 * y * n[3] / n[2] if n[2] else 1.5,
        ]
    )
    discounts = np.clip(discounts, 0.05, [0.95, 1.95, 2.95])
    return _Order(
        keys=keys,
        counts=counts,
        contexts=contexts,
        totals=totals.astype(np.uint32),
        ones=ones.astype(np.uint32),
        twos=twos.astype(np.uint32),
        more=more.astype(np.uint32),
        discounts=discounts,
    )


def _interpolate(table: _Order, contexts: np.ndarray, keys: np.ndarray, lower: np.ndarray, scale: float) -> np.ndarray:
    count = _lookup(table.keys, table.counts, keys).astype(np.float64)
    at = np.minimum(np.searchsorted(table.contexts, contexts), max(len(table.contexts) - 1, 0))
    seen = table.contexts[at] == contexts if len(table.contexts) else np.zeros(len(contexts), dtype=bool)
    total = np.where(seen, table.totals[at], 0).astype(np.float64)
    d1, d2, d3 = np.minimum(table.discounts * scale, [0.99, 1.99, 2.99])
    discount = np.where(count >= 3, d3, np.where(count == 2, d2, np.where(count == 1, d1, 0.0)))
    mass = d1 * np.where(seen, table.ones[at], 0) + d2 * np.where(seen, table.twos[at], 0)
    mass = mass + d3 * np.where(seen, table.more[at], 0)
    safe = np.maximum(total, 1.0)
    return np.where(seen, (np.maximum(count - discount, 0.0) + mass * lower) / safe, lower)


def _interpolate_after(
    table: _Order, context: np.uint64, keys: np.ndarray, lower: np.ndarray, scale: float
) -> np.ndarray | None:
    """``_interpolate`` for one context and each symbol after it (``keys``), or None where the
    context never occurred (``_interpolate`` would give ``lower`` back)."""
    at = int(np.searchsorted(table.contexts, context))
    if at == len(table.contexts) or table.contexts[at] != context:
        return None
    count = _lookup(table.keys, table.counts, keys).astype(np.float64)
    d1, d2, d3 = np.minimum(table.discounts * scale, [0.99, 1.99, 2.99])
    discount = np.where(count >= 3, d3, np.where(count == 2, d2, np.where(count == 1, d1, 0.0)))
    mass = d1 * float(table.ones[at]) + d2 * float(table.twos[at]) + d3 * float(table.more[at])
    return (np.maximum(count - discount, 0.0) + mass * lower) / max(float(table.totals[at]), 1.0)


# ---------------------------------------------------------------------------------------------------
# Training, drawing and judging, on plain lists of posts


ENGINES = ("kneser-ney", "lstm")


def check_engine(engine: object) -> str:
    """An engine this installation can train, or a StyleError saying why not."""
    if engine not in ENGINES:
        raise StyleError(f'"engine" must be one of {", ".join(ENGINES)}, not {engine!r}.')
    if engine == "lstm" and not neural.available():
        raise StyleError("The LSTM engine needs PyTorch, which is not installed here (pip install torch).")
    return engine


def fit(
    posts: Sequence[str],
    progress: Callable[[int, int, str], None] | None = None,
    engine: str = "kneser-ney",
    pool: Sequence[str] = (),
) -> tuple[CharModel | Mixture | neural.LSTMModel, dict]:
    """Train an engine on an account's posts, using the newest tenth to choose its settings.

    Kneser-Ney chooses its order and discount scale there, and, given other accounts' posts (``pool``),
    how much of a model of those to mix in; then it trains on all posts. The LSTM stops training when the
    newest tenth stops improving, and keeps its best epoch.
    """
    check_engine(engine)
    step = progress or (lambda done, total, message: None)
    texts = [t for t in (normalise(p) for p in posts) if t]
    if len(texts) < 20:
        raise StyleError(f"Writing like an account needs at least 20 posts with text; it has {len(texts)}.")
    cut = max(int(len(texts) * (1 - HELD_OUT)), 1)
    if engine == "lstm":
        model, history = neural.LSTMModel.train(texts[:cut], texts[cut:], progress=step)
        best = history["held_out_bits"][history["best_epoch"] - 1]
        return model, {"posts": len(texts), "epochs": history["epochs"], "held_out_bits_per_char": best}
    others = [t for t in (normalise(p) for p in pool) if t]
    alphabet = "".join(sorted({c for t in [*texts, *others] for c in t}))
    step(0, 4, f"Counting characters in {cut:,} posts to choose the model's order.")
    trial = CharModel.train(texts[:cut], alphabet=alphabet, every_order=True)
    step(1, 4, f"Choosing the order and discounts on the newest {len(texts) - cut:,} posts.")
    order, scale, grid = trial.choose(texts[cut:])
    bits, weight = grid[(order, scale)], 1.0
    mixed = None
    if others:
        step(2, 4, f"Weighing a model of {len(others):,} posts by other accounts against this one's.")
        mixed = CharModel.train(others, order=order, alphabet=alphabet)
        mixed.scale = scale
        own_p = trial._probabilities_by_order(texts[cut:], scale)[order - 1]
        pool_p = mixed.probabilities(texts[cut:])
        weights = {w: float(-np.log2(w * own_p + (1 - w) * pool_p).mean()) for w in POOL_WEIGHTS}
        weight = min(weights, key=weights.get)
        bits = weights[weight]
    step(3, 4, f"Training order {order} on all {len(texts):,} posts.")
    model = CharModel.train(texts, order=order, alphabet=alphabet)
    model.scale = scale
    step(4, 4, "Trained.")
    metrics = {"posts": len(texts), "order": order, "discount_scale": scale, "held_out_bits_per_char": round(bits, 4)}
    if mixed is not None and weight < 1.0:
        return Mixture(model, mixed, weight), {**metrics, "own_weight": weight, "pool_posts": len(others)}
    return model, metrics


def load(engine: str, blob: bytes) -> CharModel | Mixture | neural.LSTMModel:
    return neural.LSTMModel.from_bytes(blob) if engine == "lstm" else CharModel.from_bytes(blob)


def copies(text: str, real: Sequence[str], run: int = COPY_RUN) -> bool:
    """Whether ``text`` holds ``run`` or more consecutive characters of any real post."""
    return CopyIndex(real, run).copies(text)


class CopyIndex:
    """Every run of ``run`` consecutive characters in the real posts, hashed and sorted, so that checking a
    draft costs a lookup per window instead of a search through every post.

    Python's string hash differs between processes, so an index is built and used in one process, never
    stored."""

    def __init__(self, real: Sequence[str], run: int = COPY_RUN) -> None:
        self.run = run
        windows = [hash(post[i : i + run]) for post in real for i in range(len(post) - run + 1)]
        self.hashes = np.unique(np.array(windows, dtype=np.int64))

    def copies(self, text: str) -> bool:
        if len(text) < self.run or not len(self.hashes):
            return False
        mine = np.array([hash(text[i : i + self.run]) for i in range(len(text) - self.run + 1)], dtype=np.int64)
        at = np.minimum(np.searchsorted(self.hashes, mine), len(self.hashes) - 1)  # hashes are sorted
        return bool((self.hashes[at] == mine).any())


def draw(
    model: CharModel | Mixture | neural.LSTMModel,
    real: Sequence[str] | CopyIndex,
    count: int = 5,
    temperature: float = 1.0,
    opening: str = "",
    seed: int | None = None,
    tries: int = 20,
) -> tuple[list[str], int]:
    """``count`` posts that copy no real post (copies are drawn again); returns them and how many were copies.

    ``real``: the posts the model learned from (its own and any pool's), or a CopyIndex of them.
    """
    rng = np.random.default_rng(seed)
    index = real if isinstance(real, CopyIndex) else CopyIndex([normalise(p) for p in real])
    out, rejected = [], 0
    for _ in range(count * tries):
        if len(out) == count:
            break
        text = model.sample(rng, temperature, opening)
        if len(text) < max(len(opening) + 3, 10):
            continue
        if index.copies(text):
            rejected += 1
            continue
        out.append(text)
    return out, rejected


# ---------------------------------------------------------------------------------------------------
# Judging generated posts


def distances(generated: Sequence[str], real: Sequence[str]) -> list[float]:
    """For each generated post, the TF-IDF cosine distance to the nearest real post (0: a copy, 1: nothing shared)."""
    vectorizer = TfidfVectorizer().fit(real)
    similarity = vectorizer.transform(generated) @ vectorizer.transform(real).T
    return [1.0 - float(row.max()) if row.nnz else 1.0 for row in similarity.tocsr()]


def fidelity(generated: Sequence[str], own: Sequence[str], others: Sequence[Sequence[str]]) -> float:
    """The share of generated posts that the app's author attribution, fitted on the real posts of the account
    and of the others, gives back to the account."""
    groups = [list(own), *[list(o) for o in others]]
    texts = [t for group in groups for t in group]
    labels = np.concatenate([np.full(len(group), i) for i, group in enumerate(groups)])
    model = predict.Model.fit(features.count_matrix(texts), labels)
    chosen = model.classes[model.probabilities(features.count_matrix(list(generated))).argmax(axis=1)]
    return float((chosen == 0).mean())


def judge(
    posts: Sequence[str],
    others: Sequence[Sequence[str]] = (),
    count: int = 50,
    temperature: float = 1.0,
    seed: int = 0,
    engine: str = "kneser-ney",
    pool: Sequence[str] = (),
) -> dict:
    """The four figures for an account's posts (oldest first): train on all but the newest tenth (with
    ``pool``, other accounts' posts to mix in), then held-out bits per character, mean distance of generated
    posts to the real ones, the share of drafts that copied a real post, and (with ``others``) style fidelity
    among the account and the others."""
    texts = [t for t in (normalise(p) for p in posts) if t]
    cut = int(len(texts) * (1 - HELD_OUT))
    model, chosen = fit(texts[:cut], engine=engine, pool=pool)
    index = CopyIndex([*texts, *(normalise(p) for p in pool)])
    generated, rejected = draw(model, index, count=count, temperature=temperature, seed=seed)
    out = {
        **chosen,
        "bits_per_char": round(model.bits_per_char(texts[cut:]), 4),
        "generated": len(generated),
        "distance": round(float(np.mean(distances(generated, texts[:cut]))), 4),
        # The share of drafts that repeated a real post (they were drawn again, so none is among the posts).
        "copy_rate": round(rejected / max(len(generated) + rejected, 1), 4),
        "copies_drawn_again": rejected,
    }
    if others:
        normalised_others = [[t for t in (normalise(p) for p in group) if t] for group in others]
        out["fidelity"] = round(fidelity(generated, texts[:cut], normalised_others), 4)
    return out


# ---------------------------------------------------------------------------------------------------
# Stored accounts: models in the registry, one in service per account

KIND = "style"
FORMAT = 1
MAX_COUNT = 10
TEMPERATURES = (0.2, 2.0)
DEFAULT_TEMPERATURE = 0.7
MAX_OPENING = 100
_CACHE_MODELS = 8


def _account(username: str) -> User:
    account = find_user(username)
    if account is None:
        raise StyleError(f"No stored account is called @{username.strip().lstrip('@')}.")
    return account


def _posts_of(user_id: int) -> list[tuple[str, datetime]]:
    return db.session.execute(
        sa.select(Tweet.text, Tweet.created_at).where(Tweet.user_id == user_id).order_by(Tweet.created_at, Tweet.id)
    ).all()


POOL_PER_ACCOUNT = 300  # other accounts' newest posts lent to a style model
POOL_MAX = 5000


def _pool(user_id: int, until: dict[str, int | None] | None = None) -> tuple[list[str], dict[str, int]]:
    """Other accounts' newest posts to mix into a style model, and where each account's share ended
    (its newest post id), so the same posts can be read again to check drafts against them.

    ``until``: the accounts (by id, as text) in the order their shares were taken, each with the newest
    post id its share may hold (None: any); by default every other account, by id. One query ranks
    every account's posts, newest id first, and fetches the texts of each one's POOL_PER_ACCOUNT newest.
    """
    if until is None:
        wanted = Tweet.user_id != user_id
    elif not until:
        return [], {}
    else:
        wanted = sa.or_(
            *(
                Tweet.user_id == int(other) if newest is None else (Tweet.user_id == int(other)) & (Tweet.id <= newest)
                for other, newest in until.items()
            )
        )
    rank = sa.func.row_number().over(partition_by=Tweet.user_id, order_by=Tweet.id.desc()).label("rank")
    # Rank on the narrow columns, then fetch the texts of the chosen posts only (as load_training_data does).
    ranked = sa.select(Tweet.id, Tweet.user_id, rank).where(wanted).subquery()
    rows = db.session.execute(
        sa.select(ranked.c.user_id, ranked.c.id, Tweet.text)
        .join(Tweet, Tweet.id == ranked.c.id)
        .where(ranked.c.rank <= POOL_PER_ACCOUNT)
        .order_by(ranked.c.user_id, ranked.c.rank)
    ).all()
    shares: dict[int, list[tuple[int, str]]] = {}
    for other, post_id, text in rows:
        shares.setdefault(other, []).append((post_id, text))
    accounts = {str(other): other for other in sorted(shares)} if until is None else {k: int(k) for k in until}
    texts, reached = [], {}
    for key, other in accounts.items():
        share = shares.get(other, [])[: max(POOL_MAX - len(texts), 0)]
        if share:
            texts += [text for _, text in share]
            reached[key] = share[0][0]
    return texts, reached


def train_for(
    username: str, progress: Callable[[int, int, str], None] | None = None, engine: str = "kneser-ney"
) -> ModelVersion:
    """Train a style model on an account's stored posts (lent other accounts' language, for Kneser-Ney)
    and put it in service for that account."""
    account = _account(username)
    handle, posts = account.username, _posts_of(account.id)
    pool, reached = _pool(account.id) if engine == "kneser-ney" else ([], {})
    db.session.rollback()  # nothing held open while counting
    model, metrics = fit([text for text, _ in posts], progress, engine, pool)
    if not isinstance(model, Mixture):
        reached = {}
    blob = model.to_bytes()
    row = ModelVersion(
        kind=KIND,
        subject=handle.lower(),
        format=FORMAT,
        status=registry.CHAMPION,
        created_at=datetime.now(UTC),
        trained_from=posts[0][1],
        trained_to=posts[-1][1],
        params={
            "username": handle,
            "engine": engine,
            "order": model.order,
            "discount_scale": model.scale,
            "pool": reached,
        },
        metrics=metrics,
        decision={"promoted": True, "reason": f"The newest style model of @{handle} is the one in service."},
        sha256=artefacts.digest(blob),
        artefact=blob,
    )
    registry.record(row)  # the account's old champion retires in the same transaction, before it is stored
    db.session.commit()
    return row


def champion_of(username: str) -> ModelVersion | None:
    """The account's style model in service, as a registry row (its bytes are read only when used)."""
    return registry.champion(KIND, FORMAT, subject=username.lower())


def _from_row(row: ModelVersion) -> CharModel | Mixture | neural.LSTMModel | None:
    """A style model from its row's bytes, or None when its engine (PyTorch) is not installed here."""
    try:
        return load(row.params.get("engine", "kneser-ney"), row.artefact)
    except neural.NeuralUnavailable:
        return None


# Unpacked models, by account, for the few accounts written like most recently.
_service = registry.ModelCache(
    ModelVersion,
    lambda subject: registry.champions(KIND, FORMAT, subject=subject),
    _from_row,
    what="style model",
    entries=_CACHE_MODELS,
)


def in_service(username: str) -> tuple[ModelVersion | None, CharModel | Mixture | neural.LSTMModel | None]:
    """(registry row, model) of the account's style model, or (None, None) before one is trained; the
    model is None when the row's bytes cannot be used here."""
    serving = _service.get(username.lower())
    return serving.current, serving.model


def check_request(count: object, temperature: object, opening: object) -> tuple[int, float, str]:
    """The drawing settings as given by a page, the API or the CLI, or a StyleError naming the bad one."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise StyleError(f'"count" must be a whole number from 1 to {MAX_COUNT}.')
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise StyleError(f'"temperature" must be a number from {TEMPERATURES[0]} to {TEMPERATURES[1]}.')
    if not TEMPERATURES[0] <= float(temperature) <= TEMPERATURES[1]:
        raise StyleError(f'"temperature" must be from {TEMPERATURES[0]} to {TEMPERATURES[1]}, not {temperature}.')
    if not isinstance(opening, str):
        raise StyleError('"opening" must be text.')
    opening = _SPACE.sub(" ", opening).lstrip()
    if len(opening) > MAX_OPENING:
        raise StyleError(f"An opening has at most {MAX_OPENING} characters; this one has {len(opening)}.")
    return count, float(temperature), opening


def write_like(
    username: str,
    count: object = 5,
    temperature: object = DEFAULT_TEMPERATURE,
    opening: object = "",
    seed: int | None = None,
) -> tuple[list[str], ModelVersion]:
    """Posts in the voice of a stored account, none copying its real posts; returns (posts, registry row)."""
    count, temperature, opening = check_request(count, temperature, opening)
    account = _account(username)
    row, model = in_service(account.username)
    if row is None:
        raise NoStyleModel(
            f"No style model of @{account.username} is trained yet: train one on its page or with "
            f"`flask generate train {account.username}`."
        )
    if model is None:
        raise NoStyleModel(
            f"The style model of @{account.username} (version {row.id}) cannot be used here: its stored bytes "
            f"do not match their hash, or its engine ({row.params.get('engine')}) is not installed. Train it again."
        )

    def learned_from() -> CopyIndex:
        own = [text for text, _ in _posts_of(account.id)]
        lent, _ = _pool(account.id, row.params.get("pool") or {})
        return CopyIndex([normalise(t) for t in [*own, *lent]])

    index = _service.attached(row, "copy index", learned_from)  # once per loaded model
    if index.copies(opening):
        raise StyleError(
            f"The opening repeats {COPY_RUN} or more characters of a real post, so every draft would copy it; "
            "shorten it or change it."
        )
    posts, _ = draw(model, index, count=count, temperature=temperature, opening=opening, seed=seed)
    return posts, row


def evaluate_account(username: str, against: Sequence[str] = (), count: int = 50, engine: str = "kneser-ney") -> dict:
    """``judge`` on a stored account, told apart from ``against`` (by default the three largest others)."""
    account = _account(username)
    if against:
        others = [_account(handle) for handle in against]
    else:
        counts = tweet_counts()
        others = sorted(
            (u for u in db.session.scalars(sa.select(User)) if u.id != account.id and counts.get(u.id)),
            key=lambda u: (-counts[u.id], u.username.lower()),
        )[:3]
    own = [text for text, _ in _posts_of(account.id)]
    other_posts = [[text for text, _ in _posts_of(u.id)][-predict.MAX_TRAIN_POSTS :] for u in others]
    pool, _ = _pool(account.id) if engine == "kneser-ney" else ([], {})
    db.session.rollback()
    figures = judge(own, other_posts, count=count, temperature=DEFAULT_TEMPERATURE, engine=engine, pool=pool)
    return {
        **figures,
        "username": account.username,
        "against": [u.username for u in others],
        "temperature": DEFAULT_TEMPERATURE,
    }
