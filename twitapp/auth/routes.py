"""Sign-in and sign-out pages for operators."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from twitapp.auth.forms import SignInForm, SignOutForm
from twitapp.auth.operators import (
    NO_OPERATOR,
    check_password,
    new_session_token,
    operators_exist,
    safe_next,
    sign_in_required,
)
from twitapp.extensions import db
from twitapp.web.security import rate_limit

bp = Blueprint("auth", __name__)

FAILED = "That name and password do not match an operator of this site."


@bp.route("/signin", methods=["GET", "POST"])
@rate_limit("RATELIMIT_SIGN_IN")
def sign_in():
    """The operator sign-in form; afterwards back to ``next`` (a path on this site only)."""
    next_page = safe_next(request.values.get("next")) or url_for("web.index")
    if not sign_in_required():
        flash("No sign-in is needed here: this server lets everyone who reaches it operate it.", "success")
        return redirect(next_page)
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        operator = check_password(form.name.data, form.password.data)
        if operator is not None:
            session.clear()  # nothing set before signing in (a planted session included) carries over
            login_user(operator)
            operator.signed_in_at = datetime.now(UTC)
            db.session.commit()
            flash(f"Signed in as {operator.name}.", "success")
            return redirect(next_page)
        form.password.errors.append(FAILED)
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template(
        "auth/signin.html",
        form=form,
        next_page=next_page,
        no_operator=None if operators_exist() else NO_OPERATOR,
    ), status


@bp.post("/signout")
def sign_out():
    """Sign out (a form with its CSRF token, so another site cannot sign you out). The operator's session
    token changes, so a copy of the cookie kept anywhere (another browser, a stolen one) is signed out too."""
    if SignOutForm().validate_on_submit():
        if current_user.is_authenticated:
            current_user.session_token = new_session_token()
            db.session.commit()
        logout_user()
        session.clear()
        flash("Signed out, on every browser this operator had signed in with.", "success")
    return redirect(url_for("web.index"))
