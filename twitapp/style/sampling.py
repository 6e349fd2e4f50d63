"""Posts for "write like them": a post as the models learn it, and drawing new ones from any engine.

A post is learned with its links dropped and its spacing tidied (``normalise``), and is drawn one symbol at a
time at a temperature, up to ``MAX_POST_CHARS`` (a post that runs to the limit is ``cut`` at a natural
boundary). ``Sampler`` draws from any model that gives the next symbol's distribution; the LSTM engine
draws on its own but cuts and keeps to real words the same way. Drafts that repeat ``COPY_RUN`` characters
of any post a model learned from are drawn again (``CopyIndex``, ``draw``).

Given the words of the posts a model learned from (a ``words.Lexicon``), a draft holds no other word but
those of its opening: each character is drawn from the model's distribution, and where it would make a
word no post holds, it is drawn again from the characters that would not (``pick``): each allowed
character keeps the model's probability at that step, scaled up by the same factor (the step's
distribution given that its word stays real, not the whole post's). Until a character first has to be
drawn again, the draws are the very ones the model makes without the rule.

Nothing here knows an engine: the engines import this module, never the other way round.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from twitapp.style.words import Guard, Lexicon

MAX_POST_CHARS = 280
COPY_RUN = 40  # a generated post sharing this many consecutive characters with a real one is a copy

# A link, with the " …" some exports put after a shortened one.
_LINK = re.compile(r"(?:https?://\S+|\bpic\.twitter\.com/\S+|\bt\.co/\S+)(?:\s*…)?")
SPACE = re.compile(r"\s+")

BOS, EOS, UNK = 0, 1, 2  # the symbol ids a Sampler's model uses; characters start at 3


def normalise(text: str) -> str:
    """A post as the model learns it: links dropped (generated ones would lead nowhere), spacing tidied."""
    text = html.unescape(_LINK.sub(" ", text))
    return SPACE.sub(" ", text).strip()


def cut(text: str) -> str:
    """A post that ran to the limit, ended at its last sentence end (or else its last space)."""
    text = text[:MAX_POST_CHARS]
    ends = [m.end() for m in re.finditer(r"[.!?…](?=\s|$)", text)]
    if ends and ends[-1] >= MAX_POST_CHARS // 3:
        return text[: ends[-1]].strip()
    space = text.rfind(" ")
    return (text[:space] if space > MAX_POST_CHARS // 3 else text).strip()


class Writer(Protocol):
    """Any engine's model, as ``draw`` uses it."""

    def sample(
        self, rng: np.random.Generator, temperature: float = 1.0, opening: str = "", words: Lexicon | None = None
    ) -> str: ...


def pick(rng: np.random.Generator, p: np.ndarray, guard: Guard | None, first: int, end: int) -> int | None:
    """A symbol drawn from ``p`` (over an engine's symbols: its end symbol ``end``, its alphabet's characters
    from ``first`` on), kept to the guard's words when there is one; None when the guard allows nothing."""
    symbol = int(rng.choice(len(p), p=p))
    if guard is None or guard.allows(None if symbol == end else guard.alphabet[symbol - first]):
        return symbol
    chars, may_end = guard.allowed()
    allowed = np.zeros(len(p), dtype=bool)
    allowed[first : first + len(chars)] = chars
    allowed[end] = may_end
    kept = np.where(allowed, p, 0.0)
    total = kept.sum()
    return int(rng.choice(len(p), p=kept / total)) if total > 0 else None


def write(
    rng: np.random.Generator,
    alphabet: str,
    first: int,
    opening: str,
    words: Lexicon | None,
    following: Callable[[int | None], np.ndarray],
) -> str:
    """One post drawn a symbol at a time, by any engine: ``following(symbol)`` is the distribution over the
    engine's symbols (its end symbol EOS, its alphabet's characters from ``first`` on) after the symbol just
    drawn (None: after the opening). It ends at the end symbol, or at the length limit cut at a natural
    boundary; with ``words``, every word of it is one of those or of the opening."""
    text = list(opening)
    guard = words.guard(alphabet, opening) if words is not None else None
    p = following(None)
    while len(text) < MAX_POST_CHARS:
        symbol = pick(rng, p, guard, first, EOS)
        if symbol is None:
            break
        if symbol == EOS:
            return "".join(text).strip()
        text.append(alphabet[symbol - first])
        if guard is not None:
            guard.push(text[-1])
        p = following(symbol)
    if guard is not None and not guard.allows(None):  # an unfinished word that is not a known one goes
        text = text[: len(text) - guard.typed]
    return cut("".join(text))


class Sampler:
    """Drawing posts from any model with ``alphabet``, ``index`` and ``next_distribution`` (over the symbols
    BOS, EOS, UNK, then the alphabet's characters)."""

    alphabet: str
    index: dict[str, int]

    def next_distribution(self, context: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def sample(
        self, rng: np.random.Generator, temperature: float = 1.0, opening: str = "", words: Lexicon | None = None
    ) -> str:
        """One post (see ``write``) at ``temperature``."""
        context = [self.index.get(c, UNK) for c in opening]

        def following(symbol: int | None) -> np.ndarray:
            if symbol is not None:
                context.append(symbol)
            p = self.next_distribution(context)
            if temperature != 1.0:
                p = np.power(p, 1.0 / temperature)
                p /= p.sum()
            return p

        return write(rng, self.alphabet, 3, opening, words, following)


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
    model: Writer,
    real: Sequence[str] | CopyIndex,
    count: int = 5,
    temperature: float = 1.0,
    opening: str = "",
    seed: int | None = None,
    tries: int = 20,
    words: Lexicon | None = None,
) -> tuple[list[str], int]:
    """``count`` posts that copy no real post (copies are drawn again); returns them and how many were copies.

    ``real``: the posts the model learned from (its own and any pool's), or a CopyIndex of them.
    ``words``: the words the posts may hold (besides the opening's); by default, given posts, theirs;
    given a CopyIndex and no words, any word the model makes up.
    """
    rng = np.random.default_rng(seed)
    if isinstance(real, CopyIndex):
        index = real
    else:
        texts = [normalise(p) for p in real]
        index, words = CopyIndex(texts), Lexicon(texts) if words is None else words
    out, rejected = [], 0
    for _ in range(count * tries):
        if len(out) == count:
            break
        text = model.sample(rng, temperature, opening, words)
        if len(text) < max(len(opening) + 3, 10):
            continue
        if index.copies(text):
            rejected += 1
            continue
        out.append(text)
    return out, rejected
