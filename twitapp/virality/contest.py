"""The champion contest: which question a training run asks, which posts it trains and tests on, and
whether its challenger replaces the champion in service.

A challenger trains on the older posts and is scored, with the champion, on the same fresh held-out
posts, newer than anything either was trained on (model.py trains and scores them); it is promoted only
when its ROC AUC is better by ``margin``, and never when it is no better than chance (its ROC AUC's 95%
interval reaches 0.5), even with no champion in service. A champion that cannot be compared (none in service, one stored
in an older format, one that answers another threshold, one whose stored model cannot be read) is
replaced without a contest, and the decision says why. The decision is kept with the challenger's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from twitapp.models import ModelVersion
from twitapp.virality.errors import ViralityError
from twitapp.virality.features import MATURE, Post

HELD_OUT = 0.2  # the newest share of posts held out to compare models on
MIN_POSTS = 60
MIN_HELD_OUT = 20
MIN_PER_CLASS = 5  # held-out posts needed on each side of the threshold to measure a model
MARGIN = 0.01  # ROC AUC a challenger must gain over the champion to replace it


@dataclass(frozen=True, slots=True)
class Standing:
    """The champion as a run finds it: the question the run asks, and whether its challenger must win."""

    threshold: int | None  # the likes a post must exceed; None: chosen from the posts (choose_threshold)
    contested: bool  # the champion answers the same question and its stored model can be read
    version: int | None  # the champion in service, if any
    fresh_after: datetime | None  # a contested champion's newest training post: held-out posts are newer
    uncontested: str  # why the challenger is promoted without a contest, when it is not contested


def standing(
    champion: ModelVersion | None, readable: bool, outdated: ModelVersion | None, threshold: int | None
) -> Standing:
    """Where the champion stands. ``readable``: whether its stored model could be loaded; ``outdated``: with
    no champion, one stored in an older format, whose question still stands; ``threshold``: the question
    asked, None to keep the champion's (None still with neither, for choose_threshold)."""
    asked = champion if champion is not None else outdated
    champion_threshold = asked.params.get("threshold") if asked is not None else None
    if threshold is None and asked is not None:
        threshold = int(champion_threshold or 0)
    contested = False
    if outdated is not None:
        uncontested = f"The champion (version {outdated.id}) was stored in an older format, which is no longer read."
    elif champion is None:
        uncontested = "No champion was in service."
    elif champion_threshold != threshold:  # it answers another question: replaced without a contest
        uncontested = "The champion answered another threshold."
    else:
        contested = readable
        uncontested = (
            "The champion's stored model could not be loaded (its bytes do not match their hash, "
            "or are not a model this code reads)."
        )
    return Standing(
        threshold,
        contested,
        champion.id if champion is not None else None,
        champion.trained_to if contested else None,
        uncontested,
    )


def split_posts(posts: list[Post], found: Standing) -> tuple[list[Post], list[Post]]:
    """(the older posts to train on, the newest to test on): the newest HELD_OUT share, and with a contested
    champion only posts newer than its training; ViralityError when either side is too small."""
    cut = int(len(posts) * (1 - HELD_OUT))
    if found.fresh_after is not None:
        cut = max(cut, sum(p.created_at <= found.fresh_after for p in posts))
    train, held_out = posts[:cut], posts[cut:]
    if len(train) < MIN_POSTS:
        raise ViralityError(
            f"Training needs at least {MIN_POSTS} posts at least {MATURE.days} days old; {len(train)} are stored."
        )
    if len(held_out) < MIN_HELD_OUT:
        raise ViralityError(
            f"Only {len(held_out)} posts are newer than what the champion (version {found.version}) was trained "
            f"on; at least {MIN_HELD_OUT} are needed to compare fairly. Fetch newer posts first (flask refresh)."
            if found.fresh_after is not None
            else f"At least {MIN_HELD_OUT} posts must be held out to test on; {len(held_out)} are."
        )
    return train, held_out


def choose_threshold(train: Sequence[Post], held_out: Sequence[Post], threshold: int | None) -> tuple[int, str | None]:
    """(the threshold the run asks about, why it was chosen when none was asked, else None).

    With none asked it is 0, unless 0 leaves fewer than MIN_PER_CLASS of the held-out posts on one side
    (accounts whose every post gets likes): then the training posts' median. Either way, one that cannot
    measure a model is refused (check_question).
    """
    median = int(np.median([p.likes for p in train]))
    because = None
    if threshold is None:
        threshold = 0
        rare = _fewer_side(held_out, 0)
        if rare < MIN_PER_CLASS <= _fewer_side(held_out, median):
            threshold = median
            because = (
                f"Asked about more than {median} likes (the training posts' median): more than 0 left only "
                f"{rare:,} of the {len(held_out):,} newest posts on one side."
            )
    check_question(held_out, threshold, median)
    return threshold, because


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


def decide(
    metrics: dict,
    theirs: dict | None,
    found: Standing,
    held_out: Sequence[Post],
    margin: float,
    because: str | None,
) -> dict:
    """The decision a challenger's row keeps: the margin, the held-out posts, the champion's figures on them
    (``theirs``; None: uncontested), whether it is promoted and why."""
    decision = {"margin": margin, "held_out": len(held_out), "held_out_from": held_out[0].created_at.isoformat()}
    if theirs is not None:
        decision["champion"] = {"version": found.version, **theirs}
        gain = metrics["roc_auc"] - theirs["roc_auc"]  # both sides hold posts (check_question), so both are set
        promote = gain >= margin
        decision["reason"] = (
            f"ROC AUC {metrics['roc_auc']} against the champion's {theirs['roc_auc']} on the same posts: "
            + (f"better by {gain:.4f}, at least the margin {margin}." if promote else f"not better by {margin}.")
        )
    else:
        promote = True
        decision["reason"] = found.uncontested
    if not metrics.get("better_than_chance"):  # never in service, even where nothing else is
        promote = False
        low = metrics.get("roc_auc_low")
        decision["reason"] = (
            f"No better than chance on the held-out posts: ROC AUC {metrics.get('roc_auc')}"
            + (f", whose 95% interval reaches down to {low:.3f}" if low is not None else "")
            + f" (chance is 0.5). {decision['reason']}"
        )
    if because:
        decision["reason"] = f"{because} {decision['reason']}"
    decision["promoted"] = promote
    return decision
