"""Orders paid by bank transfer: offered above the threshold to approved organisations only, a
longer stated hold, the memo reference, staff recording the transfer (exact amount only) and
the same fulfilment as a card payment; on SQLite and PostgreSQL, and two staff recording at
once on PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers.models import OrgStatus
from portal.core.mail import OutboxMessage
from portal.core.seller import seller
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.revenue.models import RevenueLine
from portal.timeutil import beijing_today, utcnow
from tests import factories
from tests.concurrency import race
from tests.fapiao.helpers import THRESHOLD, place
from tests.offsets.helpers import inventory, state


@pytest.fixture
def shop(any_app):
    any_app.config["BANK_TRANSFER_THRESHOLD"] = THRESHOLD
    steel, cement = factories.steel_and_cement()
    factories.user("buyer@steel.cn", organisation=steel, org_admin=True)
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    return steel, cement


def audit_actions(order) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEvent.action).filter_by(subject_id=order.public_id).order_by(AuditEvent.id)
        )
    )


def test_the_seller_reads_the_configuration_with_the_old_names_as_defaults(app):
    assert seller().name_zh == "赤峰市农投集团"
    assert seller().name_en == "Chifeng Agricultural Investment Group"
    assert seller().transfer_threshold == Decimal("50000.00")
    app.config.update(
        SELLER_NAME_ZH="某某集团", BANK_TRANSFER_THRESHOLD="12.5", SELLER_BANK_ACCOUNT="1234567890"
    )
    assert seller().name_zh == "某某集团"
    assert seller().transfer_threshold == Decimal("12.50")
    assert seller().account_display == "1234 5678 90"
    app.config["BANK_TRANSFER_THRESHOLD"] = "not a number"  # a bad setting falls back, never 0
    assert seller().transfer_threshold == Decimal("50000.00")


def test_choosing_a_transfer_gives_a_reference_and_a_longer_stated_hold(shop):
    steel, _ = shop
    order = place(steel)
    assert orders.transfer_offered(order)
    orders.choose_transfer(order, actor="user:1")
    db.session.commit()
    assert order.pays_by_transfer
    assert order.transfer_reference.startswith("ZZ-") and len(order.transfer_reference) == 12
    assert order.hold_expires_at == order.created_at + timedelta(days=7)
    assert audit_actions(order) == ["order.create", "order.transfer_chosen"]
    # Chosen twice: the same reference, nothing more recorded.
    reference = order.transfer_reference
    orders.choose_transfer(order, actor="user:1")
    assert order.transfer_reference == reference and len(audit_actions(order)) == 2
    # A day after the 30 minutes of a card order, the hold still stands.
    assert orders.expire_due(utcnow() + timedelta(days=1)) == []
    assert order.status == "awaiting_payment"
    assert [o.public_id for o in orders.awaiting_transfers()] == [order.public_id]
    assert orders.find_by_transfer_reference(reference.lower()) == order


def test_a_transfer_is_not_offered_at_or_below_the_threshold_nor_to_an_unapproved_organisation(shop, any_app):
    steel, _ = shop
    order = place(steel)  # 600.00
    db.session.commit()
    any_app.config["BANK_TRANSFER_THRESHOLD"] = "600.00"  # "above": not at
    before = state(), order.hold_expires_at
    with pytest.raises(orders.OrderError) as refused:
        orders.choose_transfer(order, actor="t")
    assert refused.value.code == "transfer_not_offered" and refused.value.status == 403
    db.session.rollback()
    any_app.config["BANK_TRANSFER_THRESHOLD"] = THRESHOLD
    steel.status = OrgStatus.RESTRICTED
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        orders.choose_transfer(order, actor="t")
    assert refused.value.code == "transfer_not_offered"
    db.session.rollback()
    assert (state(), order.hold_expires_at) == before and not order.pays_by_transfer


def test_recording_the_exact_transfer_fulfils_the_order_as_a_card_payment_would(shop):
    steel, _ = shop
    order = orders.choose_transfer(place(steel), actor="t")
    db.session.commit()
    left = inventory()
    orders.record_transfer(order, "600.00", beijing_today().isoformat(), "ICBC-20261203-0001", actor="user:9")
    db.session.commit()
    assert order.status == "fulfilled" and order.certificate is not None
    assert order.certificate.quantity == 10
    assert (order.transfer_amount, order.transfer_received_on, order.transfer_bank_reference) == (
        Decimal("600.00"),
        beijing_today(),
        "ICBC-20261203-0001",
    )
    assert inventory() == left  # retired from the hold, not from what is for sale
    assert audit_actions(order)[-2:] == ["order.transfer_recorded", "order.fulfilled"]
    assert db.session.scalar(select(AuditEvent.actor).filter_by(action="order.fulfilled")) == "user:9"
    revenue = db.session.scalar(
        select(func.sum(RevenueLine.amount_fen)).filter_by(sale_kind="order", sale_ref=order.public_id)
    )
    assert revenue == 60000
    receipt = db.session.scalars(select(OutboxMessage)).all()[-1]
    assert seller().uscc in receipt.body and order.public_id in receipt.body
    assert verify_ledger().ok


@pytest.mark.parametrize(
    ("amount", "received", "reference", "code"),
    [
        ("599.99", 0, "B-1", "wrong_amount"),
        ("600.01", 0, "B-1", "wrong_amount"),
        ("6000", 0, "B-1", "wrong_amount"),
        ("-600", 0, "B-1", "invalid_amount"),
        ("600.001", 0, "B-1", "invalid_amount"),
        ("六百", 0, "B-1", "invalid_amount"),
        ("600.00", 1, "B-1", "invalid_received_on"),
        ("600.00", -30, "B-1", "invalid_received_on"),
        ("600.00", None, "B-1", "invalid_received_on"),
        ("600.00", 0, "", "invalid_reference"),
        ("600.00", 0, "x" * 201, "invalid_reference"),
    ],
)
def test_a_wrong_transfer_is_refused_and_nothing_changes(shop, amount, received, reference, code):
    steel, _ = shop
    order = orders.choose_transfer(place(steel), actor="t")
    db.session.commit()
    before = state(), len(audit_actions(order))
    day = "2026-13-01" if received is None else (beijing_today() + timedelta(days=received)).isoformat()
    with pytest.raises(orders.OrderError) as refused:
        orders.record_transfer(order, amount, day, reference, actor="t")
    db.session.rollback()
    assert refused.value.code == code
    if code == "wrong_amount":
        assert "600.00" in refused.value.message and refused.value.field == "amount"
    assert (state(), len(audit_actions(order))) == before
    assert db.session.get(Order, order.id).status == "awaiting_payment"


def test_a_transfer_is_recorded_only_for_an_order_paid_by_transfer_once_and_within_its_hold(shop):
    steel, _ = shop
    online = place(steel)
    with pytest.raises(orders.OrderError) as refused:
        orders.record_transfer(online, "600.00", beijing_today().isoformat(), "B-1", actor="t")
    assert refused.value.code == "not_by_transfer"
    db.session.rollback()
    first = orders.choose_transfer(place(steel), actor="t")
    orders.record_transfer(first, "600.00", beijing_today().isoformat(), "B-1", actor="t")
    second = orders.choose_transfer(place(steel), actor="t")
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:  # one bank transfer pays one order
        orders.record_transfer(second, "600.00", beijing_today().isoformat(), "B-1", actor="t")
    assert refused.value.code == "duplicate_reference"
    db.session.rollback()
    with pytest.raises(orders.OrderError) as refused:  # paid already
        orders.record_transfer(first, "600.00", beijing_today().isoformat(), "B-2", actor="t")
    assert refused.value.code == "not_payable"
    db.session.rollback()
    second.hold_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        orders.record_transfer(second, "600.00", beijing_today().isoformat(), "B-3", actor="t")
    assert refused.value.code == "hold_expired"
    assert second.public_id in refused.value.message  # named in the message (in the reader's language)
    db.session.rollback()
    # After its days the transfer order expires like any other.
    assert [o.id for o in orders.expire_due()] == [second.id]
    assert db.session.get(Order, second.id).status == "expired"


def test_an_order_paid_by_transfer_cannot_be_paid_online_too(shop):
    steel, _ = shop
    order = orders.choose_transfer(place(steel), actor="t")
    with pytest.raises(orders.OrderError) as refused:
        orders.fresh_attempt(order, actor="t")
    assert refused.value.code == "pays_by_transfer"
    orders.ensure_payment(order)  # no PaymentIntent is made for it
    assert order.payment_intent_id is None


def test_an_expired_order_cannot_switch_to_a_transfer(shop):
    steel, _ = shop
    order = place(steel)
    order.hold_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        orders.choose_transfer(order, actor="t")
    assert refused.value.code == "not_payable"
    assert order.status == "expired" and not order.pays_by_transfer


def test_two_staff_recording_transfers_for_one_order_at_once_fulfil_it_once(pg_app):
    pg_app.config["BANK_TRANSFER_THRESHOLD"] = THRESHOLD
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    order = orders.choose_transfer(place(steel), actor="t")
    db.session.commit()
    order_id = order.id

    def work(i):
        found = db.session.get(Order, order_id)
        orders.record_transfer(found, "600.00", beijing_today().isoformat(), f"B-{i}", actor=f"user:{i}")
        db.session.commit()
        return "fulfilled"

    outcomes = race(pg_app, 4, work, refused=(orders.OrderError,))
    assert sorted(outcomes) == ["fulfilled", "not_payable", "not_payable", "not_payable"]
    db.session.expire_all()
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="order.fulfilled"))
        == 1
    )
    assert verify_ledger().ok
