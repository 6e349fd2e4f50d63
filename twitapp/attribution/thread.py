"""Threads: several posts attributed at once, with probabilities that stay honest.

One short post carries little style; a thread of them carries more. A thread's answer pools its posts'
answers: the posts' untempered logits are summed and divided by a temperature T_n for the thread's
length n, ``softmax(sum of the posts' logits / T_n)``. Summed logits treat the posts as independent
evidence, which they are not (an account's posts share topics and moods, and the model's mistakes
repeat), so shown as they are they would be far too sure; T_n is fitted on the trust fit's held-out
posts grouped into threads of n posts of one account (many random groupings, fixed seed), the way
trust.fit_temperature fits the single-post temperature, and drawn toward a prior chosen on development
data: ``T_1 * n ** THREAD_EXPONENT``, where T_1 is this comparison's single-post temperature. A thread of
one post is therefore exactly a single post's answer.

A length needs MIN_THREADS disjoint threads from every account's held-out posts to be fitted; a longer
thread takes the longest fitted length's temperature grown by the prior's ratio, and its trust figure
is that length's, said as such. With nothing held out, T_n is the prior itself.

The trust figure for threads of n is the same groupings' accuracy (the argmax of the summed logits,
which no temperature changes). Its 95% Wilson interval counts only the disjoint threads of one
grouping, as the groupings reuse the same posts and are not more evidence than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from twitapp.attribution.recipe import TEMPERATURE, softmax
from twitapp.attribution.trust import TEMPERATURE_RANGE, HeldOut, Trust, fit_temperature

# The most posts a thread may have (the form, the API and the CLI say so when there are more).
MAX_POSTS = 25
# Chosen on development data (bench/authorship.py --tune): the prior of T_n is T_1 * n ** THREAD_EXPONENT.
# 1.0 would say n posts are no surer than one post; 0 that they are independent evidence.
THREAD_EXPONENT = 0.2
# A length is fitted when every account's held-out posts make at least this many disjoint threads.
MIN_THREADS = 2
# Random groupings of the held-out posts per length: enough for about THREAD_SAMPLE threads, at most
# MAX_GROUPINGS groupings; the seed makes every fit on the same posts give the same answer.
THREAD_SAMPLE = 2000
MAX_GROUPINGS = 200
THREAD_SEED = 17


@dataclass
class Threads:
    """Per thread length: the pooling temperature and the trust figure that speaks for it.

    A length is measured the first time a thread of that length is asked about, then kept (with the fit,
    in model.py's cache): a single post, the commonest question, pays for no thread's calibration.
    """

    held_out: HeldOut
    single: float  # the single-post temperature, which a thread of one keeps
    single_trust: Trust
    _kept: dict[int, tuple[float, Trust]] = field(default_factory=dict, repr=False)

    @property
    def longest(self) -> int:
        """The longest thread whose held-out posts make MIN_THREADS disjoint threads from every account."""
        if not self.single_trust.tested:
            return 1
        per_account = np.bincount(self.held_out.truth, minlength=len(self.single_trust.classes))
        return max(1, min(MAX_POSTS, int(per_account.min()) // MIN_THREADS))

    def _at(self, n: int) -> tuple[float, Trust]:
        if n == 1:
            return self.single, self.single_trust
        longest = self.longest
        if n > longest:  # too few held-out posts: the longest fitted length, grown as the prior grows
            temperature, figure = self._at(longest)
            return temperature * (n / longest) ** THREAD_EXPONENT, figure
        if n not in self._kept:  # two requests may both measure it: the same answer, kept once
            self._kept[n] = _measured(self.held_out, n, self.single, list(self.single_trust.classes))
        return self._kept[n]

    def temperature(self, n: int) -> float:
        return self._at(min(n, MAX_POSTS))[0]

    def trust(self, n: int) -> Trust:
        return self._at(min(n, MAX_POSTS))[1]


def prior_temperature(single: float, n: int) -> float:
    """What a thread of n posts is divided by when its held-out posts cannot say (see the module)."""
    return single * n**THREAD_EXPONENT


def pool(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The thread's probabilities from its posts' untempered logits (a row per post)."""
    return softmax(logits.sum(axis=0, keepdims=True) / temperature)[0]


def group_threads(truth: np.ndarray, n: int, groupings: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of held-out posts grouped into threads of n posts of one account: ``groupings`` random
    partitions of each account's posts into disjoint threads (leftovers dropped), stacked.

    Returns the row numbers, one thread per row of n, and each thread's true column.
    """
    rng = np.random.default_rng(seed)
    rows, owners = [], []
    for column in np.unique(truth):
        mine = np.flatnonzero(truth == column)
        whole = len(mine) // n * n
        for _ in range(groupings):
            rows.append(rng.permutation(mine)[:whole].reshape(-1, n))
            owners.append(np.full(whole // n, column))
    return np.concatenate(rows), np.concatenate(owners)


def _measured(held_out: HeldOut, n: int, single: float, classes: list[int]) -> tuple[float, Trust]:
    """T_n fitted on held-out threads of n posts, and their trust figure."""
    columns = len(classes)
    per_account = np.bincount(held_out.truth, minlength=columns)
    disjoint = int((per_account // n).sum())
    groupings = max(1, min(MAX_GROUPINGS, math.ceil(THREAD_SAMPLE / disjoint)))
    threads, truth = group_threads(held_out.truth, n, groupings, THREAD_SEED + n)
    summed = held_out.logits[threads].sum(axis=1)
    prior = prior_temperature(single, n)
    scale = prior / TEMPERATURE
    temperature = fit_temperature(summed, truth, prior, (TEMPERATURE_RANGE[0] * scale, TEMPERATURE_RANGE[1] * scale))
    place = np.array([classes.index(c) for c in sorted(classes)])  # the logits' columns are in sorted order
    confusion = np.zeros((columns, columns))
    np.add.at(confusion, (place[truth], place[summed.argmax(axis=1)]), 1.0)
    confusion = np.rint(confusion / groupings).astype(np.int64)  # one grouping's worth, on average
    correct = round(float(np.mean(summed.argmax(axis=1) == truth)) * disjoint)
    return temperature, Trust(disjoint, correct, classes, confusion, length=n, held_out_posts=len(held_out.truth))
