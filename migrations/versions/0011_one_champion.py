"""One champion per kind and subject, enforced by the database; refused challengers keep no bytes.

A partial unique index on model_versions (kind, coalesce(subject, '')) where status = 'champion': a
virality model's subject is NULL, and NULLs never clash in a unique index, hence the coalesce. Where a
database already holds several champions of one kind and subject, the newest stays champion and the
others are retired first, as a promotion would have retired them, so the upgrade never fails.

A virality challenger that lost its comparison is never loaded: its artefact is emptied (the column stays
NOT NULL), while its row, metrics and decision stay for the models page. The bytes cannot come back, so
the downgrade only drops the index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

model_versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("status", sa.String()),
    sa.column("artefact", sa.LargeBinary()),
)


def upgrade():
    newer = model_versions.alias("newer")
    op.execute(
        model_versions.update()
        .where(
            model_versions.c.status == "champion",
            sa.exists().where(
                newer.c.status == "champion",
                newer.c.kind == model_versions.c.kind,
                sa.func.coalesce(newer.c.subject, "") == sa.func.coalesce(model_versions.c.subject, ""),
                newer.c.id > model_versions.c.id,
            ),
        )
        .values(status="retired")
    )
    op.execute(
        model_versions.update()
        .where(model_versions.c.kind == "virality", model_versions.c.status == "challenger")
        .values(artefact=b"")
    )
    op.create_index(
        "uq_model_versions_champion",
        "model_versions",
        ["kind", sa.text("coalesce(subject, '')")],
        unique=True,
        sqlite_where=sa.text("status = 'champion'"),
        postgresql_where=sa.text("status = 'champion'"),
    )


def downgrade():
    op.drop_index("uq_model_versions_champion", table_name="model_versions")
