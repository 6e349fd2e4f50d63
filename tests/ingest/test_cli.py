"""The flask commands a person runs: seed, import, add, update, reset."""

import json

from tests.support.data import count_rows, fake_posts
from twitapp.extensions import db
from twitapp.models import Tweet, User, find_user


def test_seed_demo_loads_every_demo_account_once(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    users = count_rows(app, User)
    tweets = count_rows(app, Tweet)
    assert users >= 6 and tweets >= 900
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "already stored" in again.output
    runner.invoke(args=["seed-demo"])
    assert (count_rows(app, User), count_rows(app, Tweet)) == (users, tweets)
    with app.app_context():
        assert {u.source for u in db.session.query(User)} == {"demo"}


def write_jsonl(path, author_id="321", count=5):
    rows = [
        {
            "id": str(700 + i),
            "author_id": author_id,
            "created_at": f"2025-05-0{1 + i}T12:00:00Z",
            "text": f"imported post {i}",
            "conversation_id": str(700 + i),
            "public_metrics": {"like_count": i, "retweet_count": 0, "reply_count": 0},
        }
        for i in range(count)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_import_a_jsonl_file_then_reimport_is_idempotent(app, runner, tmp_path):
    path = write_jsonl(tmp_path / "ann.jsonl")
    result = runner.invoke(args=["import", str(path), "--username", "ann", "--name", "Ann Imported"])
    assert result.exit_code == 0, result.output
    assert "5 new posts" in result.output
    result = runner.invoke(args=["import", str(path), "--username", "ANN"])
    assert "0 new posts, 5 already stored, 5 in all" in result.output
    with app.app_context():
        user = find_user("ann")
        assert (user.platform_id, user.name, user.source) == ("321", "Ann Imported", "archive")


def test_a_post_too_long_to_be_one_is_named_and_nothing_is_stored(app, runner, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(f"id,created_at,text\n1,2024-05-01T09:00:00Z,short\n2,2024-05-02T09:00:00Z,{'a' * 60_000}\n")
    result = runner.invoke(args=["import", str(path), "--username", "longwinded"])
    assert result.exit_code != 0
    assert "row 3: the post has 60,000 characters; a post has at most 50,000" in result.output, result.output
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0


def test_import_csv_without_ids_gets_a_stable_local_account(app, runner, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,created_at,text\n1,2024-01-01T00:00:00Z,hello\n2,2024-01-02T00:00:00Z,again\n")
    assert runner.invoke(args=["import", str(path), "--username", "csvfan"]).exit_code == 0
    with app.app_context():
        assert int(find_user("csvfan").platform_id) < 0
    assert count_rows(app, Tweet) == 2


def test_a_malformed_file_is_refused_and_nothing_changes(app, runner, tmp_path):
    good = write_jsonl(tmp_path / "ann.jsonl")
    runner.invoke(args=["import", str(good), "--username", "ann"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text().replace('"id": "702"', '"id": "seven"'))
    result = runner.invoke(args=["import", str(bad), "--username", "ann"])
    assert result.exit_code != 0
    assert "line 3: id must be a number" in result.output
    assert count_rows(app, Tweet) == 5
    result = runner.invoke(args=["import", str(good), "--username", "bad name"])
    assert result.exit_code != 0 and "not a valid X username" in result.output


def test_importing_another_accounts_file_is_refused(app, runner, tmp_path):
    runner.invoke(args=["import", str(write_jsonl(tmp_path / "a.jsonl")), "--username", "ann"])
    other = write_jsonl(tmp_path / "b.jsonl", author_id="999")
    result = runner.invoke(args=["import", str(other), "--username", "ann"])
    assert result.exit_code != 0 and "belongs to account id 999" in result.output


def test_add_and_update_through_the_x_api(app, runner, fake_x):
    app.config.update(X_BEARER_TOKEN=fake_x.bearer_token, X_API_URL=fake_x.url)
    fake_x.add_user(55, "quaynews", "Quay News", fake_posts(100, 4))
    fake_x.add_user(56, "pierdaily", "Pier Daily", fake_posts(200, 2))
    assert runner.invoke(args=["add", "quaynews"]).exit_code == 0
    assert runner.invoke(args=["add", "pierdaily"]).exit_code == 0
    fake_x.add_posts("quaynews", fake_posts(150, 2, prefix="new"))
    result = runner.invoke(args=["update"])
    assert result.exit_code == 0, result.output
    assert "@quaynews: 2 new posts." in result.output and "@pierdaily: 0 new posts." in result.output
    assert count_rows(app, Tweet) == 8


def test_add_without_a_token_explains(runner):
    result = runner.invoke(args=["add", "someone"])
    assert result.exit_code != 0 and "X_BEARER_TOKEN is not set" in result.output


def test_reset_needs_confirmation(app, runner, tmp_path):
    runner.invoke(args=["import", str(write_jsonl(tmp_path / "a.jsonl")), "--username", "ann"])
    result = runner.invoke(args=["reset"], input="n\n")
    assert result.exit_code != 0 and count_rows(app, Tweet) == 5
    result = runner.invoke(args=["reset", "--yes"])
    assert result.exit_code == 0 and "Deleted 1 accounts and 5 posts." in result.output
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0
