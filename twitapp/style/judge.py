"""How well a style model writes like an account: its held-out bits per character, how far its drafts are
from the real posts, how often it copied one, how many of their words it made up, and style fidelity
(whether the app's author attribution gives the drafts back to the account). ``judge`` works on plain lists
of posts (bench/style.py uses it); ``evaluate_account`` on a stored account (``flask generate evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from sklearn.feature_extraction.text import TfidfVectorizer

from twitapp.attribution import model as predict
from twitapp.attribution.recipe import Model
from twitapp.extensions import db
from twitapp.ingest import features
from twitapp.models import User, tweet_counts
from twitapp.style import kneser_ney
from twitapp.style.model import DEFAULT_TEMPERATURE, HELD_OUT, account_named, fit, pool_of, posts_of
from twitapp.style.sampling import CopyIndex, draw, normalise
from twitapp.style.words import Lexicon


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
    model = Model.fit(features.count_matrix(texts), labels)
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
    free_spelling: bool = False,
) -> dict:
    """The figures for an account's posts (oldest first): train on all but the newest tenth (with ``pool``,
    other accounts' posts to mix in), then held-out bits per character (beside chance, guessing each
    character at random), mean distance of generated posts to the real ones, the share of drafts that
    copied a real post, the share of their words that no training post holds, and (with ``others``) style
    fidelity among the account and the others (beside chance, a random pick among them).

    ``free_spelling`` draws without holding words to known ones, as the writer once did, to measure what
    that rule changes."""
    texts = [t for t in (normalise(p) for p in posts) if t]
    cut = int(len(texts) * (1 - HELD_OUT))
    model, chosen = fit(texts[:cut], engine=engine, pool=pool)
    lent = [normalise(p) for p in pool]
    index = CopyIndex([*texts, *lent])
    # The words of the posts the model learned from: the lent ones only where it mixed them in, as the app.
    learned = Lexicon([*texts[:cut], *(lent if isinstance(model, kneser_ney.Mixture) else [])])
    held = None if free_spelling else learned
    generated, rejected = draw(model, index, count=count, temperature=temperature, seed=seed, words=held)
    invented, words = learned.invented(generated)
    out = {
        **chosen,
        "trained_posts": cut,
        "tested_posts": len(texts) - cut,
        "bits_per_char": round(model.bits_per_char(texts[cut:]), 4),
        "generated": len(generated),
        "distance": round(float(np.mean(distances(generated, texts[:cut]))), 4),
        # The share of drafts that repeated a real post (they were drawn again, so none is among the posts).
        "copy_rate": round(rejected / max(len(generated) + rejected, 1), 4),
        "copies_drawn_again": rejected,
        # The share of the drafts' words that no post the model learned from holds (made-up words).
        "invented_words": round(invented / max(words, 1), 4),
        "words": words,
    }
    if others:
        normalised_others = [[t for t in (normalise(p) for p in group) if t] for group in others]
        out["fidelity"] = round(fidelity(generated, texts[:cut], normalised_others), 4)
        out["fidelity_chance"] = round(1 / (1 + len(others)), 4)  # a guess among the account and the others
    return out


def evaluate_account(username: str, against: Sequence[str] = (), count: int = 50, engine: str = "kneser-ney") -> dict:
    """``judge`` on a stored account, told apart from ``against`` (by default the three largest others)."""
    account = account_named(username)
    if against:
        others = [account_named(handle) for handle in against]
    else:
        counts = tweet_counts()
        others = sorted(
            (u for u in db.session.scalars(sa.select(User)) if u.id != account.id and counts.get(u.id)),
            key=lambda u: (-counts[u.id], u.username.lower()),
        )[:3]
    own = [text for text, _ in posts_of(account.id)]
    other_posts = [[text for text, _ in posts_of(u.id)][-predict.MAX_TRAIN_POSTS :] for u in others]
    pool, _ = pool_of(account.id) if engine == "kneser-ney" else ([], {})
    db.session.rollback()
    figures = judge(own, other_posts, count=count, temperature=DEFAULT_TEMPERATURE, engine=engine, pool=pool)
    return {
        **figures,
        "username": account.username,
        "against": [u.username for u in others],
        "temperature": DEFAULT_TEMPERATURE,
    }
