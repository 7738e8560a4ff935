"""The transparency log: leaves (one per certificate event), the hashes of the perfect subtrees
each leaf completed, the tree's state (one row), and the signed tree heads.

Reviewed by hand: leaves, their hashes and tree heads can never be changed or deleted (triggers,
as for the journal); only the state row is updated, by each append. Certificates issued before
this revision are appended by ``flask log backfill`` (their revocations need a signature, which
a migration has no key for).

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-03 04:16:32.159590

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0017'
branch_labels = None
depends_on = None

APPEND_ONLY = ("log_entries", "log_nodes", "log_tree_heads")


def upgrade():
    op.create_table('log_entries',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('certificate_number', sa.String(length=24), nullable=False),
    sa.Column('leaf_input', sa.LargeBinary(), nullable=False),
    sa.Column('logged_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('leaf_index >= 0', name=op.f('ck_log_entries_leaf_index_not_negative')),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_log_entries'))
    )
    with op.batch_alter_table('log_entries', schema=None) as batch_op:
        batch_op.create_index('ix_log_entries_certificate_number', ['certificate_number', 'leaf_index'], unique=False)

    op.create_table('log_nodes',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hashes', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_log_nodes'))
    )
    op.create_table('log_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_log_state_single_row')),
    sa.CheckConstraint('tree_size >= 0', name=op.f('ck_log_state_tree_size_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_state'))
    )
    op.create_table('log_tree_heads',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.CheckConstraint('tree_size >= 0', name=op.f('ck_log_tree_heads_tree_size_not_negative')),
    sa.ForeignKeyConstraint(['key_id'], ['signing_keys.key_id'], name=op.f('fk_log_tree_heads_key_id_signing_keys')),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_log_tree_heads'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION transparency_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$
        """)
        for table in APPEND_ONLY:
            op.execute(f"""
                CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION transparency_log_append_only()
            """)
    else:
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END
                """)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION transparency_log_append_only()")
    else:
        for table in APPEND_ONLY:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{event}")
    op.drop_table('log_tree_heads')
    op.drop_table('log_state')
    op.drop_table('log_nodes')
    with op.batch_alter_table('log_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_log_entries_certificate_number')

    op.drop_table('log_entries')
