"""The hand-off to the official registries: instructions (one per certificate and batch) and
their signed confirmations, imported account statements, withheld serials (a ledger account of
their own), and each batch's registry serial series, so that overlapping issuances are found.

Reviewed by hand. ``accounts.kind`` gains ``withheld`` (the CHECK constraint is replaced; on
SQLite by rebuilding the table, as 0002 did). ``batches.registry_series`` is filled for batches
recorded before, from their registry serials as ``portal.ledger.serials`` reads them (the same
two patterns, repeated here so that this migration never changes with the code). Certificates
issued before this revision get their instructions too, pending, dated by their retirement: no
one was ever told to do them in the registry, and the queue is where that now shows (the rule is
``portal.registry.instructions.instruct``, repeated here as data).

Revision ID: 0019
Revises: 0023
Create Date: 2026-12-03 04:40:00

"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0023'
branch_labels = None
depends_on = None

KINDS = ('inventory', 'buffer', 'hold', 'reserve', 'holding', 'retired', 'cancelled')
_CCER = re.compile(r"(?P<prefix>[A-Z][A-Z0-9-]*?-)(?P<unit>[0-9]{1,18})")
_VERRA = re.compile(r"[0-9]{1,12}-(?P<first>[0-9]{1,18})-[0-9]{1,18}-VCS-VCU-.*")


def _kind_check(kinds):
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade():
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', _kind_check((*KINDS, 'withheld')))

    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registry_series', sa.String(length=120), server_default='', nullable=False))
        batch_op.create_index('ix_batches_registry_units', ['registry_series', 'registry_unit_offset'], unique=False)
    _fill_series(op.get_bind())

    op.create_table('registry_instructions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('certificate_number', sa.String(length=24), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('registry', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('beneficiary', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('compliance_year', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('ranges', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('registry_reference', sa.String(length=120), nullable=True),
    sa.Column('registry_date', sa.Date(), nullable=True),
    sa.Column('registry_serials', sa.String(length=500), nullable=True),
    sa.Column('rejection_reason', sa.String(length=500), nullable=True),
    sa.Column('overdue_reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_digest', sa.String(length=64), nullable=True),
    sa.CheckConstraint("registry IN ('ccer', 'verra')", name=op.f('ck_registry_instructions_registry')),
    sa.CheckConstraint("kind IN ('cancellation', 'ets_offset', 'retirement')", name=op.f('ck_registry_instructions_kind')),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'rejected')", name=op.f('ck_registry_instructions_status')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_registry_instructions_quantity_positive')),
    sa.CheckConstraint("status <> 'confirmed' OR (registry_reference IS NOT NULL AND registry_date IS NOT NULL)", name=op.f('ck_registry_instructions_confirmed_with_reference')),
    sa.CheckConstraint("status <> 'rejected' OR rejection_reason IS NOT NULL", name=op.f('ck_registry_instructions_rejected_with_reason')),
    sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name=op.f('ck_registry_instructions_decided_at')),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_registry_instructions_batch_id_batches')),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_registry_instructions_certificate_id_certificates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_instructions')),
    sa.UniqueConstraint('certificate_id', 'batch_id', name=op.f('uq_registry_instructions_certificate_id_batch_id'))
    )
    with op.batch_alter_table('registry_instructions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_instructions_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registry_instructions_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_registry_instructions_queue', ['status', 'registry', 'batch_id'], unique=False)

    op.create_table('registry_confirmations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instruction_id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificates.id'], name=op.f('fk_registry_confirmations_certificate_id_certificates')),
    sa.ForeignKeyConstraint(['instruction_id'], ['registry_instructions.id'], name=op.f('fk_registry_confirmations_instruction_id_registry_instructions')),
    sa.ForeignKeyConstraint(['key_id'], ['signing_keys.key_id'], name=op.f('fk_registry_confirmations_key_id_signing_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_confirmations')),
    sa.UniqueConstraint('instruction_id', name=op.f('uq_registry_confirmations_instruction_id'))
    )
    with op.batch_alter_table('registry_confirmations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_confirmations_certificate_id'), ['certificate_id'], unique=False)

    op.create_table('registry_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry', sa.String(length=8), nullable=False),
    sa.Column('account', sa.String(length=120), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=120), nullable=False),
    sa.CheckConstraint("registry IN ('ccer', 'verra')", name=op.f('ck_registry_statements_registry')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_statements'))
    )
    op.create_table('registry_statement_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=120), nullable=False),
    sa.Column('unit_first', sa.BigInteger(), nullable=False),
    sa.Column('unit_last', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint('unit_first >= 1 AND unit_first <= unit_last', name=op.f('ck_registry_statement_blocks_units')),
    sa.CheckConstraint("status IN ('active', 'retired', 'cancelled')", name=op.f('ck_registry_statement_blocks_status')),
    sa.ForeignKeyConstraint(['statement_id'], ['registry_statements.id'], name=op.f('fk_registry_statement_blocks_statement_id_registry_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_statement_blocks'))
    )
    with op.batch_alter_table('registry_statement_blocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_statement_blocks_statement_id'), ['statement_id'], unique=False)

    op.create_table('registry_withholdings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('serial_start', sa.Integer(), nullable=False),
    sa.Column('serial_end', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=120), nullable=True),
    sa.Column('resolution_note', sa.String(length=500), nullable=True),
    sa.CheckConstraint('serial_start >= 1 AND serial_start <= serial_end', name=op.f('ck_registry_withholdings_serials')),
    sa.CheckConstraint("status IN ('withheld', 'released', 'cancelled')", name=op.f('ck_registry_withholdings_status')),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], name=op.f('fk_registry_withholdings_batch_id_batches')),
    sa.ForeignKeyConstraint(['statement_id'], ['registry_statements.id'], name=op.f('fk_registry_withholdings_statement_id_registry_statements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_withholdings'))
    )
    with op.batch_alter_table('registry_withholdings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registry_withholdings_statement_id'), ['statement_id'], unique=False)
        batch_op.create_index('ix_registry_withholdings_open', ['status', 'batch_id'], unique=False)
    _instruct_earlier_certificates(op.get_bind())


def _instruct_earlier_certificates(bind):
    rows = bind.execute(sa.text(
        "SELECT c.id, c.number, c.beneficiary, c.purpose, c.compliance_year, c.retired_at, "
        "cb.batch_id, cb.serial_start, cb.serial_end, p.standard "
        "FROM certificates c JOIN certificate_blocks cb ON cb.certificate_id = c.id "
        "JOIN batches b ON b.id = cb.batch_id JOIN projects p ON p.id = b.project_id "
        "ORDER BY c.id, cb.batch_id, cb.serial_start"
    )).all()
    grouped = {}
    for row in rows:
        key = (row.id, row.batch_id)
        if key not in grouped:
            grouped[key] = {"row": row, "ranges": []}
        grouped[key]["ranges"].append((row.serial_start, row.serial_end))
    table = sa.table(
        'registry_instructions',
        *(sa.column(name) for name in (
            'certificate_id', 'certificate_number', 'batch_id', 'registry', 'kind', 'beneficiary', 'purpose',
            'compliance_year', 'quantity', 'ranges', 'status', 'created_at',
        )),
    )
    values = []
    for (certificate_id, batch_id), found in grouped.items():
        row, ranges = found["row"], found["ranges"]
        registry = 'ccer' if row.standard == 'CCER' else 'verra'
        kind = 'retirement' if registry == 'verra' else ('ets_offset' if row.purpose == 'compliance' else 'cancellation')
        values.append({
            'certificate_id': certificate_id,
            'certificate_number': row.number,
            'batch_id': batch_id,
            'registry': registry,
            'kind': kind,
            'beneficiary': row.beneficiary,
            'purpose': row.purpose,
            'compliance_year': row.compliance_year,
            'quantity': sum(e - s + 1 for s, e in ranges),
            'ranges': ",".join(f"{s}-{e}" for s, e in ranges),
            'status': 'pending',
            'created_at': row.retired_at,
        })
    for start in range(0, len(values), 1000):
        op.bulk_insert(table, values[start:start + 1000])


def _fill_series(bind):
    rows = bind.execute(sa.text(
        "SELECT b.id, b.registry_serial_start, p.standard FROM batches b JOIN projects p ON p.id = b.project_id "
        "WHERE b.registry_serial_start <> ''"
    )).all()
    for batch_id, serial, standard in rows:
        if standard == 'CCER':
            found = _CCER.fullmatch(serial)
            series = found['prefix'].rstrip('-') if found else ''
        else:
            series = 'VCS-VCU' if _VERRA.fullmatch(serial) else ''
        if series:
            bind.execute(sa.text("UPDATE batches SET registry_series = :s WHERE id = :i"), {"s": series, "i": batch_id})


def downgrade():
    with op.batch_alter_table('registry_withholdings', schema=None) as batch_op:
        batch_op.drop_index('ix_registry_withholdings_open')
        batch_op.drop_index(batch_op.f('ix_registry_withholdings_statement_id'))
    op.drop_table('registry_withholdings')
    with op.batch_alter_table('registry_statement_blocks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_statement_blocks_statement_id'))
    op.drop_table('registry_statement_blocks')
    op.drop_table('registry_statements')
    with op.batch_alter_table('registry_confirmations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registry_confirmations_certificate_id'))
    op.drop_table('registry_confirmations')
    with op.batch_alter_table('registry_instructions', schema=None) as batch_op:
        batch_op.drop_index('ix_registry_instructions_queue')
        batch_op.drop_index(batch_op.f('ix_registry_instructions_created_at'))
        batch_op.drop_index(batch_op.f('ix_registry_instructions_certificate_id'))
    op.drop_table('registry_instructions')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index('ix_batches_registry_units')
        batch_op.drop_column('registry_series')
    # Withheld serials cannot be expressed before this revision: it refuses while any exist.
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_constraint('kind', type_='check')
        batch_op.create_check_constraint('kind', _kind_check(KINDS))
