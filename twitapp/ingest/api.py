"""The ingest API: fetch an account (202 and its job), delete one, download every account and post."""

from __future__ import annotations

from flask import Blueprint, abort

from twitapp import jobs
from twitapp.auth import operator_required
from twitapp.ingest.jobs import NO_TOKEN, Busy, delete_account
from twitapp.ingest.routes import export_response
from twitapp.ingest.store import IngestError
from twitapp.jobs.routes import job_url
from twitapp.models import find_user_or_404
from twitapp.sources import handles, networks
from twitapp.web.api import api_limit, json_object

bp = Blueprint("ingest", __name__)


@bp.post("/users")
@api_limit
@operator_required
def add_user():
    """``{"username": "..."}`` -> 202 and the job that fetches the account (poll its ``url``); the answer
    says which network the handle was read as (``"platform"``)."""
    body = json_object('{"username": "an X username, a Bluesky handle or a Mastodon address"}', required="username")
    try:
        handle = handles.parse(body["username"])
    except handles.HandleError as exc:
        abort(400, description=str(exc))
    if not networks.online(handle.platform):
        abort(503, description=NO_TOKEN)
    job = jobs.submit("add", handle.name)
    url = job_url(job)
    return (
        {**jobs.as_dict(job), "platform": handle.platform, "network": handle.network, "url": url},
        202,
        {"Location": url},
    )


@bp.delete("/users/<username>")
@api_limit
@operator_required
def delete_user(username: str):
    """Remove the account with its posts, style models and jobs: ``{"deleted": "...", "posts": N}``."""
    account = find_user_or_404(username)
    try:
        handle, posts = delete_account(account.username)
    except Busy as exc:
        abort(409, description=str(exc))
    except IngestError as exc:  # gone in the meantime
        abort(404, description=str(exc))
    return {"deleted": handle, "posts": posts}


@bp.get("/export")
@api_limit
@operator_required
def export_all():
    """Every account and post, as the home page's download gives it (for backups on a schedule)."""
    return export_response()
