"""Checkout orders: hold → PaymentIntent (localstripe) → signed webhook → retirement, and every
way the webhook can go wrong."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.certificates.models import Certificate
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import LedgerError
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from portal.offsets import expiry
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.payments import services as payments
from portal.timeutil import utcnow
from tests import factories
from tests.concurrency import race
from tests.offsets.helpers import inventory, state
from tests.payments import LiveShop, intent_event, localstripe, wait_for  # noqa: F401

STEEL = factories.STEEL_USCC


bearer, _key = factories.bearer, factories.api_key


@pytest.fixture
def shop(app, stock, localstripe):  # noqa: F811
    live = LiveShop(app, localstripe)
    yield live
    live.close()


# --- creating orders -------------------------------------------------------------------------


def test_an_order_holds_the_oldest_listed_stock_and_prices_it_exactly(stock, app):
    steel, _ = stock
    order, created = orders.create_order(
        steel,
        130,
        beneficiary="马拉松组委会",
        purpose="event",
        purpose_detail="抵消马拉松的碳排放",
        actor="t",
    )
    assert created and order.status == "awaiting_payment"
    assert [(line.batch.code, line.quantity, line.unit_price) for line in order.lines] == [
        ("OLD-2021", 100, Decimal("60.00")),
        ("NEW-2023", 30, Decimal("75.50")),
    ]
    assert order.amount == Decimal("8265.00")  # 100 × 60.00 + 30 × 75.50
    assert ledger.balance(ledger.find_account(AccountKind.HOLD, order.hold_ref)) == 130
    assert inventory() == 70
    assert order.hold_expires_at - utcnow() > timedelta(minutes=29)
    assert verify_ledger().ok


def test_unlisted_batches_are_never_sold(stock, app):
    steel, _ = stock
    hidden = factories.batch(quantity=500, code="HIDDEN-2019", vintage=2019)
    hidden.listing.is_active = False
    db.session.commit()
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    assert {line.batch.code for line in order.lines} == {"OLD-2021"}
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(
            steel, 1, beneficiary="x", purpose="voluntary", batch_code="HIDDEN-2019", actor="t"
        )
    assert refused.value.code == "unknown_batch"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"quantity": 0}, 400, "invalid_quantity"),
        ({"quantity": -3}, 400, "invalid_quantity"),
        ({"quantity": 2.5}, 400, "invalid_quantity"),
        ({"quantity": "lots"}, 400, "invalid_quantity"),
        ({"quantity": None}, 400, "invalid_quantity"),
        ({"quantity": 201}, 409, "insufficient_stock"),
        ({"beneficiary": ""}, 400, "invalid_beneficiary"),
        ({"beneficiary": "b" * 201}, 400, "invalid_beneficiary"),
        ({"purpose": "other"}, 400, "invalid_purpose"),
        ({"batch_code": "NOPE"}, 404, "unknown_batch"),
        ({"batch_code": 7}, 404, "unknown_batch"),
        ({"batch_code": "OLD-2021", "quantity": 101}, 409, "insufficient_stock"),
    ],
)
def test_bad_orders_hold_and_charge_nothing(stock, app, client, localstripe, change, status, code):  # noqa: F811
    app.config.update(STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal")
    key = _key(app, "--org", STEEL)
    before = state()
    body = {"quantity": 5, "beneficiary": "测试钢铁", "purpose": "event", **change}
    response = client.post("/api/v1/orders", json=body, headers=bearer(key))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    db.session.expire_all()
    assert state() == before and inventory() == 200


@pytest.mark.parametrize("body", [{}, {"quote": None}, {"quote": None, "lines": None, "quantity": None}])
def test_an_order_naming_nothing_to_buy_says_what_to_send(stock, app, client, body):
    key = _key(app, "--org", STEEL)
    before = state()
    response = client.post("/api/v1/orders?lang=en", json=body, headers=bearer(key))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_quantity"
    assert error["message"] == "Say what to buy: quantity (and batch_code), lines, or a quote."
    assert state() == before and inventory() == 200


def test_restrictions_and_pending_limits_apply(stock, app):
    steel, cement = stock
    buyers.change_status(cement, "restricted", reason="限额", actor="t", order_limit_t=20)
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(cement, 21, beneficiary="x", purpose="voluntary", actor="t")
    assert refused.value.status == 403 and "20" in refused.value.message
    buyers.change_status(cement, "suspended", reason="审计", actor="t")
    with pytest.raises(orders.OrderError):
        orders.create_order(cement, 1, beneficiary="x", purpose="voluntary", actor="t")


def test_payment_intent_parameters_for_real_stripe(app):
    """localstripe ignores Alipay, WeChat Pay and Idempotency-Key: the parameters are checked here."""
    params = payments.intent_params(826500, reference="ord_x", metadata={"portal_order": "ord_x"})
    assert params == {
        "amount": 826500,
        "currency": "cny",
        "payment_method_types": ["card", "alipay", "wechat_pay"],
        "payment_method_options": {"wechat_pay": {"client": "web"}},
        "metadata": {"portal_reference": "ord_x", "portal_order": "ord_x"},
    }
    app.config["STRIPE_PAYMENT_METHODS"] = "card"
    assert "payment_method_options" not in payments.intent_params(100, reference="r", metadata={})
    assert payments.to_fen(Decimal("8265.00")) == 826500
    with pytest.raises(ValueError):
        payments.to_fen(Decimal("0.005"))


def test_create_sends_the_idempotency_key_to_stripe(app, monkeypatch):
    """The recorded call: what the real client is asked to send."""
    calls = []

    class Recorder:
        def create(self, params, options):
            calls.append((params, options))
            return type(
                "PI",
                (),
                {
                    "id": "pi_1",
                    "client_secret": "s",
                    "status": "requires_payment_method",
                    "amount": params["amount"],
                    "currency": "cny",
                },
            )()

    fake = type("C", (), {"v1": type("V", (), {"payment_intents": Recorder()})()})()
    monkeypatch.setattr(payments, "client", lambda: fake)
    payments.create_payment_intent(500, reference="ord_abc", metadata={})
    assert calls[0][1] == {"idempotency_key": "intent-ord_abc"}


# --- the whole path against localstripe ---------------------------------------------------------


def test_paid_order_is_retired_with_a_certificate_and_a_receipt(shop, app, client):
    key = _key(app, "--org", STEEL)
    response = client.post(
        "/api/v1/orders",
        json={
            "quantity": 12,
            "beneficiary": "红山文化节",
            "purpose": "event",
            "purpose_detail": "抵消文化节的碳排放",
        },
        headers=bearer(key),
    )
    assert response.status_code == 201, response.get_json()
    order = response.get_json()["order"]
    assert order["status"] == "awaiting_payment" and order["amount"] == {
        "amount": "720.00",
        "currency": "CNY",
    }
    intent = order["payment"]["payment_intent"]
    assert intent.startswith("pi_") and order["payment"]["client_secret"]
    assert order["certificate"] is None

    # The buyer's browser pays; the portal learns of it only from the signed webhook.
    shop.stripe.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
    shop.stripe.v1.payment_intents.confirm(intent)
    done = wait_for(lambda: db.session.scalar(select(Order).filter_by(status="fulfilled")))
    assert done.certificate.quantity == 12 and done.certificate.beneficiary == "红山文化节"
    assert done.certificate.source == "order" and done.certificate.source_ref == done.public_id
    fetched = client.get(f"/api/v1/orders/{done.public_id}", headers=bearer(key)).get_json()["order"]
    assert fetched["status"] == "fulfilled" and fetched["certificate"]["number"] == done.certificate.number
    assert ledger.balance(ledger.find_account(AccountKind.HOLD, done.hold_ref)) == 0
    assert verify_ledger().ok
    receipt = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.subject.contains(done.certificate.number))
    )
    assert receipt is None  # an API order has no user; the organisation has no admin in this test
    other = _key(app, "--org", factories.CEMENT_USCC)
    assert client.get(f"/api/v1/orders/{done.public_id}", headers=bearer(other)).status_code == 404


def test_a_declined_card_keeps_the_hold_and_a_new_attempt_pays(shop, app):
    """A declined payment leaves the order awaiting payment with its hold, until it expires; the
    next attempt cancels the declined intent, gets a new one, and pays."""
    steel = buyers.find_by_uscc(STEEL)
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    orders.attach_payment(order)
    db.session.commit()
    declined = order.payment_intent_id
    payments.pay_with_test_card(declined, "pm_card_chargeCustomerFail")
    wait_for(lambda: db.session.get(Order, order.id).note == "the last payment attempt was declined")
    order = db.session.get(Order, order.id)
    assert order.status == "awaiting_payment" and inventory() == 190

    order = orders.fresh_attempt(order, actor="t")
    db.session.commit()
    assert order.payment_attempt == 2 and order.payment_intent_id not in (None, declined)
    assert order.note == "" and shop.stripe.v1.payment_intents.retrieve(declined).status == "canceled"
    payments.pay_with_test_card(order.payment_intent_id, "pm_card_visa")
    wait_for(lambda: db.session.get(Order, order.id).status == "fulfilled")
    assert inventory() == 190 and verify_ledger().ok
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1


def test_a_declined_order_still_expires_with_its_hold(shop, app):
    steel = buyers.find_by_uscc(STEEL)
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    orders.attach_payment(order)
    db.session.commit()
    payments.pay_with_test_card(order.payment_intent_id, "pm_card_chargeCustomerFail")
    wait_for(lambda: db.session.get(Order, order.id).note == "the last payment attempt was declined")
    assert [o.id for o in orders.expire_due(now=utcnow() + timedelta(minutes=31))] == [order.id]
    db.session.commit()
    assert db.session.get(Order, order.id).status == "expired" and inventory() == 200


# --- webhook faults ---------------------------------------------------------------------------


def _paid_intent(shop, order):
    """Pay the order's intent at localstripe, and return the intent as a webhook carries it."""
    shop.stripe.v1.payment_intents.update(order.payment_intent_id, params={"payment_method": "pm_card_visa"})
    return shop.stripe.v1.payment_intents.confirm(order.payment_intent_id).to_dict()


def _order(steel, quantity=10, **kw):
    order, _ = orders.create_order(steel, quantity, beneficiary="x", purpose="voluntary", actor="t", **kw)
    db.session.commit()
    orders.attach_payment(order)
    db.session.commit()
    return order


def _post(client, shop, event, timestamp=None):
    payload, headers = shop.sign(event, timestamp)
    return client.post("/stripe/webhook", data=payload, headers=headers)


def test_a_webhook_twice_retires_once(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    shop.app.config["STRIPE_WEBHOOK_SECRET"] = shop.secret
    order = _order(steel)
    intent = _paid_intent(shop, order)
    wait_for(lambda: db.session.get(Order, order.id).status == "fulfilled")
    event = intent_event(intent)
    assert _post(client, shop, event).get_json()["outcome"] in ("already_fulfilled",)
    assert _post(client, shop, event).get_json()["outcome"] == "duplicate"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert verify_ledger().ok


def test_bad_and_stale_signatures_change_nothing(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_forged"
    db.session.commit()
    event = intent_event({"id": "pi_forged", "amount": 60000, "currency": "cny", "metadata": {}})
    payload, headers = shop.sign(event)
    before = state()
    assert (
        client.post(
            "/stripe/webhook", data=payload, headers={**headers, "Stripe-Signature": "t=1,v1=00"}
        ).status_code
        == 400
    )
    assert client.post("/stripe/webhook", data=payload).status_code == 400
    assert client.post("/stripe/webhook", data=payload + " ", headers=headers).status_code == 400
    stale = int(utcnow().timestamp()) - 3600
    assert _post(client, shop, event, timestamp=stale).status_code == 400
    db.session.expire_all()
    assert state() == before and db.session.get(Order, order.id).status == "awaiting_payment"


def test_failure_after_success_changes_nothing(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    order = _order(steel)
    intent = _paid_intent(shop, order)
    wait_for(lambda: db.session.get(Order, order.id).status == "fulfilled")
    failed = {**intent, "status": "requires_payment_method"}
    assert (
        _post(client, shop, intent_event(failed, "payment_intent.payment_failed")).get_json()["outcome"]
        == "ignored"
    )
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "fulfilled"


def test_an_unknown_intent_is_acknowledged_and_staff_told(shop, app, client):
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    event = intent_event(
        {"id": "pi_nobody", "amount": 100, "currency": "cny", "metadata": {"portal_order": "ord_" + "x" * 20}}
    )
    response = _post(client, shop, event)
    assert response.status_code == 200 and response.get_json()["outcome"] == "unknown_intent"
    db.session.commit()
    assert db.session.scalar(select(OutboxMessage).filter_by(to="ops@example.com")) is not None


def test_expiry_commits_each_order_on_its_own(stock, app, monkeypatch):
    """One ledger movement per transaction (the lock order's argument): each expired order is
    committed before the next, and one that fails keeps neither back."""
    steel, _ = stock
    first, second, third = (_order_unpaid(steel, n) for n in (10, 20, 30))
    real = orders.expire_if_due

    def failing_second(order, now=None):
        if order.id == second.id:
            raise LedgerError(reason="a fault in the middle")
        return real(order, now)

    monkeypatch.setattr(expiry, "expire_if_due", failing_second)  # where expire_due finds it
    released = orders.expire_due(now=utcnow() + timedelta(minutes=31))
    assert [o.id for o in released] == [first.id, third.id]
    db.session.rollback()  # nothing of theirs was left uncommitted
    statuses = {o.id: o.status for o in db.session.scalars(select(Order))}
    assert statuses == {first.id: "expired", second.id: "awaiting_payment", third.id: "expired"}
    assert inventory() == 200 - 20 and verify_ledger().ok


def _order_unpaid(steel, quantity):
    order, _ = orders.create_order(steel, quantity, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    return order


def test_late_payment_after_expiry_takes_new_stock_or_is_refunded(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    factories.user("ops@example.com", role="operator")
    early = _order(steel, 150)
    # Its 30 minutes pass: the hold goes back, and someone else buys 100 t of it.
    released = orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    assert [o.id for o in released] == [early.id] and inventory() == 200
    orders.create_order(steel, 100, beneficiary="y", purpose="voluntary", actor="t")
    db.session.commit()
    # The payment for the expired order arrives anyway: 100 t remain, 150 t were paid: refund.
    intent = _paid_intent(shop, early)
    wait_for(lambda: db.session.get(Order, early.id).status == "refunded")
    refund = shop.stripe.v1.refunds.retrieve(db.session.get(Order, early.id).refund_id)
    assert refund.amount == int(early.amount * 100)
    assert inventory() == 100 and verify_ledger().ok
    assert (
        db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(action="payments.attention"))
        >= 1
    )

    # A smaller late payment is fulfilled from what is left (the other 100 t order expires too).
    late = _order(steel, 20)
    assert len(orders.expire_due(now=utcnow() + timedelta(minutes=31))) == 2
    db.session.commit()
    intent = _paid_intent(shop, late)
    done = wait_for(
        lambda: db.session.get(Order, late.id).status == "fulfilled" and db.session.get(Order, late.id)
    )
    assert done.certificate.quantity == 20 and done.amount == late.amount
    assert inventory() == 180 and verify_ledger().ok
    assert intent["id"] == done.payment_intent_id


def test_an_underpaid_intent_is_refunded_not_fulfilled(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    order = _order(steel)
    intent = _paid_intent(shop, order)
    wait_for(lambda: db.session.get(Order, order.id).status == "fulfilled")
    other = _order(steel, 5)
    forged = {**intent, "id": other.payment_intent_id, "amount": 1}
    db.session.commit()
    # A real intent of that order, but the event says a different amount: refused, refunded.
    _paid = _paid_intent(shop, other)  # make it refundable at localstripe
    wait_for(lambda: db.session.get(Order, other.id).status == "fulfilled")
    assert _post(client, shop, intent_event(forged)).get_json()["outcome"] == "already_fulfilled"


def test_staff_refund_only_before_retirement(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    unpaid = _order(steel, 5)
    orders.refund(unpaid, actor="user:1")
    db.session.commit()
    assert unpaid.status == "cancelled" and inventory() == 200
    paid = _order(steel, 5)
    _paid_intent(shop, paid)
    wait_for(lambda: db.session.get(Order, paid.id).status == "fulfilled")
    with pytest.raises(orders.OrderError) as refused:
        orders.refund(db.session.get(Order, paid.id), actor="user:1")
    assert refused.value.code == "already_retired"


def _charge_refunded(intent_id: str, fen: int) -> dict:
    """A ``charge.refunded`` event as Stripe sends it (the charge's metadata may be empty)."""
    charge = {"id": "ch_" + intent_id, "object": "charge", "payment_intent": intent_id}
    return intent_event({**charge, "amount_refunded": fen, "metadata": {}}, "charge.refunded")


def test_a_refund_seen_before_the_payment_event_releases_the_hold(shop, app, client):
    """E.g. a staff refund whose commit failed after Stripe refunded, or a dashboard refund: the
    success event handled afterwards must retire nothing."""
    factories.user("ops@example.com", role="operator")
    steel = buyers.find_by_uscc(STEEL)
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_refunded_first"
    db.session.commit()
    fen = payments.to_fen(order.amount)
    assert _post(client, shop, _charge_refunded("pi_refunded_first", fen)).get_json()["outcome"] == "refunded"
    paid = intent_event({"id": "pi_refunded_first", "amount": fen, "currency": "cny", "metadata": {}})
    assert _post(client, shop, paid).get_json()["outcome"] == "already_refunded"
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "refunded" and inventory() == 200
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0
    assert db.session.scalar(select(OutboxMessage).filter_by(to="ops@example.com")) is not None
    assert verify_ledger().ok


def test_a_refund_after_retirement_is_taken_out_of_revenue_and_staff_told(shop, app, client):
    from portal.revenue.models import RevenueLine

    factories.user("ops@example.com", role="operator")
    steel = buyers.find_by_uscc(STEEL)
    order = _order(steel, 10)
    _paid_intent(shop, order)
    wait_for(lambda: db.session.get(Order, order.id).status == "fulfilled")
    fen = payments.to_fen(order.amount)

    def net():
        db.session.expire_all()
        return sum(db.session.scalars(select(RevenueLine.amount_fen).filter_by(sale_ref=order.public_id)))

    assert net() == fen
    part = _charge_refunded(order.payment_intent_id, fen // 3)
    assert _post(client, shop, part).get_json()["outcome"] == "revenue_reversed"
    assert net() == fen - fen // 3
    assert _post(client, shop, part).get_json()["outcome"] == "duplicate"
    again = _charge_refunded(order.payment_intent_id, fen // 3)  # the same total, a new event
    assert _post(client, shop, again).get_json()["outcome"] == "already_reversed"
    whole = _charge_refunded(order.payment_intent_id, fen)
    assert _post(client, shop, whole).get_json()["outcome"] == "revenue_reversed"
    assert net() == 0
    found = db.session.get(Order, order.id)
    assert found.status == "fulfilled" and found.certificate.status == "valid"  # a retirement stands
    assert db.session.scalar(select(AuditEvent).filter_by(action="order.refunded_after_retirement"))
    assert db.session.scalar(select(OutboxMessage).filter_by(to="ops@example.com")) is not None
    assert verify_ledger().ok


def test_a_refund_of_an_unknown_charge_is_acknowledged_and_kept_for_its_payment(shop, app, client):
    response = _post(client, shop, _charge_refunded("pi_nobody", 100))
    assert response.status_code == 200 and response.get_json()["outcome"] == "deferred"


def test_orders_are_only_visible_to_their_organisation(shop, app, client):
    steel, cement = buyers.find_by_uscc(STEEL), buyers.find_by_uscc(factories.CEMENT_USCC)
    factories.user("a@steel.cn", organisation=steel)
    factories.user("b@cement.cn", organisation=cement)
    order = _order(steel, 3)
    db.session.commit()
    client.post("/login", data={"email": "b@cement.cn", "password": factories.PASSWORD})
    assert client.get(f"/orders/{order.public_id}").status_code == 404
    assert client.post(f"/orders/{order.public_id}/pay-test").status_code == 404
    assert client.get("/orders/ord_forgedforgedforgedfo").status_code == 404
    client.post("/logout")
    client.post("/login", data={"email": "a@steel.cn", "password": factories.PASSWORD})
    page = client.get(f"/orders/{order.public_id}?lang=zh")
    assert page.status_code == 200
    # Headed in words; the number the buyer quotes to the operator stands under the heading.
    assert f'<h1>订单详情</h1>\n<p class="sub">订单号：<code>{order.public_id}</code></p>' in page.get_data(
        as_text=True
    )
    assert client.post(f"/orders/{order.public_id}/refund").status_code == 403


# --- concurrency --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_twenty_four_buyers_race_for_the_last_tonnes(pg_app):
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=30, code="LAST-2021", vintage=2021)
    db.session.commit()
    org_id = steel.id

    def order(i):
        orders.create_order(
            db.session.get(type(steel), org_id), 5, beneficiary=f"b{i}", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 24, order, refused=orders.OrderError)
    assert outcomes.count("held") == 6 and set(outcomes) == {"held", "insufficient_stock"}
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 6
    assert inventory() == 0 and verify_ledger().ok


@pytest.mark.postgres
def test_the_same_payment_delivered_twice_at_once_retires_once(pg_app):
    """Two deliveries of the success event racing on PostgreSQL (no Stripe needed: the handler is
    what the verified webhook calls), then a late failure and an expiry that change nothing."""
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=50, code="TWICE-2021", vintage=2021)
    order, _ = orders.create_order(steel, 7, beneficiary="b", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_twice"
    db.session.commit()
    intent = {"id": "pi_twice", "amount": int(order.amount * 100), "currency": "cny", "metadata": {}}

    def deliver(_i):
        outcome = orders.payment_succeeded(intent)
        db.session.commit()
        return outcome

    outcomes = sorted(race(pg_app, 2, deliver))
    assert outcomes == ["already_fulfilled", "fulfilled"]
    assert orders.payment_failed({**intent, "status": "requires_payment_method"}) == "ignored"
    assert orders.expire_due(now=utcnow() + timedelta(hours=1)) == []
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert db.session.get(Order, order.id).status == "fulfilled"
    assert inventory() == 43 and verify_ledger().ok


@pytest.mark.postgres
def test_expiry_and_a_late_payment_on_postgresql(pg_app):
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=50, code="LATE-2021", vintage=2021)
    order, _ = orders.create_order(steel, 10, beneficiary="b", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_late"
    db.session.commit()
    assert [o.id for o in orders.expire_due(now=utcnow() + timedelta(minutes=31))] == [order.id]
    db.session.commit()
    assert inventory() == 50
    intent = {"id": "pi_late", "amount": int(order.amount * 100), "currency": "cny", "metadata": {}}
    assert orders.payment_succeeded(intent) == "fulfilled"
    db.session.commit()
    assert inventory() == 40 and verify_ledger().ok


@pytest.mark.postgres
def test_the_whole_path_on_postgresql(pg_app, localstripe):  # noqa: F811
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=50, code="PG-2021", vintage=2021)
    db.session.commit()
    live = LiveShop(pg_app, localstripe)
    try:
        order = _order(steel, 6)
        payments.pay_with_test_card(order.payment_intent_id)
        done = wait_for(
            lambda: db.session.get(Order, order.id).status == "fulfilled" and db.session.get(Order, order.id)
        )
        assert done.certificate.quantity == 6
        declined = _order(steel, 4)
        payments.pay_with_test_card(declined.payment_intent_id, "pm_card_chargeCustomerFail")
        wait_for(lambda: db.session.get(Order, declined.id).note == "the last payment attempt was declined")
        assert db.session.get(Order, declined.id).status == "awaiting_payment"  # held until it expires
        assert inventory() == 40 and verify_ledger().ok
        retried = orders.fresh_attempt(db.session.get(Order, declined.id), actor="t")
        db.session.commit()
        payments.pay_with_test_card(retried.payment_intent_id)
        wait_for(lambda: db.session.get(Order, declined.id).status == "fulfilled")
        assert inventory() == 40 and verify_ledger().ok
    finally:
        live.close()


# --- review findings ------------------------------------------------------------------------------


def test_compliance_offsets_are_not_sold_through_checkout(stock, app):
    """They count against a compliance year's cap: bought into the holding, retired there."""
    steel, _ = stock
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(steel, 5, beneficiary="x", purpose="compliance", actor="t")
    assert refused.value.code == "compliance_via_holding" and inventory() == 200


def test_a_late_payment_keeps_the_amount_paid_to_the_fen(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    from portal.catalog.models import Listing

    first = db.session.scalar(select(Listing).join(Listing.batch).where(Listing.batch.has(code="OLD-2021")))
    first.price_per_t = Decimal("10.00")
    db.session.commit()
    late = _order(steel, 3)  # 3 × 10.00 = 30.00 from OLD-2021
    orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    first.price_per_t = Decimal("10.01")
    orders.create_order(steel, 98, beneficiary="y", purpose="voluntary", batch_code="OLD-2021", actor="t")
    db.session.commit()
    _paid_intent(shop, late)  # re-held: 2 t OLD-2021 at 10.01 and 1 t NEW-2023 at 75.50
    done = wait_for(
        lambda: db.session.get(Order, late.id).status == "fulfilled" and db.session.get(Order, late.id)
    )
    assert done.amount == Decimal("30.00")
    assert sum(line.amount for line in done.lines) == Decimal("30.00")
    assert {line.batch.code for line in done.lines} == {"OLD-2021", "NEW-2023"}


def test_a_cancelled_order_paid_later_is_refunded_not_fulfilled(shop, app, client):
    steel = buyers.find_by_uscc(STEEL)
    order = _order(steel, 5)
    intent = order.payment_intent_id
    orders.refund(order, actor="user:1")
    db.session.commit()
    assert order.status == "cancelled"
    shop.stripe.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
    shop.stripe.v1.payment_intents.confirm(intent)  # the buyer still had the client secret
    wait_for(lambda: db.session.get(Order, order.id).status == "refunded")
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0
    assert inventory() == 200


def test_a_retry_after_the_payment_service_failed_makes_a_new_order(stock, app, client):
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_SECRET_KEY="sk_test_down")
    key = _key(app, "--org", STEEL)
    body = {"quantity": 2, "beneficiary": "x", "purpose": "voluntary"}
    first = client.post("/api/v1/orders", json=body, headers={**bearer(key), "Idempotency-Key": "retry-1"})
    assert first.status_code == 503 and first.get_json()["error"]["code"] == "payment_unavailable"
    again = client.post("/api/v1/orders", json=body, headers={**bearer(key), "Idempotency-Key": "retry-1"})
    assert again.status_code == 503  # tried again, not the cancelled order replayed
    db.session.expire_all()
    assert inventory() == 200 and verify_ledger().ok


def test_oversized_webhooks_are_refused_unread(app, client):
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_x"
    response = client.post("/stripe/webhook", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert client.post("/stripe/webhook", data=b"x" * (7 * 1024 * 1024)).status_code == 413


@pytest.mark.postgres
def test_a_yearly_limit_holds_under_concurrent_orders(pg_app):
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=200, code="LIMIT-2021", vintage=2021)
    buyers.change_status(steel, "restricted", reason="限额", actor="t", year_limit_t=10)
    db.session.commit()
    org_id = steel.id

    def order(i):
        orders.create_order(
            db.session.get(type(steel), org_id), 3, beneficiary=f"b{i}", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 8, order, refused=orders.OrderError)
    assert outcomes.count("held") == 3 and outcomes.count("purchase_not_allowed") == 5
    assert inventory() == 191 and verify_ledger().ok


@pytest.mark.postgres
def test_orders_and_fulfilments_of_one_organisation_do_not_deadlock(pg_app):
    """New orders (organisation row, then batch) and fulfilments (batch, then a certificate whose
    foreign key touches the organisation row) of one buyer, at once."""
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="BUSY-2021", vintage=2021)
    db.session.commit()
    org_id = steel.id

    def buy_and_pay(i):
        org = db.session.get(type(steel), org_id)
        for _n in range(5):
            order, _ = orders.create_order(org, 1, beneficiary="b", purpose="voluntary", actor=f"w{i}")
            order.payment_intent_id = f"pi_{order.public_id}"
            db.session.commit()
            intent = {"id": order.payment_intent_id, "amount": int(order.amount * 100), "currency": "cny"}
            assert orders.payment_succeeded(intent) == "fulfilled"
            db.session.commit()
        return "ok"

    assert race(pg_app, 8, buy_and_pay) == ["ok"] * 8
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 40
    assert inventory() == 960 and verify_ledger().ok
