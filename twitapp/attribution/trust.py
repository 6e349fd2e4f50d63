"""The trust figure and the temperature: how the recipe does on the chosen accounts' own newest posts.

Before the final fit, the same recipe is fitted on all but each account's newest posts and scored on
those. That gives the held-out accuracy and confusion table shown with every answer (and by the
``evaluate`` command), and the temperature that makes "70%" come true about 70% of the time: fitted on
those held-out answers, drawn toward a prior chosen on development data, as how sure a model may be
depends on how alike the chosen accounts are (bench/authorship.py prints the reliability table).

The accuracy is counted as better than chance only when the lower end of its 95% Wilson interval is
above one in the number of accounts; otherwise every answer says so (``chance_warning``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from twitapp.attribution.recipe import TEMPERATURE, PrimalFits, SpanFits, TrainingData

# The trust figure holds out each account's newest posts: this share of them, at most this many.
HOLDOUT_SHARE = 0.2
HOLDOUT_MAX = 50
# The fitted temperature minimises held-out log loss + TEMPERATURE_PULL * (log T - log TEMPERATURE)^2,
# within TEMPERATURE_RANGE.
TEMPERATURE_PULL = 0.05
TEMPERATURE_RANGE = (0.3, 5.0)
# The held-out accuracy counts as better than chance when the lower end of its 95% interval is.
WILSON_Z = 1.96


@dataclass
class Trust:
    """How the recipe did on these accounts' own newest posts when they were held out."""

    tested: int
    correct: int
    classes: list[int]
    confusion: np.ndarray  # rows: true account, columns: predicted account, in ``classes`` order
    # A thread's figure (thread.py): how many posts each tested thread had, and how many held-out posts
    # its threads were drawn from (``tested`` then counts threads).
    length: int = 1
    held_out_posts: int | None = None

    @property
    def posts(self) -> int:
        """The held-out posts behind the figure."""
        return self.tested if self.held_out_posts is None else self.held_out_posts

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.tested if self.tested else None

    @property
    def chance(self) -> float:
        """What guessing would score: one in the number of accounts."""
        return 1.0 / len(self.classes)

    @property
    def accuracy_low(self) -> float | None:
        """The lower end of the 95% Wilson score interval of the accuracy; None when nothing was held out."""
        return wilson_lower_bound(self.correct, self.tested) if self.tested else None

    @property
    def better_than_chance(self) -> bool | None:
        """Whether the held-out accuracy is clearly above chance: its interval's lower end above 1 / k.

        A few lucky posts are not enough: 3 of 3 right among 3 accounts is (its lower end is 44%), 2 of 3
        is not. None when nothing was held out, so there is nothing to judge.
        """
        low = self.accuracy_low
        return None if low is None else low > self.chance


def wilson_lower_bound(successes: int, trials: int, z: float = WILSON_Z) -> float:
    """The lower end of the Wilson score interval of a proportion (95% for the default ``z``).

    Unlike the normal approximation it stays within 0..1 and is not certain after a few successes.
    """
    p = successes / trials
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, float((p + z * z / (2 * trials) - spread) / (1 + z * z / trials)))


def chance_warning(trust: Trust) -> str | None:
    """What to say when the held-out accuracy is not clearly above chance; None when it is (or is unknown)."""
    if trust.better_than_chance is not False:
        return None
    counted = "" if trust.length == 1 else f" threads of {trust.length}"
    grouped = "" if trust.length == 1 else f", grouped as threads of {trust.length},"
    return (
        f"On these accounts' held-out posts{grouped} the model did no better than chance "
        f"(right on {trust.correct} of {trust.tested}{counted}, {trust.accuracy:.0%}; chance {trust.chance:.0%}): "
        "read these percentages as a guess."
    )


def holdout_mask(data: TrainingData) -> np.ndarray:
    """Each account's newest posts, HOLDOUT_SHARE of them up to HOLDOUT_MAX (none under 5 posts)."""
    mask = np.zeros(len(data.labels), dtype=bool)
    for uid in np.unique(data.labels):
        rows = data.labels == uid
        n = int(rows.sum())
        held = min(HOLDOUT_MAX, int(n * HOLDOUT_SHARE)) if n >= 5 else 0
        mask |= rows & (data.newest_first_rank < held)
    return mask


@dataclass
class HeldOut:
    """The held-out posts' untempered logits (columns in sorted account order) and true columns."""

    logits: np.ndarray
    truth: np.ndarray


def evaluate_held_out(
    data: TrainingData, fits: PrimalFits | SpanFits, classes: Sequence[int]
) -> tuple[Trust, float, object, HeldOut]:
    """Fit on all but each account's newest posts and score those.

    Returns the trust figure, the temperature fitted on those posts, where to start the next fit, and
    the held-out answers themselves (thread.py groups them into threads).

    The design is every post weighted by the TF-IDF fitted on all of them (document frequencies only,
    no labels), so the held-out model lives in the same feature space as the final one and starts it.
    """
    test = holdout_mask(data)
    train = ~test
    classes = list(classes)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    trained_on = set(np.unique(data.labels[train]).tolist())
    if not test.any() or trained_on != set(classes):
        return (
            Trust(0, 0, classes, confusion),
            TEMPERATURE,
            None,
            HeldOut(np.zeros((0, len(classes))), np.zeros(0, int)),
        )
    model, start = fits.fit(train, data.labels)
    logits = model.decision_function(fits.X[test])
    predicted = model.classes[logits.argmax(axis=1)]
    index = {uid: i for i, uid in enumerate(classes)}
    for truth, guess in zip(data.labels[test], predicted, strict=True):
        confusion[index[int(truth)], index[int(guess)]] += 1
    truth = np.searchsorted(model.classes, data.labels[test])
    trust = Trust(int(test.sum()), int(np.trace(confusion)), classes, confusion)
    return trust, fit_temperature(logits, truth), start, HeldOut(logits, truth)


def fit_temperature(
    logits: np.ndarray, truth: np.ndarray, prior: float = TEMPERATURE, bounds: tuple[float, float] = TEMPERATURE_RANGE
) -> float:
    """The temperature that makes these held-out answers most likely, drawn toward ``prior``.

    A handful of held-out posts with no mistakes would otherwise ask for a model sure of everything;
    the pull keeps such a figure near the value found on development data (TEMPERATURE for one post;
    thread.py passes its own prior for threads).
    """
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(scaled).sum(axis=1)) - scaled[rows, truth]))
        return nll + TEMPERATURE_PULL * (log_t - np.log(prior)) ** 2

    low, high = np.log(bounds)
    return float(np.exp(scipy.optimize.minimize_scalar(loss, bounds=(low, high), method="bounded").x))
