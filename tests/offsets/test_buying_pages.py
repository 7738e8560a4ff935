"""The buying pages without a browser: the order put together in the session (a link adds
nothing; the form saves), priced before anything is held, held all at once; the wallets' next
steps as Stripe returns them; the test wallet; the QR page's poll, which answers only the order's
own organisation."""

import re
from decimal import Decimal

import pytest
import stripe
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.catalog.models import Listing
from portal.extensions import db
from portal.ledger.models import Batch
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.payments import services as payments
from portal.payments import wallets
from tests import factories
from tests.offsets.helpers import inventory, state

STEEL = factories.STEEL_USCC


@pytest.fixture
def buyer(stock, app, client):
    steel, cement = stock
    factories.user("a@steel.cn", organisation=steel)
    factories.user("b@cement.cn", organisation=cement)
    db.session.commit()
    client.post("/login", data={"email": "a@steel.cn", "password": factories.PASSWORD})
    return steel


def _form(client, **change):
    data = {
        "batch": ["OLD-2021", "NEW-2023"],
        "quantity": ["10", "4"],
        "price": ["60.00", "75.50"],
        "beneficiary": "测试钢铁",
        "purpose": "event",
        "purpose_detail": "",
        "action": "hold",
        **change,
    }
    return client.post("/checkout", data=data)


def test_a_visitor_is_offered_sign_in_back_to_the_line_or_guest_checkout(stock, app, client):
    response = client.get("/checkout?add=OLD-2021&quantity=5")
    assert response.status_code == 302
    assert "/guest/checkout" in response.location and "add=OLD-2021" in response.location
    page = client.get(response.location).get_data(as_text=True)
    assert "/login?next=" in page and "add%3DOLD-2021" in page
    # Sending the form still needs a signed-in buyer.
    assert "/login" in client.post("/checkout", data={"action": "hold"}).location


def test_a_link_shows_the_line_priced_and_saves_nothing(buyer, client):
    page = client.get("/checkout?add=NEW-2023&quantity=4&lang=en").get_data(as_text=True)
    assert "NEW-2023" in page and "CN¥302.00" in page and "New" in page
    with client.session_transaction() as session:
        assert "order_lines" not in session
    assert inventory() == 200


def test_saving_then_adding_another_batch_gives_two_lines(buyer, client):
    response = _form(client, batch=["OLD-2021"], quantity=["10"], price=["60.00"], action="save")
    assert response.status_code == 302 and response.location.endswith("/")
    with client.session_transaction() as session:
        assert session["order_lines"] == [["OLD-2021", 10]]
    page = client.get("/checkout?add=NEW-2023&quantity=4&lang=en").get_data(as_text=True)
    assert page.count('name="batch"') == 2 and "CN¥902.00" in page
    # Adding a batch already there adds its tonnes to its line.
    page = client.get("/checkout?add=OLD-2021&quantity=5&lang=en").get_data(as_text=True)
    assert page.count('name="batch"') == 1 and 'value="15"' in page
    assert inventory() == 200


def test_holding_the_lines_makes_one_order_and_empties_the_basket(buyer, client, monkeypatch):
    monkeypatch.setattr(orders, "attach_payment", lambda order: None)
    response = _form(client)
    assert response.status_code == 302 and "/orders/ord_" in response.location
    order = db.session.scalar(select(Order))
    assert order.by_lines and order.amount == Decimal("902.00")
    assert [(line.batch.code, line.quantity) for line in order.lines] == [("OLD-2021", 10), ("NEW-2023", 4)]
    assert inventory() == 186
    with client.session_transaction() as session:
        assert "order_lines" not in session


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": ["0", "4"]}, "Line 1"),
        ({"quantity": ["-3", "4"]}, "Line 1"),
        ({"quantity": ["2.5", "4"]}, "Line 1"),
        ({"quantity": ["10", "99999999999999999999"]}, "Line 2"),
        ({"batch": ["OLD-2021", "OLD-2021"]}, "two lines"),
        ({"quantity": ["10", "101"]}, "Only 100 t of batch NEW-2023"),
        ({"batch": ["OLD-2021", "NOPE"]}, "No batch NOPE"),
        ({"price": ["60.00", "70.00"]}, "changed from 70.00 to 75.50"),
    ],
)
def test_bad_lines_on_the_page_hold_nothing_and_say_why(buyer, client, change, message):
    before = state()
    response = client.post(
        "/checkout?lang=en",
        data={
            "batch": ["OLD-2021", "NEW-2023"],
            "quantity": ["10", "4"],
            "price": ["60.00", "75.50"],
            "beneficiary": "b",
            "purpose": "event",
            "action": "hold",
            **change,
        },
    )
    assert response.status_code in (400, 404, 409)
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert state() == before and inventory() == 200


def test_removing_the_last_line_empties_the_order(buyer, client):
    _form(client, batch=["OLD-2021"], quantity=["3"], price=["60.00"], action="save")
    response = _form(
        client, batch=["OLD-2021"], quantity=["3"], price=["60.00"], remove="OLD-2021", action=""
    )
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "order_lines" not in session


def test_catalog_and_project_pages_have_a_buy_form_per_batch_with_stock(stock, app, client):
    gone = factories.batch(quantity=5, code="GONE-2020", vintage=2020)
    db.session.commit()
    orders.create_order(
        buyers.find_by_uscc(STEEL),
        lines=[{"batch_code": "GONE-2020", "quantity": 5}],
        beneficiary="b",
        purpose="event",
        actor="t",
    )
    db.session.commit()
    html = client.get("/?lang=en").get_data(as_text=True)
    assert len(re.findall(r'<form method="get" action="/checkout" class="buy"', html)) == 2
    assert 'name="add" value="OLD-2021"' in html and 'name="add" value="GONE-2020"' not in html
    project = client.get(f"/projects/{gone.project.code}?lang=en").get_data(as_text=True)
    assert "Sold out" in project


# --- wallets ---------------------------------------------------------------------------------


def _intent(status, action=None):
    return stripe.PaymentIntent.construct_from(
        {"id": "pi_x", "object": "payment_intent", "status": status, "next_action": action}, "sk_test"
    )


def test_the_next_steps_stripe_gives_for_alipay_and_wechat_pay():
    alipay = _intent(
        "requires_action",
        {
            "type": "alipay_handle_redirect",
            "alipay_handle_redirect": {"url": "https://alipay.example/pay?x=1"},
        },
    )
    assert wallets.next_step(alipay) == wallets.NextStep("redirect", url="https://alipay.example/pay?x=1")
    wechat = _intent(
        "requires_action",
        {
            "type": "wechat_pay_display_qr_code",
            "wechat_pay_display_qr_code": {
                "data": "weixin://wxpay/bizpayurl?pr=abc",
                "image_data_url": "data:image/png;base64,AAA",
            },
        },
    )
    assert wallets.next_step(wechat) == wallets.NextStep(
        "qr", data="weixin://wxpay/bizpayurl?pr=abc", image="data:image/png;base64,AAA"
    )
    assert wallets.next_step(_intent("processing")).kind == "wait"
    with pytest.raises(payments.PaymentError):
        wallets.next_step(_intent("requires_payment_method"))


def test_the_wallets_are_confirmed_with_the_parameters_stripe_documents():
    assert wallets.confirm_params("alipay", "https://portal/orders/x?paid=1") == {
        "payment_method_data": {"type": "alipay"},
        "return_url": "https://portal/orders/x?paid=1",
    }
    assert wallets.confirm_params("wechat_pay", "https://portal/x") == {
        "payment_method_data": {"type": "wechat_pay"},
        "payment_method_options": {"wechat_pay": {"client": "web"}},
    }
    with pytest.raises(ValueError):
        wallets.confirm_params("bitcoin", "https://portal/x")


def test_with_real_stripe_the_wallet_is_confirmed_and_its_next_action_followed(app, monkeypatch):
    """The path real Stripe takes (no STRIPE_API_BASE): confirm with the wallet, read next_action."""
    calls = []

    class Intents:
        def confirm(self, intent_id, params):
            calls.append((intent_id, params))
            return _intent(
                "requires_action",
                {
                    "type": "alipay_handle_redirect",
                    "alipay_handle_redirect": {"url": "https://alipay.example/p"},
                },
            )

    class Client:
        class v1:  # noqa: N801  (Stripe's own attribute name)
            payment_intents = Intents()

    app.config.update(STRIPE_API_BASE=None, STRIPE_SECRET_KEY="sk_live_x")
    monkeypatch.setattr(wallets, "client", lambda: Client)
    with app.test_request_context():
        step = wallets.start_wallet("pi_1", "alipay", return_url="https://portal/back")
    assert step.url == "https://alipay.example/p"
    assert calls == [
        ("pi_1", {"payment_method_data": {"type": "alipay"}, "return_url": "https://portal/back"})
    ]


def test_the_test_wallet_exists_only_with_the_embedded_backend_and_a_signed_address(app, client):
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_SECRET_KEY="sk_test_x")
    with app.test_request_context():
        step = wallets.start_wallet("pi_1", "wechat_pay", return_url="http://localhost/orders/x")
    assert step.kind == "qr" and "/payments/test-wallet/" in step.data
    token = step.data.rsplit("/", 1)[1]
    assert client.get(f"/payments/test-wallet/{token[:-2]}xx").status_code == 404  # tampered
    app.config.update(STRIPE_API_BASE=None)
    assert client.get(f"/payments/test-wallet/{token}").status_code == 404  # real Stripe: no test page


def test_the_poll_answers_only_the_orders_own_organisation(buyer, app, client):
    steel = buyer
    mine, _ = orders.create_order(steel, 3, beneficiary="b", purpose="event", actor="t")
    theirs, _ = orders.create_order(
        buyers.find_by_uscc(factories.CEMENT_USCC), 3, beneficiary="b", purpose="event", actor="t"
    )
    db.session.commit()
    answer = client.get(f"/orders/{mine.public_id}/status")
    assert answer.status_code == 200
    assert answer.get_json() == {
        "status": "awaiting_payment",
        "declined": False,
        "url": f"/orders/{mine.public_id}",
    }
    assert client.get(f"/orders/{theirs.public_id}/status").status_code == 404
    assert client.get(f"/orders/{theirs.public_id}/scan/wechat_pay").status_code == 404
    assert client.post(f"/orders/{theirs.public_id}/pay/alipay").status_code == 404
    assert client.get("/orders/ord_nonexistent00000000000/status").status_code == 404
    client.post("/logout")
    assert client.get(f"/orders/{mine.public_id}/status").status_code == 302  # to sign in


def test_an_unknown_payment_method_is_refused_with_a_message(buyer, app, client):
    order, _ = orders.create_order(buyer, 3, beneficiary="b", purpose="event", actor="t")
    db.session.commit()
    response = client.post(f"/orders/{order.public_id}/pay/bitcoin?lang=en", follow_redirects=True)
    assert "Choose a bank card, Alipay or WeChat Pay." in response.get_data(as_text=True)
    assert inventory() == 197


def test_a_listing_price_changed_after_the_hold_changes_nothing_paid(buyer, client, monkeypatch):
    monkeypatch.setattr(orders, "attach_payment", lambda order: None)
    _form(client)
    listing = db.session.scalar(select(Listing).join(Batch).where(Batch.code == "OLD-2021"))
    listing.price_per_t = Decimal("99.00")
    db.session.commit()
    order = db.session.scalar(select(Order))
    assert order.amount == Decimal("902.00")
    page = client.get(f"/orders/{order.public_id}?lang=en").get_data(as_text=True)
    assert "CN¥902.00" in page and "CN¥60.00" in page
