"""Fapiao requests as a service: asked for a paid order or invoice of one's own organisation,
with checked tax details; one standing request at a time; issued with a checked PDF (kept with
its SHA-256), rejected or voided; on SQLite and PostgreSQL."""

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.fapiao import services as fapiao
from portal.fapiao.models import FapiaoRequest
from portal.timeutil import beijing_today
from tests.fapiao.helpers import CEMENT, PDF, STEEL, World, special_details, tax_details


@pytest.fixture
def world(any_app):
    return World(any_app)


def counts():
    return (
        db.session.scalar(select(func.count()).select_from(FapiaoRequest)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def test_a_buyer_requests_a_general_fapiao_for_its_paid_order(world):
    req = fapiao.request_fapiao(
        world.paid, world.steel, "normal", tax_details(taxpayer_id=STEEL.lower()), actor="user:1"
    )
    db.session.commit()
    assert (req.status, req.kind, req.amount, req.taxpayer_id) == (
        "requested",
        "normal",
        world.paid.amount,
        STEEL,
    )
    assert req.public_id.startswith("fp_") and req.subject_number == world.paid.public_id
    event = db.session.scalar(select(AuditEvent).filter_by(action="fapiao.request"))
    assert event.subject_id == req.public_id and json.loads(event.after)["for"] == world.paid.public_id


def test_a_special_fapiao_for_a_paid_invoice_needs_the_bank_details(world):
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.request_fapiao(world.invoice, world.steel, "special", tax_details(), actor="t")
    assert refused.value.field == "address"
    req = fapiao.request_fapiao(world.invoice, world.steel, "special", special_details(), actor="t")
    assert (req.invoice_id, req.order_id, req.bank_account) == (world.invoice.id, None, "0604 0012 3456 7890")


@pytest.mark.parametrize(
    ("kind", "details", "field"),
    [
        ("normal", tax_details(taxpayer_id=STEEL[:-1] + ("0" if STEEL[-1] != "0" else "1")), "taxpayer_id"),
        ("normal", tax_details(taxpayer_id="12345"), "taxpayer_id"),
        ("normal", tax_details(taxpayer_id=None), "taxpayer_id"),
        ("normal", tax_details(title=""), "title"),
        ("normal", tax_details(title="名" * 201), "title"),
        ("normal", tax_details(title="a\u202eb"), "title"),
        ("vat", tax_details(), "kind"),
        ("special", special_details(phone="call me"), "phone"),
        ("special", special_details(bank_account="IBAN 12"), "bank_account"),
    ],
)
def test_bad_tax_details_are_refused_and_nothing_is_stored(world, kind, details, field):
    before = counts()
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.request_fapiao(world.paid, world.steel, kind, details, actor="t")
    db.session.rollback()
    assert refused.value.field == field and refused.value.status == 400
    assert counts() == before


def test_a_phone_number_too_short_is_refused_saying_how_long_it_must_be(world):
    from flask_babel import force_locale

    with force_locale("en"), pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.request_fapiao(world.paid, world.steel, "special", special_details(phone="1"), actor="t")
    assert refused.value.field == "phone" and "5 to 40" in refused.value.message


def test_no_fapiao_for_an_unpaid_order_nor_for_another_organisations(world):
    before = counts()
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.request_fapiao(world.unpaid, world.steel, "normal", tax_details(), actor="t")
    assert (refused.value.code, refused.value.status) == ("not_paid", 409)
    db.session.rollback()
    for subject in (world.theirs, world.invoice):
        with pytest.raises(fapiao.FapiaoError) as refused:
            fapiao.request_fapiao(
                subject,
                world.cement if subject is world.invoice else world.steel,
                "normal",
                tax_details(taxpayer_id=CEMENT),
                actor="t",
            )
        assert (refused.value.code, refused.value.status) == ("not_found", 404)
        db.session.rollback()
    assert counts() == before


def test_one_request_stands_at_a_time_until_it_is_rejected_or_voided(world):
    first = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.request_fapiao(world.paid, world.steel, "special", special_details(), actor="t")
    assert refused.value.code == "already_requested"
    db.session.rollback()
    fapiao.reject(first, "抬头有误", actor="user:2")
    second = fapiao.request_fapiao(
        world.paid, world.steel, "normal", tax_details(title="测试钢铁有限公司"), actor="t"
    )
    fapiao.issue(second, "12345678901234567890", beijing_today().isoformat(), PDF, "e.pdf", actor="user:2")
    db.session.commit()
    with pytest.raises(fapiao.FapiaoError):
        fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.rollback()
    fapiao.void(second, "开错金额", actor="user:2")
    third = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    assert [r.status for r in fapiao.requests_for(world.paid)] == ["requested", "voided", "rejected"]
    assert third.status == "requested"
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("fapiao.%")).order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "fapiao.request",
        "fapiao.rejected",
        "fapiao.request",
        "fapiao.issued",
        "fapiao.voided",
        "fapiao.request",
    ]


def test_the_database_itself_keeps_one_standing_request_per_order(world):
    fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    db.session.add(
        FapiaoRequest(
            public_id="fp_dup",
            organisation_id=world.steel.id,
            order_id=world.paid.id,
            kind="normal",
            amount=world.paid.amount,
            title="x",
            taxpayer_id=STEEL,
            requested_by="t",
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_issuing_keeps_the_pdf_with_its_sha256(world):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    fapiao.issue(req, " 25157000000012345678 ", beijing_today(), PDF, "电子发票.pdf", actor="user:2")
    db.session.commit()
    db.session.expire_all()
    found = fapiao.find(req.public_id)
    assert (found.status, found.fapiao_number, found.issued_on) == (
        "issued",
        "25157000000012345678",
        beijing_today(),
    )
    assert found.pdf_content == PDF and found.pdf_size == len(PDF)
    assert found.pdf_sha256 == hashlib.sha256(PDF).hexdigest()
    assert found.pdf_filename == "电子发票.pdf" and found.decided_by == "user:2"


@pytest.mark.parametrize(
    ("number", "day", "data", "code"),
    [
        ("1234567", 0, PDF, "invalid_fapiao_number"),
        ("1234567A", 0, PDF, "invalid_fapiao_number"),
        ("12345678", 1, PDF, "invalid_issued_on"),
        ("12345678", -400, PDF, "invalid_issued_on"),
        ("12345678", None, PDF, "invalid_issued_on"),
        ("12345678", 0, b"", "missing_pdf"),
        ("12345678", 0, b"PK\x03\x04 a zip, not a PDF %%EOF", "not_a_pdf"),
        ("12345678", 0, b"%PDF-1.7\n" + b"x" * 5000, "not_a_pdf"),
        ("12345678", 0, PDF[:-7] + b" " * (fapiao.MAX_PDF_BYTES) + b"%%EOF\n", "pdf_too_large"),
    ],
)
def test_a_bad_issue_is_refused_and_nothing_is_stored(world, number, day, data, code):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    before = counts()
    issued_on = "3.12.2026" if day is None else (beijing_today() + timedelta(days=day)).isoformat()
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.issue(req, number, issued_on, data, "x.pdf", actor="t")
    db.session.rollback()
    assert refused.value.code == code
    db.session.expire_all()
    found = fapiao.find(req.public_id)
    assert (found.status, found.pdf_sha256, found.fapiao_number) == ("requested", None, None)
    assert counts() == before


def test_only_a_waiting_request_is_issued_or_rejected_and_only_an_issued_one_voided(world):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.void(req, "why", actor="t")
    assert refused.value.code == "wrong_status"
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.reject(req, "  ", actor="t")
    assert refused.value.field == "reason"
    fapiao.reject(req, "重复申请", actor="t")
    with pytest.raises(fapiao.FapiaoError) as refused:
        fapiao.issue(req, "12345678", beijing_today(), PDF, "x.pdf", actor="t")
    assert refused.value.code == "not_requested"
