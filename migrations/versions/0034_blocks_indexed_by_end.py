"""Blocks are indexed by batch, account and end, no longer by start: the unique
``(batch_id, serial_start)`` becomes ``(batch_id, serial_end)``, and ``ix_blocks_account_batch``
ends with ``serial_end``. Blocks of a batch never overlap, so each key is as unique and orders
them the same.

Why: the block a movement takes the first serials of (a sale, a retirement, a delivery) keeps
its rest and only its start changes. With no index on the start, PostgreSQL rewrites the row in
place (a heap-only update: no index entry written, the old version pruned within its page).
Before, each such movement left dead entries in both indexes, and every later movement from the
same source stepped over them until the next vacuum.

Reviewed by hand: constraints and indexes only, no data (the new keys hold for every row the
old ones held); the downgrade restores the old ones. SQLite rebuilds the table (batch mode).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06 03:10:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_blocks_account_batch")
        batch_op.drop_constraint("uq_blocks_batch_id_serial_start", type_="unique")
        batch_op.create_unique_constraint("uq_blocks_batch_id_serial_end", ["batch_id", "serial_end"])
        batch_op.create_index("ix_blocks_account_batch", ["account_id", "batch_id", "serial_end"], unique=False)


def downgrade():
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_blocks_account_batch")
        batch_op.drop_constraint("uq_blocks_batch_id_serial_end", type_="unique")
        batch_op.create_unique_constraint("uq_blocks_batch_id_serial_start", ["batch_id", "serial_start"])
        batch_op.create_index("ix_blocks_account_batch", ["account_id", "batch_id", "serial_start"], unique=False)
