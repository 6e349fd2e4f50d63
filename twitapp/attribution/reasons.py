"""The reasons of an answer: for every ranked account, what each word of the text pulled toward it.

The pull is one account against the rest. For account ``a`` among ``k``, with ``x`` the text's TF-IDF
row and ``w`` the classifier's weight rows, feature ``j`` pulls toward ``a`` by
``x_j * (w_a[j] - mean of w_b[j] over the other accounts b)``. The model is linear in ``x``, so these
add up exactly to ``(logit_a - mean of the other logits) - (b_a - mean of the other intercepts)``: how far
the text lifts the account above the others' average, less what the intercepts give to any text. With
two accounts that is the log-odds of one against the other. For each feature the pulls toward all the
accounts add up to zero, so a word that pulls at all pulls toward at least one account.

A word's pull is the sum of its character n-grams, its word unigrams and half of each word bigram it is
part of, which keeps the exact sum; a word is shaded by the account it pulls toward most.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils import murmurhash3_32

from twitapp.attribution.recipe import Model
from twitapp.ingest import features

# The page's colour-blind-safe palette (Okabe–Ito), ``.who-0`` … ``.who-7`` in style.css, in ranking
# order; the last one, grey, is shared by every account ranked eighth or lower.
COLOURS = 8
STRONGEST_GRAMS = 6


@dataclass(frozen=True)
class AccountReasons:
    """What pulls toward one account against the others."""

    username: str
    colour: int  # 0 for the top account, then in ranking order (see COLOURS)
    toward: list[tuple[str, float]]  # up to STRONGEST_GRAMS n-grams with their pull, strongest first
    words: list[float]  # each word's pull toward this account, one per word of the text, in order

    @property
    def total(self) -> float:
        """The whole text's pull: the account's logit less the others' mean, both less their intercepts."""
        return float(sum(self.words))


@dataclass(frozen=True)
class Reasons:
    """Why the ranking came out as it did: every account's pull, and every word's strongest one."""

    accounts: list[AccountReasons]  # in ranking order
    # Per post: (text, the place in ``accounts`` of the account the word pulls toward most or None, shade
    # 1..3 or 0, that pull); the gaps between words have None, 0 and 0. The shades of every post share
    # one scale, the strongest word of the whole thread.
    posts: list[list[tuple[str, int | None, int, float]]]
    within: dict[str, str]  # a piece of a word (a character n-gram) shown in a list: the word it came from

    @property
    def pieces(self) -> list[tuple[str, int | None, int, float]]:
        """Every post's pieces, one after the other (a single text: its own)."""
        return [piece for post in self.posts for piece in post]


def colour_of(place: int) -> int:
    """The colour of the account ranked at ``place`` (0 for the top one)."""
    return min(place, COLOURS - 1)


_WORD_TOKEN = re.compile(features.WORD_PATTERN)


def _hash_index(gram: str, block: features.Block) -> int:
    return block.offset + abs(murmurhash3_32(gram, seed=0)) % features.BLOCK_SIZE


def against_the_rest(k: int) -> np.ndarray:
    """The k x k matrix that turns per-class scores into each class's score less the others' mean."""
    return (k * np.eye(k) - np.ones((k, k))) / (k - 1)


def feature_pulls(model: Model, order: Sequence[int], counts: sp.csr_matrix) -> dict[int, np.ndarray]:
    """Each hashed feature of the text: its pull toward each account of ``order``, in that order.

    ``model.weighting.contributions`` splits each class's ``w_a @ x`` over the features; the linear map
    of :func:`against_the_rest` turns those into pulls without losing the exact sums.
    """
    classes = list(model.classes)
    rows = [classes.index(uid) for uid in order]
    mix = against_the_rest(len(classes))[rows]
    shares = model.weighting.contributions(counts, model.classifier.coef)
    return {index: mix @ share for index, share in shares.items()}


def explain(
    model: Model,
    texts: str | Sequence[str],
    order: Sequence[int],
    names: dict[int, str],
    counts: sp.csr_matrix | None = None,
) -> Reasons:
    """Split each account's pull (one against the rest, see the module) over the words of the posts.

    ``texts`` is one text or a thread's posts (``counts`` their rows, in order); a thread's pull is the
    sum of its posts' pulls, as its pooled logits are the sum of theirs. ``order`` is every account of
    the model by id, in ranking order; ``names`` their usernames. A feature that occurs several times in
    a post is shared among its occurrences; a word bigram between its words.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if counts is None:  # the caller usually has the counts already
        counts = features.count_matrix(texts)
    totals: dict[str, np.ndarray] = {}
    within: dict[str, str] = {}
    scored = []
    for number, text in enumerate(texts):
        spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        scores, by_gram, pieces_within = _score_words(
            text, spans, _contribution(model, order, counts[number]), len(order)
        )
        for gram, value in by_gram.items():
            totals[gram] = totals.get(gram, 0.0) + value
        for gram, word in pieces_within.items():
            within.setdefault(gram, word)
        scored.append((text, spans, scores))
    words = {
        token
        for text in texts
        for word in re.findall(r"\S+", text)
        for token in _WORD_TOKEN.findall(features.normalise(word).lower())
    }
    for token in words:  # a whole word of the thread is not a piece of another, even if it is one too
        within.pop(token, None)
    everything = np.vstack([scores for _, _, scores in scored]) if scored else np.zeros((0, len(order)))
    strongest = float(max(everything.max(initial=0.0), 0.0)) or 1.0
    posts = [_shaded_pieces(text, spans, scores, strongest) for text, spans, scores in scored]

    # Whole words and bigrams read better than fragments; show n-grams of 3+ characters besides.
    readable = [(g, v) for g, v in totals.items() if len(g) >= 3 or " " in g]
    accounts = []
    for place, uid in enumerate(order):
        ranked = sorted(((g, float(v[place])) for g, v in readable if v[place] > 0), key=lambda gv: -gv[1])
        pulls = [float(s) for s in everything[:, place]]
        accounts.append(AccountReasons(names[uid], colour_of(place), _strongest(ranked), pulls))
    shown = {g for account in accounts for g, _ in account.toward}
    within = {g: word for g, word in within.items() if g in shown}
    return Reasons(accounts, posts, within)


def _contribution(model: Model, order: Sequence[int], counts: sp.csr_matrix) -> Callable[[int], np.ndarray]:
    """For one post (a row of counts): a hashed feature's pull per occurrence toward each account of ``order``."""
    pulls = feature_pulls(model, order, counts)
    occurrences = dict(zip(counts.indices.tolist(), counts.data.tolist(), strict=True))
    nothing = np.zeros(len(order))

    def contribution(index: int) -> np.ndarray:
        pull = pulls.get(index)
        return nothing if pull is None else pull / occurrences.get(index, 1.0)

    return contribution


def _score_words(
    text: str, spans: list[tuple[int, int]], contribution: Callable[[int], np.ndarray], k: int
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    """Each word's pulls (a row per span), each n-gram's total pulls, and the word each character n-gram is in.

    A word's pull is the sum of its character n-grams, its word unigrams and half of each word bigram
    it is part of.
    """
    chars, words = features.BLOCKS
    char_analyzer = chars.vectorizer.build_analyzer()
    scores = np.zeros((len(spans), k))
    by_gram: dict[str, np.ndarray] = {}
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
    return scores, by_gram, within


def _shaded_pieces(
    text: str, spans: list[tuple[int, int]], scores: np.ndarray, strongest: float
) -> list[tuple[str, int | None, int, float]]:
    """The whole text in pieces: each word with the account it pulls toward most, a shade and that pull.

    The shade, 1..3, is the word's strongest pull in thirds of ``strongest`` (the strongest word's pull
    in the whole thread), rounded up; a word that pulls toward no account (none of its n-grams is known)
    has no account and shade 0, as do gaps.
    """
    best = scores.argmax(axis=1) if len(spans) else np.zeros(0, dtype=int)
    pull = scores.max(axis=1) if len(spans) else np.zeros(0)
    pieces: list[tuple[str, int | None, int, float]] = []
    cursor = 0
    for (start, end), place, score in zip(spans, best.tolist(), pull.tolist(), strict=True):
        if start > cursor:
            pieces.append((text[cursor:start], None, 0, 0.0))
        if score > 0:
            shade = max(1, min(3, int(np.ceil(3 * score / strongest - 1e-9))))
            pieces.append((text[start:end], place, shade, score))
        else:
            pieces.append((text[start:end], None, 0, 0.0))
        cursor = end
    if cursor < len(text):
        pieces.append((text[cursor:], None, 0, 0.0))
    return pieces


def _strongest(grams, count: int = STRONGEST_GRAMS) -> list[tuple[str, float]]:
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
