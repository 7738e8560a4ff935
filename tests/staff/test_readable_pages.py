"""The back office shows names, labels and readable changes, never raw codes: ledger journal kinds
and accounts, audit actors, actions and before → after, the flash after a status change."""

import csv
import io
import re

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from tests import factories
from tests.visible import visible_text

STEEL, PASSWORD = factories.STEEL_USCC, factories.PASSWORD
#: Codes that must never be a page's visible text.
RAW = re.compile(r"\b(issue|transfer|retire|cancel)\b|hold:order:|holding:|reserve:|user:\d|\{\"")


@pytest.fixture
def office(app):
    org = buyers.create_organisation(
        name_zh="测试钢铁", name_en="Test Steel", uscc=STEEL, sector="steel", approve=True
    )
    operator = factories.user("operator@example.cn", role="operator")
    factories.user("auditor@example.cn", role="auditor")
    batch = factories.batch(quantity=100, code="B-READ")
    db.session.flush()
    actor = f"user:{operator.id}"
    hold = ledger.open_account(AccountKind.HOLD, "order:ord_read1", capacity=10)
    ledger.transfer(
        10,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=hold,
        reference="order:ord_read1",
        actor=actor,
    )
    buyers.deliver_from_inventory(org, 20, actor=actor)
    ledger.retire(
        5, source=buyers.holding_account(org), reference="certificate:CFC-2026-TEST-0001", actor="stripe"
    )
    db.session.commit()
    return org, operator, batch


def sign_in(client, email):
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302


def test_the_journal_names_kinds_accounts_references_and_actors(office, client):
    org, operator, _batch = office
    sign_in(client, "auditor@example.cn")
    for lang in ("zh", "en"):
        html = client.get(f"/staff/journal?lang={lang}").get_data(as_text=True)
        text = visible_text(html)
        assert not RAW.search(text), RAW.search(text)
        assert operator.email in text
    # The English page, by name; the codes stay in tooltips, the order is a link.
    html = client.get("/staff/journal?lang=en").get_data(as_text=True)
    text = visible_text(html)
    for label in (
        "Issuance",
        "Transfer",
        "Retirement",
        "Inventory for sale",
        "Hold for order ord_read1",
        "Holding of Test Steel",
        "Offline sale to Test Steel",
        "Certificate CFC-2026-TEST-0001",
        "Stripe (payment events)",
    ):
        assert label in text, label
    assert '<a href="/orders/ord_read1" title="hold:order:ord_read1">Hold for order ord_read1</a>' in html
    assert f'title="holding:{STEEL}"' in html and f'title="user:{operator.id}"' in html
    zh = visible_text(client.get("/staff/journal?lang=zh").get_data(as_text=True))
    assert "订单 ord_read1 的锁定" in zh and "测试钢铁 的持有账户" in zh and "签发" in zh


def test_the_journal_export_keeps_the_codes_and_adds_the_names(office, client):
    sign_in(client, "auditor@example.cn")
    text = client.get("/staff/journal.csv?lang=en&kind=transfer").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    held = next(r for r in rows if r["to"] == "hold:order:ord_read1")
    assert held["kind"] == "transfer" and held["kind_name"] == "Transfer"
    assert held["to_name"] == "Hold for order ord_read1" and held["from_name"] == "Inventory for sale"
    assert held["actor"].startswith("user:") and held["actor_name"] == "operator@example.cn"


def test_the_audit_log_shows_who_and_what_changed_before_and_after(office, client):
    org, operator, _batch = office
    buyers.change_status(org, "suspended", reason="审计中", actor=f"user:{operator.id}")
    buyers.change_status(org, "approved", reason="审计结束", actor=f"user:{operator.id}")
    db.session.commit()
    sign_in(client, "auditor@example.cn")
    en = visible_text(client.get("/staff/audit?lang=en").get_data(as_text=True))
    assert "Organisation suspended" in en and "Test Steel" in en
    assert "Status: Approved → Suspended" in en and "Reason: — → 审计中" in en
    assert "Status: Suspended → Approved" in en and "Reason: 审计中 → 审计结束" in en
    assert operator.email in en and "User created" in en
    assert not RAW.search(en) and "organisation.suspended" not in en and "_limit_t" not in en
    zh = visible_text(client.get("/staff/audit?lang=zh").get_data(as_text=True))
    assert "状态：已批准 → 已暂停" in zh and "暂停机构" in zh
    assert not RAW.search(zh) and "suspended" not in zh


def test_an_update_shows_only_the_fields_it_changed_and_a_creation_its_values(office, client):
    _org, operator, batch = office
    from portal.catalog import services as catalog

    catalog.set_listing(batch, price_per_t=__import__("decimal").Decimal("75.50"), active=True, actor="cli")
    db.session.commit()
    sign_in(client, "auditor@example.cn")
    text = visible_text(client.get("/staff/audit?lang=en&action=listing.update").get_data(as_text=True))
    assert "Price per tonne: CN¥68.00 → CN¥75.50" in text
    assert "On sale:" not in text  # unchanged: left out
    text = visible_text(client.get("/staff/audit?lang=en&action=user.create").get_data(as_text=True))
    assert "Role: Operator" in text and "E-mail: operator@example.cn" in text and "Command line" in text


def test_the_audit_export_keeps_the_codes_and_adds_the_changes_in_words(office, client):
    buyers.change_status(office[0], "barred", reason="虚假交易", actor=f"user:{office[1].id}")
    db.session.commit()
    sign_in(client, "auditor@example.cn")
    text = client.get("/staff/audit.csv?lang=en&action=organisation.barred").get_data(as_text=True)
    (row,) = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert row["actor"] == f"user:{office[1].id}" and row["actor_name"] == "operator@example.cn"
    assert row["action"] == "organisation.barred" and row["action_name"] == "Organisation barred"
    assert '"status": "barred"' in row["after"]
    assert "Status: Approved → Barred" in row["changes"] and row["subject_name"] == "Test Steel"


def test_unknown_or_broken_records_are_shown_as_they_are_without_an_error(office, client):
    db.session.add(
        AuditEvent(actor="someone", action="x.y", subject_type="thing", subject_id="1", after="not json")
    )
    db.session.add(
        AuditEvent(
            actor="user:99999",
            action="x.z",
            subject_type="user",
            subject_id="99999",
            before="[1]",
            after=None,
        )
    )
    db.session.commit()
    sign_in(client, "auditor@example.cn")
    response = client.get("/staff/audit?lang=en")
    text = visible_text(response.get_data(as_text=True))
    assert response.status_code == 200 and "not json" in text and "User 99999" in text
    assert db.session.scalar(select(AuditEvent).filter_by(action="x.y")) is not None


def test_the_back_office_home_names_its_latest_entries_and_events(office, client):
    """The latest journal entries and audit events on the back office's first page are shown as
    on the journal and the audit log: kinds, accounts, actors, actions and subjects by name."""
    _org, operator, _batch = office
    sign_in(client, "auditor@example.cn")
    for lang in ("zh", "en"):
        html = client.get(f"/staff/?lang={lang}").get_data(as_text=True)
        text = visible_text(html)
        assert not RAW.search(text), RAW.search(text)
        assert "user.create" not in text and "organisation.create" not in text
    en = visible_text(client.get("/staff/?lang=en").get_data(as_text=True))
    assert "Retirement" in en and "Hold for order ord_read1" in en and "Holding of Test Steel" in en
    assert "Command line" in en and "User created" in en and operator.email in en
    zh = visible_text(client.get("/staff/?lang=zh").get_data(as_text=True))
    assert "注销" in zh and "订单 ord_read1 的锁定" in zh


def test_pipeline_values_counties_dates_and_forecasts_read_as_words(office, client):
    from portal.audit import services as audit

    factories.region("aohan")
    audit.record(
        "cli:demo",
        "pipeline.stage",
        "pipeline_project",
        "CF-AOHAN-P03",
        before={"stage": "assessment"},
        after={"stage": "design_document", "reached_on": "2025-11-11"},
    )
    audit.record(
        "cli:demo",
        "pipeline.review_approved",
        "pipeline_project",
        "CF-AOHAN-P03",
        after={"decision": "approved"},
    )
    audit.record(
        "cli:demo",
        "parcel.enroll",
        "parcel",
        "P-1",
        after={
            "county": "aohan",
            "land_type": "forest",
            "tenure": "state_forest_farm",
            "agreement": "CFNT-1",
        },
    )
    audit.record(
        "cli:demo",
        "pipeline.forecast",
        "pipeline_project",
        "CF-AOHAN-P03",
        after={"lines": [{"vintage": 2027, "expected_t": 436, "low_t": 349, "high_t": 545}]},
    )
    db.session.commit()
    sign_in(client, "auditor@example.cn")
    en = visible_text(client.get("/staff/audit?lang=en").get_data(as_text=True))
    assert "Stage: Assessment → Project design document" in en
    assert "11 Nov 2025" in en and "2025-11-11" not in en
    assert "Decision: Approved" in en
    assert "Forest land" in en and "State forest farm" in en and "Agreement: CFNT-1" in en
    assert "County: Test Banner" in en
    assert "2027: 436 t (349–545 t)" in en and "expected_t" not in en
    zh = visible_text(client.get("/staff/audit?lang=zh").get_data(as_text=True))
    assert "2025年11月11日" in zh and "测试旗" in zh and "design_document" not in zh and "forest" not in zh
    assert "2027: 436 吨（349–545 吨）" in zh
