"""Holds and reserves must have a capacity; no other account has one.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    # batch mode: SQLite can only add a constraint by rebuilding the table.
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.create_check_constraint(
            "capacity_for_holds", "(kind IN ('hold', 'reserve')) = (capacity IS NOT NULL)"
        )


def downgrade():
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_constraint("capacity_for_holds", type_="check")
