"""Write like them: train an account's style model, write posts in its voice, and the panels that show
both on the account's page and its models on ``/models``."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from twitapp import jobs, registry
from twitapp.auth import operator_required
from twitapp.models import find_user_or_404
from twitapp.style import lstm as neural
from twitapp.style import model as generate
from twitapp.style.forms import WriteForm
from twitapp.web.forms import ButtonForm
from twitapp.web.routes import account_page
from twitapp.web.security import rate_limit

bp = Blueprint("style", __name__)

WRITE_COUNT = 5  # posts an account page writes at a time


@bp.post("/user/<username>/style")
@rate_limit("RATELIMIT_ADD")
@operator_required
def train_style(username: str):
    """Train the model that writes like this account, as a job its page follows."""
    account = find_user_or_404(username)
    engine = request.form.get("engine", "kneser-ney")
    if ButtonForm().validate_on_submit() and engine in generate.ENGINES:
        jobs.submit(generate.TRAIN_JOB, account.username, engine=engine)  # without PyTorch the job says so
    return redirect(url_for("web.user", username=account.username) + "#style")


@bp.post("/user/<username>/write")
@rate_limit("RATELIMIT_COMPARE")
def write_like(username: str):
    """A handful of posts in this account's voice."""
    account = find_user_or_404(username)
    form = WriteForm()
    if not form.validate_on_submit():
        return account_page(account.username, 400, forms={"write": form})
    temperature = float(form.temperature.data) if form.temperature.data is not None else generate.DEFAULT_TEMPERATURE
    try:
        posts, _ = generate.write_like(account.username, WRITE_COUNT, temperature, form.opening.data or "")
    except generate.StyleError as exc:
        form.opening.errors.append(str(exc))
        return account_page(account.username, 400, forms={"write": form})
    return account_page(account.username, forms={"write": form}, written=posts)


def account_panel(user, job: dict | None, forms: dict, written: list[str] | None = None, **_) -> str:
    """The account page's "Write like" section: the trained model, the write form and its posts."""
    return render_template(
        "style/account_panel.html",
        user=user,
        job=job,
        training=job if job is not None and job["kind"] == generate.TRAIN_JOB else None,  # shown by its button
        style=generate.champion_of(user.username),  # the model itself is loaded when it writes
        write_form=forms.get("write") or WriteForm(formdata=None),
        train_form=ButtonForm(),
        written=written,
        write_count=WRITE_COUNT,
        neural_available=neural.available(),
        temperatures=generate.TEMPERATURES,
    )


def models_panel(**_) -> str:
    """On ``/models``: the accounts' style models, newest first."""
    styles = registry.versions(generate.KIND, newest_first=True, limit=50)
    return render_template("style/models_panel.html", styles=styles)
