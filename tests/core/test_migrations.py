"""Migrations: upgrade an existing database with data in it, and back."""

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from portal.extensions import db
from portal.ledger.verify import verify_ledger
from tests.conftest import make_app

ROWS = [
    "INSERT INTO regions (id, code, name_zh, name_en, pinyin, kind) VALUES (1, 'aohan', '敖汉旗', 'Aohan Banner', 'Aohan Qi', 'banner')",
    "INSERT INTO projects (id, code, name_zh, name_en, description_zh, description_en, standard, methodology, type, region_id, area_ha, crediting_start, crediting_end, status, validation_body, verification_body, registry_id, created_at) VALUES (1, 'P1', '项目', 'Project', '', '', 'CCER', 'CCER-14-001-V01', 'forestry', 1, 100, '2021-01-01', '2050-12-31', 'issuing', '', '', '', '2024-01-01 00:00:00')",
    "INSERT INTO batches (id, code, project_id, vintage_start, vintage_end, quantity, buffer_quantity, issued_on, registry_reference, registry_serial_start, registry_serial_end, created_at) VALUES (1, 'B1', 1, '2022-01-01', '2022-12-31', 100, 0, '2023-06-01', '', '', '', '2024-01-01 00:00:00')",
    "INSERT INTO accounts (id, kind, ref, created_at) VALUES (1, 'inventory', '', '2024-01-01 00:00:00'), (2, 'holding', 'ORG', '2024-01-01 00:00:00')",
    "INSERT INTO blocks (batch_id, account_id, serial_start, serial_end) VALUES (1, 2, 1, 10), (1, 1, 11, 100)",
    "INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity, from_account_id, to_account_id, reference, actor, created_at) VALUES ('m1', 'issue', 1, 1, 100, 100, NULL, 1, '', '', '2024-01-01 00:00:00'), ('m2', 'transfer', 1, 1, 10, 10, 1, 2, '', '', '2024-01-01 00:00:00')",
]


def test_upgrade_a_database_holding_a_ledger(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/old.db")
    with app.app_context():
        upgrade(revision="0001")
        for row in ROWS:
            db.session.execute(text(row))
        db.session.commit()
        upgrade()  # 0002 rebuilds `accounts`, which blocks and entries refer to
        report = verify_ledger()
        assert report.ok, report.problems
        assert report.entries == 2
        db.session.rollback()
        downgrade(revision="0001")
        upgrade()
        assert verify_ledger().ok
        db.session.remove()
        db.engine.dispose()


def test_organisations_that_had_webhook_endpoints_are_dated_by_the_first(tmp_path):
    """0032: an organisation that has had an endpoint (even one deleted since) gets
    ``webhooks_since``, the first one's creation, so that none of its events is dropped."""
    app = make_app(f"sqlite:///{tmp_path}/hooks.db")
    with app.app_context():
        upgrade(revision="0031")
        db.session.execute(
            text(
                "INSERT INTO organisations (id, name_zh, name_en, uscc, sector, alliance_member, ets_entity, status,"
                " status_reason, contact_name, contact_phone, created_at) VALUES"
                " (1, '甲', 'A', '91150400MA0000001X', 'steel', 0, 0, 'approved', '', '', '', '2024-01-01 00:00:00'),"
                " (2, '乙', 'B', '91150400MA0000002X', 'steel', 0, 0, 'approved', '', '', '', '2024-01-01 00:00:00')"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO webhook_endpoints (public_id, organisation_id, url, events, secret, created_at, deleted_at)"
                " VALUES ('we_1', 1, 'https://a.example/h', 'order.fulfilled', 's', '2025-03-01 08:00:00', NULL),"
                " ('we_0', 1, 'https://a.example/g', 'order.fulfilled', 's', '2025-02-01 08:00:00', '2025-02-02 08:00:00')"
            )
        )
        db.session.commit()
        upgrade()
        since = dict(
            db.session.execute(text("SELECT id, webhooks_since FROM organisations ORDER BY id")).all()
        )
        assert str(since[1]).startswith("2025-02-01 08:00:00") and since[2] is None
        db.session.rollback()
        downgrade(revision="0031")
        db.session.remove()
        db.engine.dispose()
