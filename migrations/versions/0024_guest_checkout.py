"""Guest checkout: the buyers who order without an account (name, e-mail, perhaps an
organisation's name and USCC, the hash of their order link's token), and the order's link to its
guest.

Reviewed by hand: a new table and a nullable column with its foreign key and unique constraint
(batch mode, for SQLite). The guest organisation that guest orders belong to is created by the
portal on the first guest order, not here.

Revision ID: 0024
Revises: 0029
Create Date: 2026-12-03 07:40:00

"""
from alembic import op
import sqlalchemy as sa

import portal.timeutil  # noqa: F401  (the column type below)


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('guest_buyers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('link_expires_at', portal.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', portal.timeutil.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guest_buyers')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_guest_buyers_token_hash'))
    )
    with op.batch_alter_table('guest_buyers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guest_buyers_email'), ['email'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guest_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_orders_guest_id'), ['guest_id'])
        batch_op.create_foreign_key(batch_op.f('fk_orders_guest_id_guest_buyers'), 'guest_buyers', ['guest_id'], ['id'])


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_guest_id_guest_buyers'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_orders_guest_id'), type_='unique')
        batch_op.drop_column('guest_id')

    with op.batch_alter_table('guest_buyers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guest_buyers_email'))

    op.drop_table('guest_buyers')
