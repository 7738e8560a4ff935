"""When an organisation registered its first webhook endpoint (``organisations.webhooks_since``):
an event for an organisation that never has is dropped without reading its endpoints (most
organisations have none; every retirement and fulfilment asked).

Reviewed by hand: one nullable column; set for the organisations that have had an endpoint (the
first one's creation), so that none of their events is dropped.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 03:20:00

"""

import sqlalchemy as sa
from alembic import op

from portal.timeutil import UTCDateTime

# revision identifiers, used by Alembic.
revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("webhooks_since", UTCDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE organisations SET webhooks_since = (SELECT min(e.created_at) FROM webhook_endpoints e"
        " WHERE e.organisation_id = organisations.id)"
        " WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.organisation_id = organisations.id)"
    )


def downgrade():
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("webhooks_since")
