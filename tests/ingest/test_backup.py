"""flask export / flask restore: every account and post round-trips exactly, and a bad file changes nothing."""

import io
import json

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from tests.support.data import VOICES, count_rows
from twitapp.extensions import db
from twitapp.models import Job, Tweet, Upload, User, find_account

# The network's ids, not the keys here: an account restored into an emptied database gets a new key.
USER_COLUMNS = (
    "platform",
    "platform_id",
    "username",
    "name",
    "source",
    "newest_tweet_id",
    "fetched_at",
    "followers_count",
)
POST_COLUMNS = (
    "platform",
    "post_id",
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
            tuple(getattr(u, c) for c in USER_COLUMNS)
            for u in db.session.scalars(sa.select(User).order_by(User.platform, User.platform_id))
        ]
        posts = [
            (t.user.platform_id, *(getattr(t, c) for c in POST_COLUMNS))
            for t in db.session.scalars(sa.select(Tweet).order_by(Tweet.platform, Tweet.post_id))
        ]
        return users, posts


def assert_restores_exactly(app, runner, path: str, before) -> None:
    """Into an emptied database, the file at ``path`` restores exactly ``before`` (a snapshot)."""
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    result = runner.invoke(args=["restore", path])
    assert result.exit_code == 0, result.output
    assert snapshot(app) == before


def stored_accounts(app, add_account):
    for i, (username, texts) in enumerate(VOICES.items(), start=1):
        add_account(username, texts, account_id=i * 111, source=["demo", "archive", "x"][i - 1])
    add_account("emile", ["Ça va? Très bien — merci! 🥐", "line one\nline two\ttabbed"], account_id=444)
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.platform_id == "444").values(name="Émile Ça", followers_count=1234)
        )
        db.session.commit()
    with app.app_context():  # what an X fetch records: one post with a photo, one known without
        db.session.execute(sa.update(Tweet).where(Tweet.user_id == find_account("x", 444).id).values(has_media=False))
        db.session.execute(sa.update(Tweet).where(Tweet.post_id == "444000").values(has_media=True))
        db.session.commit()


def test_export_then_restore_into_an_empty_database_is_exact(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    before = snapshot(app)
    path = tmp_path / "backup.jsonl"
    result = runner.invoke(args=["export", str(path)])
    assert result.exit_code == 0, result.output
    assert "Exported 4 accounts and 20 posts" in result.output
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == "hypotweet-export" and len(lines) == 1 + 4 + 20 + 1
    end = json.loads(lines[-1])["end"]
    assert (end["accounts"], end["posts"], len(end["sha256"])) == (4, 20, 64)

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
    # All but the time stamp, and the checksum that covers it.
    assert downloaded.read_text(encoding="utf-8").splitlines()[1:-1] == written[1:-1]

    assert_restores_exactly(app, runner, str(downloaded), before)


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
    from twitapp import jobs
    from twitapp.ingest import routes as ingest_routes

    with app.app_context():
        running = jobs.create("restore").id  # queued, not run: under way
    response = client.post(
        "/restore", data={"file": (io.BytesIO(HEADER), "backup.jsonl")}, content_type="multipart/form-data"
    )
    assert response.status_code == 409 and "A restore is under way already" in response.get_data(as_text=True)
    with app.test_request_context():  # a race past that check: the job under way answers, the files go
        sent = FileStorage(io.BytesIO(HEADER), filename="backup.jsonl")
        assert ingest_routes.queue_with_files("restore", [sent]).id == running
    assert (count_rows(app, Upload), count_rows(app, Job)) == (0, 1)


def test_a_bad_file_sent_to_restore_is_named_and_nothing_is_stored(app, client):
    from twitapp import jobs

    for name, content, message in [
        ("notes.jsonl", b'{"hello": 1}\n', "notes.jsonl is not a HypoTweet export"),
        ("future.jsonl", b'{"format": "hypotweet-export", "version": 9}\n', "export version 9; this app reads"),
        ("nothing.jsonl", None, "Choose the file that “Download every account and post” gave"),
    ]:
        data = {} if content is None else {"file": (io.BytesIO(content), name)}
        response = client.post("/restore", data=data, content_type="multipart/form-data")
        assert response.status_code == 400 and message in response.get_data(as_text=True), name
    assert (count_rows(app, User), count_rows(app, Upload), count_rows(app, Job)) == (0, 0, 0)
    # Past its first line the file is read by the job, which names the line on the home page.
    sent = {"file": (io.BytesIO(HEADER + b'{"post": {"id": "1"}}\n'), "cut.jsonl")}
    assert client.post("/restore", data=sent, content_type="multipart/form-data").status_code == 302
    jobs.thread_worker.join()
    assert "line 2: a post before any account" in client.get("/").get_data(as_text=True)
    assert (count_rows(app, User), count_rows(app, Upload)) == (0, 0)


def test_a_malformed_export_is_refused_with_its_line_and_nothing_changes(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    path = tmp_path / "backup.jsonl"
    runner.invoke(args=["export", str(path)])
    before = snapshot(app)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[-2] = lines[-2].replace('"created_at": "', '"created_at": "not a date ')  # the last post
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner.invoke(args=["reset", "--yes"])
    result = runner.invoke(args=["restore", str(broken)])
    assert result.exit_code != 0
    assert f"line {len(lines) - 1}: cannot read the date" in result.output
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


def exported(runner, tmp_path, name="backup.jsonl"):
    path = tmp_path / name
    result = runner.invoke(args=["export", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_an_export_of_a_database_with_imported_csv_accounts_restores_exactly(app, runner, tmp_path):
    """Accounts imported from a CSV carry the app's own negative ids; their backup must restore too."""
    csv = tmp_path / "posts.csv"
    csv.write_text("id,created_at,text,like_count\n1,2024-05-01T09:00:00Z,kettle on,4\n2,2024-05-02T09:00:00Z,rain\n")
    assert runner.invoke(args=["import", str(csv), "--username", "kettle_cam"]).exit_code == 0
    before = snapshot(app)
    assert int(before[0][0][1]) < 0  # the local id
    path = exported(runner, tmp_path)
    assert_restores_exactly(app, runner, str(path), before)


def test_a_post_holding_a_line_separator_survives_the_round_trip(app, runner, add_account, tmp_path):
    """JSON keeps U+2028 as it is; the reader must not split a line there, as str.splitlines would."""
    add_account("sep", ["first\u2028second", "para\u2029graph"], account_id=42)
    before = snapshot(app)
    path = exported(runner, tmp_path)
    assert_restores_exactly(app, runner, str(path), before)


def test_a_cut_or_changed_export_is_refused_whole(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    path = exported(runner, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    runner.invoke(args=["reset", "--yes"])
    cases = {
        "no end line": (lines[:-1], "it ends before its last line, so it was cut short"),
        "cut mid-way": (lines[:12], "it ends before its last line, so it was cut short"),
        "cut mid-line": ([*lines[:-1], lines[-1][:20]], "not valid JSON"),
        "a post removed": (
            lines[:5] + lines[6:],
            "its end line counts 4 accounts and 20 posts, but the file holds 4 and 19",
        ),
        "a post changed": (
            [line.replace('"like_count": 0', '"like_count": 999999', 1) for line in lines],
            "was changed after it was written",
        ),
        "more after the end": ([*lines, lines[2]], "nothing may follow the end line"),
    }
    for case, (content, message) in cases.items():
        broken = tmp_path / "broken.jsonl"
        broken.write_text("".join(content), encoding="utf-8")
        result = runner.invoke(args=["restore", str(broken)])
        assert result.exit_code != 0 and message in result.output, (case, result.output)
        assert snapshot(app) == ([], []), case
    older = tmp_path / "version-1.jsonl"  # a version 1 file has no end line, and still restores
    older.write_text(
        "".join([HEADER.decode(), *[line for line in lines[1:-1]]]).replace('"version": 2', '"version": 1'),
        encoding="utf-8",
    )
    assert runner.invoke(args=["restore", str(older)]).exit_code == 0 and count_rows(app, Tweet) == 20


def changed_export(path, tmp_path, change) -> str:
    """The export at ``path`` with ``change(account, posts)`` applied and its end line written anew."""
    import hashlib

    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][:-1]
    for record in lines:
        change(record)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
    accounts = sum("account" in r for r in lines)
    posts = sum("post" in r for r in lines)
    end = {"end": {"accounts": accounts, "posts": posts, "sha256": hashlib.sha256(text.encode()).hexdigest()}}
    target = tmp_path / "changed.jsonl"
    target.write_text(text + json.dumps(end) + "\n", encoding="utf-8")
    return str(target)


def test_a_restore_never_renames_an_account_or_overwrites_its_counts_unless_asked(app, runner, add_account, tmp_path):
    stored_accounts(app, add_account)
    before = snapshot(app)
    path = exported(runner, tmp_path)

    def rewrite(record):
        if "account" in record:
            record["account"].update(name="Someone Else", fetched_at="2001-01-01T00:00:00+00:00")
            if record["account"]["username"] == "commuter":
                record["account"]["username"] = "commuter_2"
        if "post" in record:
            record["post"]["public_metrics"]["like_count"] = 999999

    changed = changed_export(path, tmp_path, rewrite)
    result = runner.invoke(args=["restore", changed])
    assert result.exit_code == 0, result.output
    assert "Restored 4 accounts: 0 new posts, 20 already stored." in result.output
    assert "The file differs in 20 stored posts' likes, reposts or replies, 1 handle, 4 display names" in result.output
    assert "Run again with --replace" in result.output
    assert snapshot(app) == before  # nothing renamed, no dates or counts overwritten

    asked = runner.invoke(args=["restore", changed, "--replace"], input="n\n")
    assert "the likes, reposts or replies of 20 stored posts" in asked.output
    assert "the handle @commuter to @commuter_2" in asked.output and asked.exit_code != 0
    assert snapshot(app) == before  # the operator said no
    replaced = runner.invoke(args=["restore", changed, "--replace", "--yes"])
    assert replaced.exit_code == 0, replaced.output
    with app.app_context():
        likes = set(db.session.scalars(sa.select(Tweet.like_count)))
        names = set(db.session.scalars(sa.select(User.name)))
        assert likes == {999999} and names == {"Someone Else"}
        assert db.session.scalar(sa.select(User.username).where(User.platform_id == "222")) == "commuter_2"


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("<img src=x onerror=alert(1)>", "not a username this app stores"),
        ("h\u0430rborbaker", "not a username this app stores"),  # a Cyrillic а
        ("x" * 5000, "not a username this app stores"),
        ("BAKER_", None),  # a new account whose name is fine
        ("bak3r", None),
        ("baker", "already stored as a different account"),
        ("Bak" + "er".replace("e", "e"), "already stored as a different account"),
    ],
)
def test_every_handle_in_a_restored_file_follows_the_rules_for_handles(
    app, runner, add_account, tmp_path, username, message
):
    stored_accounts(app, add_account)
    before = snapshot(app)
    path = exported(runner, tmp_path)

    def new_account(record):
        if "account" in record and record["account"]["id"] == "111":
            record["account"].update(id="5", username=username)
        if "post" in record:
            record["post"]["id"] = str(int(record["post"]["id"]) + 10**9)

    changed = changed_export(path, tmp_path, new_account)
    result = runner.invoke(args=["restore", changed])
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0 and message in result.output, result.output
        assert snapshot(app) == before


def test_a_look_alike_of_a_stored_handle_is_refused(app, runner, add_account, tmp_path):
    add_account("harborbaker", ["rye today"], account_id=1)
    path = exported(runner, tmp_path)

    def look_alike(record):
        if "account" in record:
            record["account"].update(id="2", username="harb0rbaker")
        if "post" in record:
            record["post"]["id"] = "999"

    result = runner.invoke(args=["restore", changed_export(path, tmp_path, look_alike)])
    assert result.exit_code != 0 and "@harb0rbaker reads like @harborbaker" in result.output
    assert count_rows(app, User) == 1


def test_the_download_is_read_a_page_at_a_time(app, client, add_account, monkeypatch):
    """Pages of posts, each its own transaction: the file is the same whatever the page size."""
    from twitapp.ingest import backup

    stored_accounts(app, add_account)
    whole = client.get("/export").get_data(as_text=True).splitlines()
    monkeypatch.setattr(backup, "PAGE", 2)
    paged = client.get("/export").get_data(as_text=True).splitlines()
    assert paged[1:-1] == whole[1:-1] and len(paged) == 26


def test_accounts_that_read_alike_in_one_backup_restore_together(app, runner, add_account, tmp_path):
    """The X API stores handles as X gives them, look-alikes included: their backup restores whole."""
    add_account("mia", ["tea time"], account_id=1, source="x")
    add_account("rnia", ["coffee time"], account_id=2, source="x")
    before = snapshot(app)
    path = exported(runner, tmp_path)
    assert_restores_exactly(app, runner, str(path), before)


def test_an_export_with_other_line_ends_still_restores(app, runner, add_account, tmp_path):
    """A transfer or an editor that writes \\r\\n line ends, or leaves blank lines, changes no line's text."""
    stored_accounts(app, add_account)
    before = snapshot(app)
    path = exported(runner, tmp_path)
    converted = tmp_path / "crlf.jsonl"
    converted.write_bytes(path.read_bytes().replace(b"\n", b"\r\n\r\n"))
    assert_restores_exactly(app, runner, str(converted), before)


def test_a_restore_whose_process_dies_leaves_its_staged_posts_for_the_sweep(
    app, runner, add_account, tmp_path, monkeypatch
):
    from twitapp import jobs
    from twitapp.ingest import embed
    from twitapp.ingest import store as ingest
    from twitapp.models import StagedPost

    stored_accounts(app, add_account)
    path = exported(runner, tmp_path)
    runner.invoke(args=["reset", "--yes"])
    app.config["INGEST_BATCH"] = 2
    monkeypatch.setattr(ingest, "drop_staged", lambda *a, **k: 0)  # the process dies: no clean-up of its own
    real_embed, calls = embed.embed_texts, []

    def dies_at_the_third_batch(texts, model="x"):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would, past every ordinary error handler
        return real_embed(texts, model)

    monkeypatch.setattr(embed, "embed_texts", dies_at_the_third_batch)
    with app.app_context():
        job = jobs.create("restore", path=str(path))
        job_id = job.id
        with pytest.raises(KeyboardInterrupt):
            jobs.execute(job_id)
        staged = db.session.scalars(sa.select(StagedPost.batch)).all()
        assert staged and all(b.startswith(f"j{job_id}-") for b in staged)  # two batches were staged
    monkeypatch.undo()
    with app.app_context():
        # Its process is gone: here, a process of another machine that has been silent too long.
        silent = jobs.now() - jobs.STALE_RUNNING * 2
        db.session.execute(
            sa.update(Job).where(Job.id == job_id).values(worker="another-machine:1:2:3", heartbeat_at=silent)
        )
        db.session.commit()
        assert jobs.sweep() == 1
    assert count_rows(app, StagedPost) == 0 and count_rows(app, User) == 0


def test_a_backup_whose_handle_another_stored_account_holds_is_refused_before_anything_is_stored(
    app, runner, add_account, tmp_path
):
    """The restore stores one account after another: a clash found only when its turn came would leave
    the accounts before it stored. The check of the whole file finds it first."""
    add_account("newone", ["first post"], account_id=100)
    add_account("quaynews", ["harbour news"], account_id=200)
    path = exported(runner, tmp_path)
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    add_account("quaynews", ["another quaynews"], account_id=9)
    before = snapshot(app)
    result = runner.invoke(args=["restore", str(path)])
    assert result.exit_code != 0 and "@quaynews is already stored as a different account" in result.output
    assert snapshot(app) == before


def test_a_backup_holding_a_post_stored_under_another_account_is_refused_before_anything_is_stored(
    app, runner, add_account, tmp_path
):
    add_account("newone", ["first post"], account_id=100)
    add_account("other", ["a post", "another post"], account_id=200)
    path = exported(runner, tmp_path)

    def steal(record):
        if "post" in record and record["post"]["id"] == "200001":
            record["post"]["id"] = "9000"  # the post of the account stored below

    changed = changed_export(path, tmp_path, steal)
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    add_account("stored", ["mine"], account_id=9)
    before = snapshot(app)
    result = runner.invoke(args=["restore", changed])
    assert result.exit_code != 0 and "post 9000 is stored under another account (@stored)" in result.output
    assert snapshot(app) == before
