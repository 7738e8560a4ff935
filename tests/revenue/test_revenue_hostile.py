"""Hostile review of issue #8: revenue sharing, statements, dashboard, compliance helper.

Every test asserts the behaviour the issue asks for; a failing test shows a defect.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.buyers import services as buyers
from portal.certificates import compliance, issuing
from portal.certificates import services as certificates
from portal.certificates.models import AllowanceDeclaration, Certificate
from portal.extensions import db
from portal.offsets import services as orders
from portal.revenue import services as revenue
from portal.revenue.models import RevenueLine, SharingRule
from tests import factories
from tests.concurrency import race
from tests.conftest import Client
from tests.revenue.helpers import paid_order, setup_market

PASSWORD = factories.PASSWORD


def _setup_market():
    """The revenue tests' market, with a user of each role."""
    steel = setup_market()
    factories.user("ops@example.com", role="operator")
    factories.user("audit@example.com", role="auditor")
    factories.user("sales@example.com", role="sales")
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    return steel


@pytest.fixture
def market(app):
    return _setup_market()


def _login(client, email):
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    return client


def _pg_client(pg_app):
    pg_app.test_client_class = Client
    return pg_app.test_client()


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


# --- rounding -------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=10000))
def test_review_split_is_exactly_half_even_and_conserves(amount_fen, county_bp):
    rule = SharingRule(city_bp=10000 - county_bp, county_bp=county_bp)
    city, county = revenue.split(amount_fen, rule)
    assert city + county == amount_fen
    exact = Decimal(amount_fen) * county_bp / 10000
    assert county == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=4))
def test_review_every_sale_conserves_to_the_fen(market, quantities):
    for q in quantities:
        order = paid_order(market, q)
        lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
        assert sum(line.amount_fen for line in lines) == int(order.amount * 100)
        assert all(line.city_fen + line.county_fen == line.amount_fen for line in lines)
    db.session.rollback()


def test_review_a_duplicate_webhook_does_not_duplicate_lines(market):
    order = paid_order(market, 7)
    intent = {"id": order.payment_intent_id, "amount": int(order.amount * 100), "currency": "cny"}
    assert orders.payment_succeeded(intent) == "already_fulfilled"
    assert len(db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()) == 1


# --- months are Beijing months -------------------------------------------------------------------


def test_review_a_sale_late_on_31_january_utc_is_februarys_in_beijing(market):
    paid_order(market, 5, when=datetime(2026, 1, 31, 20, 0, tzinfo=UTC))  # 04:00 on 1 February in Beijing
    assert revenue.statement(date(2026, 1, 1), date(2026, 1, 31)).amount_fen == 0
    assert revenue.statement(date(2026, 2, 1), date(2026, 2, 28)).amount_fen == 5 * 6835


def _dashboard_counts_retirements_in_beijing_months():
    from portal.staff import dashboard

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=100, code="CC-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 30)
    late = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)  # 1 February, 04:00 in Beijing
    with mock.patch.object(issuing, "utcnow", return_value=late):
        certificates.retire_from_holding(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    # 28 February 2025 17:00 UTC is 1 March 2025 in Beijing: the first month of the window.
    with mock.patch.object(issuing, "utcnow", return_value=datetime(2025, 2, 28, 17, 0, tzinfo=UTC)):
        certificates.retire_from_holding(steel, 7, beneficiary="x", purpose="voluntary", actor="t")
    # 28 February 2025 15:00 UTC is still February in Beijing: before the window.
    with mock.patch.object(issuing, "utcnow", return_value=datetime(2025, 2, 28, 15, 0, tzinfo=UTC)):
        certificates.retire_from_holding(steel, 5, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    figure = dashboard.over_time(date(2026, 2, 15))["retired"]
    rows = dict(figure.rows)  # labelled as the language writes months (Chinese outside a request)
    assert rows["2026年2月"] == 10 and rows["2026年1月"] == 0
    assert rows["2025年3月"] == 7 and figure.total == 17


def test_review_the_dashboard_counts_retirements_in_beijing_months(app):
    """Sales are put in Beijing months; retirements must use the same months (UTC+8)."""
    _dashboard_counts_retirements_in_beijing_months()


def test_review_the_dashboard_counts_retirements_in_beijing_months_postgres(pg_app):
    _dashboard_counts_retirements_in_beijing_months()


def test_review_the_statement_defaults_to_the_current_beijing_month(market, client, monkeypatch):
    """On a UTC server at 2026-01-31 20:00 UTC it is already February in Beijing."""
    from portal import timeutil
    from portal.revenue import views

    now = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)

    class ServerDate(date):
        @classmethod
        def today(cls):
            return now.date()  # the server's local clock runs on UTC

    monkeypatch.setattr(views, "date", ServerDate)
    monkeypatch.setattr(timeutil, "utcnow", lambda: now)
    _login(client, "ops@example.com")
    page = client.get("/staff/revenue/?lang=en").get_data(as_text=True)
    assert 'value="2026-02"' in page


# --- contract invoices: statements reconcile to payments received --------------------------------


@pytest.fixture
def invoiced(app):
    from portal.contracts import services as contracts
    from tests.contracts.helpers import day, terms

    steel, _ = factories.steel_and_cement()
    sales = factories.user("sales@portal.cn", role="sales")
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    contract, _ = contracts.create_draft(
        steel, terms(tranches=[{"due": day(2), "quantity": 40}]), owner=sales, actor="t"
    )
    contracts.sign(contract, actor="t")
    delivery, _ = contracts.deliver(contract, 1, 40, actor="sales")
    db.session.commit()
    return delivery.invoice


def test_review_an_invoice_line_is_dated_when_the_money_was_received(invoiced):
    from portal.contracts import services as contracts
    from tests.contracts.helpers import TODAY

    received = TODAY - timedelta(days=40)
    contracts.record_payment(invoiced, str(invoiced.amount), received.isoformat(), "ICBC-1", actor="s")
    db.session.flush()
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=invoiced.number)).all()
    assert lines and {line.paid_on for line in lines} == {received}


def test_review_invoice_installments_reconcile_month_by_month(invoiced):
    from portal.contracts import services as contracts
    from tests.contracts.helpers import TODAY

    early = TODAY - timedelta(days=40)
    contracts.record_payment(invoiced, "800.00", early.isoformat(), "ICBC-1", actor="s")
    contracts.record_payment(invoiced, str(invoiced.amount - 800), TODAY.isoformat(), "ICBC-2", actor="s")
    db.session.flush()
    month_start = early.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    assert revenue.statement(month_start, month_end).amount_fen == 80000


# --- refunds ---------------------------------------------------------------------------------------


def test_review_a_refunded_online_invoice_payment_is_reversed_in_the_lines(invoiced):
    """'Refunds produce reversing lines': an invoice paid online and refunded in Stripe must not
    stay in the county statements as money received."""
    from portal.contracts import services as contracts

    fen = int(invoiced.amount * 100)
    intent = {
        "id": "pi_review_1",
        "amount": fen,
        "currency": "cny",
        "metadata": {"portal_invoice": invoiced.number, "portal_purpose": "invoice"},
    }
    assert contracts.invoice_paid_online(intent) == "paid"
    db.session.flush()
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=invoiced.number)).all()
    assert sum(line.amount_fen for line in lines) == fen
    contracts.invoice_payment_refunded(
        {"object": "charge", "payment_intent": "pi_review_1", "amount_refunded": fen, "amount": fen}
    )
    db.session.flush()
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=invoiced.number)).all()
    assert sum(line.amount_fen for line in lines) == 0


def test_review_partial_then_whole_refund_of_an_order_nets_every_share_to_zero(market):
    order = paid_order(market, 1003, when=datetime(2026, 7, 10, tzinfo=UTC))  # two counties
    fen = int(order.amount * 100)
    for refunded in (1, 3, 3, fen // 3, fen - 1, fen, fen + 999):
        revenue.reverse_sale("order", order.public_id, datetime(2026, 8, 1, tzinfo=UTC), refunded)
        lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
        assert sum(line.amount_fen for line in lines) == fen - min(refunded, fen)
        for line in lines:
            assert line.city_fen + line.county_fen == line.amount_fen
            if line.reversal_of_id is not None:
                assert line.amount_fen <= 0 and line.city_fen <= 0 and line.county_fen <= 0
    by_original = {}
    for line in lines:
        key = line.reversal_of_id or line.id
        acc = by_original.setdefault(key, [0, 0, 0])
        acc[0] += line.amount_fen
        acc[1] += line.city_fen
        acc[2] += line.county_fen
    assert all(acc == [0, 0, 0] for acc in by_original.values())


def test_review_reversing_a_sale_twice_does_not_reverse_it_twice(market):
    order = paid_order(market, 12)
    when = datetime(2026, 12, 1, tzinfo=UTC)
    revenue.reverse_sale("order", order.public_id, when)
    revenue.reverse_sale("order", order.public_id, when)  # e.g. a repeated refund event
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=order.public_id)).all()
    assert sum(line.amount_fen for line in lines) == 0


def test_review_reversing_lines_export_as_numbers_in_csv(market, client):
    order = paid_order(market, 12, when=datetime(2026, 7, 10, tzinfo=UTC))
    revenue.reverse_sale("order", order.public_id, datetime(2026, 8, 10, tzinfo=UTC))
    db.session.commit()
    _login(client, "ops@example.com")
    text = client.get("/staff/revenue/?period=2026-08&format=csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    amounts = [row[5] for row in rows[1:]]
    for value in amounts:
        Decimal(value)  # "'-820.20" is not a number: a spreadsheet cannot add it up
    assert Decimal(rows[-1][5]) == Decimal("-820.20")


def test_review_xlsx_amounts_are_numbers(market, client):
    from openpyxl import load_workbook

    order = paid_order(market, 12, when=datetime(2026, 7, 10, tzinfo=UTC))
    revenue.reverse_sale("order", order.public_id, datetime(2026, 7, 20, tzinfo=UTC))
    db.session.commit()
    _login(client, "ops@example.com")
    book = load_workbook(io.BytesIO(client.get("/staff/revenue/?period=2026-07&format=xlsx").get_data()))
    rows = list(book.active.values)[1:]
    for row in rows:
        assert isinstance(row[5], (int, float, Decimal)), row


def test_review_csv_and_xlsx_neutralise_formulas(app, client):
    from openpyxl import load_workbook

    steel = _setup_market()
    evil = factories.project(region_=factories.region("=cmd|'/c calc'!A1"))
    factories.batch(quantity=10, code='=HYPERLINK("http://x")', vintage=2020, project_=evil, price="10.00")
    db.session.commit()
    paid_order(steel, 10, when=datetime(2026, 7, 10, tzinfo=UTC))  # oldest vintage first: the evil batch
    db.session.commit()
    _login(client, "ops@example.com")
    text = client.get("/staff/revenue/?period=2026-07&format=csv").get_data(as_text=True).lstrip("\ufeff")
    for row in csv.reader(io.StringIO(text)):
        assert all(not cell.startswith(("=", "+", "@")) for cell in row), row
    book = load_workbook(io.BytesIO(client.get("/staff/revenue/?period=2026-07&format=xlsx").get_data()))
    for row in book.active.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value


def test_review_csv_headers_are_translated(market, client):
    """zh_CN is the default: a statement handed to a county office is not in English."""
    paid_order(market, 3, when=datetime(2026, 7, 10, tzinfo=UTC))
    db.session.commit()
    _login(client, "ops@example.com")
    text = client.get("/staff/revenue/?period=2026-07&format=csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[-1][0] != "total" and rows[0][0] != "paid_on"


# --- bad input never a 500 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "period=9999-12",
        "period=9999",
        "period=0000",
        "period=2026-13",
        "period=2026-00",
        "period=２０２６",
        "period=2026-\x00\x00",
        "period=%00",
        "period=-001-01",
        "period=" + "9" * 500,
        "county=" + "x" * 5000,
        "county=%00",
        "period=2026-07&format=xlsx&county=%00",
    ],
)
def test_review_odd_statement_queries_are_never_a_500(market, client, query):
    _login(client, "ops@example.com")
    for fmt in ("", "&format=csv", "&format=xlsx"):
        response = client.get(f"/staff/revenue/?{query}{fmt}")
        assert response.status_code in (200, 400), (query, fmt, response.status_code)


def _api_queries():
    return [
        "county=%00",
        "county=aohan%00",
        "from=%00",
        "from=2026-01-01%00",
        "from=２０２６-01-01",
        "from=9999-99-99",
        "to=" + "9" * 400,
        "from=2026-02-30",
        "county=" + "é" * 100,
    ]


@pytest.mark.parametrize("query", _api_queries())
def test_review_odd_api_queries_are_never_a_500_sqlite(market, app, client, query):
    key = factories.api_key(app, "--user", "audit@example.com")
    response = client.get(f"/api/v1/revenue/lines?{query}", headers=factories.bearer(key))
    assert response.status_code in (200, 400), (query, response.status_code)


@pytest.mark.parametrize("query", _api_queries())
def test_review_odd_api_queries_are_never_a_500_postgres(pg_app, query):
    _setup_market()
    client = _pg_client(pg_app)
    key = factories.api_key(pg_app, "--user", "audit@example.com")
    response = client.get(f"/api/v1/revenue/lines?{query}", headers=factories.bearer(key))
    assert response.status_code in (200, 400), (query, response.status_code)


@pytest.mark.parametrize(
    "form",
    [
        {"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "70", "note": "a\x00b"},
        {"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "70", "region_code": "aohan\x00"},
        {"effective_from": "2026-09-01\x00", "city_pct": "30", "county_pct": "70"},
        {"effective_from": "2026-09-01", "city_pct": "3\x000", "county_pct": "70"},
        {"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "70", "project_type": "x\x00"},
    ],
)
def test_review_rules_with_nul_bytes_are_refused_not_a_500_postgres(pg_app, form):
    _setup_market()
    client = _pg_client(pg_app)
    _login(client, "ops@example.com")
    before = _count(SharingRule)
    response = client.post("/staff/revenue/rules", data=form)
    assert response.status_code == 400, response.status_code
    db.session.rollback()
    assert _count(SharingRule) == before


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "60"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "1e999999", "county_pct": "70"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "sNaN", "county_pct": "70"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "Infinity", "county_pct": "-Infinity"}, 400),
        ({"effective_from": "99999-01-01", "city_pct": "30", "county_pct": "70"}, 400),
        (
            {"effective_from": "2000-01-01", "city_pct": "40", "county_pct": "60"},
            400,
        ),  # same day as the seeded rule
        (
            {"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "70", "region_code": "z" * 500},
            400,
        ),
        ({}, 400),
        # Decimal() reads these as 30 and 70; a share is written in ASCII digits.
        ({"effective_from": "2026-09-01", "city_pct": "\u0663\u0660", "county_pct": "70"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "\uff13\uff10", "county_pct": "70"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "3E+1", "county_pct": "70"}, 400),
        ({"effective_from": "2026-09-01", "city_pct": "30", "county_pct": "7_0"}, 400),
    ],
)
def test_review_bad_rules_on_the_web_are_400_and_change_nothing(market, client, form, status):
    _login(client, "ops@example.com")
    before = _count(SharingRule)
    assert client.post("/staff/revenue/rules", data=form).status_code == status
    db.session.rollback()
    assert _count(SharingRule) == before


def test_review_two_identical_rules_at_once_one_is_refused_cleanly_postgres(pg_app):
    _setup_market()

    def work(i):
        revenue.add_rule(effective_from="2027-01-01", city_pct="40", county_pct="60", actor=f"t{i}")
        db.session.commit()
        return "ok"

    outcomes = race(pg_app, 2, work, refused=(revenue.RevenueError,))
    assert sorted(outcomes) == ["ok", "overlapping_rule"]


@pytest.mark.postgres
def test_a_rule_added_while_the_same_one_is_uncommitted_is_refused_cleanly(pg_app):
    """The interleaving the race above only sometimes hits (it once failed CI): the second
    request's check runs while the first rule is written but not committed, so only the unique
    index can stop it; that must be the same clear refusal, not a 500."""
    import threading
    import time

    _setup_market()
    written, release = threading.Event(), threading.Event()
    outcome = []

    def add(actor):
        revenue.add_rule(effective_from="2027-01-01", city_pct="40", county_pct="60", actor=actor)

    def first():
        with pg_app.app_context():
            add("t1")
            written.set()
            release.wait(10)
            db.session.commit()

    def second():
        with pg_app.app_context():
            written.wait(10)
            try:
                add("t2")  # its check sees nothing committed; its insert waits for the first
                db.session.commit()
                outcome.append("ok")
            except revenue.RevenueError as exc:
                db.session.rollback()
                outcome.append(exc.code)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    written.wait(10)
    time.sleep(0.5)  # the second is now waiting on the unique index
    release.set()
    for thread in threads:
        thread.join(20)
    assert outcome == ["overlapping_rule"]
    db.session.rollback()
    assert (
        db.session.scalar(
            select(func.count()).select_from(SharingRule).filter_by(effective_from=date(2027, 1, 1))
        )
        == 1
    )


# --- permissions and CSRF ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "buyer@example.com", "sales@example.com"])
def test_review_only_operators_and_auditors_read_statements(market, client, who):
    if who != "anonymous":
        _login(client, who)
    for path in (
        "/staff/revenue/?period=2026",
        "/staff/revenue/?period=2026&format=csv",
        "/staff/revenue/?period=2026&format=xlsx",
        "/staff/revenue/rules",
    ):
        response = client.get(path)
        if who == "anonymous":
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        else:
            assert response.status_code == 403, (who, path)


def test_review_api_refuses_anonymous_buyers_and_sales(market, app, client):
    assert client.get("/api/v1/revenue/lines").status_code == 401
    for args in (("--org", factories.STEEL_USCC), ("--user", "sales@example.com")):
        key = factories.api_key(app, *args)
        assert client.get("/api/v1/revenue/lines", headers=factories.bearer(key)).status_code == 403


def test_review_auditor_cannot_add_rules(market, client):
    _login(client, "audit@example.com")
    assert 'name="city_pct"' not in client.get("/staff/revenue/rules").get_data(as_text=True)
    before = _count(SharingRule)
    response = client.post(
        "/staff/revenue/rules", data={"effective_from": "2026-09-01", "city_pct": "50", "county_pct": "50"}
    )
    assert response.status_code == 403 and _count(SharingRule) == before


def test_review_rule_creation_needs_a_csrf_token(csrf_app):
    _setup_market()
    client = csrf_app.test_client()
    assert factories.sign_in_with_token(client, "ops@example.com").status_code == 302
    before = _count(SharingRule)
    response = client.post(
        "/staff/revenue/rules",
        data={"effective_from": "2026-09-01", "city_pct": "50", "county_pct": "50"},
    )
    assert response.status_code == 400
    db.session.rollback()
    assert _count(SharingRule) == before


def test_review_the_dashboard_is_staff_only(market, client):
    assert client.get("/staff/dashboard").status_code == 302
    _login(client, "buyer@example.com")
    assert client.get("/staff/dashboard").status_code == 403


# --- compliance -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowances", "cap"),
    [(0, 0), (19, 0), (20, 1), (1001, 50), (1019, 50), (1020, 51), (10**12, 5 * 10**10)],
)
def test_review_the_cap_rounds_down_to_whole_tonnes(allowances, cap):
    assert compliance.cap_of(allowances) == cap


@pytest.fixture
def ets(app):
    steel, cement = factories.steel_and_cement()
    ccer = factories.batch(quantity=1000, code="CCER-A-2021", vintage=2021)
    vcs = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=1000, code="VCS-B-2020", vintage=2020, project_=vcs)
    buyers.deliver_from_inventory(steel, 300, batch_codes=["VCS-B-2020"])
    buyers.deliver_from_inventory(steel, 300, batch_codes=[ccer.code])
    steel.ets_entity = True
    factories.user("ets@example.com", organisation=steel)
    db.session.commit()
    return steel


def test_review_1001_t_allowances_allow_50_t_not_51(ets):
    compliance.declare(ets, 2026, 1001, actor="t")
    with pytest.raises(certificates.RetirementError) as refused:
        certificates.retire_from_holding(
            ets, 51, beneficiary="b", purpose="compliance", compliance_year=2026, actor="t"
        )
    assert refused.value.code == "compliance_cap" and "50" in refused.value.message
    cert, _ = certificates.retire_from_holding(
        ets, 50, beneficiary="b", purpose="compliance", compliance_year=2026, actor="t"
    )
    assert {b.batch.code for b in cert.blocks} == {"CCER-A-2021"}  # VCS (older vintage) is not taken
    (position,) = compliance.positions(ets)
    assert (position.cap_t, position.used_t, position.remaining_t) == (50, 50, 0)


def test_review_zero_allowances_allow_no_compliance_retirement(ets):
    compliance.declare(ets, 2026, 0, actor="t")
    with pytest.raises(certificates.RetirementError) as refused:
        certificates.retire_from_holding(
            ets, 1, beneficiary="b", purpose="compliance", compliance_year=2026, actor="t"
        )
    assert refused.value.code == "compliance_cap"


def test_review_vcs_only_holding_cannot_be_used_for_compliance(app):
    steel, _ = factories.steel_and_cement()
    vcs = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=100, code="VCS-ONLY", vintage=2022, project_=vcs)
    buyers.deliver_from_inventory(steel, 100)
    steel.ets_entity = True
    compliance.declare(steel, 2026, 100000, actor="t")
    before = _count(Certificate)
    with pytest.raises(certificates.RetirementError):
        certificates.retire_from_holding(
            steel, 5, beneficiary="b", purpose="compliance", compliance_year=2026, actor="t"
        )
    with pytest.raises(certificates.RetirementError) as named:
        certificates.retire_from_holding(
            steel,
            5,
            beneficiary="b",
            purpose="compliance",
            compliance_year=2026,
            batch_code="VCS-ONLY",
            actor="t",
        )
    assert named.value.code == "compliance_needs_ccer"
    db.session.rollback()
    assert _count(Certificate) == before


@pytest.mark.parametrize(
    "allowances",
    ["-1", "-0", "1.5", "1e3", "１０００", "1000\x00", "9" * 30, str(10**12 + 1), "", " ", "0x10", "+5"],
)
def test_review_bad_allowance_figures_are_refused_on_the_page(ets, client, allowances):
    _login(client, "ets@example.com")
    response = client.post("/account/compliance", data={"year": "2026", "allowances_t": allowances})
    assert response.status_code == 400, (allowances, response.status_code)
    db.session.rollback()
    assert compliance.positions(ets) == []


@pytest.mark.parametrize("year", ["２０２６", "2026\x00", "99999999999999999999999", "-2026", "2019", "2101"])
def test_review_bad_years_are_refused_on_the_page(ets, client, year):
    _login(client, "ets@example.com")
    response = client.post("/account/compliance", data={"year": year, "allowances_t": "100"})
    assert response.status_code == 400
    db.session.rollback()
    assert compliance.positions(ets) == []


def test_review_the_compliance_page_shows_cap_used_and_remaining(ets, client):
    compliance.declare(ets, 2026, 1001, actor="t")
    certificates.retire_from_holding(
        ets, 20, beneficiary="b", purpose="compliance", compliance_year=2026, actor="t"
    )
    db.session.commit()
    _login(client, "ets@example.com")
    page = client.get("/account/compliance?lang=en").get_data(as_text=True)
    assert "1,001" in page and ">50<" in page and ">20<" in page and "<strong>30</strong>" in page
    zh = client.get("/account/compliance?lang=zh").get_data(as_text=True)
    assert "Allowances due" not in zh and "Remaining" not in zh


def _ets_postgres():
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="CCER-A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 600)
    steel.ets_entity = True
    compliance.declare(steel, 2026, 4000, actor="t")  # cap 200 t
    db.session.commit()
    return steel.id


def test_review_compliance_retirements_racing_stay_under_the_cap_postgres(pg_app):
    from portal.buyers.models import Organisation

    org_id = _ets_postgres()

    def work(i):
        org = db.session.get(Organisation, org_id)
        certificates.retire_from_holding(
            org, 120, beneficiary="b", purpose="compliance", compliance_year=2026, actor=f"t{i}"
        )
        db.session.commit()
        return "ok"

    outcomes = race(pg_app, 4, work, refused=(certificates.RetirementError,))
    assert sorted(outcomes) == ["compliance_cap"] * 3 + ["ok"]
    used = db.session.scalar(
        select(func.sum(Certificate.quantity)).where(Certificate.purpose == "compliance")
    )
    assert used == 120


def test_review_first_declarations_racing_are_not_a_500_postgres(pg_app):
    from portal.buyers.models import Organisation

    org_id = _ets_postgres()

    def work(i):
        org = db.session.get(Organisation, org_id)
        compliance.declare(org, 2027, 1000 + i, actor=f"t{i}")
        db.session.commit()
        return "ok"

    outcomes = race(pg_app, 2, work, refused=(compliance.ComplianceError,))
    # They take turns: the first inserts the year's declaration, the second updates it.
    assert outcomes == ["ok", "ok"]
    declared = db.session.scalars(
        select(AllowanceDeclaration).filter_by(organisation_id=org_id, year=2027)
    ).all()
    assert len(declared) == 1 and declared[0].allowances_t in (1000, 1001)


# --- rules: per type, back-dated ---------------------------------------------------------------------


def test_review_a_type_rule_applies_and_a_backdated_rule_rewrites_nothing(market):
    early = paid_order(market, 1003, when=datetime(2026, 3, 10, tzinfo=UTC))
    before = {
        line.id: (line.city_fen, line.county_fen, line.rule_id)
        for line in db.session.scalars(select(RevenueLine).filter_by(sale_ref=early.public_id))
    }
    revenue.add_rule(
        effective_from="2026-01-01", city_pct="10", county_pct="90", project_type="grassland", actor="t"
    )
    db.session.flush()
    after = {
        line.id: (line.city_fen, line.county_fen, line.rule_id)
        for line in db.session.scalars(select(RevenueLine).filter_by(sale_ref=early.public_id))
    }
    assert after == before
    late = paid_order(market, 10, when=datetime(2026, 3, 11, tzinfo=UTC), batch_code="LX-2022")
    (line,) = db.session.scalars(select(RevenueLine).filter_by(sale_ref=late.public_id)).all()
    assert line.rule.county_bp == 9000 and line.county_fen == 69993 and line.city_fen == 7777


@pytest.mark.parametrize("first", ["refund", "payment"])
def test_an_invoice_refund_seen_before_its_payment_is_applied_when_the_payment_arrives(invoiced, app, first):
    """It was answered ``unknown_intent`` and stored as handled, so Stripe never sent it again and
    nobody was told: 50,000 fen recorded, 30,000 kept. In either order the lines equal the money
    kept."""
    from portal.payments.models import WebhookEvent
    from tests.payments import charge_refunded, intent_event, post_event

    fen = int(invoiced.amount * 100)
    invoiced.payment_intent_id = "pi_inv_early"
    db.session.commit()
    metadata = {"portal_invoice": invoiced.number, "portal_purpose": "invoice"}
    paid = intent_event({"id": "pi_inv_early", "amount": fen, "currency": "cny", "metadata": metadata})
    refund = charge_refunded("pi_inv_early", fen // 5)
    client = app.test_client()
    outcomes = [
        post_event(client, app, e).get_json()["outcome"]
        for e in ([refund, paid] if first == "refund" else [paid, refund])
    ]
    assert outcomes == (["deferred", "paid"] if first == "refund" else ["paid", "staff_told"])
    db.session.expire_all()
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_ref=invoiced.number)).all()
    assert sum(line.amount_fen for line in lines) == fen - fen // 5
    kept = db.session.scalar(select(WebhookEvent).filter_by(type="charge.refunded"))
    assert kept.outcome == "staff_told" and kept.pending_object is None
