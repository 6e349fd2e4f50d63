"""Who would post this? The compare form on the home page, and the result page that ranks the accounts."""

from __future__ import annotations

from flask import Blueprint, render_template, request, session

from twitapp.attribution.forms import CompareForm
from twitapp.attribution.model import MAX_TEXT_CHARS, PredictionError, predict_author
from twitapp.attribution.thread import MAX_POSTS
from twitapp.web.routes import home_page
from twitapp.web.security import rate_limit

bp = Blueprint("attribution", __name__)


@bp.post("/compare")
@rate_limit("RATELIMIT_COMPARE")
def compare():
    """Rank the chosen accounts for the typed post or thread, or show the form again with what to fix."""
    form = CompareForm()
    if not form.validate_on_submit():
        return home_page(400, compare=form)
    try:
        prediction = predict_author(form.usernames.data or [], form.text.posts)
    except PredictionError as exc:
        form.text.errors.append(str(exc))
        return home_page(exc.status, compare=form)
    # The accounts last compared, ticked again when a post is sent here from elsewhere ("Compare this post").
    session[LAST_COMPARED] = [c.username for c in prediction.ranking][:MAX_REMEMBERED]
    return render_template(
        "attribution/result.html",
        prediction=prediction,
        again=CompareForm(formdata=None),
        max_chars=MAX_TEXT_CHARS,
        max_posts=MAX_POSTS,
    )


@bp.post("/compare/edit")
@rate_limit("RATELIMIT_COMPARE")
def edit():
    """The compare form again, with the accounts and the post or thread a result was for, to change either.

    Sent as a form, not a link: a thread of 25 posts does not fit in an address a server takes.
    """
    form = CompareForm()
    return home_page(200 if form.validate_on_submit() else 400, compare=form)


LAST_COMPARED = "last_compared"
MAX_REMEMBERED = 20


def compare_panel(accounts: list, forms: dict, **_) -> str:
    """The home page's first panel: pick accounts, type a post (``?text=&usernames=`` fill it). A post sent
    here from elsewhere (``?text=`` with ``usernames``: the account it was written as) also ticks the
    accounts last compared."""
    form = forms.get("compare")
    if form is None:
        ticked = request.args.getlist("usernames")
        if request.args.get("with_last"):
            ticked += [u for u in session.get(LAST_COMPARED, []) if isinstance(u, str) and u not in ticked]
        form = CompareForm(formdata=None, data={"text": request.args.get("text", ""), "usernames": ticked})
    form.usernames.choices = [(u.username, f"@{u.username}") for u, _ in accounts]
    return render_template(
        "attribution/compare_panel.html",
        accounts=accounts,
        compare_form=form,
        max_chars=MAX_TEXT_CHARS,
        max_posts=MAX_POSTS,
    )
