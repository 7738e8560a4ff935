"""Measures against organisations (suspended, restricted with limits, barred) kept with their
dates, so the public notices show those in force and, as history, the lifted or replaced ones.

Reviewed by hand: a new table, and at most one measure in force per organisation (a partial
unique index, on both databases). Existing history is rebuilt from the audit log, which has
recorded every status change with its reason and limits (``organisation.<status>`` events, in id
order); the organisation's own row has the last word on what is in force now. Timestamps are
copied as the database returned them, so they keep their stored form on SQLite and PostgreSQL.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 18:26:10.817697

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

MEASURES = ("suspended", "restricted", "barred")
CHANGES = tuple(f"organisation.{s}" for s in ("approved", *MEASURES))


def upgrade():
    op.create_table('organisation_measures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('order_limit_t', sa.Integer(), nullable=True),
    sa.Column('year_limit_t', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_by', sa.String(length=120), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_as', sa.String(length=16), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=False),
    sa.Column('ended_by', sa.String(length=120), nullable=True),
    sa.CheckConstraint("status IN ('suspended', 'restricted', 'barred')", name=op.f('ck_organisation_measures_status')),
    sa.CheckConstraint('(ended_at IS NULL) = (ended_as IS NULL) AND (ended_at IS NULL) = (ended_by IS NULL)', name=op.f('ck_organisation_measures_ended')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_organisation_measures_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisation_measures'))
    )
    with op.batch_alter_table('organisation_measures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_measures_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('uq_organisation_measures_in_force', ['organisation_id'], unique=True, postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
    _rebuild_history(op.get_bind())


def _rebuild_history(bind):
    orgs = {
        row.uscc: row
        for row in bind.execute(
            sa.text("SELECT id, uscc, status, status_reason, status_since, order_limit_t, year_limit_t, "
                    "created_at FROM organisations")
        )
    }
    events = bind.execute(
        sa.text("SELECT actor, action, subject_id, at, after FROM audit_events "
                "WHERE subject_type = 'organisation' AND action IN :actions ORDER BY id")
        .bindparams(sa.bindparam("actions", expanding=True)),
        {"actions": list(CHANGES)},
    )
    rows, open_ = [], {}

    def close(uscc, at, status, reason, actor):
        measure = open_.pop(uscc, None)
        if measure is not None:
            measure.update(ended_at=at, ended_as=status, end_reason=reason or "", ended_by=actor)

    def start(uscc, status, reason, order_limit, year_limit, at, actor):
        measure = {
            "organisation_id": orgs[uscc].id, "status": status, "reason": reason or "",
            "order_limit_t": order_limit, "year_limit_t": year_limit, "started_at": at,
            "started_by": actor, "ended_at": None, "ended_as": None, "end_reason": "", "ended_by": None,
        }
        rows.append(measure)
        open_[uscc] = measure

    for event in events:
        if event.subject_id not in orgs:
            continue
        try:
            after = json.loads(event.after or "{}")
        except ValueError:
            continue
        status = after.get("status")
        if status not in ("approved", *MEASURES):
            continue
        close(event.subject_id, event.at, status, after.get("reason"), event.actor)
        if status in MEASURES:
            start(event.subject_id, status, after.get("reason"), after.get("order_limit_t"),
                  after.get("year_limit_t"), event.at, event.actor)
    # The organisation's row says what is in force now.
    for uscc, org in orgs.items():
        since = org.status_since or org.created_at
        measure = open_.get(uscc)
        if measure is not None and measure["status"] == org.status:
            continue
        close(uscc, since, org.status, org.status_reason, "migration")
        if org.status in MEASURES:
            start(uscc, org.status, org.status_reason, org.order_limit_t, org.year_limit_t, since, "migration")
    if rows:
        bind.execute(
            sa.text("INSERT INTO organisation_measures (organisation_id, status, reason, order_limit_t, "
                    "year_limit_t, started_at, started_by, ended_at, ended_as, end_reason, ended_by) VALUES "
                    "(:organisation_id, :status, :reason, :order_limit_t, :year_limit_t, :started_at, "
                    ":started_by, :ended_at, :ended_as, :end_reason, :ended_by)"),
            rows,
        )


def downgrade():
    with op.batch_alter_table('organisation_measures', schema=None) as batch_op:
        batch_op.drop_index('uq_organisation_measures_in_force', postgresql_where=sa.text('ended_at IS NULL'), sqlite_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_organisation_measures_organisation_id'))

    op.drop_table('organisation_measures')
