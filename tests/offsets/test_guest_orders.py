"""Guest checkout, the service: a guest's details checked, the order held as the guest
organisation's with its own limits (per order, per day by e-mail, per client address), the link's
token kept as a hash only, and the same fulfilment path as any order after the signed webhook: a
certificate naming the guest, verified and listed like any other."""

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers.models import Organisation
from portal.certificates import services as certificates
from portal.core import throttle
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.offsets import guests
from portal.offsets import services as orders
from portal.offsets.models import GuestBuyer, Order
from portal.timeutil import utcnow
from tests import factories
from tests.concurrency import race
from tests.offsets.helpers import inventory, state
from tests.payments import LiveShop, localstripe, wait_for  # noqa: F401

#: A valid USCC (the steel works of the factories), and the same with a wrong check character.
USCC = factories.STEEL_USCC
BAD_USCC = USCC[:17] + ("0" if USCC[17] != "0" else "1")


def _details(**change):
    values = {"name": "李华", "email": "Li.Hua@Example.cn", "organisation_name": "", "uscc": "", **change}
    return orders.check_details(**values)


def _place(details=None, lines=None, address="203.0.113.9", **kw):
    return orders.place_order(
        details or _details(),
        lines=lines or [{"batch_code": "OLD-2021", "quantity": 5}],
        purpose=kw.pop("purpose", "event"),
        purpose_detail=kw.pop("purpose_detail", "红山马拉松"),
        address=address,
        **kw,
    )


# --- the guest's details ---------------------------------------------------------------------


def test_details_are_checked_and_normalised(app):
    found = _details(organisation_name=" 红山文化节组委会 ", uscc=USCC.lower())
    assert found == orders.GuestDetails("李华", "li.hua@example.cn", "红山文化节组委会", USCC)
    assert _details().uscc is None and _details().organisation_name == ""


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"email": "not-an-address"}, "invalid_email", "email"),
        ({"email": "a@b"}, "invalid_email", "email"),
        ({"email": "a b@example.cn"}, "invalid_email", "email"),
        ({"email": None}, "invalid_email", "email"),
        ({"name": "  "}, "invalid_name", "name"),
        ({"name": "x" * 101}, "invalid_name", "name"),
        ({"name": "A\u202eB"}, "invalid_name", "name"),
        ({"uscc": BAD_USCC, "organisation_name": "某公司"}, "invalid_uscc", "uscc"),
        ({"uscc": "12345", "organisation_name": "某公司"}, "invalid_uscc", "uscc"),
        ({"uscc": USCC}, "invalid_organisation_name", "organisation_name"),
    ],
)
def test_bad_details_are_refused_clearly(app, change, code, field):
    with pytest.raises(orders.OrderError) as refused:
        _details(**change)
    assert (refused.value.code, refused.value.field, refused.value.status) == (code, field, 400)
    assert refused.value.message


def test_a_wrong_check_character_is_named_in_chinese_and_english(app):
    from flask_babel import force_locale

    for locale, word in (("zh_Hans_CN", "校验"), ("en", "check character")):
        with app.test_request_context("/"), force_locale(locale):
            with pytest.raises(orders.OrderError) as refused:
                _details(uscc=BAD_USCC, organisation_name="某公司")
            assert word in refused.value.message


# --- placing a guest order -------------------------------------------------------------------


def test_a_guest_order_is_held_for_the_guest_organisation_and_mails_its_link(any_app, stock):
    order, token = _place(_details(organisation_name="红山文化节组委会", uscc=USCC))
    db.session.commit()
    assert order.status == "awaiting_payment" and order.quantity == 5 and inventory() == 195
    assert order.organisation.uscc == guests.GUEST_USCC and order.organisation.status == "approved"
    assert order.user_id is None and order.beneficiary == "红山文化节组委会"  # the organisation given
    guest = order.guest
    assert (guest.name, guest.email, guest.uscc) == ("李华", "li.hua@example.cn", USCC)
    # Only the token's hash is kept.
    assert guest.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in guest.token_hash
    message = db.session.scalar(select(OutboxMessage).filter_by(to="li.hua@example.cn"))
    assert f"/guest/orders/{order.public_id}/{token}" in message.body and order.public_id in message.subject
    actions = set(db.session.scalars(select(AuditEvent.action).filter_by(subject_id=order.public_id)))
    assert {"order.create", "guest.order"} <= actions
    # A second guest order shares the guest organisation.
    second, _token = _place(_details(email="other@example.cn"))
    assert second.organisation_id == order.organisation_id
    assert (
        db.session.scalar(select(Organisation.id).filter_by(uscc=guests.GUEST_USCC)) == order.organisation_id
    )


def test_the_link_finds_the_order_only_with_its_own_unexpired_token(any_app, stock):
    order, token = _place()
    other, other_token = _place(_details(email="b@example.cn"))
    db.session.commit()
    assert orders.find_order(order.public_id, token) is order
    assert orders.find_order(order.public_id, other_token) is None  # another person's token
    assert orders.find_order(order.public_id, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert orders.find_order(order.public_id, "") is None and orders.find_order(order.public_id, None) is None
    assert orders.find_order("ord_nothing", token) is None
    # An ordinary order has no link at all.
    steel, _ = stock
    plain, _ = orders.create_order(steel, 1, beneficiary="x", purpose="voluntary", actor="t")
    assert orders.find_order(plain.public_id, token) is None
    order.guest.link_expires_at = utcnow() - timedelta(seconds=1)
    assert orders.find_order(order.public_id, token) is None


def test_compliance_is_refused_to_guests_and_nothing_is_held(app, stock):
    before = state()
    with pytest.raises(orders.OrderError) as refused:
        _place(purpose="compliance")
    assert refused.value.code == "guest_compliance" and refused.value.status == 403
    db.session.rollback()
    assert state() == before and inventory() == 200


@pytest.mark.parametrize("quantity", [0, -3, "1.5", 2.5, "10000000000000", "", None, "一"])
def test_bad_quantities_hold_nothing(app, stock, quantity):
    before = state()
    with pytest.raises(orders.OrderError) as refused:
        _place(lines=[{"batch_code": "OLD-2021", "quantity": quantity}])
    assert refused.value.code == "invalid_quantity"
    db.session.rollback()
    assert state() == before and inventory() == 200
    assert db.session.scalar(select(GuestBuyer.id)) is None


def test_a_guest_order_is_limited_as_the_smallest_buyer(app, stock):
    factories.batch(quantity=3000, code="BIG-2022", vintage=2022, price="50.00")
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        _place(lines=[{"batch_code": "BIG-2022", "quantity": 1001}])
    assert refused.value.code == "purchase_not_allowed" and "1000" in refused.value.message
    db.session.rollback()
    order, _ = _place(lines=[{"batch_code": "BIG-2022", "quantity": 1000}])
    assert order.quantity == 1000


def test_the_day_limit_counts_each_guest_by_email_and_each_organisation(app, stock):
    app.config["ORDER_DAY_LIMIT_T"] = 30
    _place(lines=[{"batch_code": "OLD-2021", "quantity": 20}])
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        _place(_details(email="LI.HUA@example.cn"), lines=[{"batch_code": "NEW-2023", "quantity": 11}])
    assert refused.value.code == "purchase_not_allowed" and "10" in refused.value.message
    db.session.rollback()
    _place(lines=[{"batch_code": "NEW-2023", "quantity": 10}])  # up to the limit
    _place(_details(email="someone.else@example.cn"), lines=[{"batch_code": "NEW-2023", "quantity": 30}])
    db.session.commit()
    # Organisations keep to the same per-day limit.
    steel, _ = stock
    orders.create_order(steel, 25, beneficiary="x", purpose="voluntary", actor="t")
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(steel, 6, beneficiary="x", purpose="voluntary", actor="t")
    assert refused.value.code == "purchase_not_allowed"
    assert orders.bought_today(steel) == 25


def test_an_expired_order_no_longer_counts_against_the_day(app, stock):
    app.config["ORDER_DAY_LIMIT_T"] = 10
    order, _ = _place(lines=[{"batch_code": "OLD-2021", "quantity": 10}])
    db.session.commit()
    order.hold_expires_at = utcnow() - timedelta(minutes=1)
    orders.expire_if_due(order)
    db.session.commit()
    again, _ = _place(lines=[{"batch_code": "OLD-2021", "quantity": 10}])
    assert again.quantity == 10


def test_orders_per_client_address_are_limited(app, stock, monkeypatch):
    monkeypatch.setattr(
        guests, "ORDERS_FROM_ADDRESS", throttle.Rule("guest.orders.address", 2, timedelta(hours=1))
    )
    _place(address="198.51.100.7")
    _place(address="198.51.100.7")
    db.session.commit()
    before = state()
    with pytest.raises(orders.OrderError) as refused:
        _place(address="198.51.100.7")
    assert refused.value.code == "too_many_guest_orders" and refused.value.status == 429
    db.session.rollback()
    assert state() == before
    _place(address="198.51.100.8")  # another address is not held back


# --- paid: the same fulfilment path ----------------------------------------------------------


@pytest.fixture
def shop(app, stock, localstripe):  # noqa: F811
    live = LiveShop(app, localstripe)
    yield live
    live.close()


def test_a_paid_guest_order_retires_into_a_certificate_naming_the_guest(shop, client):
    order, token = _place(
        _details(organisation_name="红山文化节组委会", uscc=USCC),
        lines=[{"batch_code": "OLD-2021", "quantity": 3}, {"batch_code": "NEW-2023", "quantity": 2}],
    )
    db.session.commit()
    orders.attach_payment(order)
    db.session.commit()
    shop.stripe.v1.payment_intents.update(order.payment_intent_id, params={"payment_method": "pm_card_visa"})
    shop.stripe.v1.payment_intents.confirm(order.payment_intent_id)
    done = wait_for(lambda: db.session.scalar(select(Order).filter_by(status="fulfilled")))
    certificate = done.certificate
    assert certificate.quantity == 5 and certificate.beneficiary == "红山文化节组委会"
    checked = certificates.verify(certificate)
    assert checked.valid and checked.document["retired_by"] == {"name": "红山文化节组委会", "uscc": USCC}
    # Verified on /verify and listed in the public register, as any other.
    page = client.get(f"/verify?number={certificate.number}&lang=en").get_data(as_text=True)
    assert certificate.number in page and "红山文化节组委会" in page
    assert certificate.number in client.get("/register?lang=en").get_data(as_text=True)
    # The receipt goes to the guest, with the certificate's page and its PDF.
    receipt = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.subject.contains(certificate.number))
    )
    assert receipt.to == "li.hua@example.cn"
    assert f"/certificates/{certificate.number}" in receipt.body and ".pdf" in receipt.body
    assert verify_ledger().ok
    assert "order.fulfilled" in set(
        db.session.scalars(select(AuditEvent.action).filter_by(subject_id=done.public_id))
    )


def test_a_guest_without_an_organisation_is_named_alone(shop):
    order, _ = _place()
    db.session.commit()
    orders.attach_payment(order)
    db.session.commit()
    shop.stripe.v1.payment_intents.update(order.payment_intent_id, params={"payment_method": "pm_card_visa"})
    shop.stripe.v1.payment_intents.confirm(order.payment_intent_id)
    done = wait_for(lambda: db.session.scalar(select(Order).filter_by(status="fulfilled")))
    assert json.loads(done.certificate.payload)["retired_by"] == {"name": "李华", "uscc": ""}
    assert done.certificate.beneficiary == "李华"


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_one_guest_ordering_many_times_at_once_keeps_to_the_day_limit(pg_app):
    """Eight orders of 10 t by one e-mail address at once, with a day limit of 30 t: exactly
    three are held, whatever the timing (the guest organisation's order lock)."""
    pg_app.config["ORDER_DAY_LIMIT_T"] = 30
    factories.batch(quantity=200, code="DAY-2022", vintage=2022, price="50.00")
    guests.guest_organisation()
    db.session.commit()

    def order(i):
        _place(
            _details(),
            lines=[{"batch_code": "DAY-2022", "quantity": 10}],
            address=f"203.0.113.{i}",
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 8, order, refused=orders.OrderError)
    assert outcomes.count("held") == 3, outcomes
    assert set(outcomes) == {"held", "purchase_not_allowed"}
    db.session.expire_all()
    assert len(list(db.session.scalars(select(Order)))) == 3
    assert verify_ledger().ok


# --- a late payment: the guest's own limits, as for a new order ------------------------------


def _intent(order):
    return {
        "id": order.payment_intent_id,
        "object": "payment_intent",
        "amount": int(order.amount * 100),
        "currency": "cny",
        "metadata": {"portal_order": order.public_id},
        "status": "succeeded",
    }


def test_a_late_guest_payment_is_held_again_within_the_guest_s_day(app, stock, monkeypatch):
    from portal.payments import services as payments

    app.config["ORDER_DAY_LIMIT_T"] = 10
    late, _ = _place(lines=[{"batch_code": "OLD-2021", "quantity": 6}])
    late.payment_intent_id = "pi_late_guest"
    other, _ = _place(_details(email="b@example.cn"), lines=[{"batch_code": "OLD-2021", "quantity": 10}])
    other.payment_intent_id = "pi_other_guest"
    orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    # Another guest's tonnes today do not count against this one's.
    assert orders.payment_succeeded(_intent(late)) == "fulfilled"
    db.session.commit()
    assert late.status == "fulfilled" and late.certificate.quantity == 6
    # The other guest now orders 6 t anew; its own late payment would overrun its day: refunded.
    _place(_details(email="b@example.cn"), lines=[{"batch_code": "NEW-2023", "quantity": 6}])
    db.session.commit()
    monkeypatch.setattr(payments, "refund", lambda intent_id, reference: "re_guest")
    assert orders.payment_succeeded(_intent(other)) == "refunded"
    db.session.commit()
    assert (
        other.status == "refunded"
        and other.note == "paid after the hold was released, and the organisation may not buy it now"
    )
    assert verify_ledger().ok
