"""How does it feel? One interface over two ways of scoring a post's sentiment.

- VADER (``vader``): a lexicon with rules for negation, intensifiers, caps and emoji. Needs no
  training; the default, and the fallback whenever no trained model can be used.
- A trained model: a multinomial logistic regression over word unigrams and bigrams (words after a
  negation marked, so "not good" differs from "good"), character n-grams within words, and VADER's own
  four scores as features. ``flask sentiment train`` fits it on labelled files and stores it, versioned,
  in the database as arrays and text (artefacts.py: never a pickle, so a stored row is data, never code);
  the service uses the newest stored model whose bytes match their hash and read back whole.

Both give a label (negative / neutral / positive), a score from -1 to 1, and what each word contributed.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

from twitapp import artefacts, registry
from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.models import SentimentModel, Tweet
from twitapp.sentiment import vader
from twitapp.sentiment.labelled import LABELS, LabelledText
from twitapp.sentiment.vader import Scored
from twitapp.sources.records import clean_text

MAX_TEXTS = 1000  # per API call
MAX_TEXT_CHARS = 1000
# Chosen on the development protocol (bench/sentiment.py): C, and the held-out share when training.
C = 0.25
HOLDOUT = 0.1
GRAM_CACHE_WORDS = 50_000  # distinct words whose n-gram columns are remembered (some 30 MB at most)
# Bump when TrainedModel's stored layout changes; older rows are then ignored. Format 1 was a pickle, which
# is never read: such a model must be trained again.
MODEL_FORMAT = 2


class SentimentError(UserError, ValueError):
    """The request cannot be scored as asked; the message says what to change."""


# ---------------------------------------------------------------------------------------------------
# The trained model


class TrainedModel:
    """Word and character n-grams plus VADER's scores, into a multinomial logistic regression."""

    def __init__(self) -> None:
        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=r"\S+")
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        self.classifier = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")

    def _design(self, texts: Sequence[str], fit: bool = False) -> sp.csr_matrix:
        normalised = [vader.normalise(t) for t in texts]
        marked = [vader.negation_marked(t) for t in normalised]
        if fit:
            self.words.fit(marked)
            self.chars.fit(normalised)
        chars = self.chars.transform(normalised) if fit else self._char_tfidf(normalised)
        parts = [self.words.transform(marked), chars, sp.csr_matrix(vader.vader_scores(texts))]
        return sp.hstack(parts, format="csr")

    def _columns(self, word: str) -> list[int]:
        """The character n-gram columns of a word (any repeats kept), remembered between calls."""
        grams = self._word_grams()
        found = grams.get(word)
        if found is None:
            vocabulary = self.chars.vocabulary_
            found = grams[word] = [c for c in map(vocabulary.get, self._analyze()(word)) if c is not None]
        return found

    def _analyze(self) -> Callable[[str], list[str]]:
        analyze = self.__dict__.get("_analyzer")
        if analyze is None:
            analyze = self.__dict__["_analyzer"] = self.chars.build_analyzer()
        return analyze

    def _char_tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``self.chars.transform(texts)``, built from each word's remembered columns: a text's character
        n-grams within words are its words' n-grams together (words recur, so most are looked up once)."""
        rows: list[int] = []
        columns: list[int] = []
        for i, text in enumerate(texts):
            for word in text.split():
                found = self._columns(word)
                columns += found
                rows += [i] * len(found)
        counts = sp.csr_matrix(
            (np.ones(len(columns)), (rows, columns)), shape=(len(texts), len(self.chars.vocabulary_))
        )
        counts.sum_duplicates()
        counts.data = (np.log(counts.data) + 1.0) * self.chars.idf_[counts.indices]  # sublinear tf, then idf
        return normalize(counts)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TrainedModel:
        self.classifier.fit(self._design(texts, fit=True), np.asarray(labels))
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.predict(self._design(texts))

    def score(self, texts: Sequence[str], explain: bool = True) -> list[Scored]:
        X = self._design(texts)
        proba = self.classifier.predict_proba(X)
        classes = list(self.classifier.classes_)
        positive, negative = classes.index("positive"), classes.index("negative")
        words = self._contributions(texts, X, positive, negative) if explain else [[] for _ in texts]
        return [
            Scored(text, classes[int(p.argmax())], float(p[positive] - p[negative]), pulls)
            for text, p, pulls in zip(texts, proba, words, strict=True)
        ]

    def _word_grams(self) -> dict[str, list[int]]:
        """A word's character n-gram columns, kept between calls (words recur); emptied when it grows large."""
        grams = self.__dict__.setdefault("_grams", {})
        if len(grams) > GRAM_CACHE_WORDS:
            grams.clear()
        return grams

    def to_bytes(self) -> bytes:
        """The fitted model as data: the vectorizers' terms and idf, the regression's arrays (no caches)."""
        words, words_meta = artefacts.vectorizer_parts("words", self.words)
        chars, chars_meta = artefacts.vectorizer_parts("chars", self.chars)
        arrays = {**words, **chars, **artefacts.classifier_parts("classifier", self.classifier)}
        return artefacts.pack(arrays, {"kind": "sentiment", "words": words_meta, "chars": chars_meta})

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedModel:
        """A model from ``to_bytes``'s bytes; ArtefactError when they are anything else."""
        arrays, meta = artefacts.unpack(blob)
        artefacts.check(meta.get("kind") == "sentiment", "not a sentiment model")
        model = cls()
        artefacts.restore_vectorizer("words", model.words, arrays, meta)
        artefacts.restore_vectorizer("chars", model.chars, arrays, meta)
        n_features = len(model.words.vocabulary_) + len(model.chars.vocabulary_) + 4  # and VADER's four scores
        artefacts.restore_classifier("classifier", model.classifier, arrays, n_features)
        classes = set(model.classifier.classes_.tolist())
        artefacts.check({"positive", "negative"} <= classes <= set(LABELS), f"not sentiment labels: {sorted(classes)}")
        return model

    def _contributions(
        self, texts: Sequence[str], X: sp.csr_matrix, positive: int, negative: int
    ) -> list[list[tuple[str, float]]]:
        """Each word's share of (positive logit - negative logit) from the word and character n-grams.

        A feature is shared among the words it came from: a bigram half each, a feature seen several times
        equally among its occurrences; so a text's shares add up to the n-grams' whole part of the logit.
        Occurrences are listed in Python, then shared out for the whole batch at once with NumPy.
        """
        vocabulary, n_words = self.words.vocabulary_, len(self.words.vocabulary_)
        every_word: list[str] = []
        owner: list[int] = []  # per occurrence of a feature: the word it belongs to (across the batch),
        key: list[int] = []  # its text and column as text * width + column, and its share of the feature
        share: list[float] = []
        width = X.shape[1]
        for t, text in enumerate(texts):
            first_word, words = len(every_word), vader.words_of(text)
            every_word += words
            normalised = [vader.normalise(w) for w in words]
            sequence: list[tuple[str, int]] = []  # every token of the text with the word it belongs to
            for w, tokens in enumerate(vader.mark(normalised), start=first_word):
                sequence += [(token, w) for token in tokens]
                found = [t * width + c for c in map(vocabulary.get, tokens) if c is not None]
                owner += [w] * len(found)
                key += found
                share += [1.0] * len(found)
            for (one, w1), (two, w2) in itertools.pairwise(sequence):
                if (c := vocabulary.get(f"{one} {two}")) is not None:
                    owner += [w1, w2]
                    key += [t * width + c] * 2
                    share += [0.5, 0.5]
            for w, word in enumerate(normalised, start=first_word):
                found = self._columns(word)
                owner += [w] * len(found)
                key += [t * width + n_words + c for c in found]
                share += [1.0] * len(found)
        totals = np.zeros(len(every_word))
        if key:
            X.sort_indices()
            stored = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr)) * width + X.indices
            delta = self.classifier.coef_[positive] - self.classifier.coef_[negative]
            unique, which = np.unique(np.asarray(key, dtype=np.int64), return_inverse=True)
            claimed = np.bincount(which, weights=share)
            at = np.minimum(np.searchsorted(stored, unique), len(stored) - 1)
            pull = np.where(stored[at] == unique, X.data[at] * delta[X.indices[at]], 0.0)
            parts = pull[which] * np.asarray(share) / claimed[which]
            totals = np.bincount(np.asarray(owner), weights=parts, minlength=len(every_word))
        out, start = [], 0
        for text in texts:
            end = start + len(vader.words_of(text))
            out.append(list(zip(every_word[start:end], totals[start:end].tolist(), strict=True)))
            start = end
        return out


def _macro_recall(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(recall_score(list(truth), list(predicted), labels=list(LABELS), average="macro", zero_division=0))


def evaluate(rows: Sequence[LabelledText], model: TrainedModel | None) -> dict:
    """Macro-averaged recall (and per class) of a model, or of VADER when ``model`` is None."""
    texts, truth = [r.text for r in rows], [r.label for r in rows]
    predicted = model.predict(texts) if model is not None else [s.label for s in vader.score_vader(texts)]
    per_class = recall_score(truth, list(predicted), labels=list(LABELS), average=None, zero_division=0)
    return {
        "macro_recall": round(_macro_recall(truth, predicted), 4),
        "recall": {label: round(float(r), 4) for label, r in zip(LABELS, per_class, strict=True)},
        "support": {label: truth.count(label) for label in LABELS},
        "rows": len(rows),
    }


CHANCE = 1 / len(LABELS)  # the macro-averaged recall of any guess that ignores the text


def macro_recall_low(scores: dict) -> float | None:
    """The lower end of a 95% interval for a macro-averaged recall (``evaluate``'s figures).

    Macro recall is the mean of the labels' recalls, each a proportion of that label's texts, so its
    variance is the sum of the labels' binomial variances over the number of labels squared (a normal
    approximation, with each recall's variance floored at that of one text in either direction so that a
    perfect score on few texts is not taken as certain). Older figures without per-label counts take the
    texts as evenly split. None where no text was scored.
    """
    rows = scores.get("rows") or 0
    if not rows:
        return None
    support = scores.get("support") or dict.fromkeys(LABELS, rows / len(LABELS))
    variance = 0.0
    for label in LABELS:
        n = max(support.get(label) or 0, 1)
        recall = min(max(scores["recall"].get(label, 0.0), 1 / (n + 1)), n / (n + 1))
        variance += recall * (1 - recall) / n
    return round(scores["macro_recall"] - 1.96 * variance**0.5 / len(LABELS), 4)


def better_than_chance(metrics: dict) -> bool:
    """Whether a model's held-out macro recall is clearly above chance: its interval's lower end above it.

    Models trained since this was measured carry the verdict; older ones are judged from their figures.
    """
    if "better_than_chance" in metrics:
        return bool(metrics["better_than_chance"])
    low = macro_recall_low(metrics["held_out"])
    return low is not None and low > CHANCE


MIN_TRAINING_TEXTS = 30


def check_training(rows: Sequence[LabelledText]) -> None:
    """Enough texts, and every label among them, to train on and to hold some out."""
    present = {r.label for r in rows}
    missing = [label for label in LABELS if label not in present]
    if missing or len(rows) < MIN_TRAINING_TEXTS:
        raise SentimentError(
            f"Training needs at least {MIN_TRAINING_TEXTS} labelled texts with every label; "
            f"missing: {', '.join(missing) or 'none'}, texts: {len(rows)}."
        )


def train(rows: Sequence[LabelledText], progress: Callable[[int, int, str], None] | None = None) -> tuple:
    """Fit on all but a held-out share (stratified), report on it, then refit on everything.

    Returns (model, metrics), metrics holding the held-out scores of the model and of VADER.
    """
    check_training(rows)
    labels = [r.label for r in rows]
    train_rows, test_rows = train_test_split(list(rows), test_size=HOLDOUT, random_state=0, stratify=labels)
    step = progress or (lambda done, total, message: None)
    step(0, 3, f"Fitting on {len(train_rows):,} texts to test on {len(test_rows):,}.")
    held_out = TrainedModel().fit([r.text for r in train_rows], [r.label for r in train_rows])
    step(1, 3, "Scoring the held-out texts.")
    metrics = {"held_out": evaluate(test_rows, held_out), "vader_held_out": evaluate(test_rows, None)}
    metrics["held_out"]["macro_recall_low"] = macro_recall_low(metrics["held_out"])
    metrics["better_than_chance"] = better_than_chance(metrics)  # kept with the model, the verdict it was given
    step(2, 3, f"Fitting the final model on all {len(rows):,} texts.")
    model = TrainedModel().fit([r.text for r in rows], labels)
    step(3, 3, "Trained.")
    return model, metrics


# ---------------------------------------------------------------------------------------------------
# Storage: every trained model is a row; the newest intact one is in service


def save(model: TrainedModel, metrics: dict, data: dict) -> SentimentModel:
    blob = model.to_bytes()
    row = SentimentModel(
        format=MODEL_FORMAT,
        created_at=datetime.now(UTC),
        data=data,
        metrics=metrics,
        sha256=artefacts.digest(blob),
        artefact=blob,
    )
    db.session.add(row)
    db.session.commit()
    _service.clear()
    return row


def quality(metrics: dict) -> str:
    """A model's held-out macro recall beside VADER's and chance, as a person reads it."""
    held_out, vader_recall = metrics["held_out"]["macro_recall"], metrics["vader_held_out"]["macro_recall"]
    return (
        f"macro-averaged recall {held_out:.3f} on the held-out tenth (VADER: {vader_recall:.3f}; chance: {CHANCE:.3f})"
    )


def trained_message(row: SentimentModel, texts: int) -> str:
    """What a training job says it did: how the model scored, and whether it now answers."""
    said = f"Trained sentiment model {row.id} on {texts:,} texts: {quality(row.metrics)}."
    if better_than_chance(row.metrics):
        return f"{said} It is now in service."
    serving, _ = in_service()
    instead = f"model {serving.id}" if serving is not None else "VADER"
    low = row.metrics["held_out"].get("macro_recall_low")
    reach = f" (its 95% interval reaches down to {low:.3f})" if low is not None else ""
    return f"{said} That is no better than chance{reach}, so it is not put in service: {instead} keeps answering."


def _from_row(row: SentimentModel) -> TrainedModel:
    return TrainedModel.from_bytes(row.artefact)


def _candidates(subject: str | None = None) -> sa.Select:
    """Every stored model in the layout this code reads that is not known to be no better than chance,
    newest first: the newest that loads serves (and VADER where none does)."""
    verdict = SentimentModel.metrics["better_than_chance"].as_boolean()
    return (
        sa.select(SentimentModel)
        .where(SentimentModel.format == MODEL_FORMAT, sa.or_(verdict.is_(None), verdict.is_(True)))
        .order_by(SentimentModel.id.desc())
    )


# The model in service, loaded once per process and reloaded when a newer one is stored; a damaged or
# unreadable row is skipped for the newest one before it (and remembered as such).
_service = registry.ModelCache(SentimentModel, _candidates, _from_row, what="sentiment model", fall_back=True)


def in_service() -> tuple[SentimentModel | None, TrainedModel | None]:
    """(the row serving, its model), or (None, None) when no stored model can be read."""
    serving = _service.get()
    return serving.row, serving.model


def check_texts(texts: object) -> list[str]:
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SentimentError('"texts" must be a list of strings.')
    if not texts:
        raise SentimentError("Send at least one text to score.")
    if len(texts) > MAX_TEXTS:
        raise SentimentError(f"Score at most {MAX_TEXTS} texts per call; this call has {len(texts)}.")
    cleaned = [clean_text(t).strip() for t in texts]
    for number, text in enumerate(cleaned, start=1):
        which = f"Text {number}" if len(cleaned) > 1 else "The text"
        if not text:
            raise SentimentError(f"{which} is empty; type something to score.")
        if len(text) > MAX_TEXT_CHARS:
            raise SentimentError(f"{which} has {len(text)} characters; at most {MAX_TEXT_CHARS} are scored.")
    return cleaned


def analyse(
    texts: list[str], backend: str | None = None, explain: bool = True
) -> tuple[str, SentimentModel | None, list[Scored]]:
    """Score texts with the trained model in service (VADER when there is none, or when asked).

    ``explain=False`` leaves out the per-word weights, which take most of a large batch's time.
    """
    texts = check_texts(texts)
    if backend not in (None, "vader", "trained"):
        raise SentimentError('"backend" must be "vader" or "trained".')
    row, model = in_service() if backend != "vader" else (None, None)
    if model is None:
        if backend == "trained":
            raise SentimentError("No trained model is stored yet; train one with `flask sentiment train`.")
        return "vader", None, vader.score_vader(texts, explain)
    return "trained", row, model.score(texts, explain)


# ---------------------------------------------------------------------------------------------------
# An account's mix over time

MIX_POSTS = 1000  # the newest posts an account page scores
_mix_cache: dict[tuple, list[tuple[str, dict[str, int]]]] = {}
_mix_lock = threading.Lock()
MIX_CACHE_ENTRIES = 32


def account_mix(user_id: int) -> list[tuple[str, dict[str, int]]]:
    """Month by month (oldest first), how many of the account's newest posts read negative, neutral, positive.

    Cached per account state and model in service, so a page view scores nothing twice.
    """
    state = db.session.execute(sa.select(sa.func.count(), sa.func.max(Tweet.id)).where(Tweet.user_id == user_id)).one()
    row, _ = in_service()
    key = (user_id, state[0], state[1], row.id if row else None)
    with _mix_lock:
        if key in _mix_cache:
            return _mix_cache[key]
    posts = db.session.execute(
        sa.select(Tweet.text, Tweet.created_at)
        .where(Tweet.user_id == user_id)
        .order_by(Tweet.created_at.desc())
        .limit(MIX_POSTS)
    ).all()
    posts = [(clean_text(text).strip()[:MAX_TEXT_CHARS], at) for text, at in posts]
    posts = [(text, at) for text, at in posts if text]
    months: dict[str, dict[str, int]] = {}
    if posts:
        _, _, scored = analyse([text for text, _ in posts], explain=False)
        for (_, at), result in zip(posts, scored, strict=True):
            months.setdefault(at.strftime("%Y-%m"), dict.fromkeys(LABELS, 0))[result.label] += 1
    mix = sorted(months.items())
    with _mix_lock:
        _mix_cache[key] = mix
        while len(_mix_cache) > MIX_CACHE_ENTRIES:
            _mix_cache.pop(next(iter(_mix_cache)))
    return mix


def history(limit: int | None = None) -> list[dict]:
    """The trained models, newest first, as the page's table lists them: which one serves, when each was
    trained, on how many texts, and how it scored on its held-out tenth beside VADER."""
    serving, _ = in_service()
    query = sa.select(SentimentModel).order_by(SentimentModel.id.desc())
    rows = db.session.scalars(query.limit(limit) if limit else query).all()
    return [
        {
            "version": row.id,
            "in_service": serving is not None and row.id == serving.id,
            "created_at": row.created_at.isoformat(),
            "texts": row.data.get("rows"),
            "files": [f["file"] for f in row.data.get("files", [])],
            "held_out_macro_recall": row.metrics["held_out"]["macro_recall"],
            "held_out_macro_recall_low": macro_recall_low(row.metrics["held_out"]),
            "vader_held_out_macro_recall": row.metrics["vader_held_out"]["macro_recall"],
            "chance": round(CHANCE, 4),
            "better_than_chance": better_than_chance(row.metrics),
        }
        for row in rows
    ]
