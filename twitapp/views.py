"""The pages a person uses: the account list, adding an account, an account's posts, comparing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from . import archive, backup, generate, jobs, labelled, neural, sentiment, topic, uploads, virality
from .archive import ArchiveError
from .auth import operator_required
from .extensions import db, limiter
from .forms import (
    AddAccountForm,
    CompareForm,
    ImportForm,
    RestoreForm,
    RunForm,
    SentimentForm,
    TrainSentimentForm,
    TrainViralityForm,
    UpdateForm,
    ViralityForm,
    WriteForm,
)
from .ingest import IngestError
from .models import Job, ModelVersion, SentimentModel, User, find_user, find_user_or_404, newest_posts, tweet_counts
from .paging import page_of
from .predict import MAX_TEXT_CHARS, PredictionError, predict_author
from .security import topic_limit
from .twitter import XAPIError

bp = Blueprint("main", __name__)

POSTS_PER_PAGE = 25
# An account page shows its latest job while it runs, and its outcome for this long after.
RECENT_JOB = timedelta(minutes=10)
MODEL_HISTORY = 10  # trained sentiment models listed on the page
WRITE_COUNT = 5  # posts an account page writes at a time


@bp.before_app_request
def start_jobs() -> None:
    """Once per process, at its first request: sweep away the jobs earlier processes left, and beat."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.extensions.get("jobs_started"):
        app.extensions["jobs_started"] = True
        jobs.start(app)


def _recent(job: Job | None) -> dict | None:
    """A job worth showing: under way, or ended within RECENT_JOB."""
    if job is None or not (job.state in jobs.ACTIVE or jobs.now() - job.created_at < RECENT_JOB):
        return None
    return jobs.as_dict(job)


def _accounts() -> list[tuple[User, int]]:
    users = db.session.scalars(sa.select(User).order_by(sa.func.lower(User.username))).all()
    counts = tweet_counts()
    return [(u, counts.get(u.id, 0)) for u in users]


def _index(
    add_form: AddAccountForm | None = None,
    compare_form: CompareForm | None = None,
    import_form: ImportForm | None = None,
    restore_form: RestoreForm | None = None,
    status: int = 200,
):
    accounts = _accounts()
    compare_form = compare_form or CompareForm()
    compare_form.usernames.choices = [(u.username, f"@{u.username}") for u, _ in accounts]
    return (
        render_template(
            "index.html",
            accounts=accounts,
            add_form=add_form or AddAccountForm(),
            import_form=import_form or ImportForm(formdata=None),
            restore_form=restore_form or RestoreForm(formdata=None),
            restore_job=_recent(jobs.latest_of("restore")),
            compare_form=compare_form,
            max_upload_mb=uploads.limit_mb(),
            online=bool(current_app.config.get("X_BEARER_TOKEN")),
            max_chars=MAX_TEXT_CHARS,
        ),
        status,
    )


@bp.get("/")
def index():
    """The accounts with their post counts, and the add and compare forms (``?text=&usernames=`` fill it)."""
    prefill = {"text": request.args.get("text", ""), "usernames": request.args.getlist("usernames")}
    return _index(compare_form=CompareForm(formdata=None, data=prefill))


def _limit(setting: str, methods: tuple[str, ...] = ("POST",)):
    """A rate limit read from the config when a request comes (so tests and deployments can set it)."""
    return limiter.limit(lambda: current_app.config[setting], methods=list(methods))


@bp.post("/users")
@_limit("RATELIMIT_ADD")
@operator_required
def add_user():
    """Start fetching an account through the X API (a stored one gets its newer posts); watch it run."""
    form = AddAccountForm()
    if not form.validate_on_submit():
        return _index(add_form=form, status=400)
    if not current_app.config.get("X_BEARER_TOKEN"):
        form.username.errors.append(jobs.NO_TOKEN)
        return _index(add_form=form, status=400)
    job = jobs.submit("add", form.username.data)
    return redirect(url_for("main.user", username=job.username))


@bp.post("/import")
@_limit("RATELIMIT_ADD")
@operator_required
def import_file():
    """Store a file of posts as it arrives and import it as a job, which reads and checks it (a bad line
    is named on the account's page); only what can be told from its first bytes is refused here."""
    form = ImportForm()
    if not form.validate_on_submit():
        return _index(import_form=form, status=400)
    handle = form.username.data
    if jobs.under_way_for(handle):
        form.files.errors = [f"@{handle} is being fetched or imported already; send the file again when that is done."]
        return _index(import_form=form, status=409)
    chosen = _chosen(form.files)
    try:
        account_js = [f for f in chosen if archive.is_account_js(_head(f))]
        posts = [f for f in chosen if f not in account_js]
        if len(posts) != 1 or len(account_js) > 1:
            raise ArchiveError(
                "Choose one file of posts: tweets.js from an X archive (with the account.js beside it, if you "
                "like), a JSONL file of X API posts, or a CSV."
            )
        archive.kind_of(archive.head_of(_head(posts[0])), posts[0].filename)
    except ArchiveError as exc:
        form.files.errors = [str(exc)]
        return _index(import_form=form, status=400)
    max_posts = current_app.config["MAX_IMPORT_POSTS"]
    job = _queue_with_files("import-file", posts + account_js, handle, max_posts=max_posts)
    return redirect(url_for("main.user", username=job.username))


def _chosen(field) -> list:
    """The files chosen in a file field, single or multiple (FileStorage); none chosen, none listed."""
    chosen = field.data if isinstance(field.data, list) else [field.data]
    return [f for f in chosen if f and f.filename]


def _head(file, size: int = 1024) -> bytes:
    """A chosen file's first bytes, the file left to be read from its start."""
    head = file.stream.read(size)
    file.stream.seek(0)
    return head


def _queue_with_files(kind: str, files: list, username: str | None = None, **params) -> Job:
    """Store the files for a job (a part at a time, never whole in memory) and queue it; if one of the
    kind was under way after all (a race), it is the job answered, and these files are dropped at once."""
    ids = uploads.store([(f.filename, f.stream) for f in files])
    job = jobs.submit(kind, username, uploads=ids, **params)
    if (job.params or {}).get("uploads") != ids:
        uploads.discard(ids)
    return job


@bp.post("/jobs/<int:job_id>/replace")
@_limit("RATELIMIT_ADD")
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
        return redirect(url_for("main.user", username=job.username))
    return redirect(url_for("main.index", _anchor="restore"))


@bp.route("/user/<username>/delete", methods=["GET", "POST"])
@_limit("RATELIMIT_ADD")
@operator_required
def delete_user(username: str):
    """Ask first (GET), then remove the account with its posts, style models and jobs (POST)."""
    account = find_user_or_404(username)
    form = RunForm()
    busy = jobs.under_way_for(account.username) is not None
    if request.method == "POST" and form.validate_on_submit():
        try:
            handle, posts = jobs.delete_account(account.username)
        except jobs.Busy:
            busy = True
        except IngestError as exc:  # deleted in the meantime
            abort(404, description=str(exc))
        else:
            flash(f"Deleted @{handle} and its {posts:,} posts.", "success")
            return redirect(url_for("main.index"))
    posts = tweet_counts().get(account.id, 0)
    status = 409 if busy and request.method == "POST" else 200
    return render_template("delete.html", user=account, posts=posts, form=form, busy=busy), status


@bp.post("/restore")
@_limit("RATELIMIT_ADD")
@operator_required
def restore_file():
    """Store an export as it arrives and restore it as a job, which checks the whole file (its end line
    included) before writing anything; here only its first line is looked at."""
    form = RestoreForm()
    if not form.validate_on_submit():
        return _index(restore_form=form, status=400)
    if jobs.under_way_of("restore"):
        form.file.errors = ["A restore is under way already; send the file again when it is done."]
        return _index(restore_form=form, status=409)
    chosen = _chosen(form.file)
    try:
        if not chosen:
            raise ArchiveError(
                "Choose the file that “Download every account and post” gave (or one flask export wrote)."
            )
        backup.check_header(_head(chosen[0], 4096), chosen[0].filename)
    except ArchiveError as exc:
        form.file.errors = [str(exc)]
        return _index(restore_form=form, status=400)
    _queue_with_files("restore", chosen[:1])
    return redirect(url_for("main.index", _anchor="restore"))


@bp.get("/export")
@_limit("RATELIMIT_ADD", methods=("GET",))
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
@_limit("RATELIMIT_ADD")
@operator_required
def update_user(username: str):
    """Fetch an account's newer posts, as a job shown on its page."""
    account = find_user_or_404(username)
    if UpdateForm().validate_on_submit() and current_app.config.get("X_BEARER_TOKEN") and account.source == "x":
        jobs.submit("add", account.username)
    return redirect(url_for("main.user", username=account.username))


def _user_page(username: str, write_form: WriteForm | None = None, written=None, status: int = 200):
    account = find_user(username)
    job = _recent(jobs.latest_for(username))
    if account is None:
        if job is None:
            find_user_or_404(username)  # answers the 404
        return render_template("pending.html", username=job["username"], job=job)
    page = page_of(newest_posts(account), f"@{account.username}'s posts", POSTS_PER_PAGE)
    can_update = bool(current_app.config.get("X_BEARER_TOKEN")) and account.source == "x"
    mix = sentiment.account_mix(account.id)
    style = generate.champion_of(account.username)  # the model itself is loaded when it writes
    return (
        render_template(
            "user.html",
            user=account,
            page=page,
            mix=mix[-12:],
            mix_most=max((sum(counts.values()) for _, counts in mix[-12:]), default=1),
            job=job,
            update_form=UpdateForm() if can_update else None,
            style=style,
            write_form=write_form or WriteForm(formdata=None),
            train_form=RunForm(),
            written=written,
            write_count=WRITE_COUNT,
            neural_available=neural.available(),
            temperatures=generate.TEMPERATURES,
        ),
        status,
    )


@bp.get("/user/<username>")
def user(username: str):
    """An account's stored posts, newest first, the progress or outcome of its latest job, and its style."""
    return _user_page(username)


@bp.post("/user/<username>/style")
@_limit("RATELIMIT_ADD")
@operator_required
def train_style(username: str):
    """Train the model that writes like this account, as a job its page follows."""
    account = find_user_or_404(username)
    engine = request.form.get("engine", "kneser-ney")
    if RunForm().validate_on_submit() and engine in generate.ENGINES:
        jobs.submit("style-train", account.username, engine=engine)  # without PyTorch the job says so
    return redirect(url_for("main.user", username=account.username) + "#style")


@bp.post("/user/<username>/write")
@_limit("RATELIMIT_COMPARE")
def write_like(username: str):
    """A handful of posts in this account's voice."""
    account = find_user_or_404(username)
    form = WriteForm()
    if not form.validate_on_submit():
        return _user_page(account.username, form, status=400)
    temperature = float(form.temperature.data) if form.temperature.data is not None else generate.DEFAULT_TEMPERATURE
    try:
        posts, _ = generate.write_like(account.username, WRITE_COUNT, temperature, form.opening.data or "")
    except generate.StyleError as exc:
        form.opening.errors.append(str(exc))
        return _user_page(account.username, form, status=400)
    return _user_page(account.username, form, written=posts)


@bp.post("/compare")
@_limit("RATELIMIT_COMPARE")
def compare():
    """Rank the chosen accounts for the typed text, or show the form again with what to fix."""
    form = CompareForm()
    if not form.validate_on_submit():
        return _index(compare_form=form, status=400)
    try:
        prediction = predict_author(form.usernames.data or [], form.text.data)
    except PredictionError as exc:
        form.text.errors.append(str(exc))
        return _index(compare_form=form, status=exc.status)
    return render_template("result.html", prediction=prediction)


def _sentiment_page(
    form: SentimentForm, train_form: TrainSentimentForm, result=None, status: int = 200, scored_by=None
):
    # The model named is the one that scored the text (None: VADER), else the one in service now.
    row = scored_by if result is not None else sentiment.in_service()[0]
    strongest = max((abs(v) for _, v in result.words), default=0.0) if result else 0.0
    history = db.session.scalars(
        sa.select(SentimentModel).order_by(SentimentModel.id.desc()).limit(MODEL_HISTORY)
    ).all()
    return (
        render_template(
            "sentiment.html",
            form=form,
            train_form=train_form,
            result=result,
            model=row,
            history=history,
            job=_recent(jobs.latest_of("sentiment-train")),
            strongest=strongest or 1.0,
            max_chars=sentiment.MAX_TEXT_CHARS,
            upload_mb=uploads.limit_mb(),
        ),
        status,
    )


@bp.route("/sentiment", methods=["GET", "POST"])
@_limit("RATELIMIT_COMPARE")
def sentiment_page():
    """Type a text, see its label, a score bar and the words that drove it; train a model on your files."""
    form = SentimentForm()
    result, scored_by, status = None, None, 200
    if form.validate_on_submit():
        try:
            _, scored_by, (result,) = sentiment.analyse([form.text.data or ""])
        except sentiment.SentimentError as exc:
            form.text.errors.append(str(exc))
            status = 400
    elif form.is_submitted():
        status = 400
    return _sentiment_page(form, TrainSentimentForm(formdata=None), result, status, scored_by)


@bp.post("/sentiment/train")
@_limit("RATELIMIT_ADD")
@operator_required
def train_sentiment():
    """Store the labelled files and train on them as a job, which reads and checks them (a bad line is
    named on the page it follows); only a file whose first line fits no layout is refused here."""
    form = TrainSentimentForm()
    if not form.validate_on_submit():
        return _sentiment_page(SentimentForm(formdata=None), form, status=400)
    if jobs.under_way_of("sentiment-train"):
        form.files.errors = ["A model is being trained already; wait for it to finish, then send these again."]
        return _sentiment_page(SentimentForm(formdata=None), form, status=409)
    chosen = _chosen(form.files)
    try:
        if not chosen:
            raise sentiment.SentimentError("Choose one or more labelled files to train on.")
        for file in chosen:
            labelled.check_head(_head(file), file.filename)
    except (ArchiveError, sentiment.SentimentError) as exc:
        form.files.errors = [str(exc)]
        return _sentiment_page(SentimentForm(formdata=None), form, status=400)
    _queue_with_files("sentiment-train", chosen)
    return redirect(url_for("main.sentiment_page") + "#training")


@bp.get("/topic")
@_limit("RATELIMIT_COMPARE", methods=("GET",))
@topic_limit
def topic_page():
    """Recent posts for a hashtag or query, each labelled, with the mix; new ones appear as they come."""
    query = request.args.get("q", "")
    found, error, status = None, None, 200
    if query.strip():
        try:
            found = topic.recent(query)
        except topic.TopicError as exc:
            error, status = str(exc), 400
        except XAPIError as exc:
            error, status = str(exc), 502
    online = bool(current_app.config.get("X_BEARER_TOKEN"))
    poll = current_app.config["TOPIC_CACHE_SECONDS"] if online else 5
    return render_template(
        "topic.html", query=query, found=found, error=error, online=online, poll_seconds=poll
    ), status


def _virality_page(form: ViralityForm, probability: float | None = None, status: int = 200):
    row, model = virality.in_service()
    form.username.choices = [("", "anyone (no account history)")] + [
        (u.username, f"@{u.username}") for u, _ in _accounts()
    ]
    return (
        render_template(
            "virality.html",
            form=form,
            probability=probability,
            model=row if model is not None else None,
            max_chars=virality.MAX_TEXT_CHARS,
        ),
        status,
    )


@bp.route("/virality", methods=["GET", "POST"])
@_limit("RATELIMIT_COMPARE")
def virality_page():
    """Type a post (and who would post it): the champion's probability that it gets likes."""
    form = ViralityForm()
    if not form.validate_on_submit():
        return _virality_page(form, status=400 if form.is_submitted() else 200)
    try:
        probability, _ = virality.predict(form.text.data or "", form.username.data or None, form.media.data)
    except virality.ViralityError as exc:
        form.text.errors.append(str(exc))
        return _virality_page(form, status=400)
    return _virality_page(form, probability)


MODEL_JOBS = ("virality-train", "refresh")


@bp.get("/models")
def models_page(train_form: TrainViralityForm | None = None, status: int = 200):
    """The registry: every virality model with its standing, metrics and the decision that set it."""
    if train_form is None:
        champion = virality.champion_row()
        train_form = TrainViralityForm(threshold=champion.params.get("threshold") if champion else None)
    rows = db.session.scalars(
        sa.select(ModelVersion).where(ModelVersion.kind == virality.KIND).order_by(ModelVersion.id)
    ).all()
    latest = max((j for j in map(jobs.latest_of, MODEL_JOBS) if j is not None), key=lambda j: j.id, default=None)
    job = _recent(latest)
    styles = db.session.scalars(
        sa.select(ModelVersion).where(ModelVersion.kind == generate.KIND).order_by(ModelVersion.id.desc()).limit(50)
    ).all()
    return render_template(
        "models.html",
        rows=rows,
        styles=styles,
        chart=_auc_chart(rows),
        job=job,
        busy=bool(job and not job["finished"]),
        run_form=RunForm(),
        train_form=train_form,
        online=bool(current_app.config.get("X_BEARER_TOKEN")),
    ), status


def _auc_chart(rows: list[ModelVersion]) -> dict | None:
    """Points for the SVG chart of held-out ROC AUC across versions (x by version, y from 0.5 to 1)."""
    scored = [r for r in rows if r.metrics.get("roc_auc") is not None]
    if not scored:
        return None
    width, height, pad = 600, 180, 30
    step = (width - 2 * pad) / max(len(scored) - 1, 1)
    low = min(0.5, *(r.metrics["roc_auc"] for r in scored))
    points = [
        {
            "x": round(pad + i * step, 1),
            "y": round(height - pad - (r.metrics["roc_auc"] - low) / (1 - low) * (height - 2 * pad), 1),
            "row": r,
        }
        for i, r in enumerate(scored)
    ]
    return {"width": width, "height": height, "pad": pad, "low": low, "points": points}


@bp.post("/models/<kind>")
@_limit("RATELIMIT_ADD")
@operator_required
def run_models_job(kind: str):
    """Start a training run (``train``) or the whole loop (``refresh``) as a job this page follows."""
    jobs_by_name = {"train": "virality-train", "refresh": "refresh"}
    if kind not in jobs_by_name:
        abort(404, description=f"There is nothing called {kind!r} to run here.")
    form = TrainViralityForm() if kind == "train" else RunForm()
    if not form.validate_on_submit():
        if kind == "train" and form.errors.get("threshold"):
            return models_page(train_form=form, status=400)
        return redirect(url_for("main.models_page"))
    if not jobs.under_way_of(*MODEL_JOBS):
        params = {"threshold": form.threshold.data} if kind == "train" else {}
        jobs.submit(jobs_by_name[kind], **params)
    return redirect(url_for("main.models_page"))


@bp.get("/healthz")
def healthz():
    """For load balancers: the app answers, and its database reads a table of the app and (SQLite) takes
    writes; otherwise a 503 that says what failed."""
    from . import database

    # Where rate limits are counted: "shared" (Redis), "per process" (each gunicorn worker on its own) or "off".
    limits = current_app.extensions.get("rate_limits", "off")
    problem = database.problem()
    if problem:
        return {"status": "error", "database": problem, "rate_limits": limits}, 503
    return {"status": "ok", "database": "ok", "rate_limits": limits}


@bp.app_template_filter("count")
def format_count(value: int) -> str:
    return f"{value:,}"


@bp.app_template_filter("percent")
def format_percent(probability: float) -> str:
    """A probability as a person reads it: one decimal, and no false certainty at either end."""
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability * 100:.1f}%"
