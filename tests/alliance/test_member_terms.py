"""The members' terms: the member discount in every price a member is given (quotes, orders by
lines, orders by quantity, through a real payment) and the members' first call on new listings."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.alliance import services as alliance
from portal.alliance.models import AllianceTerms
from portal.audit.models import AuditEvent
from portal.catalog.models import Listing
from portal.extensions import db
from portal.ledger.models import Batch
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.timeutil import utcnow
from tests import factories
from tests.alliance.conftest import make_member
from tests.payments import LiveShop, localstripe, wait_for  # noqa: F401

LINES = [{"batch_code": "OLD-2021", "quantity": 10}, {"batch_code": "NEW-2023", "quantity": 4}]


def _order(org, **kw):
    order, _ = orders.create_order(org, beneficiary="b", purpose="voluntary", actor="t", **kw)
    return order


@pytest.mark.parametrize(
    "listed, pct, member",
    [
        ("60.00", "12.5", "52.50"),
        ("75.50", "12.5", "66.06"),
        ("75.50", "10", "67.95"),
        ("0.01", "50", "0.01"),
        ("68.00", "0", "68.00"),
        ("33.33", "33.33", "22.22"),
    ],
)
def test_the_member_price_is_rounded_half_up_to_the_fen(listed, pct, member):
    terms = alliance.Terms(Decimal(pct), 0)
    assert terms.member_price(Decimal(listed)) == Decimal(member)


def test_set_terms_is_audited_and_bad_terms_change_nothing(app):
    alliance.set_terms("12.5", "7", actor="user:1")
    db.session.commit()
    assert alliance.terms() == alliance.Terms(Decimal("12.50"), 7)
    for discount, days, code in [
        ("abc", "7", "invalid_discount"),
        ("50.01", "7", "invalid_discount"),
        ("-1", "7", "invalid_discount"),
        ("1.234", "7", "invalid_discount"),
        ("NaN", "7", "invalid_discount"),
        ("10", "91", "invalid_first_call_days"),
        ("10", "1.5", "invalid_first_call_days"),
        ("10", "", "invalid_first_call_days"),
    ]:
        with pytest.raises(alliance.AllianceError) as refused:
            alliance.set_terms(discount, days, actor="user:1")
        assert refused.value.code == code
        db.session.rollback()
    row = db.session.get(AllianceTerms, 1)
    assert (row.discount_pct, row.first_call_days) == (Decimal("12.50"), 7)
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "alliance.terms")) == 1


def test_members_get_the_member_price_on_quotes_and_lines_others_the_listed(stock, app):
    steel, cement = stock
    make_member(steel)
    alliance.set_terms("12.5", "0", actor="t")
    quote = orders.create_quote(steel, LINES, actor="t")
    assert [line.unit_price for line in quote.lines] == [Decimal("52.50"), Decimal("66.06")]
    assert quote.amount == Decimal("525.00") + Decimal("264.24")
    member = _order(steel, lines=LINES)
    assert [line.unit_price for line in member.lines] == [Decimal("52.50"), Decimal("66.06")]
    assert member.amount == Decimal("789.24")
    other = _order(cement, lines=LINES)
    assert [line.unit_price for line in other.lines] == [Decimal("60.00"), Decimal("75.50")]
    assert other.amount == Decimal("902.00")
    by_quantity = _order(steel, quantity=5)
    assert by_quantity.lines[0].unit_price == Decimal("52.50") and by_quantity.amount == Decimal("262.50")


def test_the_held_price_stands_when_the_terms_change(stock, app):
    steel, _ = stock
    make_member(steel)
    alliance.set_terms("10", "0", actor="t")
    order = _order(steel, lines=LINES[:1])
    alliance.set_terms("0", "0", actor="t")
    db.session.commit()
    assert db.session.get(Order, order.id).amount == Decimal("540.00")


def test_a_page_showing_the_member_price_is_not_refused_as_changed(stock, app):
    steel, _ = stock
    make_member(steel)
    alliance.set_terms("10", "0", actor="t")
    order = _order(steel, lines=LINES[:1], shown_prices={"OLD-2021": Decimal("54.00")})
    assert order.amount == Decimal("540.00")
    with pytest.raises(orders.OrderError) as refused:  # the listed price is no longer what it pays
        _order(steel, lines=LINES[:1], shown_prices={"OLD-2021": Decimal("60.00")})
    assert refused.value.code == "price_changed"


def _listed_days_ago(code, days):
    listing = db.session.scalar(select(Listing).join(Batch).where(Batch.code == code))
    listing.listed_at = utcnow() - timedelta(days=days)


def test_first_call_only_members_buy_a_new_batch_others_are_told_when_it_opens(stock, app):
    steel, cement = stock
    make_member(steel)
    alliance.set_terms("0", "7", actor="t")
    _listed_days_ago("OLD-2021", 30)
    _listed_days_ago("NEW-2023", 2)
    db.session.commit()
    with pytest.raises(orders.OrderError) as refused:
        _order(cement, lines=LINES)
    assert refused.value.code == "members_first" and "NEW-2023" in refused.value.message
    with pytest.raises(orders.OrderError) as named:
        _order(cement, quantity=3, batch_code="NEW-2023")
    assert named.value.code == "members_first"
    with pytest.raises(orders.OrderError):
        orders.create_quote(cement, LINES[1:], actor="t")
    db.session.rollback()
    # By quantity, a non-member is given only what is open to everyone: 100 t of OLD-2021.
    with pytest.raises(orders.OrderError) as short:
        _order(cement, quantity=101)
    assert short.value.code == "insufficient_stock"
    db.session.rollback()
    assert {line.batch.code for line in _order(cement, quantity=100).lines} == {"OLD-2021"}
    member = _order(steel, lines=[{"batch_code": "NEW-2023", "quantity": 4}])
    assert member.quantity == 4
    _listed_days_ago("NEW-2023", 8)  # the first call is over
    assert _order(cement, lines=[{"batch_code": "NEW-2023", "quantity": 1}]).quantity == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def paying_app(request, localstripe):  # noqa: F811
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    app.config.update(STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal")
    return app


def test_a_member_pays_the_member_price_through_a_real_order(paying_app, localstripe):  # noqa: F811
    """Through localstripe and the signed webhook, on SQLite and PostgreSQL: the intent is for the
    member price, the certificate follows, and the public page counts the tonnes."""
    from portal.alliance import public
    from portal.payments import services as payments

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=50, code="PAY-2022", vintage=2022, price="80.00")
    make_member(steel)
    alliance.set_terms("15", "0", actor="t")
    db.session.commit()
    live = LiveShop(paying_app, localstripe)
    try:
        order = _order(steel, lines=[{"batch_code": "PAY-2022", "quantity": 6}])
        db.session.commit()
        orders.attach_payment(order)
        db.session.commit()
        assert order.amount == Decimal("408.00")  # 6 × 68.00
        intent = live.stripe.v1.payment_intents.retrieve(order.payment_intent_id)
        assert intent.amount == 40800 and intent.currency == "cny"
        payments.pay_with_test_card(order.payment_intent_id)
        done = wait_for(
            lambda: db.session.get(Order, order.id).status == "fulfilled" and db.session.get(Order, order.id)
        )
        assert done.certificate.quantity == 6
        current, _former, years = public.members()
        assert [(e.organisation.id, e.retired) for e in current] == [(steel.id, {utcnow().year: 6})]
    finally:
        live.close()
