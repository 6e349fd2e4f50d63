"""The model in service: the one loader and cache for every trained model a capability stores.

Sentiment (``SentimentModel`` rows), virality and style (``ModelVersion`` rows) each keep trained models
as rows of bytes with their sha256, and each answers with "the model in service": one row, read once per
process and kept, read again when another row takes its place. That used to be three near-copies of one
cache, and they had drifted (one checked the hash through artefacts.py, one by hand; one remembered rows
it could not read, one tried them again on every answer). Here is the one place where stored bytes are
checked against their hash before a capability's loader sees them, where a row that cannot be read is
remembered as such (and logged once), and where a newer row is noticed and loaded.

A capability supplies two things: which rows may serve, best first (a query), and how to read one row's
bytes into a model (its loader, which raises ``ArtefactError`` for bytes it does not recognise).

The registry's own queries live here too: the champion of a (kind, subject), every version of a kind,
promoting a new champion, and dropping the bytes of a challenger that lost (``prune``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

import sqlalchemy as sa

from twitapp import artefacts
from twitapp.extensions import db
from twitapp.models import ModelVersion

log = logging.getLogger(__name__)

M = TypeVar("M")
Row = Any  # a SentimentModel or a ModelVersion: an ``id``, a ``sha256`` and the ``artefact`` bytes


def read(row: Row, load: Callable[[Row], M | None], what: str) -> M | None:
    """The row's model (``load(row)``), or None: quietly when its bytes were pruned (none are kept),
    logged when they do not match their hash or the loader refuses them (ArtefactError)."""
    blob = row.artefact
    if not blob:
        log.debug("%s %s keeps no bytes (pruned); not loaded", what, row.id)
        return None
    if artefacts.digest(blob) != row.sha256:
        log.error("%s %s does not match its hash; not loaded", what, row.id)
        return None
    try:
        return load(row)
    except artefacts.ArtefactError as exc:
        log.error("%s %s cannot be read (%s); not loaded", what, row.id, exc)
        return None


class Serving(NamedTuple):
    """What a cache answers: the row that ought to serve (the first candidate), the row that does (None
    when none could be read) and its model."""

    current: Row | None
    row: Row | None
    model: Any


@dataclass
class _Entry:
    key: tuple[int, str]  # the current row's id and hash when it was looked at
    serving: int | None  # the id of the row whose model is kept (None: no candidate could be read)
    model: Any
    attached: dict[str, Any] = field(default_factory=dict)


class ModelCache(Generic[M]):
    """Models in service by subject (None where a capability serves one model), for the ``entries``
    subjects asked about most recently.

    ``table``: the model table (its rows have ``id``, ``sha256``, ``artefact``). ``candidates(subject)``:
    a select of the rows that may serve, best first; the first is current, and the entry is read again
    when the current row's id or hash changes. ``load(row)``: the row's model, None or ArtefactError when
    it cannot be used. With ``fall_back``, the next candidates are tried when the current row cannot be
    read (the newest intact sentiment model serves); without, nothing serves until the current row can.
    """

    def __init__(
        self,
        table: type,
        candidates: Callable[[str | None], sa.Select],
        load: Callable[[Row], M | None],
        *,
        what: str,
        entries: int = 1,
        fall_back: bool = False,
    ) -> None:
        self.table, self.candidates, self.load, self.what = table, candidates, load, what
        self.entries, self.fall_back = entries, fall_back
        self._lock = threading.Lock()
        self._cache: OrderedDict[str | None, _Entry] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def get(self, subject: str | None = None) -> Serving:
        current = db.session.scalars(self.candidates(subject).limit(1)).first()
        if current is None:
            return Serving(None, None, None)
        key = (current.id, current.sha256)
        with self._lock:
            entry = self._cache.get(subject)
            if entry is not None and entry.key == key:
                self._cache.move_to_end(subject)
                serving, model = entry.serving, entry.model
            else:
                entry = None
        if entry is not None:
            row = current if serving == current.id else self._row(serving)
            return Serving(current, row, model)
        row, model = self._first_readable(subject, current)
        with self._lock:
            self._cache[subject] = _Entry(key, row.id if row is not None else None, model)
            self._cache.move_to_end(subject)
            while len(self._cache) > self.entries:
                self._cache.popitem(last=False)
        return Serving(current, row, model)

    def _row(self, row_id: int | None) -> Row | None:
        return db.session.get(self.table, row_id) if row_id is not None else None

    def _first_readable(self, subject: str | None, current: Row) -> tuple[Row | None, M | None]:
        """The first candidate whose model loads (only the current one without ``fall_back``), and it."""
        rows = db.session.scalars(self.candidates(subject)) if self.fall_back else [current]
        for row in rows:
            model = read(row, self.load, self.what)
            if model is not None:
                return row, model
        return None, None

    def attached(self, row: Row, name: str, build: Callable[[], Any]) -> Any:
        """A value made from a loaded model's row (a style model's index of the posts it learned from),
        built once and kept as long as that model is; built every time for a row not kept."""
        with self._lock:
            found = self._entry_serving(row.id)
            if found is not None and name in found.attached:
                return found.attached[name]
        value = build()
        with self._lock:
            found = self._entry_serving(row.id)
            if found is not None:
                found.attached[name] = value
        return value

    def _entry_serving(self, row_id: int) -> _Entry | None:
        return next((e for e in self._cache.values() if e.serving == row_id), None)


# ---------------------------------------------------------------------------------------------------
# The registry's rows (``ModelVersion``)

CHAMPION, CHALLENGER, RETIRED = "champion", "challenger", "retired"


def champions(kind: str, format: int | None = None, subject: str | None = None) -> sa.Select:
    """The champions of a kind (and subject; any subject when None), in a layout (``format``) or any,
    newest first. The database keeps one per (kind, subject): see ``ModelVersion``'s unique index."""
    query = sa.select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == CHAMPION)
    if format is not None:
        query = query.where(ModelVersion.format == format)
    if subject is not None:
        query = query.where(ModelVersion.subject == subject)
    return query.order_by(ModelVersion.id.desc())


def champion(kind: str, format: int | None = None, subject: str | None = None) -> ModelVersion | None:
    """The model in service of this kind (and subject), as its row (the bytes are read only when used)."""
    return db.session.scalars(champions(kind, format, subject).limit(1)).first()


def versions(kind: str, newest_first: bool = False, limit: int | None = None) -> list[ModelVersion]:
    """Every version of a kind, oldest first (or the ``limit`` newest, newest first)."""
    order = ModelVersion.id.desc() if newest_first else ModelVersion.id
    query = sa.select(ModelVersion).where(ModelVersion.kind == kind).order_by(order).limit(limit)
    return list(db.session.scalars(query))


def record(row: ModelVersion) -> None:
    """Add a trained version in the caller's transaction; a champion retires the one it replaces first.

    The old champion is demoted before the new one is inserted: the unique index on champions is checked
    row by row on PostgreSQL, and would refuse a second champion even for an instant.
    """
    if row.status == CHAMPION:
        retire = sa.update(ModelVersion).where(ModelVersion.kind == row.kind, ModelVersion.status == CHAMPION)
        if row.subject is not None:
            retire = retire.where(ModelVersion.subject == row.subject)
        db.session.execute(retire.values(status=RETIRED))  # executes now, before the insert is flushed
    db.session.add(row)


def prune(row: ModelVersion) -> None:
    """Drop a refused challenger's bytes: nothing will load it, and its row, metrics and decision stay."""
    if row.status != CHALLENGER:
        raise ValueError(f"only a refused challenger is pruned, not a {row.status}")
    row.artefact = b""
