"""A post as the virality model sees it, and the features it reads from one, all known at posting time:

- the text: word unigrams and bigrams, character n-grams within words (TF-IDF, in model.py), read after
  ``normalise_text``;
- its shape: length, words, hashtags, mentions, links, whether it carries media (as the source recorded
  it, else a photo link in the text), whether it opens with a mention, questions and exclamations;
- when: hour of day and day of week (UTC);
- who: the account's follower count when the source gave one, and how its earlier posts did: the share
  that got likes and their mean likes (log), over its last HISTORY posts at least MATURE old
  when this one went out (younger posts' likes are still coming in).

The posts come from the database: every settled stored post to train and test on (``stored_posts``), or
a typed text as if a stored account posted it now (``post_to_score``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.models import Tweet, User, find_user
from twitapp.sources.records import checked_text, clean_text
from twitapp.virality.errors import ViralityError

MAX_TEXT_CHARS = 280
# Posts younger than this may still gather likes: they are neither trained nor tested on.
MATURE = timedelta(days=2)
HISTORY = 100
HISTORY_PRIOR = 5.0  # pseudo-posts pulling a short history's like share toward the overall share

_LINK = re.compile(r"https?://\S+|\bpic\.twitter\.com/\S+")
_MEDIA = re.compile(r"\bpic\.twitter\.com/|/photo/\d|/video/\d")


@dataclass(frozen=True, slots=True)
class Post:
    """A post as the model sees it. ``history`` is the account's earlier (likes, posted at), oldest first."""

    text: str
    created_at: datetime
    likes: int = 0
    followers: int | None = None
    history: tuple[tuple[int, datetime], ...] = ()
    media: bool | None = None  # None: not known, so read from the text (a photo link)


def normalise_text(text: str) -> str:
    """The text as the TF-IDF features read it: every link one word, every mention the same."""
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


def _trainable() -> sa.Select:
    """The stored posts training reads: known likes, an account stored with them, old enough (see below)."""
    return (
        sa.select(Tweet.user_id, Tweet.text, Tweet.created_at, Tweet.like_count, Tweet.has_media, User.followers_count)
        .join(User, User.id == Tweet.user_id)
        .where(Tweet.like_count.is_not(None))
    )


def trainable_count() -> int:
    """How many stored posts a training run would learn from now."""
    cutoff = datetime.now(UTC) - MATURE
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(_trainable().where(Tweet.created_at <= cutoff).subquery())
    )


def stored_posts() -> list[Post]:
    """Every stored post old enough for its likes to have settled, oldest first, with its account's history.

    Posts whose likes the source did not give are left out, of the training and of the histories: unknown
    is not "no likes"."""
    cutoff = datetime.now(UTC) - MATURE
    rows = db.session.execute(_trainable().order_by(Tweet.created_at, Tweet.id)).all()
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
        .where(Tweet.user_id == account.id, Tweet.like_count.is_not(None))
        .order_by(Tweet.created_at.desc())
        .limit(2 * HISTORY)
    ).all()
    earlier = tuple((likes, when) for likes, when in reversed(history))
    return Post(text, at, 0, account.followers_count, earlier, media)
