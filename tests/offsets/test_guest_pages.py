"""Guest checkout, the pages: a visitor at checkout is offered sign-in or guest checkout; the
guest's order is held and reached only by its secret link; bad input is refused clearly with
nothing held; someone else's token (or none) finds nothing, on the page and on the QR poll."""

import re

import pytest
from sqlalchemy import select

from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.offsets import services as orders
from portal.offsets.models import GuestBuyer, Order
from tests import factories
from tests.offsets.helpers import inventory, state

USCC = factories.STEEL_USCC


@pytest.fixture(autouse=True)
def no_stripe(monkeypatch):
    """Holding is what these tests look at: the PaymentIntent is left out."""
    monkeypatch.setattr(orders, "attach_payment", lambda order: None)


def _hold(client, **change):
    data = {
        "batch": ["OLD-2021", "NEW-2023"],
        "quantity": ["10", "4"],
        "price": ["60.00", "75.50"],
        "name": "李华",
        "email": "li.hua@example.cn",
        "organisation_name": "",
        "uscc": "",
        "beneficiary": "",
        "purpose": "event",
        "purpose_detail": "红山马拉松",
        "action": "hold",
        **change,
    }
    return client.post("/guest/checkout?lang=en", data=data)


def _link(response) -> tuple[str, str]:
    match = re.search(r"/guest/orders/(ord_[0-9a-z]{20})/([A-Za-z0-9_-]+)$", response.location)
    assert match, response.location
    return match.group(1), match.group(2)


def test_a_visitor_at_checkout_chooses_sign_in_or_guest(stock, client):
    response = client.get("/checkout?add=OLD-2021&quantity=5")
    assert response.status_code == 302
    assert "/guest/checkout" in response.location and "add=OLD-2021" in response.location
    page = client.get(response.location + "&lang=en").get_data(as_text=True)
    assert "Sign in" in page and "Continue as a guest" in page
    # Sign-in leads back to the checkout with the line being added.
    assert "/login?next=" in page and "add%3DOLD-2021" in page
    assert 'name="batch" value="OLD-2021"' in page and 'value="5"' in page
    assert "CN¥300.00" in page
    zh = client.get("/guest/checkout?add=OLD-2021&quantity=5&lang=zh").get_data(as_text=True)
    assert "不注册账户" in zh and "以访客身份继续" in zh
    assert inventory() == 200


def test_a_guest_saves_a_line_and_adds_another_from_the_catalog(stock, client):
    """The line a guest added stays in the order while the guest goes back for another (the
    page had no way to save it, so the next line added replaced it)."""
    page = client.get("/guest/checkout?add=OLD-2021&quantity=3&lang=en").get_data(as_text=True)
    assert 'name="action" value="save"' in page
    response = client.post(
        "/guest/checkout?lang=en",
        data={"batch": ["OLD-2021"], "quantity": ["3"], "price": ["60.00"], "action": "save"},
    )
    assert response.status_code == 302 and response.location.endswith("/")
    page = client.get("/guest/checkout?add=NEW-2023&quantity=2&lang=en").get_data(as_text=True)
    assert 'name="batch" value="OLD-2021"' in page and 'name="batch" value="NEW-2023"' in page
    assert "5 t" in page and inventory() == 200  # nothing held yet


def test_a_guest_with_an_order_is_led_back_to_it_and_other_guests_are_not(stock, app, client):
    """The header links a guest to the order being put together; the catalog and certificate
    pages kept drawn for every guest never carry one guest's link to another."""
    from portal.buyers import services as buyers
    from portal.certificates import services as certificates

    steel, _ = stock
    buyers.deliver_from_inventory(steel, 1, batch_codes=["OLD-2021"])
    number = certificates.retire_from_holding(steel, 1, beneficiary="某人", purpose="event", actor="t")[
        0
    ].number
    db.session.commit()
    other = app.test_client()
    for path in ("/?lang=en", f"/certificates/{number}?lang=en"):
        assert "Your order (" not in other.get(path).get_data(as_text=True), path  # drawn, then kept
    client.post(
        "/guest/checkout?lang=en",
        data={"batch": ["OLD-2021"], "quantity": ["3"], "price": ["60.00"], "action": "save"},
    )
    client.get("/?lang=en")  # the flash "Saved in your order" shown and gone
    for path in ("/?lang=en", f"/certificates/{number}?lang=en"):
        page = client.get(path).get_data(as_text=True)
        assert '<a href="/guest/checkout" class="basket-link">Your order (1)</a>' in page, path
        assert "Your order (" not in other.get(path).get_data(as_text=True), path


def test_a_signed_in_buyer_goes_to_the_ordinary_checkout(stock, client):
    steel, _ = stock
    factories.user("a@steel.cn", organisation=steel)
    db.session.commit()
    client.post("/login", data={"email": "a@steel.cn", "password": factories.PASSWORD})
    response = client.get("/guest/checkout?add=OLD-2021&quantity=5")
    assert response.status_code == 302 and "/checkout?add=OLD-2021" in response.location


def test_a_guest_holds_the_lines_and_reaches_the_order_by_its_link(stock, client):
    response = _hold(client)
    assert response.status_code == 302
    public_id, token = _link(response)
    order = db.session.scalar(select(Order).filter_by(public_id=public_id))
    assert order.quantity == 14 and order.beneficiary == "李华" and inventory() == 186
    message = db.session.scalar(select(OutboxMessage).filter_by(to="li.hua@example.cn"))
    assert f"/guest/orders/{public_id}/{token}" in message.body
    with client.session_transaction() as session:
        assert "order_lines" not in session  # the basket was emptied
    page = client.get(f"/guest/orders/{public_id}/{token}?lang=en")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer" and "no-store" in page.headers["Cache-Control"]
    text = page.get_data(as_text=True)
    assert f'<h1>Order details</h1>\n<p class="sub">Order number: <code>{public_id}</code></p>' in text
    assert "Bought by" in text and "li.hua@example.cn" in text
    assert "OLD-2021" in text and "NEW-2023" in text and "Awaiting payment" in text
    assert f"/guest/orders/{public_id}/{token}/pay/wechat_pay" in text
    # The poll answers with the right token …
    state_ = client.get(f"/guest/orders/{public_id}/{token}/status").get_json()
    assert state_["status"] == "awaiting_payment" and token in state_["url"]
    # … and the ordinary order pages stay closed to the visitor.
    assert client.get(f"/orders/{public_id}").status_code == 302


def test_a_wrong_token_finds_nothing(stock, client):
    public_id, token = _link(_hold(client))
    _other_id, other_token = _link(_hold(client, email="b@example.cn"))
    wrong = token[:-2] + ("xx" if token[-2:] != "xx" else "yy")
    for bad in (wrong, other_token, "short"):
        assert client.get(f"/guest/orders/{public_id}/{bad}").status_code == 404
        assert client.get(f"/guest/orders/{public_id}/{bad}/scan/wechat_pay").status_code == 404
        assert (
            client.post(f"/guest/orders/{public_id}/{bad}/pay-test", data={"card": "visa"}).status_code == 404
        )
        assert client.post(f"/guest/orders/{public_id}/{bad}/pay/alipay").status_code == 404
    poll = client.get(f"/guest/orders/{public_id}/{other_token}/status?lang=en")
    assert poll.status_code == 404
    assert (
        poll.get_json()["error"]["message"] == "There is no such order, or its link is wrong or has expired."
    )
    poll = client.get(f"/guest/orders/{public_id}/{other_token}/status?lang=zh")
    assert poll.get_json()["error"]["code"] == "not_found" and "链接" in poll.get_json()["error"]["message"]
    assert db.session.scalar(select(Order).filter_by(public_id=public_id)).payment_intent_id is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"email": "not-an-address"}, "is not a valid e-mail address"),
        (
            {"uscc": USCC[:17] + ("0" if USCC[17] != "0" else "1"), "organisation_name": "某公司"},
            "check character",
        ),
        ({"quantity": ["0", "4"]}, "whole number of tonnes"),
        ({"quantity": ["-2", "4"]}, "whole number of tonnes"),
        ({"quantity": ["1.5", "4"]}, "whole number of tonnes"),
        ({"quantity": ["99999999999", "4"]}, "whole number of tonnes"),
        ({"purpose": "compliance"}, "need an approved organisation"),
        ({"name": ""}, "is required"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_held(stock, client, change, expected):
    before = state()
    response = _hold(client, **change)
    assert response.status_code in (400, 403), response.status_code
    assert expected in response.get_data(as_text=True)
    assert state() == before and inventory() == 200
    assert db.session.scalar(select(GuestBuyer.id)) is None
    assert db.session.scalar(select(OutboxMessage.id)) is None


def test_a_large_guest_order_is_refused_with_the_limit(stock, client):
    factories.batch(quantity=3000, code="BIG-2022", vintage=2022, price="50.00")
    db.session.commit()
    response = _hold(client, batch=["BIG-2022"], quantity=["1500"], price=["50.00"])
    assert response.status_code == 403
    assert "at most 1000 t" in response.get_data(as_text=True)
    assert db.session.scalar(select(Order.id)) is None


def test_removing_a_line_keeps_the_rest_in_the_session(stock, client):
    response = _hold(client, action="update", remove="NEW-2023")
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert session["order_lines"] == [["OLD-2021", 10]]
    assert db.session.scalar(select(Order.id)) is None


def test_staff_see_who_bought_a_guest_order(stock, client):
    public_id, _token = _link(_hold(client, organisation_name="红山文化节组委会", uscc=USCC))
    factories.user("ops@example.cn", role="operator")
    db.session.commit()
    client.post("/login", data={"email": "ops@example.cn", "password": factories.PASSWORD})
    page = client.get(f"/orders/{public_id}?lang=en").get_data(as_text=True)
    assert "Bought by" in page and "红山文化节组委会" in page and USCC in page and "li.hua@example.cn" in page


def test_an_expired_link_finds_nothing(stock, client):
    from datetime import timedelta

    from portal.timeutil import utcnow

    public_id, token = _link(_hold(client))
    order = db.session.scalar(select(Order).filter_by(public_id=public_id))
    order.guest.link_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/guest/orders/{public_id}/{token}").status_code == 404
    assert client.get(f"/guest/orders/{public_id}/{token}/status").status_code == 404
