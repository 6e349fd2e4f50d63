"""The Alembic revisions build the schema the models describe, on SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from twitapp.extensions import db
from twitapp.ingest.store import import_tweets
from twitapp.jobs import uploads
from twitapp.models import (
    ApiToken,
    Job,
    ModelVersion,
    Operator,
    SentimentModel,
    StagedPost,
    Tweet,
    User,
    find_account,
    find_user,
)
from twitapp.sources.records import AccountRecord, PostRecord

# SQLite cannot reflect the lower(username) index, and SQLAlchemy says so whenever Alembic reflects the
# users table (comparing, or rebuilding a table in batch mode); the second test checks the index works.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning"),
]


def insert_version(number: int, kind: str, subject: str | None, status: str, artefact: bytes) -> None:
    """A model_versions row as any revision from 0007 on stores it, written in SQL (no model class)."""
    db.session.execute(
        sa.text(
            "INSERT INTO model_versions (id, kind, subject, format, status, created_at, trained_from, trained_to, "
            "params, metrics, decision, sha256, artefact) VALUES (:number, :kind, :subject, 2, :status, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{}', '{\"roc_auc\": 0.7}', '{}', 'x', "
            ":artefact)"
        ),
        {"number": number, "kind": kind, "subject": subject, "status": status, "artefact": artefact},
    )


def test_upgrade_from_empty_matches_the_models(app):
    with app.app_context():
        db.drop_all()
        upgrade()
        inspector = sa.inspect(db.engine)
        assert {"users", "tweets", "alembic_version"} <= set(inspector.get_table_names())
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == []
        downgrade(revision="base")
        assert "users" not in sa.inspect(db.engine).get_table_names()


def test_migrated_schema_enforces_case_blind_unique_usernames_per_network(app):
    with app.app_context():
        db.drop_all()
        upgrade()
        insert = sa.text(
            "INSERT INTO users (platform, platform_id, username, name, source) VALUES (:platform, :id, :name, '', 'x')"
        )
        db.session.execute(insert, {"platform": "x", "id": "1", "name": "Ann"})
        db.session.execute(insert, {"platform": "bluesky", "id": "did:plc:ann", "name": "ann"})  # another network
        for clash in ({"platform": "x", "id": "2", "name": "aNN"}, {"platform": "x", "id": "1", "name": "bob"}):
            savepoint = db.session.begin_nested()
            try:
                db.session.execute(insert, clash)
            except sa.exc.IntegrityError:
                savepoint.rollback()
            else:
                raise AssertionError(f"a second account was accepted: {clash}")
        keys = db.session.execute(sa.text("SELECT id FROM users ORDER BY id")).scalars().all()
        assert len(keys) == 2 and keys[0] < keys[1]  # the key counts up by itself
        db.session.rollback()
        downgrade(revision="base")


def test_files_waiting_for_their_job_are_kept_across_the_upgrade(app):
    """Uploads stored before they were kept in parts are read as before: each one becomes its first part."""
    with app.app_context():
        db.drop_all()
        upgrade(revision="0009")
        db.session.execute(
            sa.text(
                "INSERT INTO uploads (id, name, size, sha256, content, created_at) "
                "VALUES (7, 'posts.csv', 12, 'x', :content, CURRENT_TIMESTAMP)"
            ),
            {"content": b"id,text\n1,a\n"},
        )
        db.session.commit()
        upgrade()
        assert uploads.open_upload(7).read() == b"id,text\n1,a\n"
        downgrade(revision="0009")
        assert (
            bytes(db.session.execute(sa.text("SELECT content FROM uploads WHERE id = 7")).scalar()) == b"id,text\n1,a\n"
        )
        db.session.rollback()
        downgrade(revision="base")


def test_an_upgrade_keeps_the_newest_of_two_champions_and_drops_refused_challengers_bytes(app):
    """Champions stored twice (before the database refused it) are settled, not a failed upgrade."""
    with app.app_context():
        db.drop_all()
        upgrade(revision="0010")
        rows = [  # id, kind, subject, status
            (1, "virality", None, "champion"),
            (2, "virality", None, "challenger"),
            (3, "virality", None, "champion"),
            (4, "style", "baker", "champion"),
            (5, "style", "baker", "champion"),
            (6, "style", "coder", "champion"),
            (7, "style", "baker", "retired"),
        ]
        for number, kind, subject, status in rows:
            insert_version(number, kind, subject, status, b"model bytes")
        db.session.commit()
        upgrade()
        found = db.session.execute(
            sa.text("SELECT id, status, metrics, artefact FROM model_versions ORDER BY id")
        ).all()
        assert [(number, status) for number, status, _, _ in found] == [
            (1, "retired"),
            (2, "challenger"),
            (3, "champion"),
            (4, "retired"),
            (5, "champion"),
            (6, "champion"),
            (7, "retired"),
        ]
        artefacts = {number: bytes(artefact) for number, _, _, artefact in found}
        assert artefacts[2] == b"" and all(artefacts[i] == b"model bytes" for i in (1, 3, 4, 5, 6, 7))
        assert "roc_auc" in str(found[1].metrics)  # the refused challenger's figures stay
        db.session.rollback()
        try:  # and from now on the database itself refuses a second champion
            insert_version(8, "virality", None, "champion", b"")
        except sa.exc.IntegrityError:
            db.session.rollback()
        else:
            raise AssertionError("a second virality champion was accepted")
        downgrade(revision="0010")
        insert_version(8, "virality", None, "champion", b"")  # without the index, the database takes it
        db.session.commit()
        db.session.execute(sa.text("DELETE FROM model_versions WHERE id = 8"))
        db.session.commit()
        downgrade(revision="base")


def fill_every_table_at_0011() -> None:
    """Rows in every table, as the code of revision 0011 wrote them (X ids as keys), in SQL."""
    statements = [
        "INSERT INTO users (id, username, name, newest_tweet_id, source, followers_count, fetched_at) VALUES "
        "(1500000000000000001, 'HarbourNews', 'Harbour News', 1600000000000000002, 'x', 12, CURRENT_TIMESTAMP), "
        "(-77, 'csvfan', 'CSV Fan', NULL, 'archive', NULL, CURRENT_TIMESTAMP)",
        "INSERT INTO tweets (id, user_id, text, created_at, like_count, retweet_count, reply_count, lang, has_media, "
        "embedding, features) VALUES "
        "(1600000000000000001, 1500000000000000001, 'ferry at noon', CURRENT_TIMESTAMP, 3, 1, 0, 'en', :yes, "
        ":vector, :blob), "
        "(1600000000000000002, 1500000000000000001, 'ferry late', CURRENT_TIMESTAMP, 5, 0, 2, 'en', NULL, "
        ":vector, NULL), "
        "(9, -77, 'kettle on', CURRENT_TIMESTAMP, 0, 0, 0, NULL, NULL, :vector, :blob)",
        "INSERT INTO jobs (id, kind, username, params, state, done, total, message, created_at) VALUES "
        "(4, 'add', 'HarbourNews', '{\"username\": \"HarbourNews\"}', 'done', 2, 2, 'Added @HarbourNews', "
        "CURRENT_TIMESTAMP)",
        "INSERT INTO sentiment_models (id, format, created_at, data, metrics, sha256, artefact) VALUES "
        "(1, 1, CURRENT_TIMESTAMP, '{}', '{\"macro_recall\": 0.6}', 'abc', :blob)",
        "INSERT INTO uploads (id, name, size, sha256, created_at) VALUES (3, 'posts.csv', 12, 'x', CURRENT_TIMESTAMP)",
        "INSERT INTO upload_parts (upload_id, number, data) VALUES (3, 0, :csv)",
        "INSERT INTO staged_posts (batch, id, known, text, created_at, like_count, retweet_count, reply_count, "
        "staged_at) VALUES ('j9-abc', 5, :no, 'half read', CURRENT_TIMESTAMP, 0, 0, 0, CURRENT_TIMESTAMP)",
        "INSERT INTO operators (id, name, password_hash, session_token, created_at) VALUES "
        "(1, 'olive', 'scrypt:hash', 'token1', CURRENT_TIMESTAMP)",
        "INSERT INTO api_tokens (id, operator_id, name, token_hash, created_at) VALUES "
        "(1, 1, 'backups', 'f00d', CURRENT_TIMESTAMP)",
    ]
    values = {"vector": b"\x00\x00\x80?" * 4, "blob": b"features", "csv": b"id,text\n1,a\n", "yes": True, "no": False}
    for statement in statements:
        db.session.execute(sa.text(statement), values)
    insert_version(2, "style", "harbournews", "champion", b"style bytes")
    db.session.commit()


def test_an_upgrade_keys_accounts_by_network_and_keeps_every_row(app, capfd):
    """A database written at revision 0011, with rows in every table, upgrades with nothing lost: accounts
    and posts keep their keys and are X's under their X ids; new accounts of other networks get keys after
    them; the downgrade brings the old schema back while everything is still X's, and refuses after."""
    with app.app_context():
        db.drop_all()
        upgrade(revision="0011")
        fill_every_table_at_0011()
        upgrade()
        harbour = find_user("harbournews")
        assert (harbour.id, harbour.platform, harbour.platform_id) == (1500000000000000001, "x", "1500000000000000001")
        assert (harbour.name, harbour.followers_count, harbour.newest_tweet_id) == (
            "Harbour News",
            12,
            1600000000000000002,
        )
        assert find_account("x", -77).username == "csvfan"
        posts = db.session.execute(
            sa.select(Tweet.id, Tweet.platform, Tweet.post_id, Tweet.features).order_by(Tweet.id)
        )
        assert [tuple(row) for row in posts] == [
            (9, "x", "9", b"features"),
            (1600000000000000001, "x", "1600000000000000001", b"features"),
            (1600000000000000002, "x", "1600000000000000002", None),
        ]
        assert db.session.get(Job, 4).username == "HarbourNews"
        assert db.session.scalar(sa.select(ModelVersion.subject).where(ModelVersion.id == 2)) == "harbournews"
        assert bytes(db.session.get(SentimentModel, 1).artefact) == b"features"
        assert uploads.open_upload(3).read() == b"id,text\n1,a\n"
        assert db.session.get(Operator, 1).name == "olive" and db.session.get(ApiToken, 1).token_hash == "f00d"
        assert db.session.scalars(sa.select(StagedPost)).all() == []  # an import's rows, of no import under way
        db.session.rollback()

        downgrade(revision="0011")  # all X's still: the old schema, with the same rows
        rows = db.session.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [(-77, "csvfan"), (1500000000000000001, "HarbourNews")]
        db.session.rollback()
        upgrade()

        when = datetime(2026, 11, 1, tzinfo=UTC)
        account = AccountRecord("did:plc:anaanaanaanaanaanaanaana", "ana.bsky.social", "Ana", platform="bluesky")
        post = PostRecord("at://did:plc:anaanaanaanaanaanaanaana/app.bsky.feed.post/3k1", "hello", when)
        import_tweets(account, [post], source="bluesky")
        ana = find_user("ana.bsky.social")
        assert ana.id > harbour.id and ana.platform_id == "did:plc:anaanaanaanaanaanaanaana"
        assert db.session.scalar(sa.select(Tweet.id).where(Tweet.user_id == ana.id)) > 1600000000000000002
        db.session.rollback()
        with pytest.raises(SystemExit):  # Flask-Migrate logs the refusal and exits
            downgrade(revision="0011")
        said = capfd.readouterr().err  # Alembic's log handler writes to the process's stderr
        assert "holds accounts or posts of Bluesky or Mastodon" in said and "flask export FILE" in said
        db.session.rollback()
        upgrade()  # from where the refusal stopped (on SQLite, the later revisions were undone before it)
        assert find_user("ana.bsky.social").platform == "bluesky"  # nothing of the accounts was undone
        db.session.execute(sa.delete(Tweet).where(Tweet.user_id == ana.id))
        db.session.execute(sa.delete(User).where(User.id == ana.id))
        db.session.commit()
        import_tweets(AccountRecord(5, "again", "Again"), [PostRecord(5, "hi", when)], source="archive")
        assert find_user("again").id > ana.id  # a key is never given twice, even after a delete
        db.session.execute(sa.delete(Tweet).where(Tweet.user_id == find_user("again").id))
        db.session.execute(sa.delete(User))
        db.session.commit()
        downgrade(revision="base")
