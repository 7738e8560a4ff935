"""The Green Low-Carbon Enterprise Alliance: memberships (applications, decisions, leaving) and
the members' terms; listings remember when they were first listed (members' first call).

Reviewed by hand. Existing members (``organisations.alliance_member``) get a membership row,
approved by the migration, so that the public page and the history know them; the flag stays as
the current state, kept by the alliance's services. Existing listings count as listed when they
were last changed (the best record there is).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 07:30:00

"""
from alembic import op
import sqlalchemy as sa

import portal.timeutil  # noqa: F401  (the column type below)


# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alliance_memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sector', sa.String(length=32), nullable=False),
    sa.Column('emissions_band', sa.String(length=16), nullable=False),
    sa.Column('pledge', sa.Text(), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('website', sa.String(length=200), nullable=False),
    sa.Column('applied_at', portal.timeutil.UTCDateTime(), nullable=False),
    sa.Column('applied_by', sa.String(length=120), nullable=False),
    sa.Column('decided_at', portal.timeutil.UTCDateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('left_at', portal.timeutil.UTCDateTime(), nullable=True),
    sa.Column('left_by', sa.String(length=120), nullable=True),
    sa.Column('leave_reason', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'member', 'declined', 'left')", name=op.f('ck_alliance_memberships_status')),
    sa.CheckConstraint("emissions_band IN ('under_10k', '10k_100k', '100k_1m', 'over_1m')", name=op.f('ck_alliance_memberships_emissions_band')),
    sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL) AND (decided_at IS NULL) = (decided_by IS NULL)", name=op.f('ck_alliance_memberships_decided')),
    sa.CheckConstraint("(status = 'left') = (left_at IS NOT NULL) AND (left_at IS NULL) = (left_by IS NULL)", name=op.f('ck_alliance_memberships_left')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_alliance_memberships_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alliance_memberships'))
    )
    with op.batch_alter_table('alliance_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alliance_memberships_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('uq_alliance_memberships_open', ['organisation_id'], unique=True, postgresql_where=sa.text("status IN ('pending', 'member')"), sqlite_where=sa.text("status IN ('pending', 'member')"))

    op.create_table('alliance_terms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('discount_pct', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('first_call_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', portal.timeutil.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.CheckConstraint('discount_pct >= 0 AND discount_pct <= 50', name=op.f('ck_alliance_terms_discount_range')),
    sa.CheckConstraint('first_call_days >= 0 AND first_call_days <= 90', name=op.f('ck_alliance_terms_first_call_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alliance_terms'))
    )

    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listed_at', portal.timeutil.UTCDateTime(), nullable=True))
    op.execute("UPDATE listings SET listed_at = updated_at")
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.alter_column('listed_at', existing_type=portal.timeutil.UTCDateTime(), nullable=False)

    # Today's members, as members since they were registered.
    op.execute(
        "INSERT INTO alliance_memberships (organisation_id, status, sector, emissions_band, pledge, "
        "description_zh, description_en, website, applied_at, applied_by, decided_at, decided_by, "
        "decision_reason, leave_reason) "
        "SELECT id, 'member', sector, '100k_1m', '', '', '', '', created_at, 'migration', created_at, "
        "'migration', '', '' FROM organisations WHERE alliance_member"
    )


def downgrade():
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_column('listed_at')
    op.drop_table('alliance_terms')
    with op.batch_alter_table('alliance_memberships', schema=None) as batch_op:
        batch_op.drop_index('uq_alliance_memberships_open', postgresql_where=sa.text("status IN ('pending', 'member')"), sqlite_where=sa.text("status IN ('pending', 'member')"))
        batch_op.drop_index(batch_op.f('ix_alliance_memberships_organisation_id'))
    op.drop_table('alliance_memberships')
