"""Revenue sharing: rules, exact lines for every paid sale, statements that reconcile."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.offsets.models import Order
from portal.revenue import services as revenue
from portal.revenue.models import RevenueLine, SharingRule
from tests import factories
from tests.revenue.helpers import paid_order, setup_market


@pytest.fixture
def market(app):
    return setup_market()


def test_every_paid_sale_is_split_exactly_3_to_7_by_default(market):
    order = paid_order(market, 1003)  # 1000 t of AH-2021 and 3 t of LX-2022
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
    assert sum(line.amount_fen for line in lines) == int(order.amount * 100) == 6835000 + 23331
    for line in lines:
        assert line.city_fen + line.county_fen == line.amount_fen
        assert line.rule.city_bp == 3000
    by_county = {line.region.code: line for line in lines}
    assert by_county["aohan"].county_fen == 4784500 and by_county["aohan"].city_fen == 2050500
    # 233.31 yuan × 70 % = 163.317 → 163.32 (half to even on 16331.7 fen → 16332)
    assert by_county["linxi"].county_fen == 16332 and by_county["linxi"].city_fen == 23331 - 16332


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=0, max_value=10000))
def test_a_split_always_adds_up(amount_fen, county_bp):
    rule = SharingRule(city_bp=10000 - county_bp, county_bp=county_bp)
    city, county = revenue.split(amount_fen, rule)
    assert city + county == amount_fen
    assert abs(county * 10000 - amount_fen * county_bp) <= 5000  # within half a fen


def test_a_rule_change_applies_from_its_date_only(market):
    before = paid_order(
        market, 10, when=datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
    )  # 23:00 in Beijing, 31 March
    revenue.add_rule(effective_from="2026-04-01", city_pct="40", county_pct="60", actor="t")
    revenue.add_rule(
        effective_from="2026-04-01", city_pct="20", county_pct="80", region_code="linxi", actor="t"
    )
    after = paid_order(
        market, 10, when=datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    )  # 00:30 on 1 April in Beijing
    grass = paid_order(market, 995, when=datetime(2026, 5, 1, tzinfo=UTC))  # 990 t AH + 5 t LX
    old = db.session.scalar(select(RevenueLine).filter_by(sale_ref=before.public_id))
    new = db.session.scalar(select(RevenueLine).filter_by(sale_ref=after.public_id))
    assert old.rule.city_bp == 3000 and new.rule.city_bp == 4000
    linxi = db.session.scalar(
        select(RevenueLine).filter_by(sale_ref=grass.public_id).where(RevenueLine.batch.has(code="LX-2022"))
    )
    assert linxi.rule.city_bp == 2000  # the county's own rule beats the general one
    assert old.rule.city_bp == 3000  # and the old line still says what it was made with


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"city_pct": "30", "county_pct": "60"}, "shares_do_not_add_up"),
        ({"city_pct": "-10", "county_pct": "110"}, "invalid_share"),
        ({"city_pct": "abc", "county_pct": "70"}, "invalid_share"),
        ({"city_pct": "30.001", "county_pct": "69.999"}, "invalid_share"),
        ({"city_pct": "NaN", "county_pct": "70"}, "invalid_share"),
        ({"effective_from": "2026-13-01"}, "invalid_date"),
        ({"effective_from": "2000-01-01"}, "overlapping_rule"),
        ({"region_code": "nowhere"}, "unknown_county"),
        ({"project_type": "unicorn"}, "unknown_type"),
    ],
)
def test_bad_rules_are_refused_and_change_nothing(market, values, code):
    before = db.session.scalar(select(func.count()).select_from(SharingRule))
    args = {"effective_from": "2026-06-01", "city_pct": "30", "county_pct": "70", **values}
    with pytest.raises(revenue.RevenueError) as refused:
        revenue.add_rule(actor="t", **args)
    assert refused.value.code == code and refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SharingRule)) == before


def test_a_refund_reverses_the_lines(market):
    order = paid_order(market, 12)
    reversals = revenue.reverse_sale("order", order.public_id, datetime(2026, 12, 1, tzinfo=UTC))
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
    assert len(reversals) == 1 and sum(line.amount_fen for line in lines) == 0
    assert sum(line.city_fen for line in lines) == sum(line.county_fen for line in lines) == 0


def test_reversing_twice_reverses_once(market):
    order = paid_order(market, 12)
    revenue.reverse_sale("order", order.public_id, datetime(2026, 12, 1, tzinfo=UTC))
    assert revenue.reverse_sale("order", order.public_id, datetime(2026, 12, 2, tzinfo=UTC)) == []
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
    assert sum(line.amount_fen for line in lines) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=0, max_value=300_000), min_size=1, max_size=5))
def test_partial_refunds_reverse_exactly_and_a_whole_refund_nets_to_zero(market, steps):
    """Refunds come as Stripe's cumulative ``amount_refunded``: each reversal takes out exactly
    what was refunded since the last, shared over the sale's batches, and once the whole sale is
    refunded every line and both shares are back to zero."""
    db.session.rollback()
    order = paid_order(market, 1003)  # two batches, two counties
    paid = int(order.amount * 100)
    refunded = 0
    for step in [*steps, paid]:
        refunded = min(paid, max(refunded, step))
        revenue.reverse_sale("order", order.public_id, datetime(2026, 12, 1, tzinfo=UTC), refunded)
        lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
        assert sum(line.amount_fen for line in lines) == paid - refunded
        for line in lines:
            assert line.city_fen + line.county_fen == line.amount_fen
        for original in (line for line in lines if line.reversal_of_id is None):
            rest = [line for line in lines if line.reversal_of_id == original.id]
            assert 0 <= original.amount_fen + sum(line.amount_fen for line in rest) <= original.amount_fen
    for original in (line for line in lines if line.reversal_of_id is None):
        rest = [line for line in lines if line.reversal_of_id == original.id] + [original]
        assert sum(line.city_fen for line in rest) == sum(line.county_fen for line in rest) == 0
    db.session.rollback()


def test_statements_reconcile_with_payments_and_export(market, app, client):
    for quantity in (3, 17, 250):
        paid_order(market, quantity, when=datetime(2026, 7, 10, tzinfo=UTC))
    paid_order(market, 5, when=datetime(2026, 8, 2, tzinfo=UTC))
    db.session.commit()
    statement = revenue.statement(date(2026, 7, 1), date(2026, 7, 31))
    paid = db.session.scalar(
        select(func.sum(Order.amount)).where(Order.status == "fulfilled", Order.quantity.in_((3, 17, 250)))
    )
    assert statement.amount_fen == int(paid * 100) == statement.city_fen + statement.county_fen
    factories.user("ops@example.com", role="operator")
    factories.user("buyer@example.com", organisation=market)
    db.session.commit()
    client.post("/login", data={"email": "buyer@example.com", "password": factories.PASSWORD})
    assert client.get("/staff/revenue/?period=2026-07").status_code == 403
    client.post("/logout")
    client.post("/login", data={"email": "ops@example.com", "password": factories.PASSWORD})
    page = client.get("/staff/revenue/?period=2026-07&lang=en")
    assert page.status_code == 200 and f"{Decimal(statement.amount_fen) / 100:,.2f}" in page.get_data(
        as_text=True
    )
    assert client.get("/staff/revenue/?period=2026-13").status_code == 400
    csv_text = client.get("/staff/revenue/?period=2026-07&county=aohan&format=csv").get_data(as_text=True)
    assert "aohan" in csv_text and "linxi" not in csv_text
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(client.get("/staff/revenue/?period=2026&format=xlsx&lang=en").get_data()))
    rows = list(book.active.values)
    total = book.active.cell(row=len(rows), column=6)
    assert rows[-1][0] == "Total" and total.data_type == "n" and total.number_format == "#,##0.00"
    assert (
        Decimal(str(total.value)) * 100 == revenue.statement(date(2026, 1, 1), date(2026, 12, 31)).amount_fen
    )
    bad = client.post(
        "/staff/revenue/rules", data={"effective_from": "2026-09-01", "city_pct": "50", "county_pct": "40"}
    )
    assert bad.status_code == 400
    good = client.post(
        "/staff/revenue/rules", data={"effective_from": "2026-09-01", "city_pct": "50", "county_pct": "50"}
    )
    assert good.status_code == 302


def test_the_api_lists_lines_for_operators_and_auditors_only(market, app, client):
    order = paid_order(market, 4, when=datetime(2026, 7, 10, tzinfo=UTC))
    factories.user("audit@example.com", role="auditor")
    db.session.commit()
    key = (
        app.test_cli_runner().invoke(args=["apikeys", "create", "--user", "audit@example.com"]).output.strip()
    )
    buyer_key = (
        app.test_cli_runner().invoke(args=["apikeys", "create", "--org", factories.STEEL_USCC]).output.strip()
    )
    data = client.get(
        "/api/v1/revenue/lines?from=2026-07-01&to=2026-07-31&county=aohan",
        headers={"Authorization": f"Bearer {key}"},
    ).get_json()
    (line,) = data["items"]
    assert line["sale_ref"] == order.public_id and line["county"] == "aohan"
    assert Decimal(line["city_share"]["amount"]) + Decimal(line["county_share"]["amount"]) == Decimal(
        line["amount"]["amount"]
    )
    assert (
        client.get("/api/v1/revenue/lines", headers={"Authorization": f"Bearer {buyer_key}"}).status_code
        == 403
    )
    assert (
        client.get("/api/v1/revenue/lines?from=July", headers={"Authorization": f"Bearer {key}"}).status_code
        == 400
    )
    assert data["truncated"] is False


def test_the_api_says_when_it_leaves_lines_out(market, app, client, monkeypatch):
    from portal.revenue import api

    paid_order(market, 1003)  # two lines: two batches
    factories.user("audit@example.com", role="auditor")
    db.session.commit()
    key = (
        app.test_cli_runner().invoke(args=["apikeys", "create", "--user", "audit@example.com"]).output.strip()
    )
    monkeypatch.setattr(api, "MAX_LINES", 1)
    data = client.get("/api/v1/revenue/lines", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert len(data["items"]) == 1 and data["truncated"] is True


@pytest.mark.parametrize("written", ["2026-W28-5", "20260710", "2026-07-1", "2026-07-10x"])
def test_the_api_takes_dates_as_yyyy_mm_dd_only(market, app, client, written):
    """``date.fromisoformat`` also reads ISO week dates and the basic format: a period written
    so was taken for a date the caller may not have meant (a week day, or a run of digits)."""
    paid_order(market, 4, when=datetime(2026, 7, 10, tzinfo=UTC))
    factories.user("audit@example.com", role="auditor")
    db.session.commit()
    key = factories.api_key(app, "--user", "audit@example.com")
    headers = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}
    refused = client.get(f"/api/v1/revenue/lines?from={written}", headers=headers)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_date"
    taken = client.get("/api/v1/revenue/lines?from=2026-07-10&to=2026-07-10", headers=headers)
    assert taken.status_code == 200 and len(taken.get_json()["items"]) == 1
