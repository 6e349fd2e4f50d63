"""Files sent through a page for a job to read: stored in the database in parts, dropped once used.

A job may run in another process or on another machine (an RQ worker dyno has its own disk), so the
database is the one place both sides can reach. The request only copies the file into the database, a
mebibyte at a time, and the job reads it back the same way: the file is parsed in the job, never in the
request, and neither holds it whole. Uploads a job never finished with (its worker died, the input was
refused) are dropped by ``jobs.sweep`` and, after a day, when the next file comes in.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import sqlalchemy as sa
from flask import current_app

from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.models import Job, Upload, UploadPart

KEEP = timedelta(days=1)
PART_BYTES = 2**20


def limit_mb() -> int:
    """The largest request this app takes (files sent through a page included), in whole megabytes."""
    return (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 2**20


def store(files: Sequence[tuple[str, BinaryIO]]) -> list[int]:
    """Store (name, binary stream) pairs in one transaction, a part at a time; their ids in the same order."""
    try:
        expire()
        ids = [_store_one(name, stream) for name, stream in files]
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return ids


def _store_one(name: str, stream: BinaryIO) -> int:
    upload = Upload(name=name[:200], size=0, sha256="")
    db.session.add(upload)
    db.session.flush()
    digest, size, number = hashlib.sha256(), 0, 0
    while part := stream.read(PART_BYTES):
        # Written at once rather than kept as objects until the commit: memory holds one part at a time.
        db.session.execute(sa.insert(UploadPart).values(upload_id=upload.id, number=number, data=part))
        digest.update(part)
        size += len(part)
        number += 1
    upload.size, upload.sha256 = size, digest.hexdigest()
    return upload.id


def fetch(ids: Sequence[int]) -> list[Upload]:
    """The uploads with these ids, in that order; a missing one is an error a person can act on."""
    if not ids:
        return []
    found = {row.id: row for row in db.session.scalars(sa.select(Upload).where(Upload.id.in_(list(ids))))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError("The uploaded files are gone (uploads are kept for a day); send them again.")
    return [found[i] for i in ids]


class UploadGone(UserError, ValueError):
    """An upload ended before its recorded size while a job read it (it was dropped meanwhile)."""


class _Parts(io.RawIOBase):
    """An upload's bytes read back part by part, each part its own short query; fewer bytes than the
    upload's recorded size is an error, never a shorter file."""

    def __init__(self, upload_id: int) -> None:
        self.upload_id = upload_id
        self.number = 0
        self.part = memoryview(b"")
        self.left = db.session.scalar(sa.select(Upload.size).where(Upload.id == upload_id))
        db.session.rollback()
        if self.left is None:
            raise UploadGone("The uploaded file is gone (uploads are kept for a day); send it again.")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.part:
            data = db.session.scalar(
                sa.select(UploadPart.data).where(
                    UploadPart.upload_id == self.upload_id, UploadPart.number == self.number
                )
            )
            db.session.rollback()  # no transaction stays open between parts
            if data is None:
                if self.left:
                    raise UploadGone("The uploaded file was dropped while it was being read; send it again.")
                return 0
            self.part, self.number = memoryview(data), self.number + 1
        size = min(len(buffer), len(self.part))
        buffer[:size] = self.part[:size]
        self.part = self.part[size:]
        self.left -= size
        return size


def open_upload(upload_id: int) -> BinaryIO:
    """A stream of an upload's bytes, read from the database as it is consumed."""
    return io.BufferedReader(_Parts(upload_id), buffer_size=64 * 1024)


def expire(older_than: timedelta = KEEP) -> None:
    """Drop the uploads stored longer ago than ``older_than`` that no job under way reads (in the
    caller's transaction)."""
    old = sa.select(Upload.id).where(Upload.created_at < datetime.now(UTC) - older_than)
    busy = uploads_in_use()
    if busy:
        old = old.where(Upload.id.not_in(busy))
    db.session.execute(sa.delete(UploadPart).where(UploadPart.upload_id.in_(old)))
    db.session.execute(sa.delete(Upload).where(Upload.id.in_(old)))


def discard(ids: Sequence[int]) -> None:
    if ids:
        db.session.execute(sa.delete(UploadPart).where(UploadPart.upload_id.in_(list(ids))))
        db.session.execute(sa.delete(Upload).where(Upload.id.in_(list(ids))))
        db.session.commit()


def uploads_in_use() -> set[int]:
    """The uploads that jobs under way will read (kept whatever their age)."""
    rows = db.session.scalars(sa.select(Job.params).where(Job.state.in_(("queued", "running", "waiting")))).all()
    return {i for params in rows for i in (params or {}).get("uploads", [])}


class Inputs:
    """The files a job reads: (name, opener) pairs for the uploads a page sent; ``keep`` them afterwards?"""

    def __init__(self, files: list[tuple[str, Callable]]) -> None:
        self.files = files
        self.keep = False


@contextmanager
def inputs(params: dict) -> Iterator[Inputs]:
    """The files a page sent for this job (none for the CLI, which passes paths). They are dropped
    afterwards, used or refused, unless the job sets ``keep`` (for a second run the operator may ask for,
    up to a day later); no transaction is left open."""
    ids = params.get("uploads", [])
    inputs = None
    try:
        try:
            sent = fetch(ids)
        except LookupError as exc:
            raise UploadGone(str(exc)) from None
        names = [(upload.id, upload.name) for upload in sent]
        db.session.rollback()
        inputs = Inputs([(name, lambda upload=upload: open_upload(upload)) for upload, name in names])
        yield inputs
    finally:
        db.session.rollback()
        if inputs is None or not inputs.keep:
            discard(ids)
