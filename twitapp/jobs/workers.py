"""Where jobs run: queued on Redis for RQ workers (``REDIS_URL``), else on a thread of the web process
that also beats for the jobs it holds; from the CLI, here and now."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from twitapp.extensions import db
from twitapp.jobs.abandoned import beat, is_stale, sweep
from twitapp.jobs.holders import worker_id
from twitapp.jobs.redis_queue import rq_id, rq_queue, run_in_worker
from twitapp.jobs.runner import ACTIVE, execute, now
from twitapp.models import Job

log = logging.getLogger(__name__)


def dispatch(app: Flask, job_id: int) -> None:
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        rq_queue(redis_url).enqueue(run_in_worker, job_id, job_id=rq_id(job_id), job_timeout=3600, result_ttl=0)
    else:
        thread_worker.submit(app, job_id)


class ThreadWorker:
    """One background thread per web process that runs queued jobs in order, and one that beats.

    The beat says, every ``JOB_BEAT_SECONDS``, that this process still holds its queued and running jobs,
    and sweeps away jobs that no process holds any more (``sweep``); it starts with the first request.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[Flask, int]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._beater: threading.Thread | None = None
        self._app: Flask | None = None
        self._lock = threading.Lock()

    def submit(self, app: Flask, job_id: int) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hypotweet-jobs", daemon=True)
                self._thread.start()
        self.start_beating(app)
        self.queue.put((app, job_id))

    def start_beating(self, app: Flask) -> None:
        """Beat (and sweep) for ``app`` from now on, where its JOB_BEAT_SECONDS is set. Never for a test's
        app: a test process makes one app after another, each on a database of its own that is soon gone, and
        tests call ``beat`` and ``sweep`` themselves."""
        seconds = app.config.get("JOB_BEAT_SECONDS") or 0
        if app.testing:
            return
        with self._lock:
            self._app = app
            if seconds > 0 and (self._beater is None or not self._beater.is_alive()):
                self._beater = threading.Thread(target=self._beat, args=(seconds,), name="hypotweet-beat", daemon=True)
                self._beater.start()

    def _beat(self, seconds: float) -> None:
        landed = 0  # beats written in a row; after an outage, others get a beat in before any sweep
        while True:
            time.sleep(seconds)
            app = self._app
            try:
                with app.app_context():
                    beat()
                    landed += 1
                    if landed >= 2:
                        sweep()
            except Exception:
                landed = 0
                log.warning("the job heartbeat could not be written", exc_info=True)

    def _run(self) -> None:
        while True:
            app, job_id = self.queue.get()
            try:
                with app.app_context():
                    execute(job_id)
            except Exception:
                log.exception("job %s could not be run", job_id)
            finally:
                self.queue.task_done()

    def join(self) -> None:
        """Wait until every submitted job has finished (for tests and orderly shutdowns)."""
        self.queue.join()


thread_worker = ThreadWorker()


def start(app: Flask) -> None:
    """At a web process's first request: sweep what earlier processes left, and beat from now on."""
    try:
        sweep()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        log.warning("the start-up sweep of abandoned jobs could not run", exc_info=True)
    thread_worker.start_beating(app)  # with Redis too: the sweep runs on the same timer


def create(kind: str, username: str | None = None, worker: str | None = None, **params: Any) -> Job:
    """A queued job row; ``worker``: the process that will hold it (this one by default, "rq" for Redis)."""
    if username is not None:
        params = {"username": username, **params}
    job = Job(
        kind=kind,
        username=username,
        params=params,
        state="queued",
        message="Waiting for a worker.",
        worker=worker or worker_id(),
        heartbeat_at=now(),
    )
    db.session.add(job)
    db.session.commit()
    return job


def submit(kind: str, username: str | None = None, **params: Any) -> Job:
    """Queue a job, or hand back the same one already under way for the same account."""
    active = db.session.scalars(
        sa.select(Job)
        .where(Job.kind == kind, Job.state.in_(ACTIVE))
        .where(sa.func.lower(Job.username) == username.lower() if username else Job.username.is_(None))
        .order_by(Job.id.desc())
    ).first()
    if active is not None and not is_stale(active):
        return active
    job = create(kind, username, "rq" if current_app.config.get("REDIS_URL") else None, **params)
    dispatch(current_app._get_current_object(), job.id)  # type: ignore[attr-defined]
    return job


def run_here(kind: str, username: str | None = None, echo=None, **params: Any) -> Job:
    """Create a job and run it in this process now (the CLI), echoing progress."""
    job = create(kind, username, **params)
    return execute(job.id, echo)
