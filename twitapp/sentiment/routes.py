"""How does it feel? The sentiment page (score a text, train a model on labelled files), the topic
page (live from a network, or the stored posts), and the sentiment mix on an account's page."""

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
            # The newest model was trained and judged no better than chance, so it was kept out of service.
            refused=history[0] if history and history[0].metrics.get("better_than_chance") is False else None,
            honest=row is None or sentiment.better_than_chance(row.metrics),
            better_than_chance=sentiment.better_than_chance,
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
    """A hashtag's or query's posts, each labelled, page by page, with the mix and the mix over time; from a
    network's search, new ones appear on the first page as they come."""
    query = request.args.get("q", "")
    found, page, error, status = None, None, None, 200
    try:
        network = topic.network_of(request.args.get("network"))
    except topic.TopicError as exc:
        network, error, status = "stored", str(exc), 400
    if query.strip() and error is None:
        try:
            number = topic.page_number(request.args.get("page"))
            found = topic.results(query, network=network)
            page = topic.page_of(found, number)
        except topic.TopicError as exc:
            error, status = str(exc), 400
        except SourceError as exc:
            error, status = str(exc), 502
    return render_template(
        "sentiment/topic.html",
        query=query,
        found=found,
        page=page,
        timeline=topic.over_time(found.posts) if found else None,
        error=error,
        network=network,
        live=network != "stored",
        networks=topic.usable(current_app.config),
        shown=topic.SHOWN,
        instance=current_app.config.get("MASTODON_TOPIC_INSTANCE") or mastodon.DEFAULT_TOPIC_INSTANCE,
        poll_seconds=current_app.config["TOPIC_CACHE_SECONDS"],
    ), status


def account_mix(user, **_) -> str | None:
    """On an account's page: the sentiment of its newest posts, month by month."""
    mix = sentiment.account_mix(user.id)[-12:]
    if not mix:
        return None
    most = max((sum(counts.values()) for _, counts in mix), default=1)
    return render_template("sentiment/account_mix.html", mix=mix, mix_most=most)
