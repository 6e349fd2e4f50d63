"""The Alembic revisions build the schema the models describe, on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from twitapp.extensions import db

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


def test_migrated_schema_enforces_case_blind_unique_usernames(app):
    with app.app_context():
        db.drop_all()
        upgrade()
        db.session.execute(sa.text("INSERT INTO users (id, username, name, source) VALUES (1, 'Ann', '', 'demo')"))
        try:
            db.session.execute(sa.text("INSERT INTO users (id, username, name, source) VALUES (2, 'aNN', '', 'demo')"))
        except sa.exc.IntegrityError:
            db.session.rollback()
        else:
            raise AssertionError("a second @ann was accepted")
        downgrade(revision="base")


def test_files_waiting_for_their_job_are_kept_across_the_upgrade(app):
    """Uploads stored before they were kept in parts are read as before: each one becomes its first part."""
    from twitapp.jobs import uploads

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
