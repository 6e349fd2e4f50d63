"""Likes, reposts and replies may be unknown: NULL where the source did not give them, not 0.

A file without counts (a CSV without the columns, an X export's posts, which carry no reply count) used
to store 0, which pages showed as "0 likes" and the virality model learned as no likes. From now on
such posts store NULL. Rows stored before keep their numbers: which of their zeros were unknown cannot be
told. The downgrade stores 0 for NULL again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COUNTS = ("like_count", "retweet_count", "reply_count")
# Rebuilt on SQLite: tweets keeps its AUTOINCREMENT key (reflection does not see it, so it is said again).
TABLES = {"tweets": {"sqlite_autoincrement": True}, "staged_posts": {}}
# SQLite's batch mode reflects the tables it rebuilds and warns about an index on an expression it cannot
# read (tweets has none, but the users table its foreign key names does); the warning would only alarm.
QUIET = {"action": "ignore", "message": ".*expression-based index", "category": sa.exc.SAWarning}


def upgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings(**QUIET)
        for table, kwargs in TABLES.items():
            with op.batch_alter_table(table, table_kwargs=kwargs) as batch:
                for column in COUNTS:
                    batch.alter_column(column, existing_type=sa.Integer(), nullable=True)


def downgrade():
    with warnings.catch_warnings():
        warnings.filterwarnings(**QUIET)
        for table, kwargs in TABLES.items():
            for column in COUNTS:
                op.execute(f"UPDATE {table} SET {column} = 0 WHERE {column} IS NULL")
            with op.batch_alter_table(table, table_kwargs=kwargs) as batch:
                for column in COUNTS:
                    batch.alter_column(column, existing_type=sa.Integer(), nullable=False)
