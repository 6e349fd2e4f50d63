"""Posts record whether they carry media, where the source says.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("tweets", sa.Column("has_media", sa.Boolean(), nullable=True))


def downgrade():
    op.drop_column("tweets", "has_media")
