"""Orders paid by bank transfer (对公转账) and VAT fapiao requests.

Reviewed by hand: five new columns on orders, all empty for the orders already there (none was
paid by transfer: `pays_by_transfer` false, no reference), with a check that an order paid by
transfer has its memo reference; the references (the buyer's memo and the bank's own) are
unique. One new table, fapiao_requests, for an order or a contract invoice (exactly one), with
partial unique indexes so that one request stands (requested or issued) per order and per
invoice. On SQLite the orders table is rebuilt by batch mode, which keeps its constraints.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

STANDING = sa.text("status IN ('requested', 'issued')")


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pays_by_transfer', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('transfer_reference', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('transfer_received_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('transfer_amount', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('transfer_bank_reference', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_orders_transfer_reference'), ['transfer_reference'])
        batch_op.create_unique_constraint(batch_op.f('uq_orders_transfer_bank_reference'), ['transfer_bank_reference'])
        batch_op.create_check_constraint(
            op.f('ck_orders_transfer_has_reference'), 'pays_by_transfer = (transfer_reference IS NOT NULL)'
        )

    op.create_table('fapiao_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=24), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('taxpayer_id', sa.String(length=18), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('bank', sa.String(length=100), nullable=False),
    sa.Column('bank_account', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fapiao_number', sa.String(length=20), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('pdf_filename', sa.String(length=200), nullable=True),
    sa.Column('pdf_size', sa.Integer(), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=True),
    sa.Column('pdf_content', sa.LargeBinary(), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.CheckConstraint('(order_id IS NULL) <> (invoice_id IS NULL)', name=op.f('ck_fapiao_requests_one_subject')),
    sa.CheckConstraint("kind IN ('normal', 'special')", name=op.f('ck_fapiao_requests_kind')),
    sa.CheckConstraint("status IN ('requested', 'issued', 'rejected', 'voided')", name=op.f('ck_fapiao_requests_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_fapiao_requests_amount_positive')),
    sa.CheckConstraint(
        "status NOT IN ('issued', 'voided') OR (fapiao_number IS NOT NULL AND pdf_sha256 IS NOT NULL)",
        name=op.f('ck_fapiao_requests_issued_has_fapiao'),
    ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_fapiao_requests_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fapiao_requests_order_id_orders')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_fapiao_requests_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fapiao_requests')),
    sa.UniqueConstraint('public_id', name=op.f('uq_fapiao_requests_public_id'))
    )
    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fapiao_requests_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(
            'uq_fapiao_requests_order_standing', ['order_id'], unique=True,
            sqlite_where=STANDING, postgresql_where=STANDING,
        )
        batch_op.create_index(
            'uq_fapiao_requests_invoice_standing', ['invoice_id'], unique=True,
            sqlite_where=STANDING, postgresql_where=STANDING,
        )


def downgrade():
    with op.batch_alter_table('fapiao_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_fapiao_requests_invoice_standing')
        batch_op.drop_index('uq_fapiao_requests_order_standing')
        batch_op.drop_index(batch_op.f('ix_fapiao_requests_organisation_id'))
    op.drop_table('fapiao_requests')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_transfer_has_reference'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_orders_transfer_bank_reference'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_orders_transfer_reference'), type_='unique')
        batch_op.drop_column('transfer_bank_reference')
        batch_op.drop_column('transfer_amount')
        batch_op.drop_column('transfer_received_on')
        batch_op.drop_column('transfer_reference')
        batch_op.drop_column('pays_by_transfer')

