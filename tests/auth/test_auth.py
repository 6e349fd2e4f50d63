"""Operators and visitors: only operators change what is stored; visitors ask questions of it.

Every route of the app is listed below as an operator's or a visitor's, so a new route that is not
placed in one list fails ``test_every_route_is_either_an_operators_or_a_visitors``.
"""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from tests.support.data import count_rows
from twitapp import jobs
from twitapp.extensions import db
from twitapp.models import ApiToken, Job, ModelVersion, Operator, SentimentModel, Tweet, Upload, User

PASSWORD = "correct horse battery"
signed = pytest.mark.app_config(SIGN_IN_REQUIRED=True)

CSV = b"id,created_at,text\n1,2026-01-01T00:00:00Z,a post about bread\n"
# Pages that change what is stored (or hand all of it out): (method, path, form data).
OPERATOR_PAGES = [
    ("POST", "/users", {"username": "quaynews"}),
    ("POST", "/import", {"username": "newbaker", "files": (io.BytesIO(CSV), "posts.csv")}),
    ("POST", "/restore", {}),
    ("GET", "/export", None),
    ("POST", "/user/baker/update", {}),
    ("POST", "/user/baker/style", {}),
    ("POST", "/sentiment/train", {}),
    ("POST", "/models/train", {}),
    ("POST", "/models/refresh", {}),
    ("POST", "/jobs/1/replace", {}),
    ("GET", "/user/baker/delete", None),
    ("POST", "/user/baker/delete", {}),
]
OPERATOR_API = [
    ("GET", "/api/export", None),
    ("POST", "/api/users", {"username": "quaynews"}),
    ("POST", "/api/users/baker/style", {}),
    ("DELETE", "/api/users/baker", None),
]
VISITOR_PAGES = [
    ("GET", "/", None),
    ("GET", "/user/baker", None),
    ("POST", "/compare", {"usernames": ["baker", "coder"], "text": "fresh bread"}),
    ("POST", "/compare/edit", {"usernames": ["baker", "coder"], "text": "fresh bread"}),
    ("GET", "/sentiment", None),
    ("POST", "/sentiment", {"text": "what a lovely loaf"}),
    ("GET", "/topic?q=bread", None),
    ("GET", "/virality", None),
    ("POST", "/virality", {"text": "fresh bread"}),
    ("GET", "/models", None),
    ("POST", "/user/baker/write", {}),
    ("GET", "/healthz", None),
    ("GET", "/signin", None),
    ("POST", "/signin", {"name": "nobody", "password": "guess"}),
    ("POST", "/signout", {}),
    ("GET", "/static/style.css", None),
]
VISITOR_API = [
    ("GET", "/api/users", None),
    ("GET", "/api/users/baker/tweets", None),
    ("POST", "/api/predict", {"usernames": ["baker", "coder"], "text": "fresh bread"}),
    ("POST", "/api/sentiment", {"texts": ["lovely"]}),
    ("GET", "/api/sentiment/models", None),
    ("GET", "/api/topic?q=bread", None),
    ("POST", "/api/virality", {"text": "fresh bread"}),
    ("GET", "/api/models", None),
    ("POST", "/api/users/baker/generate", {}),
    ("GET", "/api/jobs/1", None),
]


def call(client, method: str, path: str, body, *, api: bool = False, headers: dict | None = None):
    if api:
        response = client.open(path, method=method, json=body, headers=headers or {})
    else:
        if isinstance(body, dict):  # a fresh copy of any file, so a list can be sent more than once
            body = {k: (io.BytesIO(v[0].getvalue()), v[1]) if isinstance(v, tuple) else v for k, v in body.items()}
        response = client.open(path, method=method, data=body, headers=headers or {})
    response.get_data()  # read whole (a static file's included), so it can be closed at once
    response.close()
    return response


def sent_to_sign_in(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/signin")


def make_operator(runner, name: str = "ops", password: str = PASSWORD):
    result = runner.invoke(args=["operator", "create", name, "--password-stdin"], input=password + "\n")
    assert result.exit_code == 0, result.output
    return result


def make_token(runner, name: str = "ops", label: str = "scripts") -> str:
    result = runner.invoke(args=["operator", "token", name, "--label", label])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def sign_in(client, name: str = "ops", password: str = PASSWORD, next_page: str | None = None):
    path = "/signin" + (f"?next={next_page}" if next_page else "")
    return client.post(path, data={"name": name, "password": password})


def stored(app) -> tuple:
    with app.app_context():
        counts = [count_rows(app, m) for m in (User, Tweet, Upload, SentimentModel, ModelVersion)]
        jobs_started = db.session.scalar(sa.select(sa.func.count()).select_from(Job))
        names = db.session.scalars(sa.select(User.username).order_by(User.id)).all()
    return (*counts, jobs_started, tuple(names))


def test_every_route_is_either_an_operators_or_a_visitors(app):
    listed = {
        (method, re.sub(r"\?.*", "", path))
        for method, path, _ in OPERATOR_PAGES + OPERATOR_API + VISITOR_PAGES + VISITOR_API
    }
    samples = {"username": "baker", "kind": "train", "job_id": "1", "filename": "style.css"}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in listed, f"{method} {rule.rule} is neither an operator's nor a visitor's route"


@signed
def test_a_visitor_is_sent_to_sign_in_for_every_change_and_nothing_changes(app, client, voices):
    before = stored(app)
    for method, path, body in OPERATOR_PAGES:
        response = call(client, method, path, body, headers={"Referer": "http://localhost/user/baker"})
        assert sent_to_sign_in(response), (method, path, response.status_code)
    assert stored(app) == before
    # Back to the page: the page itself for a GET, the page the form was on for a POST.
    assert client.get("/export").headers["Location"] == "/signin?next=/export"
    response = client.post("/user/baker/update", headers={"Referer": "http://localhost/user/baker"})
    assert response.headers["Location"] == "/signin?next=/user/baker"


@signed
def test_the_api_refuses_changes_without_a_live_token(app, client, runner, voices):
    make_operator(runner)
    token = make_token(runner)
    before = stored(app)
    for method, path, body in OPERATOR_API:
        response = call(client, method, path, body, api=True)
        assert response.status_code == 401, (method, path)
        assert "Authorization: Bearer TOKEN" in response.get_json()["message"]
        bad = call(client, method, path, body, api=True, headers={"Authorization": "Bearer ht_not-a-token"})
        assert bad.status_code == 401 and "not known" in bad.get_json()["message"]
        # A signed-in browser's cookie is not an API credential: a page elsewhere cannot borrow it.
        sign_in(client)
        assert call(client, method, path, body, api=True).status_code == 401
        client.post("/signout")
    assert stored(app) == before
    with app.app_context():
        (token_id,) = db.session.scalars(sa.select(ApiToken.id)).all()
    assert runner.invoke(args=["operator", "revoke", str(token_id)]).exit_code == 0
    response = client.delete("/api/users/baker", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and stored(app) == before


@signed
def test_an_operators_token_may_change_what_is_stored(app, client, runner, voices):
    make_operator(runner)
    token = make_token(runner)
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, body in OPERATOR_API:
        response = call(client, method, path, body, api=True, headers=auth)
        assert response.status_code not in (401, 403), (method, path, response.get_json())
    jobs.thread_worker.join()
    assert count_rows(app, User) == 2  # baker was deleted
    with app.app_context():
        assert db.session.scalar(sa.select(ApiToken.last_used_at)) is not None


@signed
def test_a_signed_in_operator_may_do_every_change(app, client, runner, voices):
    make_operator(runner)
    assert sign_in(client).status_code == 302
    for method, path, body in OPERATOR_PAGES:
        response = call(client, method, path, body)
        assert not sent_to_sign_in(response), (method, path)
        assert response.status_code < 500
        jobs.thread_worker.join()  # the delete at the end waits for no job
    with app.app_context():  # the file's account was imported, and the last change deleted @baker
        assert db.session.scalars(sa.select(User.username).order_by(User.username)).all() == [
            "coder",
            "commuter",
            "newbaker",
        ]


@signed
def test_visitors_can_ask_every_question(app, client, voices):
    for method, path, body in VISITOR_PAGES:
        response = call(client, method, path, body)
        assert not sent_to_sign_in(response) and response.status_code < 500, (method, path)
    for method, path, body in VISITOR_API:
        response = call(client, method, path, body, api=True)
        assert response.status_code not in (401, 403, 500), (method, path)  # 503: no virality model yet


@signed
def test_visitors_see_no_operator_forms_and_a_way_to_sign_in(app, client, runner, voices):
    page = client.get("/").get_data(as_text=True)
    assert 'action="/import"' not in page and 'action="/users"' not in page and "/export" not in page
    assert "Operator sign-in" in page and 'href="/signin?next=/"' in page
    account = client.get("/user/baker").get_data(as_text=True)
    assert "Delete this account" not in account and 'action="/user/baker/style"' not in account
    assert 'action="/sentiment/train"' not in client.get("/sentiment").get_data(as_text=True)
    assert 'action="/models/train"' not in client.get("/models").get_data(as_text=True)
    make_operator(runner)
    sign_in(client)
    page = client.get("/").get_data(as_text=True)
    assert 'action="/import"' in page and "Signed in as <b>ops</b>" in page and 'action="/signout"' in page
    assert "Delete this account" in client.get("/user/baker").get_data(as_text=True)


@signed
def test_with_no_operator_yet_the_pages_say_how_to_make_one(app, client, voices):
    response = client.post("/users", data={"username": "quaynews"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "flask operator create NAME" in page and "heroku run flask operator create NAME" in page


@signed
def test_a_wrong_name_and_a_wrong_password_get_the_same_answer(app, client, runner):
    make_operator(runner)
    wrong_password = sign_in(client, password="not the password")
    wrong_name = sign_in(client, name="nobody")
    assert wrong_password.status_code == wrong_name.status_code == 400
    message = "That name and password do not match an operator of this site."
    assert message in wrong_password.get_data(as_text=True) and message in wrong_name.get_data(as_text=True)
    assert sent_to_sign_in(client.get("/export"))


@signed
def test_signing_in_goes_back_only_to_a_page_of_this_site(app, client, runner):
    make_operator(runner)
    assert sign_in(client, next_page="/models").headers["Location"] == "/models"
    for elsewhere in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "///evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
    ):
        client.post("/signout")
        assert sign_in(client, next_page=elsewhere).headers["Location"] == "/"


@signed
def test_signing_in_starts_a_new_session(app, client, runner):
    make_operator(runner)
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    sign_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session and "_user_id" in session


@signed
@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_signing_out_needs_the_forms_token(app, client, runner):
    make_operator(runner)
    page = client.get("/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    client.post("/signin", data={"name": "ops", "password": PASSWORD, "csrf_token": csrf})
    assert client.get("/signout").status_code == 405
    client.post("/signout")  # another site's form has no token: still signed in
    assert client.get("/export").status_code == 200
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/signout", data={"csrf_token": csrf})
    assert sent_to_sign_in(client.get("/export"))


@signed
def test_a_new_password_signs_out_every_other_session(app, client, runner):
    make_operator(runner)
    sign_in(client)
    assert client.get("/export").status_code == 200
    result = runner.invoke(args=["operator", "password", "ops", "--password-stdin"], input="a brand new password\n")
    assert result.exit_code == 0
    assert sent_to_sign_in(client.get("/export"))
    assert sign_in(client, password=PASSWORD).status_code == 400
    assert sign_in(client, password="a brand new password").status_code == 302


@signed
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_SIGN_IN="3 per minute")
def test_sign_in_attempts_are_rate_limited(app, client, runner):
    make_operator(runner)
    for _ in range(3):
        assert sign_in(client, password="guess").status_code == 400
    assert sign_in(client).status_code == 429  # even the right password must wait


def test_operators_are_made_and_tokens_kept_only_as_hashes(app, runner):
    make_operator(runner)
    assert (
        "exists already" in runner.invoke(args=["operator", "create", "OPS", "--password-stdin"], input=PASSWORD).output
    )
    short = runner.invoke(args=["operator", "create", "other", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "10 to 1000 characters" in short.output
    typed = runner.invoke(args=["operator", "create", "typist"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert typed.exit_code == 0, typed.output
    mistyped = runner.invoke(args=["operator", "create", "oops"], input=f"{PASSWORD}\nsomething else\n")
    assert mistyped.exit_code != 0
    token = make_token(runner, label="nightly refresh")
    assert token.startswith("ht_") and len(token) > 40
    with app.app_context():
        (row,) = db.session.scalars(sa.select(ApiToken)).all()
        assert row.name == "nightly refresh" and token not in row.token_hash
        names = db.session.scalars(sa.select(Operator.name).order_by(Operator.name)).all()
        hashes = db.session.scalars(sa.select(Operator.password_hash)).all()
    assert names == ["ops", "typist"]
    assert all(h.startswith("scrypt:") and PASSWORD not in h for h in hashes)
    listing = runner.invoke(args=["operator", "tokens", "ops"]).output
    assert "nightly refresh" in listing and "live" in listing and token not in listing
    assert "ops" in runner.invoke(args=["operator", "list"]).output


def test_without_sign_in_required_everyone_operates(app, client, voices):
    assert client.get("/export").status_code == 200
    assert client.delete("/api/users/baker").status_code == 200
    assert "Operator sign-in" not in client.get("/").get_data(as_text=True)


@signed
def test_the_command_line_is_always_an_operator(app, runner, voices):
    assert runner.invoke(args=["delete", "baker", "--yes"]).exit_code == 0
    assert count_rows(app, User) == 2


@signed
def test_signing_out_ends_the_session_wherever_its_cookie_went(app, client, runner):
    make_operator(runner)
    sign_in(client)
    copied = app.test_client()
    copied.set_cookie("session", client.get_cookie("session").value)
    assert copied.get("/export").status_code == 200  # a copy of the cookie works while signed in...
    client.post("/signout")
    assert sent_to_sign_in(copied.get("/export"))  # ...and not after signing out


@signed
def test_odd_sign_in_names_are_refused_without_a_query(app, client, runner):
    make_operator(runner)
    for name in ("\x00", "ops\x00", "ops; DROP TABLE operators", "öps"):
        response = client.post("/signin", data={"name": name, "password": PASSWORD})
        assert response.status_code == 400 and "do not match an operator" in response.text, name
    too_long = client.post("/signin", data={"name": "x" * 5000, "password": PASSWORD})
    assert too_long.status_code == 400 and "longer than 50 characters" in too_long.text
    assert sign_in(client, name=" OPS ").status_code == 302  # the name is found whatever its case and spaces


@signed
def test_a_refused_api_call_says_which_credentials_it_takes(app, client):
    response = client.post("/api/users", json={"username": "quaynews"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_api_takes_no_post_that_is_not_json(app, client, voices):
    """A form on another site can post text or form data, never JSON: with no sign-in asked for (make run),
    it still cannot reach the API, whose routes take no CSRF token."""
    for path in ("/api/users/baker/style", "/api/users/baker/generate", "/api/predict"):
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = client.post(path, data="", content_type=kind, headers={"Origin": "https://evil.example"})
            assert response.status_code == 415 and "Content-Type: application/json" in response.get_json()["message"]
    assert count_rows(app, Job) == 0
    assert client.post("/api/users/baker/generate", json=None, content_type="application/json").status_code != 415


def test_with_no_sign_in_the_app_answers_only_to_this_machines_names(app, client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz", headers={"Host": "127.0.0.1:5000"}).status_code == 200
    response = client.get("/", headers={"Host": "rebound.evil.example:5000"})
    assert response.status_code == 400 and "is not trusted" in response.text


@signed
def test_the_sign_in_link_of_a_page_that_answered_a_form_leads_back_to_a_page(app, client, voices):
    page = client.post("/compare", data={"usernames": ["baker", "coder"], "text": "fresh bread"}).get_data(as_text=True)
    assert 'href="/signin?next=/compare"' not in page and 'href="/signin?next=/"' in page
