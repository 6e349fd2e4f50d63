"""The Alembic revisions build the schema the models describe, on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from twitapp.extensions import db


# SQLite cannot reflect the lower(username) index, and SQLAlchemy says so whenever Alembic reflects the
# users table (comparing, or rebuilding a table in batch mode); the second test checks the index works.
@pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
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


@pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
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


@pytest.mark.filterwarnings("ignore:.*expression-based index:sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
def test_files_waiting_for_their_job_are_kept_across_the_upgrade(app):
    """Uploads stored before they were kept in parts are read as before: each one becomes its first part."""
    from twitapp import uploads

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
