"""Uploads in parts, staged posts for imports in batches, the process that holds each job, and an index
for reading an account's posts in id order (an export's pages).

Each stored upload's bytes become its first part, so a file sent before the upgrade is still read.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upload_parts",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["uploads.id"], name=op.f("fk_upload_parts_upload_id_uploads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("upload_id", "number", name=op.f("pk_upload_parts")),
    )
    op.execute("INSERT INTO upload_parts (upload_id, number, data) SELECT id, 0, content FROM uploads")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("content")
    op.create_table(
        "staged_posts",
        sa.Column("batch", sa.String(32), nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("like_count", sa.Integer(), nullable=False),
        sa.Column("retweet_count", sa.Integer(), nullable=False),
        sa.Column("reply_count", sa.Integer(), nullable=False),
        sa.Column("lang", sa.String(8), nullable=True),
        sa.Column("has_media", sa.Boolean(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("features", sa.LargeBinary(), nullable=True),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch", "id", name=op.f("pk_staged_posts")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(120), nullable=True))
    op.create_index("ix_tweets_user_id_id", "tweets", ["user_id", "id"])


def downgrade():
    op.drop_index("ix_tweets_user_id_id", table_name="tweets")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("worker")
    op.drop_table("staged_posts")
    # Uploads only wait for their job; one of several parts (over a mebibyte) cannot go back into one
    # column on every backend, so it is dropped, as a lost upload is (its job says to send it again).
    op.execute("DELETE FROM uploads WHERE id IN (SELECT upload_id FROM upload_parts WHERE number > 0)")
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
    op.execute("UPDATE uploads SET content = (SELECT data FROM upload_parts WHERE upload_id = uploads.id)")
    op.execute("DELETE FROM uploads WHERE content IS NULL")
    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("upload_parts")
