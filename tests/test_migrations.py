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
