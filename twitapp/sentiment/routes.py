"""How does it feel? The sentiment page (score a text, train a model on labelled files), the live topic
page, and the sentiment mix on an account's page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, redirect, render_template, request, url_for

from twitapp import jobs
from twitapp.auth import operator_required
from twitapp.extensions import db
from twitapp.ingest.routes import chosen_files, file_head, queue_with_files
from twitapp.jobs import uploads
from twitapp.models import SentimentModel
from twitapp.sentiment import labelled, topic
from twitapp.sentiment import model as sentiment
from twitapp.sentiment.forms import SentimentForm, TrainSentimentForm
from twitapp.sentiment.topic import topic_limit
from twitapp.sources import mastodon
from twitapp.sources.archive import ArchiveError
from twitapp.sources.errors import SourceError
from twitapp.web.routes import recent
from twitapp.web.security import rate_limit

bp = Blueprint("sentiment", __name__)

MODEL_HISTORY = 10  # trained sentiment models listed on the page


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
            "sentiment/sentiment.html",
            form=form,
            train_form=train_form,
            result=result,
            model=row,
            history=history,
            job=recent(jobs.latest_of("sentiment-train")),
            strongest=strongest or 1.0,
            max_chars=sentiment.MAX_TEXT_CHARS,
            upload_mb=uploads.limit_mb(),
        ),
        status,
    )


@bp.route("/sentiment", methods=["GET", "POST"])
@rate_limit("RATELIMIT_COMPARE")
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
@rate_limit("RATELIMIT_ADD")
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
    chosen = chosen_files(form.files)
    try:
        if not chosen:
            raise sentiment.SentimentError("Choose one or more labelled files to train on.")
        for file in chosen:
            labelled.check_head(file_head(file), file.filename)
    except (ArchiveError, sentiment.SentimentError) as exc:
        form.files.errors = [str(exc)]
        return _sentiment_page(SentimentForm(formdata=None), form, status=400)
    queue_with_files("sentiment-train", chosen)
    return redirect(url_for("sentiment.sentiment_page") + "#training")


@bp.get("/topic")
@rate_limit("RATELIMIT_COMPARE", methods=("GET",))
@topic_limit
def topic_page():
    """Recent posts for a hashtag or query, each labelled, with the mix; new ones appear as they come."""
    query = request.args.get("q", "")
    found, error, status = None, None, 200
    try:
        network = topic.network_of(request.args.get("network"))
    except topic.TopicError as exc:
        network, error, status = "stored", str(exc), 400
    if query.strip() and error is None:
        try:
            found = topic.recent(query, network=network)
        except topic.TopicError as exc:
            error, status = str(exc), 400
        except SourceError as exc:
            error, status = str(exc), 502
    poll = 5 if network == "stored" else current_app.config["TOPIC_CACHE_SECONDS"]
    return render_template(
        "sentiment/topic.html",
        query=query,
        found=found,
        error=error,
        network=network,
        networks=topic.usable(current_app.config),
        shown=topic.SHOWN,
        instance=current_app.config.get("MASTODON_TOPIC_INSTANCE") or mastodon.DEFAULT_TOPIC_INSTANCE,
        poll_seconds=poll,
    ), status


def account_mix(user, **_) -> str | None:
    """On an account's page: the sentiment of its newest posts, month by month."""
    mix = sentiment.account_mix(user.id)[-12:]
    if not mix:
        return None
    most = max((sum(counts.values()) for _, counts in mix), default=1)
    return render_template("sentiment/account_mix.html", mix=mix, mix_most=most)
