"""Model versions name their subject (the account a style model writes like).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("model_versions", sa.Column("subject", sa.String(50), nullable=True))


def downgrade():
    op.drop_column("model_versions", "subject")
