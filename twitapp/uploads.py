"""Files sent through a page for a job to read: stored in the database, dropped once used.

A job may run in another process or on another machine (an RQ worker dyno has its own disk), so the
database is the one place both sides can reach. Uploads a job never finished with (its worker died, the
input was refused) are dropped after a day, when the next file comes in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from .extensions import db
from .models import Upload

KEEP = timedelta(days=1)


def limit_mb() -> int:
    """The largest request this app takes (files sent through a page included), in whole megabytes."""
    return (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 2**20


def store(files: Sequence[tuple[str, bytes]]) -> list[int]:
    """Store (name, bytes) pairs in one transaction; returns their ids in the same order."""
    db.session.execute(sa.delete(Upload).where(Upload.created_at < datetime.now(UTC) - KEEP))
    rows = [
        Upload(name=name[:200], size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), content=raw)
        for name, raw in files
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def fetch(ids: Sequence[int]) -> list[Upload]:
    """The uploads with these ids, in that order; a missing one is an error a person can act on."""
    if not ids:
        return []
    found = {row.id: row for row in db.session.scalars(sa.select(Upload).where(Upload.id.in_(list(ids))))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError("The uploaded files are gone (uploads are kept for a day); send them again.")
    return [found[i] for i in ids]


def discard(ids: Sequence[int]) -> None:
    if ids:
        db.session.execute(sa.delete(Upload).where(Upload.id.in_(list(ids))))
        db.session.commit()
