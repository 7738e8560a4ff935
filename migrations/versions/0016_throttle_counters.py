"""Throttle counters: one row per key, bumped by one atomic upsert, for every rate limit.

Replaces the per-event tables of sign-in failures, password-reset requests and failed
certificate look-ups (counted, then inserted, which a burst of requests could race). What they
held is only throttling state of the last minutes: it is dropped, not carried over.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 18:07:27.057296

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("resets_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_counters")),
    )
    # Dropping a table drops its indexes, on both databases.
    op.drop_table("login_failures")
    op.drop_table("reset_requests")
    op.drop_table("certificate_lookup_failures")


def downgrade():
    for table in ("login_failures", "reset_requests"):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("email", sa.String(length=254), nullable=False),
            sa.Column("address", sa.String(length=64), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        for column in ("address", "at", "email"):
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)
    op.create_table(
        "certificate_lookup_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_lookup_failures")),
    )
    op.create_index(
        "ix_certificate_lookup_failures_address_at",
        "certificate_lookup_failures",
        ["address", "at"],
        unique=False,
    )
    op.drop_table("throttle_counters")
