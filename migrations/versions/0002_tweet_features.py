"""Hashed n-gram features stored with each post.

Existing rows start with NULL and get their features the first time a comparison needs them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("tweets", sa.Column("features", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("tweets") as batch:
        batch.drop_column("features")
