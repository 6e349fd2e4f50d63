"""An attribution's answer, as the result page, ``POST /api/predict`` and ``flask predict`` give it.

A thread of one post or several: the accounts ranked for the thread as a whole, each post's own top
account (so a post that points elsewhere shows), the trust figure for threads of that length, warnings
and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from twitapp.attribution.reasons import Reasons
from twitapp.attribution.trust import Trust, chance_warning


@dataclass(frozen=True)
class Candidate:
    username: str
    name: str
    probability: float
    posts: int
    colour: int = 0  # its colour on the page: the place in the ranking (reasons.colour_of)


@dataclass(frozen=True)
class PostAnswer:
    """One post of a thread, answered alone: its most likely account, as a single post would be."""

    text: str
    username: str
    probability: float
    colour: int  # the account's colour in the thread's ranking


@dataclass(frozen=True)
class Prediction:
    texts: list[str]  # the thread's posts, in order (a single text: one)
    ranking: list[Candidate]  # for the thread as a whole
    trust: Trust  # the held-out figure for threads of this length (trust.length says which it measured)
    warnings: list[str]  # the chance warning first, when there is one
    reasons: Reasons
    posts: list[PostAnswer]  # each post's own answer, in order

    @property
    def better_than_chance(self) -> bool | None:
        """The trust figure's verdict; None when nothing was held out."""
        return self.trust.better_than_chance

    @property
    def text(self) -> str:
        """The thread as the form takes it: its posts separated by blank lines (a single text as it is)."""
        return "\n\n".join(self.texts)

    @property
    def chance(self) -> float:
        """What guessing would score: one in the number of accounts."""
        return 1.0 / len(self.ranking)

    @property
    def chance_warning(self) -> str | None:
        """The warning (one of ``warnings``) that the held-out accuracy is no better than chance, if it is not."""
        return chance_warning(self.trust)

    def as_dict(self) -> dict:
        """The answer as ``POST /api/predict`` gives it (README.md shows one)."""
        trust = self.trust
        return {
            "text": self.text,
            "texts": self.texts,
            "chance": round(self.chance, 4),
            "better_than_chance": self.better_than_chance,
            "ranking": [
                {"username": c.username, "name": c.name, "probability": round(c.probability, 6), "posts": c.posts}
                for c in self.ranking
            ],
            "posts": [
                {"text": p.text, "top": {"username": p.username, "probability": round(p.probability, 6)}}
                for p in self.posts
            ],
            "trust": {
                "held_out_accuracy": _rounded(trust.accuracy),
                "held_out_accuracy_low": _rounded(trust.accuracy_low),
                "tested_posts": trust.posts,
                "chance": round(self.chance, 4),
                "better_than_chance": self.better_than_chance,
            }
            # A thread's figure counts threads of ``thread_posts`` posts (its length, or the longest the
            # held-out posts could measure) drawn from ``tested_posts`` held-out posts.
            | ({"thread_posts": trust.length, "tested_threads": trust.tested} if len(self.texts) > 1 else {}),
            "warnings": self.warnings,
            "reasons": self._reasons(),
        }

    def _reasons(self) -> dict:
        reasons = self.reasons
        names = [a.username for a in reasons.accounts]
        return {
            "accounts": [
                {
                    "username": a.username,
                    "colour": a.colour,
                    "pull": round(a.total, 4),
                    "toward": [self._gram(g, v) for g, v in a.toward],
                }
                for a in reasons.accounts
            ],
            "words": [
                {"text": t, "toward": None if who is None else names[who], "score": round(s, 4), "post": number}
                for number, pieces in enumerate(reasons.posts, start=1)
                for t, who, _, s in pieces
                if t.strip()
            ],
        }

    def _gram(self, gram: str, weight: float) -> dict:
        """An n-gram of the reasons; a piece of a word says which word (``"in"``)."""
        word = self.reasons.within.get(gram)
        return {"ngram": gram, "weight": round(weight, 4)} | ({"in": word} if word else {})


def _rounded(figure: float | None) -> float | None:
    return None if figure is None else round(figure, 4)
