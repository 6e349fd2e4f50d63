"""What a person sees: the account list, account pages, adding accounts, errors, health."""

import html
import io

import pytest
import sqlalchemy as sa

from tests.support.data import VOICES, count_rows, fake_posts, online, stored
from twitapp import jobs
from twitapp.extensions import db
from twitapp.models import Job, Tweet, Upload, UploadPart, User, find_account, find_user


def test_home_lists_accounts_with_counts_and_says_it_is_offline(client, voices):
    page = client.get("/").get_data(as_text=True)
    for username in voices:
        assert f'href="/user/{username}"' in page
    assert "No X API token is set: Bluesky and Mastodon accounts can be added below" in page
    assert 'data-max="280"' in page
    assert page.count('name="usernames"') == 3


def test_account_page_shows_newest_posts_first_and_pages(client, add_account):
    add_account("ann", [f"numbered post {i:02d}" for i in range(30)])
    page = client.get("/user/ANN").get_data(as_text=True)
    assert page.index("numbered post 29") < page.index("numbered post 28")
    assert "numbered post 04" not in page and "Page 1 of 2" in page
    second = client.get("/user/ann?page=2").get_data(as_text=True)
    assert "numbered post 04" in second and "numbered post 29" not in second


def test_unknown_account_page_is_a_404_in_html_or_json(client):
    response = client.get("/user/nobody_here")
    assert response.status_code == 404
    assert "No stored account is called @nobody_here" in response.get_data(as_text=True)
    response = client.get("/user/nobody_here", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["error"] == "Not Found"
    assert client.get("/api/no/such/route").get_json()["error"] == "Not Found"


def test_adding_without_a_token_says_only_demo_and_imports_work(client, voices):
    response = client.post("/users", data={"username": "someone"})
    assert response.status_code == 400
    assert "No X API token is set" in response.get_data(as_text=True)


def test_adding_an_invalid_username_is_explained(client, app, fake_x):
    online(app, fake_x)
    response = client.post("/users", data={"username": "not a name!"})
    assert response.status_code == 400
    assert "is not a handle this app can read" in response.get_data(as_text=True)
    assert "a Mastodon address (@ana@mastodon.social)" in response.get_data(as_text=True)
    assert fake_x.requests == []


def add_and_wait(client, username: str) -> str:
    """Ask for an account, let the job run, and return the account page it leads to."""
    response = client.post("/users", data={"username": username})
    assert response.status_code == 302
    jobs.thread_worker.join()
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_adding_fetches_through_x_and_shows_the_outcome_on_the_account_page(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(4242, "HarbourNews", "Harbour News", fake_posts(9000, 120))
    response = client.post("/users", data={"username": "@harbournews"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/user/harbournews")
    jobs.thread_worker.join()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Added @HarbourNews with 120 posts." in page
    assert "post 119 about the harbour market" in page  # newest first, on the same page
    with app.app_context():
        user = find_account("x", 4242)
        assert (user.source, user.newest_tweet_id) == ("x", 9119)


def test_adding_a_stored_account_fetches_only_newer_posts(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(4242, "harbournews", "Harbour News", fake_posts(9000, 10))
    add_and_wait(client, "harbournews")
    fake_x.add_posts("harbournews", fake_posts(9500, 3, prefix="fresh"))
    fake_x.requests.clear()
    assert "Updated @harbournews: 3 new posts, 13 in all." in add_and_wait(client, "harbournews")
    timeline = [query for path, query in fake_x.requests if path.endswith("/tweets")]
    assert timeline and timeline[0].get("since_id") == "9009"
    page = client.get("/user/harbournews").get_data(as_text=True)
    assert "Fetch newer posts" in page
    response = client.post("/user/harbournews/update")
    assert response.status_code == 302
    jobs.thread_worker.join()
    assert "is up to date" in client.get("/user/harbournews").get_data(as_text=True)
    assert count_rows(app, Tweet) == 13


def test_adding_an_account_x_does_not_know(client, app, fake_x):
    online(app, fake_x)
    page = add_and_wait(client, "ghost_account")
    assert "No X account is named @ghost_account." in page
    assert "Nothing is stored for this account yet." in page
    assert count_rows(app, User) == 0


def test_x_failures_are_shown_and_nothing_is_half_written(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(4242, "harbournews", "Harbour News", fake_posts(9000, 250))
    fake_x.fail_next(503, times=5)
    assert "X is having trouble (503" in add_and_wait(client, "harbournews")  # after the retries ran out
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0
    fake_x.fail_next(401)
    page = add_and_wait(client, "harbournews")
    assert "Failed; nothing was stored." in page
    assert count_rows(app, User) == 0


def test_forms_need_a_csrf_token(app, voices):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post("/compare", data={"usernames": voices, "text": "bread"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    # The JSON API is not cookie-authenticated and stays usable without a token.
    assert client.post("/api/predict", json={"usernames": voices, "text": "bread"}).status_code == 200


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "rate_limits": "off"}


def test_an_unexpected_error_is_a_500_page_and_rolls_back(app, voices, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode(*args, **kwargs):
        db.session.execute(sa.delete(Tweet))  # a write the failed request must not leave behind
        raise RuntimeError("boom")

    monkeypatch.setattr("twitapp.attribution.routes.predict_author", explode)
    client = app.test_client()
    response = client.post("/compare", data={"usernames": voices, "text": "bread"})
    assert response.status_code == 500
    assert "Your stored data is unchanged" in response.get_data(as_text=True)
    assert "boom" not in response.get_data(as_text=True)
    assert count_rows(app, Tweet) == 18
    monkeypatch.setattr("twitapp.attribution.api.predict_author", explode)
    response = client.post("/api/predict", json={"usernames": voices, "text": "bread"})
    assert response.status_code == 500 and response.get_json()["error"] == "Internal Server Error"


def test_api_lists_users_and_pages_their_tweets(client, add_account):
    add_account("ann", [f"post {i}" for i in range(7)], account_id=9007199254740993)
    users = client.get("/api/users").get_json()["users"]
    assert [(u["username"], u["tweet_count"], u["id"]) for u in users] == [("ann", 7, "9007199254740993")]
    body = client.get("/api/users/ANN/tweets?per_page=5&page=2").get_json()
    assert (body["total"], body["pages"], body["page"]) == (7, 2, 2)
    assert [t["text"] for t in body["tweets"]] == ["post 1", "post 0"]
    assert set(body["tweets"][0]["public_metrics"]) == {"like_count", "retweet_count", "reply_count"}
    assert client.get("/api/users/nobody/tweets").status_code == 404


def test_a_database_that_does_not_answer_gets_a_503_not_a_500(tmp_path):
    from twitapp import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no/such/folder/db.sqlite3"})
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "The database is not answering just now" in response.get_data(as_text=True)
    response = client.get("/api/users")
    assert response.status_code == 503 and response.get_json()["error"] == "Service Unavailable"
    assert client.get("/healthz").status_code == 503


def test_adding_a_protected_account_says_why_and_stores_nothing(client, app, fake_x):
    online(app, fake_x)
    fake_x.add_user(4343, "quietone", "Quiet One", fake_posts(9000, 5), protected=True)
    page = add_and_wait(client, "quietone")
    assert "@quietone&#39;s posts are protected" in page and "own X archive" in page
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0


# -- importing a file from the home page -------------------------------------------------------------------

ACCOUNT_JS = 'window.YTD.account.part0 = [{"account": {"accountId": "98765", "username": "harbour_fan"}}]'


def send_file(client, username: str, *files: tuple[str, str]):
    data = {"username": username, "files": [(io.BytesIO(text.encode()), name) for name, text in files]}
    return client.post("/import", data=data, content_type="multipart/form-data")


def test_an_archive_sent_from_the_home_page_is_imported_as_a_job(app, client):
    from tests.support.data import TWEETS_JS

    response = send_file(client, "@harbour_fan", ("tweets.js", TWEETS_JS), ("account.js", ACCOUNT_JS))  # @ or not
    assert response.status_code == 302 and response.headers["Location"].endswith("/user/harbour_fan")
    jobs.thread_worker.join()
    page = client.get("/user/harbour_fan").get_data(as_text=True)
    assert (
        "Importing the file" in page
        and "@harbour_fan: 1 new posts" in page
        and "(skipped 1 replies, 1 reposts)" in page
    )
    assert "Fish &amp; chips at the harbour" in page
    with app.app_context():
        account = find_user("harbour_fan")
        assert (account.platform_id, account.source) == ("98765", "archive")  # the id from account.js
        assert count_rows(app, Upload) == 0  # the sent files are not kept once read


@pytest.mark.parametrize(
    ("username", "files", "message"),
    [
        ("ann", [], "Choose one file of posts"),
        ("ann", [("a.jsonl", '{"id": "1"'), ("b.jsonl", "{}")], "Choose one file of posts"),
        ("ann", [("account.js", ACCOUNT_JS)], "Choose one file of posts"),
        ("ann", [("notes.txt", "just some words")], "notes.txt: unknown format"),
        ("bad name", [("a.csv", "id,created_at,text\n1,2024-01-01T00:00:00Z,hi\n")], "1 to 15 letters"),
    ],
)
def test_a_file_the_home_page_can_tell_is_wrong_is_refused_at_once(app, client, username, files, message):
    """What the form and a file's first bytes show is refused before anything is stored or queued."""
    response = send_file(client, username, *files)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert (count_rows(app, User), count_rows(app, Tweet), count_rows(app, Upload), count_rows(app, Job)) == (
        0,
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("username", "files", "message"),
    [
        (
            "ann",
            [("bad.jsonl", '{"id": "1", "created_at": "2024-01-01T00:00:00Z", "text": "ok"}\n{oops')],
            "line 2, column 2: not valid JSON",
        ),
        (
            "ann",
            [
                (
                    "replies.jsonl",
                    '{"id": "5", "created_at": "2024-01-01T00:00:00Z", "text": "@a hi", "conversation_id": "4"}',
                )
            ],
            "replies.jsonl holds no original posts to import (only 1 replies, which are left out).",
        ),
        (
            "someone_else",
            [("tweets.js", "TWEETS"), ("account.js", ACCOUNT_JS)],
            "holds posts by @harbour_fan, not @someone_else",
        ),
    ],
)
def test_a_file_read_by_its_job_is_named_on_the_account_page_and_nothing_is_stored(
    app, client, username, files, message
):
    """The file is read in the job, never in the request: a bad line is named where the job is followed."""
    from tests.support.data import TWEETS_JS

    files = [(name, TWEETS_JS if text == "TWEETS" else text) for name, text in files]
    response = send_file(client, username, *files)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/user/{username}")
    jobs.thread_worker.join()
    page = client.get(f"/user/{username}").get_data(as_text=True)
    assert "Nothing is stored for this account yet." in page and html.escape(message, quote=False) in page
    assert (count_rows(app, User), count_rows(app, Tweet), count_rows(app, Upload)) == (0, 0, 0)
    with app.app_context():
        assert [j.state for j in db.session.scalars(sa.select(Job))] == ["failed"]


# -- deleting one account ------------------------------------------------------------------------------------


def test_deleting_an_account_asks_first_then_removes_it_and_nothing_else(app, client, voices):
    from datetime import UTC, datetime

    from twitapp.models import ModelVersion

    with app.app_context():  # a style model in service for two of the accounts (only its row matters here)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for subject in ("baker", "coder"):
            row = ModelVersion(kind="style", subject=subject, format=1, status="champion", created_at=at)
            row.trained_from = row.trained_to = at
            row.params = {"username": subject, "engine": "kneser-ney", "order": 5}
            row.metrics = {"posts": 6, "held_out_bits_per_char": 2.0}
            row.decision, row.sha256, row.artefact = {}, "0", b""
            db.session.add(row)
        db.session.commit()
        baker = find_account("x", 111).id
        baker_posts = db.session.scalar(sa.select(sa.func.count()).select_from(Tweet).where(Tweet.user_id == baker))
    page = client.get("/user/baker").get_data(as_text=True)
    assert 'href="/user/baker/delete"' in page
    page = client.get("/user/baker/delete").get_data(as_text=True)
    assert "Delete @baker?" in page and f"the account's {baker_posts} stored posts" in page
    assert count_rows(app, User) == 3  # asking deletes nothing

    response = client.post("/user/baker/delete", follow_redirects=True)
    assert response.status_code == 200 and f"Deleted @baker and its {baker_posts} posts." in response.get_data(
        as_text=True
    )
    assert client.get("/user/baker").status_code == 404
    with app.app_context():
        assert find_user("baker") is None and find_user("coder") is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Tweet).where(Tweet.user_id == baker)) == 0
        styles = db.session.scalars(sa.select(ModelVersion.subject).where(ModelVersion.kind == "style")).all()
    assert styles == ["coder"]
    assert count_rows(app, User) == 2
    assert client.post("/user/baker/delete").status_code == 404


@pytest.mark.parametrize(
    ("kind", "username"),
    [("import-file", "baker"), ("add", "baker"), ("update-all", None), ("refresh", None)],
    ids=["its import", "its fetch", "an update of every account", "the refresh loop"],
)
def test_an_account_whose_posts_a_job_is_writing_is_not_deleted(app, client, voices, kind, username):
    with app.app_context():
        jobs.create(kind, username)  # queued, not run: under way
        done = jobs.create("style-train", "baker")  # a newer job of the account that is over does not hide it
        done.state = "done"
        db.session.commit()
    response = client.post("/user/baker/delete")
    assert response.status_code == 409 and "being fetched or imported right now" in response.get_data(as_text=True)
    assert client.delete("/api/users/baker").status_code == 409
    assert count_rows(app, User) == 3


def test_a_style_model_in_training_does_not_stop_a_delete(app, client, voices):
    with app.app_context():
        jobs.create("style-train", "baker")
    assert client.delete("/api/users/baker").status_code == 200 and count_rows(app, User) == 2


def test_the_api_deletes_an_account(app, client, voices):
    response = client.delete("/api/users/Baker")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": "baker", "posts": len(VOICES["baker"])}
    assert count_rows(app, User) == 2
    response = client.delete("/api/users/baker")
    assert response.status_code == 404 and "No stored account is called @baker" in response.get_json()["message"]
    with app.app_context():
        jobs.create("import-file", "coder", path="/nowhere")
    assert client.delete("/api/users/coder").status_code == 409 and count_rows(app, User) == 2


def test_cli_delete_removes_one_account_after_asking(app, runner, voices):
    result = runner.invoke(args=["delete", "coder"], input="n\n")
    assert result.exit_code != 0 and count_rows(app, User) == 3
    result = runner.invoke(args=["delete", "@Coder", "--yes"])
    assert result.exit_code == 0 and "Deleted @coder and its" in result.output
    assert count_rows(app, User) == 2
    result = runner.invoke(args=["delete", "coder", "--yes"])
    assert result.exit_code != 0 and "No stored account is called @coder." in result.output


@pytest.mark.app_config(MAX_IMPORT_POSTS=5)
def test_an_import_through_the_page_is_capped_and_says_how_to_import_more(app, client, runner, tmp_path):
    rows = "".join(f"{i},2024-05-01T09:00:00Z,post number {i}\n" for i in range(1, 8))
    csv = "id,created_at,text\n" + rows
    assert send_file(client, "big_one", ("big.csv", csv)).status_code == 302
    jobs.thread_worker.join()
    page = client.get("/user/big_one").get_data(as_text=True)
    assert "big.csv holds more than 5 posts, the most one import here takes." in page
    assert "flask import FILE --username NAME" in page
    assert (count_rows(app, User), count_rows(app, Tweet), count_rows(app, Upload)) == (0, 0, 0)
    path = tmp_path / "big.csv"
    path.write_text(csv)
    result = runner.invoke(args=["import", str(path), "--username", "big_one"])  # the command has no cap
    assert result.exit_code == 0 and count_rows(app, Tweet) == 7, result.output


def test_a_file_is_stored_in_parts_and_read_back_whole_in_the_job(app, client, monkeypatch):
    """Neither the request nor the job holds a file whole: it goes into the database a part at a time,
    and comes out the same, a character split between two parts included."""
    from twitapp.jobs import uploads

    monkeypatch.setattr(uploads, "PART_BYTES", 7)
    texts = [f"café ☕ number {i}, 🥐 and rain" for i in range(12)]
    csv = "id,created_at,text\n" + "".join(f'{i + 1},2024-05-01T09:{i:02d}:00Z,"{t}"\n' for i, t in enumerate(texts))
    with app.app_context():
        (upload,) = stored(("posts.csv", csv.encode()))
        parts = db.session.scalar(sa.select(sa.func.count()).select_from(UploadPart))
        assert parts == -(-len(csv.encode()) // 7) and uploads.open_upload(upload).read() == csv.encode()
        uploads.discard([upload])
    assert send_file(client, "cafe_fan", ("posts.csv", csv)).status_code == 302
    jobs.thread_worker.join()
    with app.app_context():
        read_back = db.session.scalars(sa.select(Tweet.text).order_by(Tweet.id)).all()
    assert read_back == texts and count_rows(app, UploadPart) == 0


def test_reimporting_a_file_with_other_counts_keeps_the_stored_ones_until_the_operator_replaces_them(app, client):
    first = "id,created_at,text,like_count\n1,2024-05-01T09:00:00Z,kettle on,4\n"
    send_file(client, "kettle_cam", ("posts.csv", first))
    jobs.thread_worker.join()
    inflated = first.replace(",4\n", ",999999\n")
    send_file(client, "kettle_cam", ("posts.csv", inflated))
    jobs.thread_worker.join()
    page = client.get("/user/kettle_cam").get_data(as_text=True)
    assert "The file differs in 1 stored posts&#39; likes, reposts or replies; the stored ones were kept." in page
    assert "Take the file's names and counts instead" in page and "4 likes" in page
    with app.app_context():
        second = db.session.scalars(sa.select(Job.id).order_by(Job.id.desc())).first()
    assert count_rows(app, Upload) == 1  # kept for the replace the operator may ask for
    response = client.post(f"/jobs/{second}/replace")
    assert response.status_code == 302 and response.headers["Location"].endswith("/user/kettle_cam")
    jobs.thread_worker.join()
    assert "999,999 likes" in client.get("/user/kettle_cam").get_data(as_text=True)
    assert count_rows(app, Upload) == 0
    assert client.post(f"/jobs/{second + 1}/replace").status_code == 404  # a replace keeps nothing to replace


def test_an_upload_dropped_while_its_job_reads_it_is_an_error_not_a_shorter_file(app, monkeypatch):
    from twitapp.jobs import uploads

    monkeypatch.setattr(uploads, "PART_BYTES", 8)
    with app.app_context():
        (upload,) = stored(("posts.csv", b"id,created_at,text\n" * 4))
        stream = uploads.open_upload(upload)
        assert stream.read(8) == b"id,creat"
        uploads.discard([upload])
        with pytest.raises(uploads.UploadGone, match="dropped while it was being read"):
            stream.read()
        with pytest.raises(uploads.UploadGone, match="is gone"):
            uploads.open_upload(upload)


def test_an_accounts_page_typed_with_its_at_shows_its_job_and_a_job_ended_lately_still_shows(app, client):
    """``/user/@carol`` is the same page as ``/user/carol``: the import under way for it, before any post
    is stored; and a job shows its outcome for a while after it ended, however long it ran."""
    from datetime import timedelta

    from twitapp import jobs
    from twitapp.models import Job

    with app.app_context():
        job_id = jobs.create("import-file", "carol").id
    for path in ("/user/carol", "/user/@carol"):
        page = client.get(path)
        assert page.status_code == 200 and "Importing the file" in page.get_data(as_text=True), path
    with app.app_context():  # ran for half an hour, ended a minute ago
        job = db.session.get(Job, job_id)
        job.state, job.message = "done", "Imported 3 posts."
        job.created_at = jobs.now() - timedelta(minutes=31)
        job.finished_at = jobs.now() - timedelta(minutes=1)
        db.session.commit()
    assert "Imported 3 posts." in client.get("/user/@carol").get_data(as_text=True)
