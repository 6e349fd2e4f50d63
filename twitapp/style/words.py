"""Real words for "write like them": the words a model's posts hold, and drafts kept to those words.

What counts as a word: a run of letters, digits and underscores (anything Python's ``\\w`` matches), with
apostrophes inside it (``don't``, ``Biden's``; the typographic ’ is read as '), and an ``@`` or ``#``
straight before it belonging to it (``@JoeBiden``, ``#transit``). So:

- @handles and #hashtags are words of their own: a draft names only the accounts and tags its posts
  named, since a made-up handle would point at a stranger (``#transit`` is known, ``transit`` alone is
  known only if a post wrote it so);
- numbers are words too: a draft repeats figures its posts gave, rather than making up ``27.3%``; a
  figure splits at its points and commas (``2.3`` is the words ``2`` and ``3``), so known parts can
  still make a new figure;
- hyphens, slashes and every other mark end a word, so ``well-known`` is two words, each to be known;
- emoji, punctuation and spaces are no part of any word and are never held back;
- case does not matter: ``The`` is known when a post wrote ``the``;
- links are dropped before a model learns (sampling.normalise), so none is drawn.

A word is known when a post the model learned from holds it, or when the opening the user typed does
(the opening is kept as typed, and its words may come again later in the draft).

``Lexicon`` holds the known words and every start of one (a prefix tree, kept as the set of its nodes);
``Lexicon.guard`` follows one draft as it is drawn, a character at a time, and says which next characters
keep every word in it known: inside a word, only characters that keep it the start of a known word, and
an end of the word only once the word is whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

WORD = re.compile(r"[@#]?\w+(?:['’]\w+)*")
_WORD_CHAR = re.compile(r"\w")
APOSTROPHES = "'’"
MARKS = "@#"


def fold(char: str) -> str:
    """A character as words are compared: lower case (where that stays one character), ’ read as '."""
    if char in APOSTROPHES:
        return "'"
    lower = char.lower()
    return lower if len(lower) == 1 else char


def words_in(text: str) -> list[str]:
    """The words of a text, folded, in order."""
    return ["".join(fold(c) for c in match.group()) for match in WORD.finditer(text)]


class Lexicon:
    """The known words, and every start of one (``prefixes``: a prefix tree kept as the set of its nodes)."""

    def __init__(self, posts: Iterable[str] = (), base: Lexicon | None = None) -> None:
        self.base = base  # a lexicon this one adds words to (an opening's words to a model's)
        self.words: set[str] = set()
        self.prefixes: set[str] = set()
        self.add(w for post in posts for w in words_in(post))

    def add(self, words: Iterable[str]) -> None:
        for word in words:
            if word not in self.words:
                self.words.add(word)
                self.prefixes.update(word[:i] for i in range(1, len(word) + 1))

    def including(self, text: str) -> Lexicon:
        """This lexicon with the words of ``text`` (a typed opening) known too."""
        new = [w for w in words_in(text) if not self.known(w)]
        if not new:
            return self
        extended = Lexicon(base=self)
        extended.add(new)
        return extended

    def known(self, word: str) -> bool:
        """Whether the (folded) word is known."""
        return word in self.words or (self.base is not None and self.base.known(word))

    def follows(self, prefix: str, char: str) -> bool:
        """Whether the (folded) character may follow the (folded) prefix within a known word."""
        return prefix + char in self.prefixes or (self.base is not None and self.base.follows(prefix, char))

    def invented(self, posts: Sequence[str]) -> tuple[int, int]:
        """(words found in no known word, all words) over the posts."""
        words = [w for post in posts for w in words_in(post)]
        return sum(not self.known(w) for w in words), len(words)

    def guard(self, alphabet: str, opening: str = "") -> Guard:
        """A guard for one draft over ``alphabet``, which starts with ``opening`` (whose words become known)."""
        guard = Guard(self.including(opening), alphabet)
        for char in opening:
            guard.push(char)
        return guard


class Guard:
    """One draft's place among the words, as it is drawn: which next characters (or its end) keep every
    word in it known. Mirrors ``WORD``: a draft that passes the guard splits into known words only."""

    def __init__(self, lexicon: Lexicon, alphabet: str) -> None:
        self.lexicon = lexicon
        self.alphabet = alphabet
        self.folded = [fold(c) for c in alphabet]
        self.is_word = np.array([bool(_WORD_CHAR.match(c)) for c in alphabet], dtype=bool)
        self.is_apostrophe = np.array([c in APOSTROPHES for c in alphabet], dtype=bool)
        self.word = ""  # the word being drawn, folded, with an apostrophe that may yet join it at its end
        self.mark = ""  # outside a word: the @ or # just drawn, which a word may start with
        self.typed = 0  # characters of the word being drawn, as drawn

    def _whole(self) -> bool:
        """Whether the word being drawn may end here (outside a word there is nothing to end)."""
        word = self.word[:-1] if self.word.endswith("'") else self.word
        return not word or self.lexicon.known(word)

    def allows(self, char: str | None) -> bool:
        """Whether ``char`` (None: the end of the draft) may come next."""
        if char is None:
            return self._whole()
        if _WORD_CHAR.match(char):
            return self.lexicon.follows(self.word or self.mark, fold(char))
        if char in APOSTROPHES and self.word and not self.word.endswith("'"):
            return self.lexicon.known(self.word) or self.lexicon.follows(self.word, "'")
        return self._whole()

    def allowed(self) -> tuple[np.ndarray, bool]:
        """Which characters of the alphabet may come next (a mask), and whether the draft may end here."""
        whole = self._whole()
        mask = np.full(len(self.alphabet), whole)
        prefix = self.word or self.mark
        follows = np.array([self.lexicon.follows(prefix, f) for f in self.folded], dtype=bool)
        mask[self.is_word] = follows[self.is_word]
        if self.word and not self.word.endswith("'"):
            mask[self.is_apostrophe] = whole or self.lexicon.follows(self.word, "'")
        return mask, whole

    def push(self, char: str) -> None:
        """``char`` was drawn."""
        if _WORD_CHAR.match(char):
            if not self.word:
                self.word, self.typed = self.mark, len(self.mark)
            self.word += fold(char)
            self.mark, self.typed = "", self.typed + 1
        elif char in APOSTROPHES and self.word and not self.word.endswith("'"):
            self.word += "'"
            self.typed += 1
        else:
            self.word, self.typed = "", 0
            self.mark = char if char in MARKS else ""
