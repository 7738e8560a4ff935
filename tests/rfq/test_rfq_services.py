"""Requests for quote, the rules: sending one (every bad input refused with nothing saved),
answering, assigning, declining, and turning one into a contract draft through the draft service
(once only, also when two staff try at the same moment on PostgreSQL). SQLite and PostgreSQL."""

from datetime import date
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.contracts import services as contracts
from portal.contracts.models import Contract, ContractStatus
from portal.core.errors import ServiceError
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.rfq import services
from portal.rfq.models import QuoteRequest, QuoteRequestMessage, RfqStatus
from tests.concurrency import race
from tests.rfq.helpers import TODAY, Desk, day, wanted


@pytest.fixture
def desk(any_app):
    return Desk()


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (QuoteRequest, QuoteRequestMessage, Contract, AuditEvent, OutboxMessage)
    )


def send(desk, **change) -> QuoteRequest:
    rfq = services.create_request(desk.steel, desk.buyer, wanted(**change), actor=f"user:{desk.buyer.id}")
    db.session.commit()
    return rfq


def outbox_to(address) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).filter_by(to=address).order_by(OutboxMessage.id)))


def test_a_request_is_saved_numbered_audited_and_told_to_the_sales_team(desk):
    rfq = send(desk, tranches=[{"due": day(430), "quantity": "3000"}, {"due": day(60), "quantity": "2000"}])
    assert rfq.number == f"RFQ-{TODAY.year}-0001"
    assert rfq.status == RfqStatus.NEW and rfq.quantity == 5000
    assert [(t.seq, t.due.isoformat(), t.quantity) for t in rfq.tranches] == [
        (1, day(60), 2000),
        (2, day(430), 3000),
    ]
    assert rfq.listed("standards") == ["CCER"] and rfq.listed("project_types") == ["forestry"]
    assert (rfq.vintage_from, rfq.vintage_to, rfq.price_expectation) == (2021, 2023, Decimal("65.50"))
    event = db.session.scalar(select(AuditEvent).filter_by(action="rfq.create"))
    assert event.subject_id == rfq.number and '"quantity": 5000' in event.after
    # Nobody is assigned yet: the whole sales team hears of it, the buyer's side does not.
    assert len(outbox_to("sales@portal.cn")) == 1 and len(outbox_to("sales2@portal.cn")) == 1
    assert rfq.number in outbox_to("sales@portal.cn")[0].body
    assert outbox_to("procurement@steel.cn") == []
    assert send(desk).number == f"RFQ-{TODAY.year}-0002"


BAD = [
    ({"quantity": "0"}, "invalid_quantity", "quantity"),
    ({"quantity": "-5"}, "invalid_quantity", "quantity"),
    ({"quantity": "2.5"}, "invalid_quantity", "quantity"),
    ({"quantity": "99999999999999"}, "invalid_quantity", "quantity"),
    ({"quantity": "５０００"}, "invalid_quantity", "quantity"),
    ({"quantity": "5001"}, "tranches_total", "tranches"),
    (
        {"tranches": [{"due": day(60), "quantity": "5000"}, {"due": day(-1), "quantity": "0"}]},
        "invalid_tranches",
        "tranches",
    ),
    (
        {"tranches": [{"due": day(-3), "quantity": "2000"}, {"due": day(430), "quantity": "3000"}]},
        "past_date",
        "tranches",
    ),
    (
        {"tranches": [{"due": day(0), "quantity": "2000"}, {"due": day(430), "quantity": "3000"}]},
        "past_date",
        "tranches",
    ),
    (
        {"tranches": [{"due": "2027-02-30", "quantity": "2000"}, {"due": day(430), "quantity": "3000"}]},
        "invalid_tranches",
        "tranches",
    ),
    ({"tranches": []}, "invalid_tranches", "tranches"),
    (
        {"tranches": [{"due": day(60), "quantity": "2000"}, {"due": day(61), "quantity": "3000"}]},
        "invalid_tranches",
        "tranches",
    ),
    ({"schedule": "one_off"}, "invalid_tranches", "tranches"),
    ({"schedule": "monthly"}, "invalid_schedule", "schedule"),
    ({"vintage_from": "2024", "vintage_to": "2021"}, "invalid_vintage", "vintage_to"),
    ({"vintage_from": "1999"}, "invalid_vintage_from", "vintage_from"),
    ({"standards": ["GOLD"]}, "invalid_standards", "standards"),
    ({"project_types": ["coal"]}, "invalid_project_types", "project_types"),
    ({"projects": "NO-SUCH-PROJECT"}, "invalid_projects", "projects"),
    ({"price_expectation": "0"}, "invalid_price_expectation", "price_expectation"),
    ({"price_expectation": "-1"}, "invalid_price_expectation", "price_expectation"),
    ({"contact_email": "not an address"}, "invalid_contact_email", "contact_email"),
    ({"contact_name": "  "}, "invalid_contact_name", "contact_name"),
    ({"notes": "x" * 2001}, "invalid_notes", "notes"),
]


@pytest.mark.parametrize("change, code, field", BAD)
def test_bad_input_is_refused_with_nothing_saved(desk, change, code, field):
    before = counts()
    with pytest.raises(ServiceError) as refused:
        services.create_request(desk.steel, desk.buyer, wanted(**change), actor="t")
    db.session.rollback()
    assert (refused.value.code, refused.value.field, refused.value.status) == (code, field, 400)
    assert counts() == before


def test_refusals_are_translated(desk):
    with force_locale("en"), pytest.raises(ServiceError) as english:
        services.parse_request(wanted(vintage_from="2024", vintage_to="2021"))
    with force_locale("zh_Hans_CN"), pytest.raises(ServiceError) as chinese:
        services.parse_request(wanted(vintage_from="2024", vintage_to="2021"))
    assert english.value.message == "The vintage range is reversed: 2024 comes after 2021."
    assert chinese.value.message == "年份范围颠倒：2024 晚于 2021。"


def test_a_suspended_organisation_may_not_ask(desk):
    desk.steel.status = "suspended"
    db.session.commit()
    before = counts()
    with pytest.raises(ServiceError) as refused:
        services.create_request(desk.steel, desk.buyer, wanted(), actor="t")
    db.session.rollback()
    assert refused.value.code == "buyer_refused" and refused.value.status == 403
    assert counts() == before


def test_staff_reply_moves_it_into_discussion_and_mails_the_buyer(desk):
    rfq = send(desk)
    services.reply(rfq, desk.sales, "我们可以提供 5000 吨，请确认交付日期。", from_staff=True, actor="user:s")
    db.session.commit()
    assert rfq.status == RfqStatus.DISCUSSION
    assert [m.body for m in rfq.messages] == ["我们可以提供 5000 吨，请确认交付日期。"]
    assert "我们可以提供" in outbox_to("procurement@steel.cn")[-1].body
    assert "我们可以提供" in outbox_to("buyer@steel.cn")[-1].body
    services.reply(rfq, desk.buyer, "确认。", from_staff=False, actor="user:b")
    db.session.commit()
    assert rfq.status == RfqStatus.DISCUSSION and len(rfq.messages) == 2
    actions = list(db.session.scalars(select(AuditEvent.action).filter_by(subject_type="rfq")))
    assert actions == ["rfq.create", "rfq.reply", "rfq.reply"]


def test_assigning_routes_the_buyers_replies_to_that_salesperson(desk):
    rfq = send(desk)
    services.assign(rfq, str(desk.other_sales.id), actor="user:s")
    db.session.commit()
    assert rfq.assigned_to == desk.other_sales and rfq.status == RfqStatus.DISCUSSION
    before_first = len(outbox_to("sales@portal.cn"))
    services.reply(rfq, desk.buyer, "请尽快报价", from_staff=False, actor="user:b")
    db.session.commit()
    assert len(outbox_to("sales@portal.cn")) == before_first
    assert "请尽快报价" in outbox_to("sales2@portal.cn")[-1].body
    with pytest.raises(ServiceError) as refused:
        services.assign(rfq, str(desk.operator.id), actor="user:s")  # not a salesperson
    assert refused.value.code == "unknown_salesperson"


def test_a_declined_request_says_why_and_takes_no_more_action(desk):
    rfq = send(desk)
    with pytest.raises(ServiceError) as empty:
        services.decline(rfq, desk.sales, "   ", actor="user:s")
    db.session.rollback()
    assert empty.value.field == "reason" and rfq.status == RfqStatus.NEW
    services.decline(rfq, desk.sales, "该年份的林业碳汇已售罄。", actor="user:s")
    db.session.commit()
    assert rfq.status == RfqStatus.DECLINED and rfq.decline_reason == "该年份的林业碳汇已售罄。"
    assert "已售罄" in outbox_to("procurement@steel.cn")[-1].body
    before = counts()
    for act in (
        lambda: services.reply(rfq, desk.sales, "再看看", from_staff=True, actor="t"),
        lambda: services.decline(rfq, desk.sales, "again", actor="t"),
        lambda: services.convert(rfq, "70.00", user=desk.sales, actor="t"),
    ):
        with pytest.raises(ServiceError) as refused:
            act()
        db.session.rollback()
        assert refused.value.status == 409
    assert counts() == before


def test_converting_makes_a_prefilled_draft_through_the_draft_service(desk):
    rfq = send(desk, projects="")
    services.assign(rfq, str(desk.other_sales.id), actor="user:s")
    db.session.commit()
    contract = services.convert(rfq, "68.00", user=desk.sales, actor=f"user:{desk.sales.id}")
    db.session.commit()
    assert contract.status == ContractStatus.DRAFT and contract.organisation == desk.steel
    assert contract.owner == desk.other_sales  # the assigned salesperson runs it
    assert [(t.due.isoformat(), t.quantity) for t in contract.tranches] == [(day(60), 2000), (day(430), 3000)]
    assert contract.total_quantity == 5000 and contract.price_per_t == Decimal("68.00")
    assert (contract.standard, contract.project_types, contract.vintage_from, contract.vintage_to) == (
        "CCER",
        "forestry",
        2021,
        2023,
    )
    assert contract.start == TODAY and contract.end == date.fromisoformat(day(430))
    assert rfq.number in contract.title
    # Linked both ways, and audited both as a conversion and as a draft.
    assert rfq.status == RfqStatus.CONVERTED and rfq.contract == contract
    assert services.request_for_contract(contract) == rfq
    assert db.session.scalar(
        select(AuditEvent).filter_by(action="contract.draft", subject_id=contract.number)
    )
    event = db.session.scalar(select(AuditEvent).filter_by(action="rfq.convert"))
    assert contract.number in event.after
    # The draft is the contract service's own: it edits like any other draft.
    contracts.update_draft(
        contract, {**contracts.terms_of(contract).as_json(), "price_per_t": "69.00"}, actor="t"
    )


def test_converting_twice_is_refused_and_changes_nothing(desk):
    rfq = send(desk)
    contract = services.convert(rfq, "68.00", user=desk.sales, actor="t")
    db.session.commit()
    before = counts()
    with pytest.raises(ServiceError) as refused:
        services.convert(rfq, "70.00", user=desk.operator, actor="t2")
    db.session.rollback()
    assert refused.value.code == "already_converted" and refused.value.status == 409
    assert contract.number in refused.value.message
    assert counts() == before


@pytest.mark.parametrize("price, field", [("", "price_per_t"), ("0", "price_per_t"), ("abc", "price_per_t")])
def test_a_conversion_the_draft_service_refuses_leaves_the_request_open(desk, price, field):
    rfq = send(desk)
    before = counts()
    with pytest.raises(ServiceError) as refused:
        services.convert(rfq, price, user=desk.sales, actor="t")
    db.session.rollback()
    assert refused.value.field == field
    assert counts() == before
    assert db.session.get(QuoteRequest, rfq.id).status == RfqStatus.NEW


def test_either_standard_and_no_owner_make_an_open_draft(desk):
    rfq = send(desk, standards=["CCER", "VCS"], project_types=[], vintage_from="", vintage_to="")
    contract = services.convert(rfq, "60", user=desk.operator, actor="t")
    db.session.commit()
    assert contract.standard == "" and contract.project_types == ""
    assert contract.vintage_from is None and contract.owner == desk.operator
    assert rfq.assigned_to == desk.operator  # who runs the draft now handles the request


@pytest.mark.postgres
def test_two_staff_converting_at_once_make_one_draft(pg_app):
    desk = Desk()
    rfq = send(desk)
    number = rfq.number
    people = [desk.sales.id, desk.operator.id, desk.other_sales.id, desk.sales.id]
    db.session.remove()

    def work(i):
        from portal.buyers.models import User

        found = services.find(number)
        contract = services.convert(
            found, "68.00", user=db.session.get(User, people[i]), actor=f"user:{people[i]}"
        )
        db.session.commit()
        return contract.number

    outcomes = race(pg_app, len(people), work, refused=(ServiceError,))
    made = [o for o in outcomes if o.startswith("OC-")]
    assert len(made) == 1 and outcomes.count("already_converted") == len(people) - 1
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 1
    assert services.find(number).contract.number == made[0]
