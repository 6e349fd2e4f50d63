"""flask export / flask restore: every account and post round-trips exactly, and a bad file changes nothing."""

import io
import json

import sqlalchemy as sa

from tests.conftest import VOICES, count_rows
from twitapp.extensions import db
from twitapp.models import Job, Tweet, Upload, User

USER_COLUMNS = ("id", "username", "name", "source", "newest_tweet_id", "fetched_at")
POST_COLUMNS = (
    "id",
    "user_id",
    "text",
    "created_at",
    "like_count",
    "retweet_count",
    "reply_count",
    "lang",
    "has_media",
)


def snapshot(app) -> tuple[list[tuple], list[tuple]]:
    with app.app_context():
        users = [
            tuple(getattr(u, c) for c in USER_COLUMNS) for u in db.session.scalars(sa.select(User).order_by(User.id))
        ]
        posts = [
            tuple(getattr(t, c) for c in POST_COLUMNS) for t in db.session.scalars(sa.select(Tweet).order_by(Tweet.id))
        ]
        return users, posts


def stored_accounts(app, add_account):
    for i, (username, texts) in enumerate(VOICES.items(), start=1):
        add_account(username, texts, account_id=i * 111, source=["demo", "archive", "x"][i - 1])
    add_account("émile", ["Ça va? Très bien — merci! 🥐", "line one\nline two\ttabbed"], account_id=444)
    with app.app_context():  # what an X fetch records: one post with a photo, one known without
        db.session.execute(sa.update(Tweet).where(Tweet.user_id == 444).values(has_media=False))
        db.session.execute(sa.update(Tweet).where(Tweet.id == 444_000).values(has_media=True))
        db.session.commit()


def test_export_then_restore_into_an_empty_database_is_exact(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    before = snapshot(app)
    path = tmp_path / "backup.jsonl"
    result = runner.invoke(args=["export", str(path)])
    assert result.exit_code == 0, result.output
    assert "Exported 4 accounts and 20 posts" in result.output
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == "hypotweet-export" and len(lines) == 1 + 4 + 20

    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    assert snapshot(app) == ([], [])
    result = runner.invoke(args=["restore", str(path)])
    assert result.exit_code == 0, result.output
    assert "Restored 4 accounts: 20 new posts, 0 already stored." in result.output
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Tweet.embedding.is_(None))) == 0

    result = runner.invoke(args=["restore", str(path)])  # again: nothing changes
    assert "Restored 4 accounts: 0 new posts, 20 already stored." in result.output
    assert snapshot(app) == before


def test_the_download_link_gives_the_same_file_and_it_restores_exactly(app, client, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    before = snapshot(app)
    assert 'href="/export" download>Download every account and post' in client.get("/").get_data(as_text=True)
    response = client.get("/export")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="hypotweet-export-')
    downloaded = tmp_path / "downloaded.jsonl"
    downloaded.write_bytes(response.get_data())
    assert runner.invoke(args=["export", str(tmp_path / "written.jsonl")]).exit_code == 0
    written = (tmp_path / "written.jsonl").read_text(encoding="utf-8").splitlines()
    assert downloaded.read_text(encoding="utf-8").splitlines()[1:] == written[1:]  # all but the time stamp

    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    result = runner.invoke(args=["restore", str(downloaded)])
    assert result.exit_code == 0, result.output
    assert snapshot(app) == before


def test_a_download_sent_back_through_the_home_page_is_restored_exactly(app, client, runner, add_account):
    from twitapp import jobs

    stored_accounts(app, add_account)
    before = snapshot(app)
    downloaded = client.get("/export").get_data()
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    response = client.post(
        "/restore", data={"file": (io.BytesIO(downloaded), "backup.jsonl")}, content_type="multipart/form-data"
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/#restore")
    jobs.thread_worker.join()
    assert snapshot(app) == before
    page = client.get("/").get_data(as_text=True)
    assert "Restoring" in page and "Restored 4 accounts: 20 new posts, 0 already stored." in page
    assert count_rows(app, Upload) == 0


HEADER = b'{"format": "hypotweet-export", "version": 1}\n'


def test_a_second_restore_waits_for_the_first_and_stores_no_file(app, client):
    from twitapp import jobs, views

    with app.app_context():
        running = jobs.create("restore").id  # queued, not run: under way
    response = client.post(
        "/restore", data={"file": (io.BytesIO(HEADER), "backup.jsonl")}, content_type="multipart/form-data"
    )
    assert response.status_code == 409 and "A restore is under way already" in response.get_data(as_text=True)
    with app.test_request_context():  # a race past that check: the job under way answers, the files go
        assert views._queue_with_files("restore", [("backup.jsonl", HEADER)]).id == running
    assert (count_rows(app, Upload), count_rows(app, Job)) == (0, 1)


def test_a_bad_file_sent_to_restore_is_named_and_nothing_is_stored(app, client):
    for name, content, message in [
        ("notes.jsonl", b'{"hello": 1}\n', "notes.jsonl is not a HypoTweet export"),
        ("cut.jsonl", HEADER + b'{"post": {"id": "1"}}\n', "line 2: a post before any account"),
        ("nothing.jsonl", None, "Choose the file that “Download every account and post” gave"),
    ]:
        data = {} if content is None else {"file": (io.BytesIO(content), name)}
        response = client.post("/restore", data=data, content_type="multipart/form-data")
        assert response.status_code == 400 and message in response.get_data(as_text=True), name
    assert (count_rows(app, User), count_rows(app, Upload), count_rows(app, Job)) == (0, 0, 0)


def test_a_malformed_export_is_refused_with_its_line_and_nothing_changes(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    path = tmp_path / "backup.jsonl"
    runner.invoke(args=["export", str(path)])
    before = snapshot(app)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[-1] = lines[-1].replace('"created_at": "', '"created_at": "not a date ')
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner.invoke(args=["reset", "--yes"])
    result = runner.invoke(args=["restore", str(broken)])
    assert result.exit_code != 0
    assert f"line {len(lines)}: cannot read the date" in result.output
    assert snapshot(app) == ([], [])  # the good accounts before the bad line were not written either
    for content, message in [
        ('{"format": "something-else"}\n', "is not a HypoTweet export"),
        ('{"format": "hypotweet-export", "version": 1}\n{"post": {"id": "1"}}\n', "line 2: a post before any account"),
        ("not json\n", "line 1, column 1: not valid JSON (Expecting value)"),
    ]:
        broken.write_text(content, encoding="utf-8")
        result = runner.invoke(args=["restore", str(broken)])
        assert result.exit_code != 0 and message in result.output, result.output
    assert snapshot(app)[0] == [] and before[0]


def test_export_to_an_unwritable_place_says_so_and_leaves_no_file(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    target = tmp_path / "missing-folder" / "backup.jsonl"
    result = runner.invoke(args=["export", str(target)])
    assert result.exit_code != 0 and "Cannot write" in result.output
    assert not target.parent.exists()
