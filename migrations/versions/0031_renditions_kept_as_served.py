"""Certificates' kept answers are stored as they are served, and PostgreSQL compresses them in
the row (lz4 where the server was built with it, else its default): a page view no longer
inflates a zlib body in the worker (about a twentieth of a kept page's CPU), and the server's
lz4 costs a few microseconds.

Reviewed by hand: no change the models can show (compression is the server's). The kept
answers are emptied: they were zlib-compressed, and every one of them is only a copy, drawn
again on its next view or by the jobs worker.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 13:10:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("TRUNCATE certificate_renditions")
        # A server built without lz4 refuses the method (feature_not_supported): it keeps pglz.
        op.execute(
            """
            DO $$
            BEGIN
                ALTER TABLE certificate_renditions ALTER COLUMN body SET COMPRESSION lz4;
            EXCEPTION WHEN feature_not_supported THEN
                RAISE NOTICE 'lz4 is not available: kept answers are compressed with pglz';
            END
            $$
            """
        )
    else:
        op.execute("DELETE FROM certificate_renditions")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("TRUNCATE certificate_renditions")
        op.execute("ALTER TABLE certificate_renditions ALTER COLUMN body SET COMPRESSION default")
    else:
        op.execute("DELETE FROM certificate_renditions")
