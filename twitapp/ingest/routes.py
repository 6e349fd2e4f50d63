"""The ingest pages: add or update an account from X, import a file of posts, restore or download every
account and post, replace what a file differs in, delete an account; and its panels on the shared pages."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from twitapp import jobs
from twitapp.auth import operator_required
from twitapp.extensions import db
from twitapp.ingest import backup
from twitapp.ingest.forms import AddAccountForm, ImportForm, RestoreForm
from twitapp.ingest.jobs import NO_TOKEN, Busy, delete_account
from twitapp.ingest.store import IngestError
from twitapp.jobs import uploads
from twitapp.models import Job, find_user_or_404, tweet_counts
from twitapp.sources import formats, networks
from twitapp.sources.fields import ArchiveError
from twitapp.web.forms import ButtonForm
from twitapp.web.routes import home_page, recent
from twitapp.web.security import rate_limit

bp = Blueprint("ingest", __name__)


@bp.post("/users")
@rate_limit("RATELIMIT_ADD")
@operator_required
def add_user():
    """Start fetching an account from its network (a stored one gets its newer posts); watch it run."""
    form = AddAccountForm()
    if not form.validate_on_submit():
        return home_page(400, add=form)
    if not networks.online(form.username.handle.platform):
        form.username.errors.append(NO_TOKEN)
        return home_page(400, add=form)
    job = jobs.submit("add", form.username.data)
    flash(f"Reading {form.username.handle} as a {form.username.handle.network} account.", "info")
    return redirect(url_for("web.user", username=job.username))


@bp.post("/import")
@rate_limit("RATELIMIT_ADD")
@operator_required
def import_file():
    """Store a file of posts as it arrives and import it as a job, which reads and checks it (a bad line
    is named on the account's page); only what can be told from its first bytes is refused here."""
    form = ImportForm()
    if not form.validate_on_submit():
        return home_page(400, import_=form)
    handle = form.username.data
    if jobs.under_way_for(handle):
        form.files.errors = [f"@{handle} is being fetched or imported already; send the file again when that is done."]
        return home_page(409, import_=form)
    chosen = chosen_files(form.files)
    try:
        account_js = [f for f in chosen if formats.is_account_js(file_head(f))]
        posts = [f for f in chosen if f not in account_js]
        if len(posts) != 1 or len(account_js) > 1:
            raise ArchiveError(
                "Choose one file of posts: tweets.js from an X archive (with the account.js beside it, if you "
                "like), a JSONL file of X API posts, or a CSV."
            )
        formats.kind_of(formats.head_of(file_head(posts[0])), posts[0].filename)
    except ArchiveError as exc:
        form.files.errors = [str(exc)]
        return home_page(400, import_=form)
    max_posts = current_app.config["MAX_IMPORT_POSTS"]
    job = queue_with_files("import-file", posts + account_js, handle, max_posts=max_posts)
    return redirect(url_for("web.user", username=job.username))


def chosen_files(field) -> list:
    """The files chosen in a file field, single or multiple (FileStorage); none chosen, none listed."""
    chosen = field.data if isinstance(field.data, list) else [field.data]
    return [f for f in chosen if f and f.filename]


def file_head(file, size: int = 1024) -> bytes:
    """A chosen file's first bytes, the file left to be read from its start."""
    head = file.stream.read(size)
    file.stream.seek(0)
    return head


def queue_with_files(kind: str, files: list, username: str | None = None, **params) -> Job:
    """Store the files for a job (a part at a time, never whole in memory) and queue it; if one of the
    kind was under way after all (a race), it is the job answered, and these files are dropped at once."""
    ids = uploads.store([(f.filename, f.stream) for f in files])
    job = jobs.submit(kind, username, uploads=ids, **params)
    if (job.params or {}).get("uploads") != ids:
        uploads.discard(ids)
    return job


@bp.post("/jobs/<int:job_id>/replace")
@rate_limit("RATELIMIT_ADD")
@operator_required
def replace_from_job(job_id: int):
    """After an import or restore that kept stored names and counts the file differs in: the file again,
    this time taking its names and counts (the operator saw how many would change)."""
    done = db.session.get(Job, job_id) if job_id < 2**31 else None
    params = {k: v for k, v in ((done.params if done else None) or {}).items() if k not in ("username", "policy")}
    kept = done is not None and done.kind in ("import-file", "restore") and (done.result or {}).get("withheld")
    if not kept or not params.get("uploads"):  # a job of the command line read a path: run it there again
        abort(404, description=f"Job {job_id} kept no file sent through this site whose names or counts to take.")
    busy = jobs.under_way_for(done.username) if done.kind == "import-file" else jobs.under_way_of("restore")
    if busy is not None:
        abort(409, description="That account is being fetched or imported now; ask again when it is done.")
    try:
        uploads.fetch(params["uploads"])
    except LookupError:
        abort(410, description="The file is no longer kept (it was used, or a day went by); send it again.")
    job = jobs.submit(done.kind, done.username, **params, policy="replace")
    if done.kind == "import-file":
        return redirect(url_for("web.user", username=job.username))
    return redirect(url_for("web.index", _anchor="restore"))


@bp.route("/user/<username>/delete", methods=["GET", "POST"])
@rate_limit("RATELIMIT_ADD")
@operator_required
def delete_user(username: str):
    """Ask first (GET), then remove the account with its posts, style models and jobs (POST)."""
    account = find_user_or_404(username)
    form = ButtonForm()
    busy = jobs.under_way_for(account.username) is not None
    if request.method == "POST" and form.validate_on_submit():
        try:
            handle, posts = delete_account(account.username)
        except Busy:
            busy = True
        except IngestError as exc:  # deleted in the meantime
            abort(404, description=str(exc))
        else:
            flash(f"Deleted @{handle} and its {posts:,} posts.", "success")
            return redirect(url_for("web.index"))
    posts = tweet_counts().get(account.id, 0)
    status = 409 if busy and request.method == "POST" else 200
    return render_template("ingest/delete.html", user=account, posts=posts, form=form, busy=busy), status


@bp.post("/restore")
@rate_limit("RATELIMIT_ADD")
@operator_required
def restore_file():
    """Store an export as it arrives and restore it as a job, which checks the whole file (its end line
    included) before writing anything; here only its first line is looked at."""
    form = RestoreForm()
    if not form.validate_on_submit():
        return home_page(400, restore=form)
    if jobs.under_way_of("restore"):
        form.file.errors = ["A restore is under way already; send the file again when it is done."]
        return home_page(409, restore=form)
    chosen = chosen_files(form.file)
    try:
        if not chosen:
            raise ArchiveError(
                "Choose the file that “Download every account and post” gave (or one flask export wrote)."
            )
        backup.check_header(file_head(chosen[0], 4096), chosen[0].filename)
    except ArchiveError as exc:
        form.file.errors = [str(exc)]
        return home_page(400, restore=form)
    queue_with_files("restore", chosen[:1])
    return redirect(url_for("web.index", _anchor="restore"))


@bp.get("/export")
@rate_limit("RATELIMIT_ADD", methods=("GET",))
@operator_required
def export_all():
    """Every account and post as one JSONL file: what `flask export` writes and `flask restore` reads."""
    return export_response()


def export_response() -> Response:
    """The export, streamed as it is read, a page of posts per short transaction, so a large database is
    never held in memory; its end line lets a restore tell a download that was cut short. A deployment
    whose disk does not last (a Heroku dyno's) can keep its backups this way (or through GET /api/export)."""

    def lines():
        try:
            yield from backup.lines()
        finally:
            db.session.rollback()

    name = f"hypotweet-export-{datetime.now(UTC):%Y%m%d-%H%M}.jsonl"
    return Response(
        stream_with_context(lines()),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/user/<username>/update")
@rate_limit("RATELIMIT_ADD")
@operator_required
def update_user(username: str):
    """Fetch an account's newer posts, as a job shown on its page."""
    account = find_user_or_404(username)
    if ButtonForm().validate_on_submit() and account.fetchable and networks.online(account.platform):
        jobs.submit("add", account.username, update=True)
    return redirect(url_for("web.user", username=account.username))


def _restore_job() -> dict | None:
    """The restore under way, or the one just ended: read once for the home page's two panels that show it."""
    if "restore_job" not in g:
        g.restore_job = recent(jobs.latest_of("restore"))
    return g.restore_job


def accounts_panel(accounts: list, forms: dict, **_) -> str:
    """Under the list of accounts: the download link, and the forms that add, import and restore."""
    return render_template(
        "ingest/accounts_panel.html",
        accounts=accounts,
        add_form=forms.get("add") or AddAccountForm(),  # as typed, when another form was refused
        import_form=forms.get("import_") or ImportForm(formdata=None),
        restore_form=forms.get("restore") or RestoreForm(formdata=None),
        restore_job=_restore_job(),
        max_upload_mb=uploads.limit_mb(),
    )


def account_actions(user, job: dict | None, **_) -> str:
    """On an account's page: fetch its newer posts (an account from X, with a token set)."""
    can_update = user.fetchable and networks.online(user.platform)
    return render_template(
        "ingest/account_actions.html", user=user, job=job, update_form=ButtonForm() if can_update else None
    )


def account_links(user, **_) -> str:
    return render_template("ingest/account_links.html", user=user)


def restore_job_panel(**_) -> str | None:
    """Under the accounts: the restore under way, or the one just ended."""
    job = _restore_job()
    return render_template("ingest/restore_job.html", restore_job=job) if job else None
