"""Stripe events that cannot be applied yet (a refund seen before its payment) are kept with
their object and the PaymentIntent they belong to, and applied when the payment arrives.

Reviewed by hand: three nullable/defaulted columns and an index; existing rows get an empty
intent_id (they were all applied when received).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intent_id', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('pending_object', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_events_intent_id'), ['intent_id'], unique=False)
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.alter_column('intent_id', server_default=None)


def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_intent_id'))
        batch_op.drop_column('reported_at')
        batch_op.drop_column('pending_object')
        batch_op.drop_column('intent_id')
