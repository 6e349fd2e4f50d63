"""One ingest path: dedupe, embed what is new, write everything or nothing."""

from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import count_rows, make_posts
from twitapp import embed
from twitapp.extensions import db
from twitapp.ingest import IngestError, import_tweets
from twitapp.models import Tweet, User, find_user
from twitapp.records import AccountRecord


def test_import_stores_account_posts_and_embeddings(app):
    posts = make_posts(["one post about bread", "another about the bus"], start_id=500)
    with app.app_context():
        result = import_tweets(AccountRecord(77, "Ann_B", "Ann B"), posts, source="archive")
        assert (result.created, result.added, result.total) == (True, 2, 2)
        user = db.session.get(User, 77)
        assert (user.username, user.name, user.source, user.newest_tweet_id) == ("Ann_B", "Ann B", "archive", 501)
        assert user.fetched_at is not None and user.fetched_at.tzinfo is not None
        stored = db.session.scalars(sa.select(Tweet).order_by(Tweet.id)).all()
        assert [t.text for t in stored] == ["one post about bread", "another about the bus"]
        assert stored[0].created_at == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
        expected = embed.embed_texts([posts[0].text])[0]
        np.testing.assert_allclose(embed.from_bytes(stored[0].embedding), expected, rtol=1e-5, atol=1e-5)


def test_reimport_dedupes_by_id_and_refreshes_metrics(app):
    posts = make_posts(["alpha", "beta"], start_id=10)
    account = AccountRecord(5, "ann", "Ann")
    with app.app_context():
        import_tweets(account, posts, source="archive")
        fresher = [p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "like_count": 99}) for p in posts]
        more = make_posts(["gamma"], start_id=12)
        result = import_tweets(account, fresher + more + more, source="archive")
        assert (result.created, result.added, result.updated, result.total) == (False, 1, 2, 3)
        likes = db.session.scalars(sa.select(Tweet.like_count).where(Tweet.id.in_([10, 11]))).all()
        assert likes == [99, 99]
        assert db.session.get(User, 5).newest_tweet_id == 12
    assert count_rows(app, Tweet) == 3


def test_an_update_from_x_renames_the_account_and_records_its_followers(app):
    """What X says of a stored account wins: its new handle and name, its source, its follower count."""
    with app.app_context():
        import_tweets(AccountRecord(7, "old_name", "Old"), make_posts(["a demo post"], start_id=70), source="demo")
        renamed = AccountRecord(7, "new_name", "New Name", followers_count=1234)
        import_tweets(renamed, make_posts(["a newer post"], start_id=71), source="x")
        user = db.session.get(User, 7)
        assert (user.username, user.name, user.source, user.followers_count) == ("new_name", "New Name", "x", 1234)


def test_usernames_are_unique_whatever_their_case(app):
    with app.app_context():
        import_tweets(AccountRecord(1, "Ann", "Ann"), make_posts(["x"], 1), source="archive")
        with pytest.raises(IngestError, match="already stored as a different account"):
            import_tweets(AccountRecord(2, "ANN", "Other"), make_posts(["y"], 2), source="archive")
        assert find_user("@aNN").id == 1
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
        assert db.session.get(User, 1).name == "Ann"
    assert count_rows(app, User) == 1
    assert count_rows(app, Tweet) == 1


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
    """Two processes store the same account at once: the later commit collides, and a second pass matches."""
    import threading

    from twitapp import ingest

    account = AccountRecord(7, "racer", "Racer")
    posts = make_posts([f"post number {i}" for i in range(6)], 700)
    real_embed = ingest._embed_with_progress
    raced = []

    def embed_while_another_writes(texts, progress):
        if not raced:  # between this writer's reads and its commit, another one commits the same rows
            raced.append(True)

            def other():
                with app.app_context():
                    import_tweets(account, posts[:4], source="x")

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return real_embed(texts, progress)

    monkeypatch.setattr(ingest, "_embed_with_progress", embed_while_another_writes)
    with app.app_context():
        result = import_tweets(account, posts, source="x")
    assert raced and (result.added, result.updated, result.total) == (2, 4, 6)
    assert count_rows(app, User) == 1 and count_rows(app, Tweet) == 6
