"""Jobs: work too long for a request (fetching an account's history, updating every account, imports).

A job is a row in the ``jobs`` table that anyone can read: its state, progress (done of total), a
message a person can read, and an error when it failed. Where it runs depends on the deployment:

- with ``REDIS_URL`` set, on RQ workers (``flask worker``, the Procfile's ``worker:`` line), so web
  processes stay free and the work survives a web restart;
- otherwise on one thread inside the web process, the embedded default that needs nothing else;
- from the CLI, in the foreground, with a progress bar.

Every kind of job runs through ``execute``, whichever the place. The work itself writes through
``ingest.import_tweets`` in one transaction, so a job killed half-way leaves nothing half-written, and
running it again resumes from the account's newest stored post.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from . import archive, backup, generate, ingest, labelled, sentiment, uploads, virality
from .archive import ArchiveError
from .extensions import db
from .ingest import IngestError, IngestResult, add_or_update_user, import_tweets
from .models import Job, Upload, User, find_user
from .records import STORED_HANDLE, AccountRecord, clean_text
from .sentiment import SentimentError
from .twitter import XAPIError, XRateLimited, client_from_config

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
# How often a rate-limited job waits for X's reset before it gives up, and the longest single wait.
RATE_LIMIT_WAITS = 3
LONGEST_WAIT = timedelta(minutes=16)
# Progress is written at most this often (seconds), so reporting never slows the work down.
REPORT_EVERY = 0.25
NO_TOKEN = (
    "No X API token is set, so accounts cannot be fetched: only the demo accounts and imported archives "
    "are available. Set X_BEARER_TOKEN to fetch accounts from X (see the README)."
)


class JobFailed(Exception):
    """The job cannot do what it was asked; the message says why, for the person who asked."""


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------------
# Reporting


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


# ---------------------------------------------------------------------------------------------------
# The kinds of job

Handler = Callable[[dict, Reporter], tuple[str, dict]]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def _with_rate_limit_waits(work: Callable[[], Any], report: Reporter) -> Any:
    """Run ``work``; when X says the rate limit is spent, wait for its reset (saying so) and try again."""
    for attempt in range(RATE_LIMIT_WAITS + 1):
        try:
            return work()
        except XRateLimited as exc:
            if attempt == RATE_LIMIT_WAITS:
                raise
            until = exc.reset_at or now() + timedelta(minutes=1)
            until = min(until, now() + LONGEST_WAIT)
            report.state("waiting", f"X's rate limit is spent; waiting until {until:%H:%M:%S} UTC, then going on.")
            while (left := (until - now()).total_seconds()) > 0:
                time.sleep(min(left, 30.0))
                _write(report.job_id)  # a heartbeat, so a long wait is not taken for a dead worker
            report.state("running", "Going on after the rate limit reset.")
    raise AssertionError("unreachable")


def _fetch(username: str, client, report: Reporter) -> IngestResult:
    limit = current_app.config["TWEETS_PER_USER"]

    def fetched(count: int) -> None:
        report.progress(count, limit, f"Fetching @{username}'s posts from X: {count:,} so far.")

    def embedded(done: int, total: int) -> None:
        report.progress(done, total, f"Reading @{username}'s new posts: {done:,} of {total:,}.")

    return _with_rate_limit_waits(
        lambda: add_or_update_user(username, client, progress=embedded, fetched=fetched), report
    )


def describe(result: IngestResult) -> str:
    if result.created:
        return f"Added @{result.username} with {result.added:,} posts."
    refreshed = f"; the likes of {result.matched:,} recent posts were refreshed" if result.matched else ""
    if result.added:
        return f"Updated @{result.username}: {result.added:,} new posts, {result.total:,} in all{refreshed}."
    return f"@{result.username} is up to date: no new posts since the last fetch{refreshed}."


def _client():
    client = client_from_config(current_app.config)
    if client is None:
        raise JobFailed(NO_TOKEN)
    return client


@handler("add")
def _add(params: dict, report: Reporter) -> tuple[str, dict]:
    """Fetch one account through the X API: all of its history the first time, newer posts after."""
    with _client() as client:
        result = _fetch(params["username"], client, report)
    return describe(result), {
        "username": result.username,
        "added": result.added,
        "total": result.total,
        "created": result.created,
    }


@handler("update-all")
def _update_all(params: dict, report: Reporter) -> tuple[str, dict]:
    """Fetch newer posts for every account that came from the X API; one failing does not stop the rest."""
    handles = db.session.scalars(sa.select(User.username).where(User.source == "x").order_by(User.username)).all()
    db.session.rollback()
    if not handles:
        return "No accounts from the X API are stored; nothing to update.", {"updated": [], "failed": {}}
    updated, failed = [], {}
    with _client() as client:
        for number, handle in enumerate(handles):
            report.progress(number, len(handles), f"Updating @{handle} ({number + 1} of {len(handles)}).")
            try:
                result = _fetch(handle, client, report)
            except (XAPIError, IngestError) as exc:
                failed[handle] = str(exc)
            else:
                updated.append({"username": result.username, "added": result.added})
    report.progress(len(handles), len(handles), "Updated every account.")
    added = sum(u["added"] for u in updated)
    message = f"Updated {len(updated)} of {len(handles)} accounts: {added:,} new posts."
    if failed:
        message += f" {len(failed)} could not be: " + ", ".join(f"@{h}" for h in failed) + "."
    return message, {"updated": updated, "failed": failed}


@handler("import-file")
def _import_file(params: dict, report: Reporter) -> tuple[str, dict]:
    """Import one account's posts from an X archive's tweets.js, a JSONL file or a CSV.

    The file is a path (the CLI) or files sent through a page (``uploads``: the posts, then an archive's
    account.js if it came too), read here, never in the request that sent them.
    """
    with _inputs(params) as inputs:
        if "path" in params:
            posts = archive.PostFile.on_disk(params["path"])
        else:
            (name, opener), *beside = inputs.files
            account_js = None
            if beside:
                with beside[0][1]() as raw:
                    account_js = raw.read(archive.MAX_FILE_BYTES)
            posts = archive.PostFile(name, opener, account_js)
        message, result = _import_posts(params, posts, report)
        inputs.keep = result["withheld"] > 0  # for a replace, if the operator asks for one
        return message, result


class _Inputs:
    """The files a job reads: (name, opener) pairs for the uploads a page sent; ``keep`` them afterwards?"""

    def __init__(self, files: list[tuple[str, Callable]]) -> None:
        self.files = files
        self.keep = False


@contextmanager
def _inputs(params: dict) -> Iterator[_Inputs]:
    """The files a page sent for this job (none for the CLI, which passes paths). They are dropped
    afterwards, used or refused, unless the job keeps them for a replace the operator may ask for; no
    transaction is left open."""
    ids = params.get("uploads", [])
    inputs = None
    try:
        try:
            sent = uploads.fetch(ids)
        except LookupError as exc:
            raise JobFailed(str(exc)) from None
        names = [(upload.id, upload.name) for upload in sent]
        db.session.rollback()
        inputs = _Inputs([(name, lambda upload=upload: uploads.open_upload(upload)) for upload, name in names])
        yield inputs
    finally:
        db.session.rollback()
        if inputs is None or not inputs.keep or params.get("policy") == "replace":
            uploads.discard(ids)


MORE_POSTS = "For a larger file, run `flask import FILE --username NAME` where the app runs."


def import_account(found: archive.FileSummary, handle: str, source: str, name: str | None = None) -> AccountRecord:
    """The account a file's posts go to, or an ArchiveError when the file names another one or holds no
    posts to import (only replies and reposts, say): an account is not made empty."""
    if not found.posts:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items()))
        raise archive.ArchiveError(
            f"{source} holds no original posts to import"
            + (f" (only {skipped}, which are left out)." if skipped else ".")
        )
    stored = find_user(handle)
    if found.username and found.username.lower() != handle.lower():
        raise archive.ArchiveError(f"{source} holds posts by @{found.username}, not @{handle}.")
    if stored is not None and found.account_id and found.account_id != stored.id:
        raise archive.ArchiveError(
            f"{source} belongs to account id {found.account_id}, but @{stored.username} is stored as {stored.id}."
        )
    return AccountRecord(
        id=found.account_id or (stored.id if stored else archive.local_account_id(handle)),
        username=stored.username if stored else handle,
        name=clean_text(name or (stored.name if stored else handle))[:100],
    )


def _import_posts(params: dict, posts: archive.PostFile, report: Reporter) -> tuple[str, dict]:
    report.progress(0, 0, f"Checking {posts.name}.")
    limit = params.get("max_posts")
    found = posts.check(limit, MORE_POSTS if limit else "")
    account = import_account(found, params["username"], posts.name, params.get("name"))
    db.session.rollback()

    def read(done: int, total: int) -> None:
        report.progress(done, total, f"Reading @{account.username}'s posts: {done:,} of {total:,}.")

    result = import_tweets(
        account,
        posts.posts(),
        source="archive",
        policy=params.get("policy", "keep"),
        progress=read,
        total=found.posts,
        check_handle=True,
        label=f"j{report.job_id}",
    )
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items()))
    message = f"@{result.username}: {result.added} new posts, {result.matched} already stored, {result.total} in all"
    message += f" (skipped {skipped})." if skipped else "."
    message += _withheld_message([result])
    return message, {
        "username": result.username,
        "added": result.added,
        "total": result.total,
        "skipped": found.skipped,
        "changed": result.changed,
        **_withheld([result]),
    }


def _withheld(results: list[IngestResult]) -> dict:
    """What the file would change in what is stored, kept as stored by this run ("keep")."""
    return {
        "withheld": sum(r.withheld for r in results),
        "counts_kept": sum(r.differ for r in results),
        "handles_kept": {r.username: r.kept_handle for r in results if r.kept_handle},
        "names_kept": {r.username: r.kept_name for r in results if r.kept_name},
    }


def _withheld_message(results: list[IngestResult]) -> str:
    kept = _withheld(results)
    if not kept["withheld"]:
        return ""
    parts = []
    if kept["counts_kept"]:
        parts.append(f"{kept['counts_kept']:,} stored posts' likes, reposts or replies")
    if kept["handles_kept"]:
        parts.append(f"{len(kept['handles_kept'])} handle{'s' if len(kept['handles_kept']) > 1 else ''}")
    if kept["names_kept"]:
        parts.append(f"{len(kept['names_kept'])} display name{'s' if len(kept['names_kept']) > 1 else ''}")
    return f" The file differs in {', '.join(parts)}; the stored ones were kept."


@handler("restore")
def _restore(params: dict, report: Reporter) -> tuple[str, dict]:
    """Store every account and post of an export: a path (the CLI) or a file sent through a page."""
    with _inputs(params) as inputs:
        if "path" in params:
            export = backup.ExportFile.on_disk(params["path"])
        else:
            ((name, opener),) = inputs.files
            export = backup.ExportFile(name, opener)
        report.progress(0, 0, f"Checking {export.name}.")
        summary = export.check(policy=params.get("policy", "keep"))
        db.session.rollback()
        results = backup.restore_accounts(
            export, summary, params.get("policy", "keep"), report.progress, label=f"j{report.job_id}"
        )
        inputs.keep = sum(r.withheld for r in results) > 0
    added = sum(r.added for r in results)
    matched = sum(r.matched for r in results)
    message = f"Restored {len(results)} accounts: {added:,} new posts, {matched:,} already stored."
    message += _withheld_message(results)
    return message, {
        "accounts": len(results),
        "added": added,
        "already_stored": matched,
        "changed": sum(r.changed for r in results),
        **_withheld(results),
    }


@handler("sentiment-train")
def _sentiment_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train a sentiment model on labelled files (paths, or files sent through the page) and put it in service."""
    rows, files = [], []
    with _inputs(params) as inputs:
        # Labelled files are read whole: the model learns from every row at once.
        read = [(Path(p).name, archive.read_file_bytes(p)) for p in params.get("paths", [])]
        for name, opener in inputs.files:
            with opener() as stream:
                read.append((name, stream.read()))
        for name, raw in read:
            parsed = labelled.parse_labelled(raw, name)
            files.append({"file": name, "rows": len(parsed), "sha256": hashlib.sha256(raw).hexdigest()})
            rows += parsed
        del read
        rows, dropped = labelled.deduplicate(rows)
        model, metrics = sentiment.train(rows, progress=report.progress)
        data = {"files": files, "rows": len(rows), "dropped_duplicates_or_conflicts": dropped}
        row = sentiment.save(model, metrics, data)
    held_out, vader = metrics["held_out"]["macro_recall"], metrics["vader_held_out"]["macro_recall"]
    message = (
        f"Trained sentiment model {row.id} on {len(rows):,} texts: macro-averaged recall {held_out:.3f} on the "
        f"held-out tenth (VADER: {vader:.3f}). It is now in service."
    )
    return message, {"model": row.id, "data": data, "metrics": metrics}


@handler("virality-train")
def _virality_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train a virality challenger on the stored posts; promote it only if it beats the champion."""
    row = virality.train_and_compare(
        threshold=None if params.get("threshold") is None else int(params["threshold"]),
        margin=float(params.get("margin", virality.MARGIN)),
        progress=report.progress,
    )
    verdict = "promoted: it is now in service" if row.decision["promoted"] else "not promoted"
    message = (
        f"Trained virality model {row.id}, for more than {row.params['threshold']} likes "
        f"(ROC AUC {row.metrics['roc_auc']} on the {row.metrics['rows']:,} newest "
        f"posts), {verdict}. {row.decision['reason']}"
    )
    return message, {"model": row.id, "status": row.status, "metrics": row.metrics, "decision": row.decision}


@handler("refresh")
def _refresh(params: dict, report: Reporter) -> tuple[str, dict]:
    """The whole loop for a scheduler: newer posts (and fresh likes) for every account, retrain, compare, promote.

    A model that cannot be trained (too few fresh posts, say) is not a failure of the loop: the champion
    stays in service and the message says why nothing changed.
    """
    if current_app.config.get("X_BEARER_TOKEN"):
        fetched_message, fetched = _update_all(params, report)
    else:
        fetched_message, fetched = "No X token is set: retraining on the stored posts.", {}
    try:
        trained_message, trained = _virality_train(params, report)
    except virality.ViralityError as exc:
        champion = virality.champion_row()
        kept = f" Model {champion.id} stays in service." if champion else " No model is in service yet."
        return f"{fetched_message} No new model: {exc}{kept}", {"fetched": fetched, "trained": None}
    return f"{fetched_message} {trained_message}", {"fetched": fetched, "trained": trained}


@handler("style-train")
def _style_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train the model that writes like one account, and put it in service."""
    row = generate.train_for(params["username"], progress=report.progress, engine=params.get("engine", "kneser-ney"))
    handle = row.params["username"]
    shape = f"order {row.params['order']}" if row.params["engine"] == "kneser-ney" else "an LSTM"
    message = (
        f"Trained a style model of @{handle} on {row.metrics['posts']:,} posts: {shape}, "
        f"{row.metrics['held_out_bits_per_char']:.2f} bits per character on its newest posts."
    )
    return message, {"model": row.id, "metrics": row.metrics, "params": row.params}


# ---------------------------------------------------------------------------------------------------
# Running


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
    except (
        JobFailed,
        XAPIError,
        IngestError,
        ArchiveError,
        SentimentError,
        virality.ViralityError,
        generate.StyleError,
        uploads.UploadGone,
    ) as exc:
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


# ---------------------------------------------------------------------------------------------------
# Which process holds a job, and whether it is still there

_me: tuple[int, str] | None = None


def _start_time(pid: int) -> str:
    """When a process started (clock ticks since boot, from /proc), to tell it from a later one with its
    pid; "" where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _pid_space() -> str:
    """Which pid namespace this process is in (containers sharing a host name each have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def worker_id() -> str:
    """This process, as written into the jobs it holds: "host:pid-space:pid:start" (worked out again
    after a fork)."""
    global _me
    if _me is None or _me[0] != os.getpid():
        me = f"{socket.gethostname()}:{_pid_space()}:{os.getpid()}:{_start_time(os.getpid())}"
        _me = (os.getpid(), me[:120])
    return _me[1]


def holder_state(worker: str | None) -> str:
    """ "alive" or "gone" for a process on this machine (same host name and pid space, so its pid can be
    looked up, and its start time tells a later process with the same pid); "unknown" elsewhere, where
    silence must tell instead (``is_stale``)."""
    if not worker or worker == "rq":
        return "unknown"
    parts = worker.split(":")
    if len(parts) < 4 or not parts[-2].isdigit():
        return "unknown"
    host, space, pid, started = ":".join(parts[:-3]), parts[-3], int(parts[-2]), parts[-1]
    if host != socket.gethostname() or space != _pid_space():
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "alive"  # under another user
    now_started = _start_time(pid)
    return "gone" if started and now_started and now_started != started else "alive"


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
    failed = 0
    for job_id, (state, heartbeat, files) in seen.items():
        if _fail_if_unchanged(job_id, state, heartbeat, errors[job_id]):
            failed += 1
            uploads.discard(files)
            ingest.drop_staged(prefix=f"j{job_id}-")
    _drop_unread_uploads()
    ingest.drop_staged(older_than=uploads.KEEP)
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
    """Uploads that no job under way will read, and no finished one keeps for a replace, once past the
    moment between a page storing them and queuing their job."""
    wanted = uploads_in_use()
    finished = db.session.execute(
        sa.select(Job.params, Job.result).where(Job.state == "done", Job.created_at > now() - uploads.KEEP)
    ).all()
    for params, result in finished:
        if (result or {}).get("withheld"):
            wanted.update((params or {}).get("uploads", []))
    stray = db.session.scalars(sa.select(Upload.id).where(Upload.created_at < now() - UNQUEUED_UPLOAD)).all()
    db.session.rollback()
    uploads.discard([i for i in stray if i not in wanted])


def uploads_in_use() -> set[int]:
    """The uploads that jobs under way will read (kept whatever their age)."""
    rows = db.session.scalars(sa.select(Job.params).where(Job.state.in_(ACTIVE))).all()
    return {i for params in rows for i in (params or {}).get("uploads", [])}


def latest_for(username: str) -> Job | None:
    if not STORED_HANDLE.fullmatch(username):
        return None
    return db.session.scalars(
        sa.select(Job).where(sa.func.lower(Job.username) == username.lower()).order_by(Job.id.desc()).limit(1)
    ).first()


# Jobs that write an account's posts: its own fetch or import, or a fetch of every X account.
WRITES_ONE = ("add", "import-file")
WRITES_ALL = ("update-all", "refresh")


def _first_under_way(query: sa.Select) -> Job | None:
    jobs = db.session.scalars(query.where(Job.state.in_(ACTIVE)).order_by(Job.id.desc())).all()
    return next((job for job in jobs if not is_stale(job)), None)


def under_way_for(username: str) -> Job | None:
    """A job running or queued now that writes this account's posts (a stale one does not count)."""
    mine = sa.and_(sa.func.lower(Job.username) == username.lower(), Job.kind.in_(WRITES_ONE))
    return _first_under_way(sa.select(Job).where(sa.or_(mine, Job.kind.in_(WRITES_ALL))))


def under_way_of(*kinds: str) -> Job | None:
    """A job of one of these kinds running or queued now (a stale one does not count)."""
    return _first_under_way(sa.select(Job).where(Job.kind.in_(kinds)))


class Busy(Exception):
    """The account is being written by a job now; the message says to wait."""


def delete_account(username: str) -> tuple[str, int]:
    """Delete a stored account (``ingest.delete_account``) unless a job is writing its posts now, which
    would bring it back half-made; IngestError for an unknown one, Busy for one being written."""
    if under_way_for(username.strip().lstrip("@")) is not None:
        raise Busy(f"@{username.strip().lstrip('@')} is being fetched or imported; delete it when that is done.")
    return ingest.delete_account(username)


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


# ---------------------------------------------------------------------------------------------------
# Where jobs run


def dispatch(app: Flask, job_id: int) -> None:
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        rq_queue(redis_url).enqueue(run_in_worker, job_id, job_id=rq_id(job_id), job_timeout=3600, result_ttl=0)
    else:
        thread_worker.submit(app, job_id)


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


def beat() -> None:
    """Say that this process still holds its jobs: their heartbeat moves."""
    with db.engine.begin() as connection:
        connection.execute(
            sa.update(Job).where(Job.worker == worker_id(), Job.state.in_(ACTIVE)).values(heartbeat_at=now())
        )


thread_worker = ThreadWorker()


def start(app: Flask) -> None:
    """At a web process's first request: sweep what earlier processes left, and beat from now on."""
    try:
        sweep()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        log.warning("the start-up sweep of abandoned jobs could not run", exc_info=True)
    thread_worker.start_beating(app)  # with Redis too: the sweep runs on the same timer
