"""Quotes (priced lines, nothing held, valid ten minutes) and what orders keep of them and of
their payment attempts: whether the buyer named the lines, the quote an order was placed from, and how many PaymentIntents it has
had (a new one after a declined attempt).

Reviewed by hand: two new tables; two new columns on orders, the attempt count defaulting to 1
for the orders already there (each has had one intent at most), the quote empty, and
`by_lines` false for them (they were allocated by the stated rule). On SQLite the
orders table is rebuilt by batch mode, which keeps its constraints.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 04:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quotes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_quotes_amount_positive')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_quotes_quantity_positive')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_quotes_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quotes')),
    sa.UniqueConstraint('public_id', name=op.f('uq_quotes_public_id'))
    )
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quotes_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('quote_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quote_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_quote_lines_quantity_positive')),
    sa.CheckConstraint('unit_price > 0', name=op.f('ck_quote_lines_unit_price_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_quote_lines_batch_id_batches')),
    sa.ForeignKeyConstraint(['quote_id'], ['quotes.id'], name=op.f('fk_quote_lines_quote_id_quotes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_lines')),
    sa.UniqueConstraint('quote_id', 'batch_id', name=op.f('uq_quote_lines_quote_id_batch_id'))
    )
    with op.batch_alter_table('quote_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_lines_quote_id'), ['quote_id'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_attempt', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('by_lines', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('quote_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_orders_quote_id'), ['quote_id'])
        batch_op.create_foreign_key(batch_op.f('fk_orders_quote_id_quotes'), 'quotes', ['quote_id'], ['id'])


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_quote_id_quotes'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_orders_quote_id'), type_='unique')
        batch_op.drop_column('quote_id')
        batch_op.drop_column('by_lines')
        batch_op.drop_column('payment_attempt')

    with op.batch_alter_table('quote_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_lines_quote_id'))
    op.drop_table('quote_lines')
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quotes_organisation_id'))
    op.drop_table('quotes')
