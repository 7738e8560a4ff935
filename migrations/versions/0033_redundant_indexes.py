"""Two indexes every retirement wrote and no query needed: ``ix_certificates_organisation_id``
and ``ix_registry_instructions_certificate_id``. Each column leads a unique index of its table
already (``(organisation_id, idempotency_key)`` and ``(certificate_id, batch_id)``), which serves
the same look-ups and the foreign keys' checks; a retirement writes one certificate and one
instruction per batch, so each index was one more entry written per retirement.

Reviewed by hand: indexes only, no data; the downgrade creates them again.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 23:58:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_certificates_organisation_id", table_name="certificates")
    op.drop_index("ix_registry_instructions_certificate_id", table_name="registry_instructions")


def downgrade():
    op.create_index("ix_registry_instructions_certificate_id", "registry_instructions", ["certificate_id"])
    op.create_index("ix_certificates_organisation_id", "certificates", ["organisation_id"])
