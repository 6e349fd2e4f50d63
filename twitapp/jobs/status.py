"""What a job looks like from outside: the newest one of an account or a kind, whether one is under way,
and the JSON the pages poll."""

from __future__ import annotations

import sqlalchemy as sa

from twitapp.extensions import db
from twitapp.jobs.abandoned import ORPHANED_ERROR, is_stale
from twitapp.jobs.runner import ACTIVE, WRITES_ALL, WRITES_ONE
from twitapp.models import Job
from twitapp.sources.handles import ACCOUNT_NAME, typed


def latest_for(username: str) -> Job | None:
    """The newest job of an account, typed with or without its @."""
    username = typed(username)
    if not ACCOUNT_NAME.fullmatch(username):
        return None
    return db.session.scalars(
        sa.select(Job).where(sa.func.lower(Job.username) == username.lower()).order_by(Job.id.desc()).limit(1)
    ).first()


def _first_under_way(query: sa.Select) -> Job | None:
    jobs = db.session.scalars(query.where(Job.state.in_(ACTIVE)).order_by(Job.id.desc())).all()
    return next((job for job in jobs if not is_stale(job)), None)


def under_way_for(username: str) -> Job | None:
    """A job running or queued now that writes this account's posts (a stale one does not count)."""
    mine = sa.and_(sa.func.lower(Job.username) == username.lower(), Job.kind.in_(sorted(WRITES_ONE)))
    return _first_under_way(sa.select(Job).where(sa.or_(mine, Job.kind.in_(sorted(WRITES_ALL)))))


def under_way_of(*kinds: str) -> Job | None:
    """A job of one of these kinds running or queued now (a stale one does not count)."""
    return _first_under_way(sa.select(Job).where(Job.kind.in_(kinds)))


def latest_of(kind: str) -> Job | None:
    """The newest job of a kind that is not tied to an account (training, say)."""
    return db.session.scalars(sa.select(Job).where(Job.kind == kind).order_by(Job.id.desc()).limit(1)).first()


def as_dict(job: Job) -> dict:
    stale = is_stale(job)
    return {
        "id": job.id,
        "kind": job.kind,
        "username": job.username,
        "state": "failed" if stale else job.state,
        "done": job.done,
        "total": job.total,
        "message": job.message,
        "error": ORPHANED_ERROR if stale else job.error,
        "result": job.result,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "finished": stale or job.state in ("done", "failed"),
    }
