"""Jobs: work too long for a request (fetching an account's history, imports, training), run with
visible progress.

A job is a row in the ``jobs`` table that anyone can read: its state, progress (done of total), a
message a person can read, and an error when it failed. Where it runs depends on the deployment:

- with ``REDIS_URL`` set, on RQ workers (``flask worker``, the Procfile's ``worker:`` line), so web
  processes stay free and the work survives a web restart;
- otherwise on one thread inside the web process, the embedded default that needs nothing else;
- from the CLI, in the foreground, with a progress bar.

This package is the mechanism only: capabilities register the work of each kind with ``handler`` and
never change it. Every kind runs through ``execute``, whichever the place; the work writes in one
transaction, so a job killed half-way leaves nothing half-written.

    runner       the handler registry, the reporter, ``execute``
    workers      where jobs run: the web process's thread, RQ, the CLI (``submit``, ``run_here``)
    redis_queue  the RQ queue and ``run_in_worker``, the entry point RQ jobs name
    abandoned    jobs no live process holds are failed, and what they left is dropped
    holders      which process holds a job
    status       the newest job of an account or kind, what is under way, the JSON pages poll
    uploads      files a page sends for a job, kept in the database until it has read them
"""

from __future__ import annotations

from flask import Flask

# The public face of the package. ``run_in_worker`` must stay importable as ``twitapp.jobs.run_in_worker``:
# RQ jobs queued before a deploy name it so.
from twitapp.jobs.abandoned import beat, cleanup, is_stale, sweep
from twitapp.jobs.holders import worker_id
from twitapp.jobs.redis_queue import rq_id, rq_queue, run_in_worker
from twitapp.jobs.runner import (
    ACTIVE,
    HANDLERS,
    STALE_QUEUED,
    STALE_RUNNING,
    JobFailed,
    Reporter,
    execute,
    handler,
    now,
)
from twitapp.jobs.status import as_dict, latest_for, latest_of, under_way_for, under_way_of
from twitapp.jobs.workers import create, run_here, start, submit, thread_worker

__all__ = [
    "ACTIVE",
    "HANDLERS",
    "STALE_QUEUED",
    "STALE_RUNNING",
    "JobFailed",
    "Reporter",
    "as_dict",
    "beat",
    "cleanup",
    "create",
    "execute",
    "handler",
    "is_stale",
    "latest_for",
    "latest_of",
    "now",
    "rq_id",
    "rq_queue",
    "run_here",
    "run_in_worker",
    "start",
    "submit",
    "sweep",
    "thread_worker",
    "under_way_for",
    "under_way_of",
    "worker_id",
]


def register(app: Flask, api) -> None:
    from twitapp.jobs import cli, routes, runner

    api.add(routes.bp)
    app.jinja_env.globals["job_title"] = runner.title
    for command in cli.commands.commands.values():
        app.cli.add_command(command)
