"""Irreversible actions ask first: posted without the confirmation, each shows what will happen
and changes nothing; posted with it (as its confirmation page posts), it is done. The status
control shows the status an organisation has; drafts are deleted, signed contracts terminated."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.buyers.models import ApiKey
from portal.buyers.uscc import check_character
from portal.certificates import services as certificates
from portal.certificates.models import Certificate
from portal.contracts import services as contracts
from portal.contracts.models import Contract, Tranche
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from tests import factories
from tests.contracts.test_contract_views import EMAILS, Desk, sign_in
from tests.visible import selected_option, visible_text

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC


@pytest.fixture
def desk(app):
    return Desk()


def changes():
    """Everything an action could have written."""
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (AuditEvent, LedgerEntry, Certificate, Contract, Tranche)
    )


def asks(response, *phrases):
    """The response is the confirmation page: it says what will happen and posts the same form
    again with the confirmation."""
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    text = visible_text(html)
    assert "Please check before you go on" in text
    for phrase in phrases:
        assert phrase in text, phrase
    assert re.search(r'<input type="hidden" name="confirm" value="yes">', html)
    return html


# --- organisations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "extra", "phrases"),
    [
        ("suspended", {}, ["Suspend 测试钢铁?", "cannot sign in", "announced publicly on the Notices page"]),
        ("barred", {}, ["Bar 测试钢铁?", "cannot buy, retire or receive credits"]),
        (
            "restricted",
            {"order_limit_t": "50", "year_limit_t": "500"},
            ["Restrict 测试钢铁?", "Limit per order 50 t", "Limit per year 500 t"],
        ),
    ],
)
def test_a_measure_against_an_organisation_asks_first(desk, client, status, extra, phrases):
    sign_in(client, "operator")
    before = changes()
    data = {"status": status, "reason": "核查中", **extra}
    html = asks(client.post(f"/staff/organisations/{STEEL}/status?lang=en", data=data), *phrases)
    assert 'name="reason" value="核查中"' in html  # the form, carried over
    db.session.refresh(desk.steel)
    assert desk.steel.status == "approved" and changes() == before
    done = client.post(f"/staff/organisations/{STEEL}/status?lang=en", data={**data, "confirm": "yes"})
    assert done.status_code == 303
    db.session.refresh(desk.steel)
    assert desk.steel.status == status


def test_reinstating_needs_no_confirmation(desk, client):
    buyers.change_status(desk.steel, "suspended", reason="x", actor="t")
    db.session.commit()
    sign_in(client, "operator")
    response = client.post(
        f"/staff/organisations/{STEEL}/status", data={"status": "approved", "reason": "ok"}
    )
    assert response.status_code == 303
    db.session.refresh(desk.steel)
    assert desk.steel.status == "approved"


def test_a_refused_change_is_said_before_any_confirmation(desk, client):
    sign_in(client, "operator")
    response = client.post(
        f"/staff/organisations/{STEEL}/status?lang=en",
        data={"status": "restricted", "reason": "x"},
        follow_redirects=True,
    )
    assert "A restriction needs a per-order or per-year limit." in visible_text(
        response.get_data(as_text=True)
    )
    assert "Please check before you go on" not in response.get_data(as_text=True)


def test_the_message_after_a_status_change_names_the_status_in_words(desk, client):
    sign_in(client, "operator")
    data = {"status": "suspended", "reason": "审计中", "confirm": "yes"}
    response = client.post(f"/staff/organisations/{STEEL}/status?lang=en", data=data, follow_redirects=True)
    assert "Status of 测试钢铁 changed to Suspended." in visible_text(response.get_data(as_text=True))
    data = {"status": "approved", "reason": "审计结束"}
    response = client.post(f"/staff/organisations/{STEEL}/status?lang=zh", data=data, follow_redirects=True)
    text = visible_text(response.get_data(as_text=True))
    assert "测试钢铁 的状态已变更为“已批准”。" in text and "approved" not in text  # it said "is now approved"


@pytest.mark.parametrize("status", ["suspended", "restricted", "barred", "approved"])
def test_the_status_control_shows_the_status_the_organisation_has(desk, client, status):
    if status != "approved":
        limits = {"order_limit_t": 50} if status == "restricted" else {}
        buyers.change_status(desk.steel, status, reason="核查", actor="t", **limits)
        db.session.commit()
    sign_in(client, "operator")
    html = client.get("/staff/organisations?lang=en").get_data(as_text=True)
    assert selected_option(html, "status", STEEL) == status
    assert selected_option(html, "status", CEMENT) == "approved"
    if status == "restricted":  # its limits are there too, to keep or change
        row = next(r for r in html.split("<tr") if STEEL in r)
        assert 'name="order_limit_t" min="1" value="50"' in row


def test_a_pending_organisation_offers_no_status_until_one_is_chosen(desk, client):
    code = "91150400MA0000009" + check_character("91150400MA0000009")
    pending = buyers.create_organisation(name_zh="待审机构", uscc=code, sector="other")
    db.session.commit()
    sign_in(client, "operator")
    html = client.get("/staff/organisations?lang=en").get_data(as_text=True)
    assert selected_option(html, "status", code) == ""  # "Pending approval", not a status to apply
    response = client.post(
        f"/staff/organisations/{code}/status?lang=en",
        data={"status": "", "reason": "x"},
        follow_redirects=True,
    )
    assert "Choose the new status." in visible_text(response.get_data(as_text=True))
    db.session.refresh(pending)
    assert pending.status == "pending"


# --- certificates, retirement, API keys ----------------------------------------------------------


def _holding(desk, quantity=30) -> int:
    """What the steel company holds after ``quantity`` t more are delivered to it."""
    buyers.deliver_from_inventory(desk.steel, quantity, actor="t")
    db.session.commit()
    return sum(b.quantity for b in buyers.holding_blocks(desk.steel))


def test_retiring_from_the_holding_asks_first(desk, client):
    held = _holding(desk)
    sign_in(client, "buyer")
    data = {"quantity": "12", "beneficiary": "测试钢铁", "purpose": "voluntary", "purpose_detail": "2026年"}
    before = changes()
    asks(
        client.post("/account/retire?lang=en", data=data),
        "Retire 12 t?",
        f"12 t of the {held} t you hold",
        "leave your holding for good",
        "naming 测试钢铁",
    )
    assert changes() == before
    done = client.post("/account/retire", data={**data, "confirm": "yes"})
    assert done.status_code == 302
    assert db.session.scalar(select(Certificate.quantity)) == 12


def test_a_retirement_beyond_the_holding_is_refused_before_it_is_confirmed(desk, client):
    held = _holding(desk, 10)
    sign_in(client, "buyer")
    data = {"quantity": str(held + 1), "beneficiary": "测试钢铁", "purpose": "voluntary"}
    response = client.post("/account/retire?lang=en", data=data)
    assert response.status_code == 409
    assert f"Your holding has {held} t" in visible_text(response.get_data(as_text=True))


def test_revoking_a_certificate_asks_first(desk, client):
    _holding(desk)
    cert, _ = certificates.retire_from_holding(desk.steel, 5, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    sign_in(client, "operator")
    before = changes()
    asks(
        client.post(f"/certificates/{cert.number}/revoke?lang=en", data={"reason": "登记机构撤回"}),
        f"Revoke certificate {cert.number}?",
        "The credits stay retired",
        "登记机构撤回",
    )
    db.session.refresh(cert)
    assert cert.status == "valid" and changes() == before
    done = client.post(
        f"/certificates/{cert.number}/revoke", data={"reason": "登记机构撤回", "confirm": "yes"}
    )
    assert done.status_code == 302
    db.session.refresh(cert)
    assert cert.status == "revoked"


def test_revoking_an_api_key_asks_first(desk, client, app):
    key = factories.api_key(app, "--org", STEEL)
    prefix = key.split("_")[1]
    sign_in(client, "buyer")
    asks(
        client.post(f"/account/keys/{prefix}/revoke?lang=en"),
        f"Revoke the API key {prefix}?",
        "refused from now on",
    )
    assert db.session.scalar(select(ApiKey.revoked_at).filter_by(prefix=prefix)) is None
    assert client.post(f"/account/keys/{prefix}/revoke", data={"confirm": "yes"}).status_code == 303
    assert db.session.scalar(select(ApiKey.revoked_at).filter_by(prefix=prefix)) is not None


# --- contracts ----------------------------------------------------------------------------------


def test_delivering_a_tranche_asks_first(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    data = {
        "tranche": "1",
        "quantity": "5",
        "mode": "retire",
        "beneficiary": "2026 马拉松",
        "idempotency_key": "d-9",
    }
    before = changes()
    html = asks(
        client.post(f"/staff/contracts/{n}/deliver?lang=en", data=data),
        f"Deliver 5 t of tranche 1 of contract {n}?",
        "5 t are retired for 2026 马拉松",
        "Invoice of CN¥350.00 (5 t at CN¥70.00)",
    )
    assert 'name="idempotency_key" value="d-9"' in html  # a double click still delivers once
    assert changes() == before
    assert client.post(f"/staff/contracts/{n}/deliver", data={**data, "confirm": "yes"}).status_code == 303
    assert sum(t.delivered for t in desk.active.tranches) == 25


def test_terminating_a_contract_asks_first(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    before = changes()
    reserved = contracts.reserved(desk.active)
    asks(
        client.post(f"/staff/contracts/{n}/terminate?lang=en", data={"reason": "买方破产"}),
        f"Terminate contract {n}?",
        f"The {reserved} t reserved for it go back to inventory",
        "Invoices already issued stay payable",
    )
    db.session.refresh(desk.active)
    assert desk.active.status == "active" and changes() == before
    done = client.post(f"/staff/contracts/{n}/terminate", data={"reason": "买方破产", "confirm": "yes"})
    assert done.status_code == 303
    db.session.refresh(desk.active)
    assert desk.active.status == "terminated"


def test_a_draft_is_deleted_after_confirmation_and_the_audit_log_keeps_it(desk, client):
    sign_in(client, "sales")
    n = desk.draft.number
    page = visible_text(client.get(f"/staff/contracts/{n}?lang=en").get_data(as_text=True))
    assert "Delete the draft" in page and "Terminate the contract" not in page
    before = changes()
    asks(client.post(f"/staff/contracts/{n}/delete?lang=en"), f"Delete draft {n}?", "never signed")
    assert changes() == before
    done = client.post(f"/staff/contracts/{n}/delete?lang=en", data={"confirm": "yes"}, follow_redirects=True)
    assert f"Draft {n} is deleted." in visible_text(done.get_data(as_text=True))
    assert contracts.find(n) is None
    event = db.session.scalar(select(AuditEvent).filter_by(action="contract.delete", subject_id=n))
    assert event.actor == f"user:{desk.sales.id}" and "草稿" in event.before
    assert client.get(f"/staff/contracts/{n}").status_code == 404
    # The audit log still reads it, by name.
    client.post("/logout")
    sign_in(client, "auditor")
    text = visible_text(client.get("/staff/audit?lang=en&action=contract.delete").get_data(as_text=True))
    assert "Draft contract deleted" in text and "Title: 草稿" in text and EMAILS["sales"] in text


def test_a_signed_contract_cannot_be_deleted_and_a_draft_is_not_terminated(desk, client):
    sign_in(client, "sales")
    before = changes()
    for confirm in ({}, {"confirm": "yes"}):
        response = client.post(f"/staff/contracts/{desk.active.number}/delete?lang=en", data=confirm)
        assert response.status_code == 409
        assert "Only a draft can be deleted" in visible_text(response.get_data(as_text=True))
    response = client.post(
        f"/staff/contracts/{desk.draft.number}/terminate?lang=en", data={"reason": "x", "confirm": "yes"}
    )
    assert response.status_code == 409 and "A draft is deleted, not terminated" in response.get_data(
        as_text=True
    )
    assert changes() == before
    with pytest.raises(contracts.ContractError) as refused:
        contracts.delete_draft(desk.active, actor="t")
    assert refused.value.status == 409 and refused.value.code == "signed_contract"
    db.session.rollback()
    assert contracts.find(desk.active.number).status == "active"


@pytest.mark.parametrize("role", ["buyer", "operator", "auditor"])
def test_only_sales_delete_drafts(desk, client, role):
    sign_in(client, role)
    response = client.post(f"/staff/contracts/{desk.draft.number}/delete", data={"confirm": "yes"})
    assert response.status_code == 403
    assert contracts.find(desk.draft.number) is not None
