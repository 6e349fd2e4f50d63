"""One ingest path: dedupe, embed what is new, write everything or nothing."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from tests.support.data import count_rows, make_posts
from twitapp.extensions import db
from twitapp.ingest import embed
from twitapp.ingest.store import IngestError, import_tweets
from twitapp.models import StagedPost, Tweet, User, find_account, find_user
from twitapp.sources.records import AccountRecord, PostRecord


def test_import_stores_account_posts_and_embeddings(app):
    posts = make_posts(["one post about bread", "another about the bus"], start_id=500)
    with app.app_context():
        result = import_tweets(AccountRecord(77, "Ann_B", "Ann B"), posts, source="archive")
        assert (result.created, result.added, result.total) == (True, 2, 2)
        user = find_account("x", 77)
        assert (user.username, user.name, user.source, user.newest_tweet_id) == ("Ann_B", "Ann B", "archive", 501)
        assert user.fetched_at is not None and user.fetched_at.tzinfo is not None
        stored = db.session.scalars(sa.select(Tweet).order_by(Tweet.id)).all()
        assert [t.text for t in stored] == ["one post about bread", "another about the bus"]
        assert stored[0].created_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
        expected = embed.embed_texts([posts[0].text])[0]
        np.testing.assert_allclose(embed.from_bytes(stored[0].embedding), expected, rtol=1e-5, atol=1e-5)


def liked(**changes):
    """make_posts' posts with other fields (their likes, say)."""
    return lambda posts: [p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, **changes}) for p in posts]


def test_a_file_adds_what_is_missing_and_keeps_what_is_stored(app):
    """Reading a file again (a restore, an import) never overwrites: its other counts are only counted."""
    posts = make_posts(["alpha", "beta"], start_id=10)
    account = AccountRecord(5, "ann", "Ann")
    with app.app_context():
        import_tweets(account, posts, source="archive")
        fresher = liked(like_count=999999)(posts)
        more = make_posts(["gamma"], start_id=12)
        result = import_tweets(AccountRecord(5, "ann", "Ann Other"), fresher + more + more, source="archive")
        assert (result.created, result.added, result.matched, result.total) == (False, 1, 2, 3)
        assert (result.differ, result.changed, result.kept_name, result.withheld) == (2, 0, "Ann Other", 3)
        likes = db.session.scalars(
            sa.select(Tweet.like_count).where(Tweet.post_id.in_(["10", "11"])).order_by(Tweet.id)
        ).all()
        assert likes == [0, 1] and find_account("x", 5).name == "Ann"
        assert find_account("x", 5).newest_tweet_id == 12
        again = import_tweets(account, posts, source="archive")  # the same file again changes nothing
        assert (again.added, again.differ, again.withheld) == (0, 0, 0)
    assert count_rows(app, Tweet) == 3 and count_rows(app, StagedPost) == 0


def test_a_replace_takes_the_files_names_and_counts(app):
    posts = make_posts(["alpha", "beta"], start_id=10)
    with app.app_context():
        import_tweets(AccountRecord(5, "ann", "Ann"), posts, source="archive")
        result = import_tweets(
            AccountRecord(5, "ann_b", "Ann B"), liked(like_count=7)(posts[:1]), source="archive", policy="replace"
        )
        assert (result.changed, result.differ, result.username) == (1, 0, "ann_b")
        likes = db.session.scalars(sa.select(Tweet.like_count).order_by(Tweet.id)).all()
        assert likes == [7, 1] and find_account("x", 5).name == "Ann B"


def test_an_update_from_x_renames_the_account_and_records_its_followers(app):
    """What X says of a stored account wins: its new handle and name, its source, its follower count."""
    with app.app_context():
        import_tweets(AccountRecord(7, "old_name", "Old"), make_posts(["a demo post"], start_id=70), source="demo")
        renamed = AccountRecord(7, "new_name", "New Name", followers_count=1234)
        import_tweets(renamed, make_posts(["a newer post"], start_id=71), source="x", policy="refresh")
        user = find_account("x", 7)
        assert (user.username, user.name, user.source, user.followers_count) == ("new_name", "New Name", "x", 1234)


def test_a_handle_from_a_file_must_not_read_like_another_accounts(app):
    with app.app_context():
        import_tweets(AccountRecord(1, "harborbaker", "Mina"), make_posts(["bread"], 1), source="archive")
        import_tweets(AccountRecord(4, "mia", "Mia"), make_posts(["tea"], 4), source="archive")
        for look_alike in ("harb0rbaker", "HARB0RBAKER", "rnia"):
            with pytest.raises(IngestError, match=r"reads like @(harborbaker|mia)"):
                import_tweets(
                    AccountRecord(2, look_alike, "x"), make_posts(["y"], 2), source="archive", check_handle=True
                )
        for bad in ("hаrborbaker", "x" * 51, "<img src=x>"):
            with pytest.raises(IngestError, match="not a username this app stores"):
                import_tweets(AccountRecord(3, bad, "x"), make_posts(["z"], 3), source="archive", check_handle=True)
    assert count_rows(app, User) == 2 and count_rows(app, Tweet) == 2


def test_usernames_are_unique_whatever_their_case(app):
    with app.app_context():
        import_tweets(AccountRecord(1, "Ann", "Ann"), make_posts(["x"], 1), source="archive")
        with pytest.raises(IngestError, match="already stored as a different account"):
            import_tweets(AccountRecord(2, "ANN", "Other"), make_posts(["y"], 2), source="archive")
        assert find_user("@aNN").platform_id == "1"
    assert count_rows(app, User) == 1
    assert count_rows(app, Tweet) == 1


def test_posts_of_another_account_are_refused_and_nothing_is_written(app):
    with app.app_context():
        import_tweets(AccountRecord(1, "ann", "Ann"), make_posts(["mine"], 100), source="archive")
        stolen = make_posts(["fresh", "mine again"], 99)  # ids 99 (new) and 100 (ann's)
        with pytest.raises(IngestError, match="stored under another account"):
            import_tweets(AccountRecord(2, "bob", "Bob"), stolen, source="archive")
    assert count_rows(app, User) == 1
    assert count_rows(app, Tweet) == 1


def test_a_failure_half_way_leaves_the_database_as_it_was(app, monkeypatch):
    with app.app_context():
        import_tweets(AccountRecord(1, "ann", "Ann"), make_posts(["kept"], 1), source="archive")

        def broken(texts, model="x"):
            raise RuntimeError("embedding crashed")

        monkeypatch.setattr(embed, "embed_texts", broken)
        with pytest.raises(RuntimeError):
            import_tweets(AccountRecord(2, "bob", "Bob"), make_posts(["lost"], 2), source="archive")
        with pytest.raises(RuntimeError):
            import_tweets(AccountRecord(1, "ann", "Renamed"), make_posts(["new"], 3), source="archive")
        assert find_account("x", 1).name == "Ann"
    assert count_rows(app, User) == 1
    assert count_rows(app, Tweet) == 1


@pytest.mark.app_config(INGEST_BATCH=100)
def test_progress_is_reported_while_embedding(app):
    seen = []
    with app.app_context():
        import_tweets(
            AccountRecord(1, "ann", "Ann"),
            make_posts([f"post {i}" for i in range(300)], 1),
            source="archive",
            progress=lambda done, total: seen.append((done, total)),
        )
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and len(seen) >= 3


def test_a_writer_that_wins_the_race_is_matched_not_duplicated(app, monkeypatch):
    """Two processes store the same account at once: the other commits between this one's staging and
    its last transaction, whose posts are then matched, not stored twice."""
    import threading

    from twitapp.ingest import store as ingest

    account = AccountRecord(7, "racer", "Racer")
    posts = make_posts([f"post number {i}" for i in range(6)], 700)
    real_stage = ingest._stage
    raced = []

    def stage_while_another_writes(*args, **kwargs):
        counts = real_stage(*args, **kwargs)
        if not raced:
            raced.append(True)

            def other():
                with app.app_context():
                    import_tweets(account, posts[:4], source="x", policy="refresh")

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return counts

    monkeypatch.setattr(ingest, "_stage", stage_while_another_writes)
    with app.app_context():
        result = import_tweets(account, posts, source="x", policy="refresh")
    assert raced and (result.added, result.matched, result.total) == (2, 4, 6)
    assert count_rows(app, User) == 1 and count_rows(app, Tweet) == 6


@pytest.mark.app_config(INGEST_BATCH=2)
def test_an_import_stopped_after_some_batches_leaves_nothing_behind(app, monkeypatch):
    """Batches are committed to the staging table as they are read; a failure (or a kill) before the last
    transaction leaves no account, no post and, once its own clean-up ran, no staged row."""
    real_embed = embed.embed_texts
    calls = []

    def fails_on_the_third_batch(texts, model="x"):
        calls.append(count_rows(app, StagedPost))  # what earlier batches had committed when this one began
        if len(calls) == 3:
            raise RuntimeError("the process was stopped")
        return real_embed(texts, model)

    monkeypatch.setattr(embed, "embed_texts", fails_on_the_third_batch)
    with app.app_context(), pytest.raises(RuntimeError):
        import_tweets(
            AccountRecord(9, "halfway", "Half"), make_posts([f"p{i}" for i in range(10)], 900), source="archive"
        )
    assert calls == [0, 2, 4]  # staged a batch at a time, and all of it dropped
    assert count_rows(app, User) == 0 and count_rows(app, Tweet) == 0 and count_rows(app, StagedPost) == 0


@pytest.mark.app_config(INGEST_BATCH=1)
def test_a_later_copy_of_a_post_counts_whatever_batch_it_falls_in(app):
    """A post twice in a file, first as stored and then with other counts: the later copy is what counts."""
    with app.app_context():
        import_tweets(AccountRecord(5, "ann", "Ann"), make_posts(["alpha"], 10), source="archive")
        twice = [*make_posts(["alpha"], 10), *liked(like_count=7)(make_posts(["alpha"], 10))]
        kept = import_tweets(AccountRecord(5, "ann", "Ann"), twice, source="archive")
        assert (kept.differ, kept.withheld) == (1, 1)
        replaced = import_tweets(AccountRecord(5, "ann", "Ann"), twice, source="archive", policy="replace")
        assert replaced.changed == 1 and db.session.scalar(sa.select(Tweet.like_count)) == 7


def test_counts_a_source_does_not_give_are_unknown_everywhere_not_zero(app, client, runner, tmp_path):
    """A CSV without counts: the page shows "—", the API null, an export and restore keep null, a later
    file's counts fill them in, and a file without them never erases known ones."""
    bare = tmp_path / "bare.csv"
    bare.write_text("id,created_at,text\n1,2024-05-01T09:00:00Z,kettle on\n")
    assert runner.invoke(args=["import", str(bare), "--username", "kettle"]).exit_code == 0
    page = client.get("/user/kettle").get_data(as_text=True)
    assert "— likes" in page and "— reposts" in page and "— replies" in page and "0 likes" not in page
    tweet = client.get("/api/users/kettle/tweets").get_json()["tweets"][0]
    assert tweet["public_metrics"] == {"like_count": None, "retweet_count": None, "reply_count": None}

    path = tmp_path / "export.jsonl"
    assert runner.invoke(args=["export", str(path)]).exit_code == 0
    assert '"like_count": null' in path.read_text()
    assert runner.invoke(args=["reset", "--yes"]).exit_code == 0
    assert runner.invoke(args=["restore", str(path)]).exit_code == 0
    with app.app_context():
        assert db.session.scalars(sa.select(Tweet.like_count)).all() == [None]

    counted = tmp_path / "counted.csv"
    counted.write_text("id,created_at,text,like_count\n1,2024-05-01T09:00:00Z,kettle on,4\n")
    assert runner.invoke(args=["import", str(counted), "--username", "kettle", "--replace", "--yes"]).exit_code == 0
    assert runner.invoke(args=["import", str(bare), "--username", "kettle", "--replace", "--yes"]).exit_code == 0
    with app.app_context():
        assert db.session.execute(sa.select(Tweet.like_count, Tweet.retweet_count)).one() == (4, None)


def test_virality_learns_only_from_posts_whose_likes_are_known(app):
    from twitapp.virality.features import stored_posts

    when = datetime(2025, 1, 1, tzinfo=UTC)
    posts = [
        PostRecord(n, f"post {n}", when + timedelta(hours=n), like_count=n if n % 2 else None) for n in range(1, 9)
    ]
    with app.app_context():
        import_tweets(AccountRecord(9, "mixed", "Mixed"), posts, source="archive")
        learned = stored_posts()
    assert [p.likes for p in learned] == [1, 3, 5, 7]
    assert all(likes is not None for p in learned for likes, _ in p.history)
