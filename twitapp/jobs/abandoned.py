"""The sweep: jobs that no live process holds any more are failed (a restart, a deploy, a crash), and what
they and finished jobs leave behind is dropped. It runs at a web process's start, on the beat's timer,
and when ``flask worker`` starts.

What a capability keeps for its jobs besides uploads (an import's staged posts, say) it drops in a
``cleanup`` registered here: it is called with the ids of the jobs just failed, and on every sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from twitapp.extensions import db
from twitapp.jobs import uploads
from twitapp.jobs.holders import holder_state, worker_id
from twitapp.jobs.redis_queue import rq_id, rq_queue
from twitapp.jobs.runner import ACTIVE, STALE_QUEUED, STALE_RUNNING, UNQUEUED_UPLOAD, now, orphaned
from twitapp.models import Job, Upload

log = logging.getLogger(__name__)

CLEANUPS: list[Callable[[list[int]], None]] = []


def cleanup(function: Callable[[list[int]], None]) -> Callable[[list[int]], None]:
    """Call ``function(failed_job_ids)`` at the end of every sweep."""
    CLEANUPS.append(function)
    return function


ORPHANED_ERROR = (
    "This job stopped before it finished: the process that held it ended (a restart, a deploy or a crash). "
    "Nothing was half-written; start it again to go on from the newest stored post."
)


NO_RQ_WORKER = (
    "No worker took this job: none is running for the Redis queue (start one with `flask worker`, the "
    "Procfile's worker line). Nothing was stored; start it again once one runs."
)


LOST_IN_REDIS = (
    "This job was lost from the Redis queue (Redis restarted without keeping its data, say). Nothing was "
    "stored; start it again."
)


def is_stale(job: Job, at: datetime | None = None) -> bool:
    """Whether a job that claims to be under way has in fact been abandoned (its process died)."""
    if job.state not in ACTIVE:
        return False
    holder = holder_state(job.worker)
    if holder != "unknown":
        return holder == "gone"  # a process on this machine: alive or not, we know
    at = at or now()
    if job.state == "queued" and (job.worker or "rq") == "rq":  # waiting in Redis for any worker
        return at - job.created_at > STALE_QUEUED
    # A web process's job thread beats for every job it holds, queued or running, and a running job
    # beats for itself wherever it runs: silent this long, its process is gone.
    silence = orphaned() if job.state == "queued" else STALE_RUNNING
    return at - (job.heartbeat_at or job.created_at) > silence


def sweep(rq_worker_alive: bool = False) -> int:
    """Fail every job no live process holds (dropping its files and staged posts), and drop the uploads
    and staged posts nothing will read any more. Run at start-up and on a timer; returns the jobs failed.

    ``rq_worker_alive``: the caller is an RQ worker about to take jobs (``flask worker``), so Redis's
    queue is not judged by its workers. Each job is failed by a conditional update on the state and
    heartbeat it was seen with: one that started, beat or finished meanwhile is left alone.
    """
    active = db.session.scalars(sa.select(Job).where(Job.state.in_(ACTIVE))).all()
    redis_url = current_app.config.get("REDIS_URL")
    ended: dict[int, tuple[Job, str]] = {}
    for job in active:
        if job.state == "queued" and job.worker == "rq":
            error = _lost_in_redis(job, redis_url, rq_worker_alive)
            if error:
                ended[job.id] = (job, error)
        elif is_stale(job):
            ended[job.id] = (job, ORPHANED_ERROR)
    seen = {
        job_id: (job.state, job.heartbeat_at, list((job.params or {}).get("uploads", [])))
        for job_id, (job, _) in ended.items()
    }
    errors = {job_id: error for job_id, (_, error) in ended.items()}
    db.session.rollback()
    failed, failed_ids = 0, []
    for job_id, (state, heartbeat, files) in seen.items():
        if _fail_if_unchanged(job_id, state, heartbeat, errors[job_id]):
            failed += 1
            failed_ids.append(job_id)
            uploads.discard(files)
    _drop_unread_uploads()
    for cleanup in CLEANUPS:
        cleanup(failed_ids)
    return failed


def _fail_if_unchanged(job_id: int, state: str, heartbeat: datetime | None, error: str) -> bool:
    moment = now()
    unchanged = Job.heartbeat_at.is_(None) if heartbeat is None else Job.heartbeat_at == heartbeat
    with db.engine.begin() as connection:
        return bool(
            connection.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.state == state, unchanged)
                .values(
                    state="failed",
                    message="Stopped; nothing was half-written.",
                    error=error,
                    heartbeat_at=moment,
                    finished_at=moment,
                )
            ).rowcount
        )


def _lost_in_redis(job: Job, redis_url: str | None, worker_alive: bool) -> str | None:
    """Why a job queued in Redis will never run, if it will not: Redis no longer has it, or no worker
    has taken anything for STALE_QUEUED while none is running. A long queue behind a live worker is fine."""
    if not redis_url:
        return NO_RQ_WORKER if now() - job.created_at > STALE_QUEUED else None
    from rq import Worker
    from rq.job import Job as RQJob

    try:
        queue = rq_queue(redis_url)
        if not RQJob.exists(rq_id(job.id), connection=queue.connection):
            return LOST_IN_REDIS
        idle = not worker_alive and Worker.count(queue=queue) == 0
    except Exception:  # Redis unreachable: say nothing rather than fail every job
        log.warning("could not ask Redis about job %s", job.id, exc_info=True)
        return None
    return NO_RQ_WORKER if idle and now() - job.created_at > STALE_QUEUED else None


def _drop_unread_uploads() -> None:
    """Uploads that no job under way will read, and no job finished within a day kept (a job that did not
    keep its files dropped them as it ended), once past the moment between a page storing them and
    queuing their job."""
    wanted = uploads.uploads_in_use()
    finished = db.session.scalars(
        sa.select(Job.params).where(Job.state == "done", Job.created_at > now() - uploads.KEEP)
    ).all()
    for params in finished:
        wanted.update((params or {}).get("uploads", []))
    stray = db.session.scalars(sa.select(Upload.id).where(Upload.created_at < now() - UNQUEUED_UPLOAD)).all()
    db.session.rollback()
    uploads.discard([i for i in stray if i not in wanted])


def beat() -> None:
    """Say that this process still holds its jobs: their heartbeat moves."""
    with db.engine.begin() as connection:
        connection.execute(
            sa.update(Job).where(Job.worker == worker_id(), Job.state.in_(ACTIVE)).values(heartbeat_at=now())
        )
