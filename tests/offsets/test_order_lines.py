"""Orders with lines and quotes: each line's batch and tonnes held exactly, every line or none;
quotes price without holding and fix the prices for ten minutes; one certificate for all lines."""

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.buyers import services as buyers
from portal.buyers.uscc import check_character
from portal.catalog.models import Listing
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import Order, Quote
from portal.timeutil import utcnow
from tests import factories
from tests.concurrency import race
from tests.offsets.helpers import inventory, state
from tests.payments import localstripe  # noqa: F401

STEEL = factories.STEEL_USCC
bearer, _key = factories.bearer, factories.api_key

TWO_LINES = [{"batch_code": "OLD-2021", "quantity": 10}, {"batch_code": "NEW-2023", "quantity": 4}]


@pytest.fixture
def api(app, stock, localstripe):  # noqa: F811
    app.config.update(STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal")
    return bearer(_key(app, "--org", STEEL))


def _uscc(i: int) -> str:
    first17 = f"91150400MA{i:07d}"
    return first17 + check_character(first17)


def _held(order) -> dict[str, int]:
    hold = ledger.find_account(AccountKind.HOLD, order.hold_ref)
    return {code: n for code, n in ((b.batch.code, b.quantity) for b in ledger.blocks_of(hold))}


def test_an_order_with_two_lines_holds_each_batch_exactly(stock, app):
    steel, _ = stock
    order, created = orders.create_order(
        steel, lines=TWO_LINES, beneficiary="测试钢铁", purpose="voluntary", actor="t"
    )
    assert created and order.by_lines
    assert [(line.batch.code, line.quantity, line.unit_price, line.amount) for line in order.lines] == [
        ("OLD-2021", 10, Decimal("60.00"), Decimal("600.00")),
        ("NEW-2023", 4, Decimal("75.50"), Decimal("302.00")),
    ]
    assert order.quantity == 14 and order.amount == Decimal("902.00")
    assert _held(order) == {"OLD-2021": 10, "NEW-2023": 4}
    assert inventory() == 186 and verify_ledger().ok


def test_the_newer_batch_is_held_when_named_even_though_older_stock_exists(stock, app):
    steel, _ = stock
    order, _ = orders.create_order(
        steel, lines=[{"batch_code": "NEW-2023", "quantity": 3}], beneficiary="b", purpose="event", actor="t"
    )
    assert _held(order) == {"NEW-2023": 3}


def test_the_api_takes_lines_and_answers_them_priced(api, client):
    response = client.post(
        "/api/v1/orders",
        json={"lines": TWO_LINES, "beneficiary": "测试钢铁", "purpose": "voluntary"},
        headers=api,
    )
    assert response.status_code == 201, response.get_json()
    order = response.get_json()["order"]
    assert order["quantity"] == 14 and order["amount"] == {"amount": "902.00", "currency": "CNY"}
    assert [
        (line["batch_code"], line["quantity"], line["unit_price"]["amount"]) for line in order["lines"]
    ] == [
        ("OLD-2021", 10, "60.00"),
        ("NEW-2023", 4, "75.50"),
    ]
    assert order["payment"]["payment_intent"].startswith("pi_")
    assert order["batch_code"] is None and order["quote"] is None


def test_the_single_form_still_works_as_before(api, client):
    response = client.post("/api/v1/orders", json={"quantity": 5, "batch_code": "NEW-2023"}, headers=api)
    assert response.status_code == 201
    order = response.get_json()["order"]
    assert (
        order["batch_code"] == "NEW-2023" and order["quantity"] == 5 and order["amount"]["amount"] == "377.50"
    )


BAD_LINES = [
    ([], 400, "invalid_lines"),
    ("OLD-2021", 400, "invalid_lines"),
    ([{"quantity": 3}], 400, "invalid_lines"),
    ([["OLD-2021", 3]], 400, "invalid_lines"),
    ([{"batch_code": "OLD-2021", "quantity": 0}], 400, "invalid_quantity"),
    ([{"batch_code": "OLD-2021", "quantity": -2}], 400, "invalid_quantity"),
    ([{"batch_code": "OLD-2021", "quantity": 1.5}], 400, "invalid_quantity"),
    ([{"batch_code": "OLD-2021", "quantity": "3.0"}], 400, "invalid_quantity"),
    ([{"batch_code": "OLD-2021", "quantity": 10**30}], 400, "invalid_quantity"),
    ([{"batch_code": "OLD-2021", "quantity": True}], 400, "invalid_quantity"),
    (
        [{"batch_code": "OLD-2021", "quantity": 2}, {"batch_code": "OLD-2021", "quantity": 3}],
        400,
        "duplicate_batch",
    ),
    (
        [{"batch_code": "OLD-2021", "quantity": 2}, {"batch_code": "NOPE", "quantity": 3}],
        404,
        "unknown_batch",
    ),
    ([{"batch_code": "HIDDEN-2019", "quantity": 1}], 404, "unknown_batch"),
    ([{"batch_code": "GONE-2020", "quantity": 1}], 409, "sold_out"),
    (
        [{"batch_code": "OLD-2021", "quantity": 2}, {"batch_code": "NEW-2023", "quantity": 101}],
        409,
        "insufficient_stock",
    ),
    ([{"batch_code": f"X{i}", "quantity": 1} for i in range(21)], 400, "too_many_lines"),
]


@pytest.mark.parametrize(("lines", "status", "code"), BAD_LINES)
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/quotes"])
def test_bad_lines_hold_quote_and_charge_nothing(api, client, path, lines, status, code):
    hidden = factories.batch(quantity=50, code="HIDDEN-2019", vintage=2019)
    hidden.listing.is_active = False
    factories.batch(quantity=5, code="GONE-2020", vintage=2020)
    gone = db.session.scalar(select(Batch).filter_by(code="GONE-2020"))
    db.session.commit()
    orders.create_order(
        buyers.find_by_uscc(STEEL),
        lines=[{"batch_code": gone.code, "quantity": 5}],
        beneficiary="b",
        purpose="event",
        actor="t",
    )
    db.session.commit()
    before, stock_before = state(), inventory()
    quotes = db.session.scalar(select(func.count()).select_from(Quote))
    response = client.post(path, json={"lines": lines, "beneficiary": "b"}, headers=api)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]
    db.session.expire_all()
    assert state() == before and inventory() == stock_before
    assert db.session.scalar(select(func.count()).select_from(Quote)) == quotes


def test_an_order_names_its_tonnes_one_way_only(api, client):
    for body in (
        {"quantity": 3, "lines": TWO_LINES},
        {"batch_code": "OLD-2021", "lines": TWO_LINES},
        {"quote": "quo_" + "a" * 20, "lines": TWO_LINES},
    ):
        response = client.post("/api/v1/orders", json=body, headers=api)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "ambiguous_order"
    assert inventory() == 200


def test_a_quote_holds_nothing_and_an_order_from_it_pays_the_quoted_price(api, client):
    before = state()
    response = client.post("/api/v1/quotes", json={"lines": TWO_LINES}, headers=api)
    assert response.status_code == 201, response.get_json()
    quote = response.get_json()["quote"]
    assert quote["amount"]["amount"] == "902.00" and quote["quantity"] == 14
    assert [line["unit_price"]["amount"] for line in quote["lines"]] == ["60.00", "75.50"]
    db.session.expire_all()
    assert inventory() == 200 and state()[1] == before[1]

    # The operator raises a price after the quote: the buyer still pays what it was shown.
    listing = db.session.scalar(select(Listing).join(Batch).where(Batch.code == "NEW-2023"))
    listing.price_per_t = Decimal("99.00")
    db.session.commit()
    response = client.post("/api/v1/orders", json={"quote": quote["id"], "beneficiary": "b"}, headers=api)
    assert response.status_code == 201, response.get_json()
    order = response.get_json()["order"]
    assert order["amount"]["amount"] == "902.00" and order["quote"] == quote["id"]
    assert [line["unit_price"]["amount"] for line in order["lines"]] == ["60.00", "75.50"]

    # Once only.
    again = client.post("/api/v1/orders", json={"quote": quote["id"], "beneficiary": "b"}, headers=api)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "quote_used"
    # A new quote has the new price.
    fresh = client.post("/api/v1/quotes", json={"lines": TWO_LINES}, headers=api).get_json()["quote"]
    assert fresh["amount"]["amount"] == str(Decimal("600.00") + 4 * Decimal("99.00"))


def test_a_quote_used_after_ten_minutes_is_refused_and_nothing_is_held(api, client):
    quote = client.post("/api/v1/quotes", json={"lines": TWO_LINES}, headers=api).get_json()["quote"]
    row = db.session.scalar(select(Quote).filter_by(public_id=quote["id"]))
    assert row.expires_at - row.created_at == timedelta(minutes=10)
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    before = state()
    response = client.post("/api/v1/orders", json={"quote": quote["id"], "beneficiary": "b"}, headers=api)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "quote_expired"
    assert "quo_" in response.get_json()["error"]["message"]
    db.session.expire_all()
    assert state() == before and inventory() == 200


def test_another_organisations_quote_is_unknown(app, api, client):
    cement = buyers.find_by_uscc(factories.CEMENT_USCC)
    theirs = orders.create_quote(cement, TWO_LINES, actor="t")
    db.session.commit()
    response = client.post(
        "/api/v1/orders", json={"quote": theirs.public_id, "beneficiary": "b"}, headers=api
    )
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "unknown_quote"


def test_quotes_in_english_and_chinese(api, client):
    lines = [{"batch_code": "OLD-2021", "quantity": 0}]
    zh = client.post("/api/v1/quotes", json={"lines": lines}, headers={**api, "Accept-Language": "zh-CN"})
    en = client.post("/api/v1/quotes", json={"lines": lines}, headers={**api, "Accept-Language": "en"})
    assert "Line 1" in en.get_json()["error"]["message"]
    assert zh.get_json()["error"]["message"] != en.get_json()["error"]["message"]


def test_the_organisations_limits_apply_to_the_orders_total(stock, app):
    steel, _ = stock
    buyers.change_status(steel, "restricted", reason="限额", actor="t", order_limit_t=12)
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(steel, lines=TWO_LINES, beneficiary="b", purpose="event", actor="t")  # 14 t
    assert refused.value.code == "purchase_not_allowed" and refused.value.status == 403
    with pytest.raises(orders.OrderError):
        orders.create_quote(steel, TWO_LINES, actor="t")
    db.session.rollback()
    assert inventory() == 200


def test_a_price_changed_since_the_page_was_shown_is_refused(stock, app):
    steel, _ = stock
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(
            steel,
            lines=TWO_LINES,
            shown_prices={"OLD-2021": Decimal("60.00"), "NEW-2023": Decimal("70.00")},
            beneficiary="b",
            purpose="event",
            actor="t",
        )
    assert refused.value.code == "price_changed" and "75.50" in refused.value.message
    db.session.rollback()
    assert inventory() == 200


def test_one_certificate_names_every_lines_batches_and_serials(stock, app):
    steel, _ = stock
    order, _ = orders.create_order(steel, lines=TWO_LINES, beneficiary="b", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_lines"
    db.session.commit()
    intent = {"id": "pi_lines", "amount": 90200, "currency": "cny", "metadata": {}}
    assert orders.payment_succeeded(intent) == "fulfilled"
    db.session.commit()
    certificate = db.session.scalar(select(Certificate))
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert sorted((b.batch.code, b.serial_start, b.serial_end) for b in certificate.blocks) == [
        ("NEW-2023", 1, 4),
        ("OLD-2021", 1, 10),
    ]
    assert certificate.quantity == 14 and verify_ledger().ok


def test_a_late_payment_holds_the_same_lines_at_the_price_paid(stock, app):
    steel, _ = stock
    order, _ = orders.create_order(steel, lines=TWO_LINES, beneficiary="b", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_late_lines"
    db.session.commit()
    orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    listing = db.session.scalar(select(Listing).join(Batch).where(Batch.code == "OLD-2021"))
    listing.price_per_t = Decimal("80.00")
    db.session.commit()
    intent = {"id": "pi_late_lines", "amount": 90200, "currency": "cny", "metadata": {}}
    assert orders.payment_succeeded(intent) == "fulfilled"
    db.session.commit()
    order = db.session.get(Order, order.id)
    assert order.amount == Decimal("902.00")
    assert [(line.batch.code, line.quantity, line.unit_price) for line in order.lines] == [
        ("OLD-2021", 10, Decimal("60.00")),
        ("NEW-2023", 4, Decimal("75.50")),
    ]
    assert inventory() == 186 and verify_ledger().ok


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.integers(0, 120), new=st.integers(0, 120))
def test_a_two_line_order_holds_both_lines_or_nothing(stock, app, old, new):
    """Whatever the two quantities (within stock or beyond it), either the whole order is held,
    its amount exactly the sum of its lines in fen, or nothing at all moved."""
    steel, _ = stock
    lines = [{"batch_code": c, "quantity": q} for c, q in (("OLD-2021", old), ("NEW-2023", new)) if q]
    if not lines:
        return
    before = inventory()
    try:
        order, _ = orders.create_order(steel, lines=lines, beneficiary="b", purpose="event", actor="t")
    except orders.OrderError as exc:
        db.session.rollback()
        assert exc.code in ("insufficient_stock", "sold_out")
        assert inventory() == before
        return
    db.session.flush()
    assert sum(_held(order).values()) == old + new
    assert order.amount * 100 == old * 6000 + new * 7550
    db.session.rollback()
    assert inventory() == before


@pytest.mark.postgres
def test_twenty_buyers_ordering_the_same_two_batches_never_oversell(pg_app):
    """20 organisations order 3 t of OLD and 4 t of NEW at once, from stocks of 30 and 30 t: at
    most 7 orders can be whole (NEW runs out after 7), and no order holds one line without the
    other."""
    organisations = [
        buyers.create_organisation(name_zh=f"买家{i}", uscc=_uscc(i), sector="steel", approve=True).id
        for i in range(20)
    ]
    factories.batch(quantity=30, code="RACE-OLD-2021", vintage=2021, price="60.00")
    factories.batch(quantity=30, code="RACE-NEW-2023", vintage=2023, price="75.50")
    db.session.commit()
    lines = [{"batch_code": "RACE-OLD-2021", "quantity": 3}, {"batch_code": "RACE-NEW-2023", "quantity": 4}]

    def order(i):
        from portal.buyers.models import Organisation

        organisation = db.session.get(Organisation, organisations[i])
        # Half name the lines in the other order: the locks are taken in one order regardless.
        named = lines if i % 2 else list(reversed(lines))
        orders.create_order(
            organisation, lines=named, beneficiary=f"b{i}", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 20, order, refused=orders.OrderError)
    assert outcomes.count("held") == 7, outcomes
    assert set(outcomes) == {"held", "insufficient_stock"}
    db.session.expire_all()
    placed = list(db.session.scalars(select(Order)))
    assert len(placed) == 7
    for placed_order in placed:
        assert _held(placed_order) == {"RACE-OLD-2021": 3, "RACE-NEW-2023": 4}
        assert placed_order.amount == Decimal("482.00")
    assert inventory() == (30 - 21) + (30 - 28)
    assert verify_ledger().ok
