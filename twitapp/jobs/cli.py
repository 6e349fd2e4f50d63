"""The job mechanism on the command line: ``flask worker``, and how every capability's commands run a
job in the foreground with its progress drawn on one line."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from twitapp.jobs.abandoned import sweep
from twitapp.jobs.redis_queue import rq_queue
from twitapp.jobs.workers import run_here
from twitapp.models import Job

commands = AppGroup("jobs")


def bar_progress(label: str):
    """A ``progress(done, total)`` callback drawing a click progress bar, and the bar to close."""
    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    def close() -> None:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)

    return progress, close


class JobLine:
    """A job's progress drawn on stderr as one line that rewrites itself: a bar, a share and the message."""

    WIDTH = 24

    def __init__(self) -> None:
        self.drawn = False

    def __call__(self, done: int, total: int, message: str) -> None:
        if total > 0:
            filled = round(self.WIDTH * min(done, total) / total)
            line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {min(done, total) / total:4.0%}  {message}"
        else:
            line = message
        click.echo(f"\r{line[:110]:<110}", nl=False, err=True)
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            click.echo(err=True)


def run_job(kind: str, username: str | None = None, **params) -> Job:
    line = JobLine()
    try:
        job = run_here(kind, username, echo=line, **params)
    finally:
        line.close()
    if job.state != "done":
        raise click.ClickException(job.error or "The job failed.")
    return job


@commands.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for more jobs.")
def worker(burst: bool) -> None:
    """Run jobs from Redis (REDIS_URL) until stopped: the Procfile's worker process."""
    from rq import Worker

    redis_url = current_app.config.get("REDIS_URL")
    if not redis_url:
        raise click.ClickException("REDIS_URL is not set; without Redis, jobs run inside the web process.")
    queue = rq_queue(redis_url, for_worker=True)
    failed = sweep(rq_worker_alive=True)  # what stopped with the last workers; this one takes the queue
    if failed:
        click.echo(f"{failed} job(s) whose process had ended were marked as stopped.", err=True)
    Worker([queue], connection=queue.connection).work(burst=burst, with_scheduler=False)
