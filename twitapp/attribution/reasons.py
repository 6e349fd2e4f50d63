"""The reasons of an answer: what each word of the text contributed toward the top account against the runner-up.

The model is linear in the text's hashed n-grams, so the log-odds of two accounts split exactly over
them: summed per word for the highlighted text, and per n-gram for the lists of the strongest ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.utils import murmurhash3_32

from twitapp.attribution.recipe import Model
from twitapp.ingest import features


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

    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    scores, by_gram, within = _score_words(text, spans, contribution)
    pieces = _shaded_pieces(text, spans, scores)

    # Whole words and bigrams read better than fragments; show n-grams of 3+ characters besides.
    ranked = sorted(((g, v) for g, v in by_gram.items() if len(g) >= 3 or " " in g), key=lambda gv: gv[1])
    toward_top = _strongest((g, v) for g, v in reversed(ranked) if v > 0)
    toward_runner = _strongest((g, -v) for g, v in ranked if v < 0)
    shown = {g for g, _ in toward_top + toward_runner}
    within = {g: word for g, word in within.items() if g in shown}
    return Reasons(names[top], names[runner_up], pieces, toward_top, toward_runner, within)


def _score_words(
    text: str, spans: list[tuple[int, int]], contribution: Callable[[int], float]
) -> tuple[list[float], dict[str, float], dict[str, str]]:
    """Each word's score (one per span), each n-gram's total, and the word each character n-gram is in.

    A word's score is the sum of its character n-grams, its word unigrams and half of each word bigram
    it is part of.
    """
    chars, words = features.BLOCKS
    char_analyzer = chars.vectorizer.build_analyzer()
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
    return scores, by_gram, within


def _shaded_pieces(text: str, spans: list[tuple[int, int]], scores: list[float]) -> list[tuple[str, int, float]]:
    """The whole text in pieces: each word with its score and shade, each gap between words with 0 and 0.

    The shade, -3..3, is the word's score in thirds of the strongest word's, rounded away from zero.
    """
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
    return pieces


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
