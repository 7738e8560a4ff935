"""The e-mails of offtake contracts and checkout: who gets each, in whose words, and that every
link in a message opens for its recipient (followed with a client signed in as that person)."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.contracts import services
from portal.contracts.models import Invoice
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.offsets import services as orders
from portal.payments import services as payments
from tests import factories
from tests.contracts.helpers import TODAY
from tests.contracts.test_contract_views import EMAILS, Desk, terms

#: What a message to the buyer says and a message to staff must not ("your organisation's holding").
BUYER_WORDING = ("贵机构", "your holding", "your organisation")
LINK = re.compile(r"https?://\S+")


@pytest.fixture
def desk(app):
    return Desk()


def _mail(*subject_has: str) -> dict[str, OutboxMessage]:
    """The messages whose subject has each of ``subject_has``, by recipient (one each)."""
    found = {}
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for words in subject_has:
        query = query.where(OutboxMessage.subject.contains(words))
    for message in db.session.scalars(query):
        assert message.to not in found, f"{message.to} was told twice"
        found[message.to] = message
    return found


def _links_open_for(app, message: OutboxMessage) -> list[str]:
    """Every link in the message, each followed by a client signed in as its recipient: the
    paths, once each has answered 200."""
    links = LINK.findall(message.body)
    assert links, message.body
    client = app.test_client()
    signed_in = client.post("/login", data={"email": message.to, "password": factories.PASSWORD})
    assert signed_in.status_code == 302, message.to
    paths = []
    for link in links:
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == app.config["BASE_URL"]
        response = client.get(parts.path)
        assert response.status_code == 200, (message.to, parts.path, response.status_code)
        paths.append(parts.path)
    return paths


def _staff_words(message: OutboxMessage) -> None:
    for words in BUYER_WORDING:
        assert words not in message.body and words not in message.subject, (message.to, words)


def test_signing_tells_the_buyer_and_the_owner_each_with_its_own_page(desk, app):
    signed = _mail(desk.active.number, "已签署")
    assert set(signed) == {EMAILS["buyer"], EMAILS["sales"]}
    assert _links_open_for(app, signed[EMAILS["buyer"]]) == [f"/account/contracts/{desk.active.number}"]
    assert _links_open_for(app, signed[EMAILS["sales"]]) == [f"/staff/contracts/{desk.active.number}"]
    _staff_words(signed[EMAILS["sales"]])
    assert "测试钢铁" in signed[EMAILS["sales"]].body  # staff are told whose contract it is


def test_a_delivery_to_the_holding_tells_each_in_its_own_words(desk, app):
    told = _mail(desk.invoice.number)
    assert set(told) == {EMAILS["buyer"], EMAILS["sales"]}  # not the other buyer, not its owner
    buyer, sales = told[EMAILS["buyer"]], told[EMAILS["sales"]]
    assert "已转入贵机构持仓" in buyer.body
    assert _links_open_for(app, buyer) == [f"/account/invoices/{desk.invoice.number}"]
    assert "已转入买方持仓" in sales.body and "测试钢铁" in sales.body
    _staff_words(sales)
    assert _links_open_for(app, sales) == [f"/staff/invoices/{desk.invoice.number}"]


def test_a_retiring_delivery_tells_each_in_its_own_words(desk, app):
    delivery, _ = services.deliver(desk.active, 1, 5, actor="t", mode="retire", beneficiary="赤峰马拉松")
    db.session.commit()
    told = _mail(delivery.invoice.number)
    assert set(told) == {EMAILS["buyer"], EMAILS["sales"]}
    for message in told.values():
        assert "已代 赤峰马拉松 注销" in message.body and delivery.certificate.number in message.body
    _staff_words(told[EMAILS["sales"]])
    assert _links_open_for(app, told[EMAILS["buyer"]]) == [f"/account/invoices/{delivery.invoice.number}"]
    assert _links_open_for(app, told[EMAILS["sales"]]) == [f"/staff/invoices/{delivery.invoice.number}"]


def test_an_overdue_invoice_tells_each_in_its_own_words(desk, app):
    later = desk.invoice.due_on + timedelta(days=1)
    assert desk.invoice in services.notify_overdue(later)
    db.session.commit()
    told = _mail(desk.invoice.number, "逾期")
    assert set(told) == {EMAILS["buyer"], EMAILS["sales"]}
    assert _links_open_for(app, told[EMAILS["buyer"]]) == [f"/account/invoices/{desk.invoice.number}"]
    sales = told[EMAILS["sales"]]
    _staff_words(sales)
    assert "测试钢铁" in sales.body and "已同时通知买方管理员" in sales.body
    assert _links_open_for(app, sales) == [f"/staff/invoices/{desk.invoice.number}"]


def test_only_active_admins_and_an_active_owner_are_told(desk, app):
    factories.user("clerk@steel.cn", organisation=desk.steel)  # a buyer, not an administrator
    desk.sales.is_active = False
    db.session.commit()
    delivery, _ = services.deliver(desk.active, 1, 5, actor="t")
    db.session.commit()
    assert set(_mail(delivery.invoice.number)) == {EMAILS["buyer"]}


def test_mail_is_in_chinese_whatever_language_the_sender_reads(desk, app, client):
    """Users keep no language preference: a member of staff reading English delivers, and the
    buyer (and the owner) still get Chinese."""
    client.post("/login?lang=en", data={"email": EMAILS["sales"], "password": factories.PASSWORD})
    assert "Offtake contracts" in client.get("/staff/contracts?lang=en").get_data(as_text=True)
    response = client.post(
        f"/staff/contracts/{desk.active.number}/deliver",
        data={
            "tranche": "1",
            "quantity": "5",
            "mode": "holding",
            "idempotency_key": "lang-test",
            "confirm": "yes",
        },
    )
    assert response.status_code == 303
    assert "delivered; invoice" in client.get(response.headers["Location"]).get_data(as_text=True)
    invoice = db.session.scalars(select(Invoice).order_by(Invoice.id.desc())).first()
    told = _mail(invoice.number)
    assert set(told) == {EMAILS["buyer"], EMAILS["sales"]}
    assert "已转入贵机构持仓" in told[EMAILS["buyer"]].body and "交付" in told[EMAILS["buyer"]].subject
    assert "已转入买方持仓" in told[EMAILS["sales"]].body
    for message in told.values():
        assert "tranche" not in message.body and "Invoice" not in message.body


def test_a_refunded_double_payment_brings_operators_to_the_staff_invoice(desk, app):
    invoice = desk.invoice
    services.record_payment(invoice, invoice.amount, TODAY.isoformat(), "BANK-1", actor="t")
    # Paid online too, after the bank transfer settled it: given back, and operators told.
    intent = {
        "id": "pi_twice",
        "amount": 1,
        "currency": "cny",
        "metadata": {"portal_invoice": invoice.number},
    }
    assert services.invoice_paid_online(intent) == "refunded"
    db.session.commit()
    told = db.session.scalar(select(OutboxMessage).filter_by(to=EMAILS["operator"]))
    assert told is not None and invoice.number in told.body
    assert _links_open_for(app, told) == [f"/staff/invoices/{invoice.number}"]


def test_a_payment_refunded_in_stripe_brings_operators_to_the_staff_invoice(desk, app):
    invoice = desk.invoice
    invoice.payment_intent_id = "pi_paid"
    intent = {"id": "pi_paid", "amount": payments.to_fen(invoice.amount), "currency": "cny", "metadata": {}}
    assert services.invoice_paid_online(intent) == "paid"
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_paid", "amount_refunded": 100}
    assert services.invoice_payment_refunded(charge) == "staff_told"
    db.session.commit()
    told = db.session.scalar(select(OutboxMessage).filter_by(to=EMAILS["operator"]))
    assert told is not None and invoice.number in told.body
    assert _links_open_for(app, told) == [f"/staff/invoices/{invoice.number}"]


@pytest.mark.parametrize("placed_by", ["user", "api"])
def test_a_checkout_receipt_goes_to_the_buyer_with_a_certificate_it_can_open(desk, app, placed_by):
    """The receipt: to the user who ordered, or (an API order) the organisation's active
    administrators; its link is the certificate's page."""
    clerk = factories.user("clerk@steel.cn", organisation=desk.steel)
    order, _ = orders.create_order(
        desk.steel,
        3,
        beneficiary="测试钢铁",
        purpose="voluntary",
        actor="t",
        user=clerk if placed_by == "user" else None,
    )
    db.session.commit()
    intent = {
        "id": "pi_order",
        "amount": payments.to_fen(order.amount),
        "currency": "cny",
        "metadata": {"portal_order": order.public_id},
    }
    assert orders.payment_succeeded(intent) == "fulfilled"
    db.session.commit()
    told = _mail(order.certificate.number)
    expected = "clerk@steel.cn" if placed_by == "user" else EMAILS["buyer"]
    assert set(told) == {expected}
    # The certificate, and the order's page (where a VAT fapiao is asked for): both open for it.
    assert _links_open_for(app, told[expected]) == [
        f"/certificates/{order.certificate.number}",
        f"/orders/{order.public_id}",
    ]


def test_a_contract_signed_from_the_web_tells_the_owner_with_the_staff_page(desk, app, client):
    draft, _ = services.create_draft(desk.steel, terms(title="新合同"), owner=desk.sales, actor="t")
    db.session.commit()
    client.post("/login?lang=en", data={"email": EMAILS["sales"], "password": factories.PASSWORD})
    assert client.post(f"/staff/contracts/{draft.number}/sign").status_code == 303
    told = _mail(draft.number, "已签署")
    assert set(told) == {EMAILS["buyer"], EMAILS["sales"]}
    assert _links_open_for(app, told[EMAILS["sales"]]) == [f"/staff/contracts/{draft.number}"]
    assert _links_open_for(app, told[EMAILS["buyer"]]) == [f"/account/contracts/{draft.number}"]
    assert all("承购合同" in m.subject for m in told.values())  # Chinese, though signed in English
