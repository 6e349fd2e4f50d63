"""The runner: what a job is made of (a handler registered for its kind, a reporter for its progress) and
how one runs to its end, whichever process runs it.

Capabilities register their handlers with ``handler(kind)``; this module never names them. A handler
that raises a ``UserError`` fails its job with that message; anything else is logged and reported as
unexpected. Either way nothing is kept of the work's transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from twitapp.errors import UserError
from twitapp.extensions import db
from twitapp.jobs.holders import worker_id
from twitapp.models import Job

log = logging.getLogger(__name__)


ACTIVE = ("queued", "running", "waiting")


# A running job reports at least this often; one silent for longer lost its worker.
STALE_RUNNING = timedelta(minutes=5)


# A job queued in Redis that no worker has picked up in this long will not be (no worker is running).
STALE_QUEUED = timedelta(minutes=30)


# A job held by a web process's job thread, which beats for it every JOB_BEAT_SECONDS: silent this long,
# the process is gone.
ORPHANED = timedelta(minutes=2)


# Uploads wait this long for the job a page queues right after storing them.
UNQUEUED_UPLOAD = timedelta(minutes=10)


# Progress is written at most this often (seconds), so reporting never slows the work down.
REPORT_EVERY = 0.25


class JobFailed(UserError):
    """The job cannot do what it was asked; the message says why, for the person who asked."""


def now() -> datetime:
    return datetime.now(UTC)


class Reporter:
    """What a running job tells the world: progress and messages, written outside the work's transaction.

    Writes go through their own connection and commit at once, so the page sees them while the work's
    own transaction is still open (and would be rolled back if the job failed). ``echo`` mirrors each
    report in the foreground, for the CLI's progress bar.
    """

    def __init__(self, job_id: int, echo: Callable[[int, int, str], None] | None = None) -> None:
        self.job_id = job_id
        self.echo = echo
        self._last = 0.0

    def progress(self, done: int, total: int, message: str) -> None:
        if self.echo is not None:
            self.echo(done, total, message)
        moment = time.monotonic()
        if moment - self._last < REPORT_EVERY and done < total:
            return
        self._last = moment
        _write(self.job_id, done=done, total=total, message=message[:300])

    def state(self, state: str, message: str) -> None:
        if self.echo is not None:
            self.echo(-1, -1, message)
        _write(self.job_id, state=state, message=message[:300])


def _write(job_id: int, **values: Any) -> None:
    values["heartbeat_at"] = now()
    with db.engine.begin() as connection:
        connection.execute(sa.update(Job).where(Job.id == job_id).values(**values))


Handler = Callable[[dict, Reporter], tuple[str, dict]]


HANDLERS: dict[str, Handler] = {}


# Kinds of job that write one account's posts (its fetch or import) or every account's.
WRITES_ONE: set[str] = set()
WRITES_ALL: set[str] = set()


TITLES: dict[str, str] = {}


def handler(kind: str, writes: str | None = None, title: str | None = None) -> Callable[[Handler], Handler]:
    """Register ``function`` as the work of jobs of ``kind``; ``writes``: "account" for a job that writes
    its account's posts, "all" for one that writes every account's (no other such job may run beside it);
    ``title``: what a page showing the job calls it."""

    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        TITLES[kind] = title or "Working"
        if writes == "account":
            WRITES_ONE.add(kind)
        elif writes == "all":
            WRITES_ALL.add(kind)
        return function

    return register


def execute(job_id: int, echo: Callable[[int, int, str], None] | None = None) -> Job | None:
    """Run a queued job to its end and record how it went; returns the finished row."""
    # Taken in one conditional update, so two processes handed the same job never both run it.
    taken = db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.state == "queued")
        .values(state="running", heartbeat_at=now(), message="Starting.", worker=worker_id())
    ).rowcount
    db.session.commit()
    job = db.session.get(Job, job_id)
    if not taken or job is None:
        db.session.rollback()
        return job
    kind, params = job.kind, dict(job.params or {})
    db.session.rollback()
    report = Reporter(job_id, echo)
    try:
        work = HANDLERS.get(kind)
        if work is None:
            raise JobFailed(f"There is no kind of job called {kind!r}.")
        with _beating(job_id):
            message, result = work(params, report)
    except UserError as exc:
        db.session.rollback()
        _finish(job_id, "failed", message="Failed; nothing was stored.", error=str(exc))
    except Exception:
        db.session.rollback()
        log.exception("job %s (%s) failed", job_id, kind)
        _finish(
            job_id,
            "failed",
            message="Failed; nothing was stored.",
            error="Something unexpected went wrong; nothing was stored. Try again, and report it if it persists.",
        )
    else:
        _finish(job_id, "done", message=message, result=result)
    db.session.expire_all()
    return db.session.get(Job, job_id)


@contextmanager
def _beating(job_id: int) -> Iterator[None]:
    """While a job runs, its heartbeat moves every JOB_BEAT_SECONDS from a thread of its own, whatever the
    job is doing (a long fit reports no progress): silence then means its process is gone."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    every = beat_seconds(app)
    stop = threading.Event()

    def beat_on() -> None:
        while not stop.wait(every):
            try:
                with app.app_context():
                    _write(job_id)
            except Exception:  # the database is away for a moment: the next beat may land
                log.warning("job %s: its heartbeat could not be written", job_id, exc_info=True)

    thread = threading.Thread(target=beat_on, name=f"hypotweet-job-{job_id}-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def beat_seconds(app: Flask) -> float:
    """How often beats are written: JOB_BEAT_SECONDS, or every 30 s where that is 0 (the beat of held
    jobs is off, as in tests, but a running job still beats for itself)."""
    return float(app.config.get("JOB_BEAT_SECONDS") or 30)


def orphaned(app: Flask | None = None) -> timedelta:
    """How long a job held by a web process's job thread may be silent before it counts as abandoned:
    four missed beats, and never under two minutes."""
    app = app or current_app
    return max(ORPHANED, timedelta(seconds=4 * beat_seconds(app)))


def _finish(job_id: int, state: str, **values: Any) -> None:
    with db.engine.begin() as connection:
        job = connection.execute(sa.select(Job.total, Job.done).where(Job.id == job_id)).one()
        done = job.total if state == "done" else job.done
        moment = now()
        connection.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(state=state, done=done, heartbeat_at=moment, finished_at=moment, **values)
        )


def write_beat(job_id: int) -> None:
    """Move a job's heartbeat now (a job that waits a long time says it is still there)."""
    _write(job_id)


def title(kind: str) -> str:
    """What a page calls a job of this kind."""
    return TITLES.get(kind, "Working")
