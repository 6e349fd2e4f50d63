"""A job's state as JSON: what the pages poll (and API callers, from the ``url`` a 202 answer gives)."""

from __future__ import annotations

from flask import Blueprint, abort, url_for

from twitapp.extensions import db
from twitapp.jobs.status import as_dict
from twitapp.models import Job

bp = Blueprint("jobs", __name__)


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    """A job's state and progress; not rate limited, since pages poll it while a job runs."""
    found = db.session.get(Job, job_id) if job_id < 2**31 else None  # larger ids are never made
    if found is None:
        abort(404, description=f"There is no job {job_id}.")
    return {**as_dict(found), "url": url_for("api.jobs.job", job_id=job_id)}


def job_url(job: Job) -> str:
    return url_for("api.jobs.job", job_id=job.id)
