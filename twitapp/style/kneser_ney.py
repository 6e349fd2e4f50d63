"""The Kneser-Ney engine of "write like them": a character n-gram model of an account's posts, and its arrays.

The model is interpolated Kneser-Ney over characters with modified discounts (three per order, estimated
from the counts of counts, then scaled by a factor chosen on held-out posts, as is the order). Each post is
one sequence: padded on the left with start symbols and closed by an end symbol, so the model learns how
posts open and where they stop.

Counting is done with NumPy: every context is hashed (64-bit FNV-style, extended one character at a time),
and each order keeps sorted arrays of (context, next character) keys with their counts, and of contexts
with their totals and how many characters follow them once, twice, or three times or more. Training on a
few thousand posts takes seconds; held-out scoring is vectorised over every position and every order.

An account of a few hundred posts has seen few words, so a model of other accounts' posts can be mixed in
(``Mixture``), with a weight chosen on the account's newest posts (``fit``).

The arrays are saved with ``numpy.savez`` (no pickle), so a stored model is data, never code; the array
names are those older versions stored, so stored models keep loading.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from twitapp.style.sampling import BOS, EOS, UNK, Sampler

MAX_ORDER = 12
ORDERS = range(3, MAX_ORDER + 1)
DISCOUNT_SCALES = (0.8, 0.9, 1.0, 1.1)
# The account's own share, tried against the pool. Lower shares fit the held-out posts better still, but
# the drafts then drift toward the other accounts' voices (bench/style.py: style fidelity falls from about
# 90% to 50% at 0.4), so the account keeps at least 80%.
POOL_WEIGHTS = (1.0, 0.9, 0.8)

_MUL = np.uint64(1099511628211)
_SEED = np.uint64(14695981039346656037)
_KEY_MUL = np.uint64(0x9E3779B97F4A7C15)


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


class CharModel(Sampler):
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


class Mixture(Sampler):
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


def fit(
    texts: Sequence[str], cut: int, others: Sequence[str], step: Callable[[int, int, str], None]
) -> tuple[CharModel | Mixture, dict]:
    """A model of an account's (normalised) posts, with its figures: the order and discount scale are chosen
    on ``texts[cut:]`` for a model of ``texts[:cut]``, and, given other accounts' posts (``others``), how
    much of a model of those to mix in; then it is trained on all the texts."""
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
