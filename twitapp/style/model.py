"""Write like them for stored accounts: training an account's style model, keeping one in service per
account in the registry, and writing posts in its voice with it.

Two engines learn an account's posts: Kneser-Ney over characters (kneser_ney.py), lent other accounts'
newest posts (the pool) where that helps, and, where PyTorch is installed, an LSTM (lstm.py). Either
chooses its settings on the account's newest tenth (``fit``). Posts are drawn as sampling.py has it: none
repeats a post its model learned from, and every word of one is a word of the account's stored posts or the
posts its model was lent, or of the opening typed (words.py); judge.py measures how well the drafts write
like the account.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from twitapp import artefacts, registry
from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.models import ModelVersion, Tweet, User, find_user
from twitapp.sources import handles
from twitapp.style import kneser_ney, lstm
from twitapp.style.sampling import COPY_RUN, SPACE, CopyIndex, draw, normalise
from twitapp.style.words import Lexicon

HELD_OUT = 0.1
ENGINES = ("kneser-ney", "lstm")
KIND = "style"
TRAIN_JOB = "style-train"  # the job that trains an account's model (jobs.py); the account page shows it
FORMAT = 1
MAX_COUNT = 10
TEMPERATURES = (0.2, 2.0)
DEFAULT_TEMPERATURE = 0.7
MAX_OPENING = 100
_CACHE_MODELS = 8
POOL_PER_ACCOUNT = 300  # other accounts' newest posts lent to a style model
POOL_MAX = 5000

# A style model, of either engine.
StyleModel = kneser_ney.CharModel | kneser_ney.Mixture | lstm.LSTMModel


class StyleError(UserError, ValueError):
    """A model cannot be trained or used as asked; the message says why."""


class NoStyleModel(StyleError):
    """The account has no usable style model (none trained yet, or the stored one cannot be loaded)."""


# ---------------------------------------------------------------------------------------------------
# Training, on plain lists of posts


def check_engine(engine: object) -> str:
    """An engine this installation can train, or a StyleError saying why not."""
    if engine not in ENGINES:
        raise StyleError(f'"engine" must be one of {", ".join(ENGINES)}, not {engine!r}.')
    if engine == "lstm" and not lstm.available():
        raise StyleError("The LSTM engine needs PyTorch, which is not installed here (pip install torch).")
    return engine


def fit(
    posts: Sequence[str],
    progress: Callable[[int, int, str], None] | None = None,
    engine: str = "kneser-ney",
    pool: Sequence[str] = (),
) -> tuple[StyleModel, dict]:
    """Train an engine on an account's posts, using the newest tenth to choose its settings.

    Kneser-Ney chooses its order and discount scale there, and, given other accounts' posts (``pool``),
    how much of a model of those to mix in; then it trains on all posts. The LSTM stops training when the
    newest tenth stops improving, and keeps its best epoch.
    """
    check_engine(engine)
    step = progress or (lambda done, total, message: None)
    texts = [t for t in (normalise(p) for p in posts) if t]
    if len(texts) < 20:
        raise StyleError(f"Writing like an account needs at least 20 posts with text; it has {len(texts)}.")
    cut = max(int(len(texts) * (1 - HELD_OUT)), 1)
    if engine == "lstm":
        model, history = lstm.LSTMModel.train(texts[:cut], texts[cut:], progress=step)
        best = history["held_out_bits"][history["best_epoch"] - 1]
        metrics = {"posts": len(texts), "epochs": history["epochs"], "held_out_bits_per_char": best}
    else:
        others = [t for t in (normalise(p) for p in pool) if t]
        model, metrics = kneser_ney.fit(texts, cut, others, step)
    # Chance: each next character (or the post's end) guessed at random among those the model knows.
    return model, {**metrics, "chance_bits_per_char": round(math.log2(len(model.alphabet) + 1), 4)}


def better_than_chance(row: ModelVersion) -> bool | None:
    """Whether the model's held-out bits per character beat guessing each character at random (True or
    False), or None where its stored figures cannot tell (models trained before chance was recorded)."""
    metrics = row.metrics or {}
    held_out, chance = metrics.get("held_out_bits_per_char"), metrics.get("chance_bits_per_char")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (held_out, chance)):
        return None
    return held_out < chance


def load(engine: str, blob: bytes) -> StyleModel:
    """The model in ``blob``; an ArtefactError (the registry then serves none, and says why in the log)
    for bytes that match their hash but are not a model this code stored: a missing array, a damaged or
    foreign file."""
    try:
        return lstm.LSTMModel.from_bytes(blob) if engine == "lstm" else kneser_ney.CharModel.from_bytes(blob)
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise artefacts.ArtefactError(f"not a {engine} model: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# Stored accounts: models in the registry, one in service per account


def account_named(username: str) -> User:
    """The stored account of that handle (with or without its @), or a StyleError."""
    account = find_user(username)
    if account is None:
        raise StyleError(f"No stored account is called @{handles.typed(username)}.")
    return account


def posts_of(user_id: int) -> list[tuple[str, datetime]]:
    """(text, time) of the account's stored posts, oldest first."""
    return db.session.execute(
        sa.select(Tweet.text, Tweet.created_at).where(Tweet.user_id == user_id).order_by(Tweet.created_at, Tweet.id)
    ).all()


def pool_of(user_id: int, until: dict[str, int | None] | None = None) -> tuple[list[str], dict[str, int]]:
    """Other accounts' newest posts to mix into a style model, and where each account's share ended
    (its newest post id), so the same posts can be read again to check drafts against them.

    ``until``: the accounts (by id, as text) in the order their shares were taken, each with the newest
    post id its share may hold (None: any); by default every other account, by id. One query ranks
    every account's posts, newest id first, and fetches the texts of each one's POOL_PER_ACCOUNT newest.
    """
    if until is None:
        wanted = Tweet.user_id != user_id
    elif not until:
        return [], {}
    else:
        wanted = sa.or_(
            *(
                Tweet.user_id == int(other) if newest is None else (Tweet.user_id == int(other)) & (Tweet.id <= newest)
                for other, newest in until.items()
            )
        )
    rank = sa.func.row_number().over(partition_by=Tweet.user_id, order_by=Tweet.id.desc()).label("rank")
    # Rank on the narrow columns, then fetch the texts of the chosen posts only (as load_training_data does).
    ranked = sa.select(Tweet.id, Tweet.user_id, rank).where(wanted).subquery()
    rows = db.session.execute(
        sa.select(ranked.c.user_id, ranked.c.id, Tweet.text)
        .join(Tweet, Tweet.id == ranked.c.id)
        .where(ranked.c.rank <= POOL_PER_ACCOUNT)
        .order_by(ranked.c.user_id, ranked.c.rank)
    ).all()
    shares: dict[int, list[tuple[int, str]]] = {}
    for other, post_id, text in rows:
        shares.setdefault(other, []).append((post_id, text))
    accounts = {str(other): other for other in sorted(shares)} if until is None else {k: int(k) for k in until}
    texts, reached = [], {}
    for key, other in accounts.items():
        share = shares.get(other, [])[: max(POOL_MAX - len(texts), 0)]
        if share:
            texts += [text for _, text in share]
            reached[key] = share[0][0]
    return texts, reached


def train_for(
    username: str, progress: Callable[[int, int, str], None] | None = None, engine: str = "kneser-ney"
) -> ModelVersion:
    """Train a style model on an account's stored posts (lent other accounts' language, for Kneser-Ney)
    and put it in service for that account."""
    account = account_named(username)
    handle, posts = account.username, posts_of(account.id)
    pool, reached = pool_of(account.id) if engine == "kneser-ney" else ([], {})
    db.session.rollback()  # nothing held open while counting
    model, metrics = fit([text for text, _ in posts], progress, engine, pool)
    if not isinstance(model, kneser_ney.Mixture):
        reached = {}
    blob = model.to_bytes()
    row = ModelVersion(
        kind=KIND,
        subject=handle.lower(),
        format=FORMAT,
        status=registry.CHAMPION,
        created_at=datetime.now(UTC),
        trained_from=posts[0][1],
        trained_to=posts[-1][1],
        params={
            "username": handle,
            "engine": engine,
            "order": model.order,
            "discount_scale": model.scale,
            "pool": reached,
        },
        metrics=metrics,
        decision={"promoted": True, "reason": f"The newest style model of @{handle} is the one in service."},
        sha256=artefacts.digest(blob),
        artefact=blob,
    )
    registry.record(row)  # the account's old champion retires in the same transaction, before it is stored
    db.session.commit()
    return row


def champion_of(username: str) -> ModelVersion | None:
    """The account's style model in service, as a registry row (its bytes are read only when used)."""
    return registry.champion(KIND, FORMAT, subject=username.lower())


def _from_row(row: ModelVersion) -> StyleModel | None:
    """A style model from its row's bytes, or None when its engine (PyTorch) is not installed here."""
    try:
        return load(row.params.get("engine", "kneser-ney"), row.artefact)
    except lstm.NeuralUnavailable:
        return None


# Unpacked models, by account, for the few accounts written like most recently.
_service = registry.ModelCache(
    ModelVersion,
    lambda subject: registry.champions(KIND, FORMAT, subject=subject),
    _from_row,
    what="style model",
    entries=_CACHE_MODELS,
)


def in_service(username: str) -> tuple[ModelVersion | None, StyleModel | None]:
    """(registry row, model) of the account's style model, or (None, None) before one is trained; the
    model is None when the row's bytes cannot be used here."""
    serving = _service.get(username.lower())
    return serving.current, serving.model


def check_request(count: object, temperature: object, opening: object) -> tuple[int, float, str]:
    """The drawing settings as given by a page, the API or the CLI, or a StyleError naming the bad one."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise StyleError(f'"count" must be a whole number from 1 to {MAX_COUNT}.')
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise StyleError(f'"temperature" must be a number from {TEMPERATURES[0]} to {TEMPERATURES[1]}.')
    if not TEMPERATURES[0] <= float(temperature) <= TEMPERATURES[1]:
        raise StyleError(f'"temperature" must be from {TEMPERATURES[0]} to {TEMPERATURES[1]}, not {temperature}.')
    if not isinstance(opening, str):
        raise StyleError('"opening" must be text.')
    opening = SPACE.sub(" ", opening).lstrip()
    if len(opening) > MAX_OPENING:
        raise StyleError(f"An opening has at most {MAX_OPENING} characters; this one has {len(opening)}.")
    return count, float(temperature), opening


def write_like(
    username: str,
    count: object = 5,
    temperature: object = DEFAULT_TEMPERATURE,
    opening: object = "",
    seed: int | None = None,
) -> tuple[list[str], ModelVersion]:
    """Posts in the voice of a stored account, none copying its real posts; returns (posts, registry row)."""
    count, temperature, opening = check_request(count, temperature, opening)
    account = account_named(username)
    row, model = in_service(account.username)
    if row is None:
        raise NoStyleModel(
            f"No style model of @{account.username} is trained yet: train one on its page or with "
            f"`flask generate train {account.username}`."
        )
    if model is None:
        raise NoStyleModel(
            f"The style model of @{account.username} (version {row.id}) cannot be used here: its stored bytes "
            f"do not match their hash, or its engine ({row.params.get('engine')}) is not installed. Train it again."
        )

    def learned_from() -> tuple[CopyIndex, Lexicon]:
        """What drafts are checked against: the account's stored posts and the posts its model was lent,
        for copies and for the words they hold (models of every version: nothing of it is stored)."""
        own = [text for text, _ in posts_of(account.id)]
        lent, _ = pool_of(account.id, row.params.get("pool") or {})
        texts = [normalise(t) for t in [*own, *lent]]
        return CopyIndex(texts), Lexicon(texts)

    index, words = _service.attached(row, "posts learned from", learned_from)  # once per loaded model
    if index.copies(opening):
        raise StyleError(
            f"The opening repeats {COPY_RUN} or more characters of a real post, so every draft would copy it; "
            "shorten it or change it."
        )
    posts, _ = draw(model, index, count=count, temperature=temperature, opening=opening, seed=seed, words=words)
    return posts, row
