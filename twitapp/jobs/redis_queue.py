"""Jobs on RQ workers, where ``REDIS_URL`` is set: the queue, and the entry point a worker runs."""

from __future__ import annotations

from twitapp.extensions import db
from twitapp.jobs.runner import execute


def rq_id(job_id: int) -> str:
    """A job's id in Redis, so the sweep can ask whether Redis still has it."""
    return f"hypotweet-{job_id}"


def rq_queue(redis_url: str, for_worker: bool = False):
    """The Redis queue. A web process's connection gives up in seconds rather than hang a request on a
    Redis that does not answer; a worker's waits for jobs as long as RQ likes."""
    from redis import Redis
    from rq import Queue

    timeouts = {} if for_worker else {"socket_connect_timeout": 5, "socket_timeout": 10}
    return Queue("hypotweet", connection=Redis.from_url(redis_url, **timeouts))


def run_in_worker(job_id: int) -> None:
    """The RQ entry point. ``flask worker`` pushed an app context before forking this work horse."""
    db.engine.dispose(close=False)  # pooled connections belong to the parent process
    execute(job_id)
    db.session.remove()
