"""Requests for quote: what a buyer asks for above its order limit or the stock for sale (tonnes,
standards and project types, vintages, named projects, a delivery schedule, contact), the
messages exchanged with sales staff, and the contract draft a request became.

Reviewed by hand: three new tables and nothing changed in existing ones. The status and the
schedule kind are CHECKed against their enums; a converted request names its draft and only a
converted one does (one request per draft: contract_id is unique).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 07:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quote_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('assigned_to_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('standards', sa.String(length=40), nullable=False),
    sa.Column('project_types', sa.String(length=200), nullable=False),
    sa.Column('projects', sa.String(length=400), nullable=False),
    sa.Column('vintage_from', sa.Integer(), nullable=True),
    sa.Column('vintage_to', sa.Integer(), nullable=True),
    sa.Column('schedule', sa.String(length=10), nullable=False),
    sa.Column('price_expectation', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('contact_name', sa.String(length=100), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('contact_phone', sa.String(length=40), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('decline_reason', sa.String(length=500), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'converted') = (contract_id IS NOT NULL)", name=op.f('ck_quote_requests_converted_has_contract')),
    sa.CheckConstraint("schedule IN ('one_off', 'yearly', 'quarterly')", name=op.f('ck_quote_requests_schedule')),
    sa.CheckConstraint("status IN ('new', 'discussion', 'converted', 'declined')", name=op.f('ck_quote_requests_status')),
    sa.CheckConstraint('price_expectation IS NULL OR price_expectation > 0', name=op.f('ck_quote_requests_price_positive')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_quote_requests_quantity_positive')),
    sa.CheckConstraint('vintage_from IS NULL OR vintage_to IS NULL OR vintage_from <= vintage_to', name=op.f('ck_quote_requests_vintages')),
    sa.ForeignKeyConstraint(['assigned_to_id'], ['users.id'], name=op.f('fk_quote_requests_assigned_to_id_users')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_quote_requests_contract_id_contracts')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_quote_requests_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_quote_requests_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_requests')),
    sa.UniqueConstraint('contract_id', name=op.f('uq_quote_requests_contract_id')),
    sa.UniqueConstraint('number', name=op.f('uq_quote_requests_number'))
    )
    with op.batch_alter_table('quote_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_requests_assigned_to_id'), ['assigned_to_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quote_requests_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quote_requests_status'), ['status'], unique=False)

    op.create_table('quote_request_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('from_staff', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_quote_request_messages_author_id_users')),
    sa.ForeignKeyConstraint(['request_id'], ['quote_requests.id'], name=op.f('fk_quote_request_messages_request_id_quote_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_request_messages'))
    )
    with op.batch_alter_table('quote_request_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_request_messages_request_id'), ['request_id'], unique=False)

    op.create_table('quote_request_tranches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_quote_request_tranches_quantity_positive')),
    sa.ForeignKeyConstraint(['request_id'], ['quote_requests.id'], name=op.f('fk_quote_request_tranches_request_id_quote_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quote_request_tranches')),
    sa.UniqueConstraint('request_id', 'seq', name=op.f('uq_quote_request_tranches_request_id_seq'))
    )
    with op.batch_alter_table('quote_request_tranches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quote_request_tranches_request_id'), ['request_id'], unique=False)



def downgrade():
    with op.batch_alter_table('quote_request_tranches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_request_tranches_request_id'))

    op.drop_table('quote_request_tranches')
    with op.batch_alter_table('quote_request_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_request_messages_request_id'))

    op.drop_table('quote_request_messages')
    with op.batch_alter_table('quote_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quote_requests_status'))
        batch_op.drop_index(batch_op.f('ix_quote_requests_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_quote_requests_assigned_to_id'))

    op.drop_table('quote_requests')
