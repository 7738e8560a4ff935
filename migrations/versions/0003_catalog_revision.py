"""The catalog revision counter (one row), for exact page caching.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "catalog_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_revisions")),
    )
    op.bulk_insert(table, [{"id": 1, "n": 0}])


def downgrade():
    op.drop_table("catalog_revisions")
