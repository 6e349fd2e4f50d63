"""VADER, and how both of the app's scorers read a text: normalised, cut into words, negations marked.

VADER (``vaderSentiment``) is a lexicon with rules for negation, intensifiers, capitals and emoji. It
needs no training: it scores whenever no trained model is in service, and its four scores are features
of the trained model (``model``). ``VaderTokens`` gives the same compound score word by word, so a page
can shade each word by how it pulled.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText
from vaderSentiment.vaderSentiment import normalize as vader_normalize

# VADER's customary cut-offs on its compound score.
VADER_POSITIVE, VADER_NEGATIVE = 0.05, -0.05


_TOKEN = re.compile(r"[#@]?\w+(?:'\w+)?|[^\w\s]")


_NEGATIONS = frozenset(("not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without"))
_NEGATIONS |= frozenset(("cannot", "cant", "dont", "wont", "isnt", "wasnt", "arent", "aint"))
_CLAUSE_END = frozenset(".,!?;:")


@functools.cache
def analyzer() -> SentimentIntensityAnalyzer:
    """Built on first use: reading its lexicon is not work for every `flask` command at start-up."""
    return SentimentIntensityAnalyzer()


@dataclass(frozen=True)
class Scored:
    text: str
    label: str
    score: float  # -1 (negative) to 1 (positive)
    words: list[tuple[str, float]]  # each word and its pull, positive toward positive

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "label": self.label,
            "score": round(self.score, 4),
            "words": [{"text": w, "weight": round(v, 4)} for w, v in self.words],
        }


def normalise(text: str) -> str:
    """Links and mentions carry no sentiment of their own: one token each."""
    text = re.sub(r"https?://\S+", " http ", text)
    return re.sub(r"@\w+", "@user", text)


def mark(words: Sequence[str]) -> list[list[str]]:
    """Each word's tokens, lowercased, with ``_neg`` on those between a negation and the end of its clause.

    The state carries from word to word, so the tokens of a text are those of its words laid end to end.
    """
    out, negated = [], False
    for word in words:
        tokens = []
        for token in _TOKEN.findall(word.lower()):
            if token in _CLAUSE_END:
                negated = False
                tokens.append(token)
                continue
            tokens.append(token + "_neg" if negated else token)
            if token in _NEGATIONS or token.endswith("n't"):
                negated = True
        out.append(tokens)
    return out


def negation_marked(text: str) -> str:
    """A text's tokens with negated words marked, joined by spaces (the word n-grams' input)."""
    return " ".join(token for tokens in mark(text.split()) for token in tokens)


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    rows = []
    for text in texts:
        s = analyzer().polarity_scores(text)
        rows.append((s["compound"], s["pos"], s["neg"], s["neu"]))
    return np.array(rows, dtype=np.float64).reshape(len(texts), 4)


def words_of(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def score_vader(texts: Sequence[str], explain: bool = True) -> list[Scored]:
    if not explain:
        compounds = vader_scores(texts)[:, 0]
        return [Scored(text, label_of(c), float(c), []) for text, c in zip(texts, compounds, strict=True)]
    out = []
    for text in texts:  # the tokens' valences give the score as well, so VADER's rules run once per text
        valued = VaderTokens.of(text)
        compound = valued.compound()
        words = [(w, float(v) / 4) for w, v in zip(words_of(text), valued.per_word(), strict=True)]
        out.append(Scored(text, label_of(compound), compound, words))
    return out


def label_of(compound: float) -> str:
    return "positive" if compound >= VADER_POSITIVE else "negative" if compound <= VADER_NEGATIVE else "neutral"


@dataclass(frozen=True)
class VaderTokens:
    """A text as VADER scores it: its tokens' valences after VADER's rules, and the word each came from.

    VADER sums the valences of a text's tokens once negation ("not great"), intensifiers, capitals and a
    contrastive "but" have adjusted them. A word's shading is the sum of its tokens' adjusted valences,
    so it agrees with the score. The tokens are VADER's own: its emoji become their descriptions, which
    are credited to the word the emoji was in.
    """

    text: str
    owners: list[int]  # the whitespace-separated word of each token
    valences: list[float]

    @classmethod
    def of(cls, text: str) -> VaderTokens:
        vader = analyzer()
        owners: list[int] = []
        tokens: list[str] = []
        for n, word in enumerate(words_of(text)):
            # VADER's emoji rule: a description, preceded by a space unless the emoji starts a word.
            converted = "".join(
                (vader.emojis[c] if i == 0 else " " + vader.emojis[c]) if c in vader.emojis else c
                for i, c in enumerate(word)
            )
            for token in converted.split():
                owners.append(n)
                tokens.append(token)
        sentitext = SentiText(" ".join(tokens))
        items = sentitext.words_and_emoticons
        valences: list[float] = []
        for i, item in enumerate(items):
            lower = item.lower()
            if lower in BOOSTER_DICT or (lower == "kind" and i + 1 < len(items) and items[i + 1].lower() == "of"):
                valences.append(0.0)  # modifiers carry no valence of their own; they adjust their neighbours'
            else:
                vader.sentiment_valence(0.0, sentitext, item, i, valences)
        return cls(text, owners, vader._but_check(items, valences))

    def per_word(self) -> np.ndarray:
        values = np.zeros(len(words_of(self.text)))
        np.add.at(values, np.array(self.owners, dtype=np.int64), np.array(self.valences, dtype=np.float64))
        return values

    def compound(self) -> float:
        """VADER's compound score: the valences summed in its order, emphasised by "!" and "?", squashed."""
        total = float(sum(self.valences))
        emphasis = analyzer()._punctuation_emphasis(self.text)
        total += emphasis if total > 0 else -emphasis if total < 0 else 0.0
        return round(vader_normalize(total), 4)
