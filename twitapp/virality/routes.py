"""Will it get likes? The scoring page, and ``/models``: the registry with its champion contest, where a
training run or the whole refresh loop is started (other capabilities add their models as panels)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for

from twitapp import jobs, registry
from twitapp.auth import operator_required
from twitapp.extensions import db
from twitapp.models import ModelVersion, User
from twitapp.sources import x
from twitapp.virality import features
from twitapp.virality import model as virality
from twitapp.virality.forms import TrainViralityForm, ViralityForm
from twitapp.web.forms import ButtonForm
from twitapp.web.routes import recent
from twitapp.web.security import rate_limit

bp = Blueprint("virality", __name__)


def _virality_page(form: ViralityForm, probability: float | None = None, status: int = 200, scored_by=None):
    """The page; ``scored_by``: the model that gave ``probability`` (else the one in service now is named)."""
    if scored_by is None:
        row, model = virality.in_service()
        scored_by = row if model is not None else None
    handles = db.session.scalars(sa.select(User.username).order_by(sa.func.lower(User.username)))
    form.username.choices = [("", "anyone (no account history)")] + [(h, f"@{h}") for h in handles]
    newest = next(iter(registry.versions(virality.KIND, newest_first=True, limit=1)), None)
    return (
        render_template(
            "virality/virality.html",
            form=form,
            probability=probability,
            model=scored_by,
            honest=scored_by is not None and virality.better_than_chance(scored_by.metrics),
            # Why nothing serves: the newest run trained a model no better than chance.
            refused=newest
            if scored_by is None and newest is not None and not newest.decision.get("promoted")
            else None,
            max_chars=features.MAX_TEXT_CHARS,
            # With nothing in service, the page offers to train on what is stored, and follows that job.
            train_form=TrainViralityForm(formdata=None),
            stored_posts=features.trainable_count() if scored_by is None else None,
            job=recent(_latest_model_job()),
        ),
        status,
    )


def _latest_model_job():
    found = (j for j in map(jobs.latest_of, MODEL_JOBS) if j is not None)
    return max(found, key=lambda j: j.id, default=None)


@bp.route("/virality", methods=["GET", "POST"])
@rate_limit("RATELIMIT_COMPARE")
def virality_page():
    """Type a post (and who would post it): the champion's probability that it gets likes."""
    form = ViralityForm()
    if not form.validate_on_submit():
        return _virality_page(form, status=400 if form.is_submitted() else 200)
    try:
        probability, row = virality.predict(form.text.data or "", form.username.data or None, form.media.data)
    except virality.ViralityError as exc:
        form.text.errors.append(str(exc))
        return _virality_page(form, status=400)
    return _virality_page(form, probability, scored_by=row)


MODEL_JOBS = ("virality-train", "refresh")


@bp.get("/models")
def models_page(train_form: TrainViralityForm | None = None, status: int = 200):
    """The registry: every virality model with its standing, metrics and the decision that set it."""
    if train_form is None:
        champion = virality.champion_row()
        train_form = TrainViralityForm(threshold=champion.params.get("threshold") if champion else None)
    rows = registry.versions(virality.KIND)
    job = recent(_latest_model_job())
    return render_template(
        "virality/models.html",
        rows=rows,
        chart=_auc_chart(rows),
        job=job,
        busy=bool(job and not job["finished"]),
        run_form=ButtonForm(),
        train_form=train_form,
        online=x.online(),
        better_than_chance=virality.better_than_chance,
    ), status


def _auc_chart(rows: list[ModelVersion]) -> dict | None:
    """Points for the SVG chart of held-out ROC AUC across versions (x by version, y from the lowest AUC or
    0.5, whichever is lower, to 1), and where the chance line (0.5) runs.

    The floor is rounded down to a step of 0.05, so the axis's label is never above a point on the chart
    (an AUC of 0.497 printed as a floor of "0.50" would look like a model at chance)."""
    scored = [r for r in rows if r.metrics.get("roc_auc") is not None]
    if not scored:
        return None
    width, height, pad = 600, 180, 44
    step = (width - 2 * pad) / max(len(scored) - 1, 1)
    low = min(0.5, math.floor(20 * min(r.metrics["roc_auc"] for r in scored)) / 20)
    points = [
        {
            "x": round(pad + i * step, 1),
            "y": round(height - pad - (r.metrics["roc_auc"] - low) / (1 - low) * (height - 2 * pad), 1),
            "row": r,
        }
        for i, r in enumerate(scored)
    ]
    chance_y = round(height - pad - (0.5 - low) / (1 - low) * (height - 2 * pad), 1)
    return {"width": width, "height": height, "pad": pad, "low": low, "points": points, "chance_y": chance_y}


@bp.post("/models/<kind>")
@rate_limit("RATELIMIT_ADD")
@operator_required
def run_models_job(kind: str):
    """Start a training run (``train``) or the whole loop (``refresh``) as a job this page follows."""
    jobs_by_name = {"train": "virality-train", "refresh": "refresh"}
    if kind not in jobs_by_name:
        abort(404, description=f"There is nothing called {kind!r} to run here.")
    form = TrainViralityForm() if kind == "train" else ButtonForm()
    # The page the button was on follows the job: /virality's offer to train, or this one.
    back = url_for("virality.virality_page", _anchor="training") if request.form.get("from") == "virality" else None
    if not form.validate_on_submit():
        if kind == "train" and form.errors.get("threshold"):
            return models_page(train_form=form, status=400)
        return redirect(back or url_for("virality.models_page"))
    if not jobs.under_way_of(*MODEL_JOBS):
        params = {"threshold": form.threshold.data} if kind == "train" else {}
        jobs.submit(jobs_by_name[kind], **params)
    return redirect(back or url_for("virality.models_page"))
