"""A hostile review of offtake contracts: bad input, money, reserves, amendments, payments,
webhooks and concurrency. Tests marked ``# Was a DEFECT (fixed):`` fail on the code as reviewed."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from portal.buyers.models import Organisation, User
from portal.contracts import delivery as delivering
from portal.contracts import drafting, invoices, services
from portal.contracts.models import Contract, Delivery, Invoice
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import LedgerError
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from tests import factories
from tests.concurrency import race
from tests.contracts.helpers import TODAY, day
from tests.contracts.helpers import terms as base_terms

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC
bearer = factories.bearer


def terms(**change) -> dict:
    return base_terms(
        **{
            "title": "Hostile offtake",
            "tranches": [{"due": day(2), "quantity": 30}, {"due": day(3), "quantity": 20}],
            **change,
        }
    )


def _inventory() -> int:
    return ledger.balance(ledger.system_account(AccountKind.INVENTORY))


def _setup():
    steel, cement = factories.steel_and_cement()
    factories.user("admin@steel.cn", organisation=steel, org_admin=True)
    sales = factories.user("sales@portal.cn", role="sales")
    return steel, cement, sales


@pytest.fixture
def market(app):
    steel, cement, sales = _setup()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    return steel, cement, sales


def _signed(market, **change):
    steel, _cement, sales = market
    contract, _ = services.create_draft(steel, terms(**change), owner=sales, actor="t")
    services.sign(contract, actor="t")
    db.session.flush()
    return contract


def _check_reserve_invariant(contract):
    """The reserve never holds more than the contract still has to deliver."""
    assert services.reserved(contract) <= contract.undelivered
    assert verify_ledger().ok


# --- API: keys and bad input ----------------------------------------------------------------------


@pytest.fixture
def keys(app):
    _setup()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    db.session.commit()
    return {
        "sales": factories.api_key(app, "--user", "sales@portal.cn"),
        "steel": factories.api_key(app, "--org", STEEL),
        "cement": factories.api_key(app, "--org", CEMENT),
    }


def _body(**change):
    return {"org_uscc": STEEL, **terms(**change)}


def _create(client, keys, body=None, headers=None):
    return client.post(
        "/api/v1/contracts", json=body or _body(), headers={**bearer(keys["sales"]), **(headers or {})}
    )


BAD_VALUES = [
    None,
    True,
    False,
    [],
    [1, 2],
    {},
    {"a": 1},
    "",
    " ",
    "x" * 5000,
    "\u202e",
    "\x07",
    10**30,
    -(10**30),
    1.5,
    1e308,
    "2026-02-30",
    "9999-99-99",
    "NaN",
    "Infinity",
    "1e999999",
]
FIELDS = [
    "title",
    "start",
    "end",
    "price_per_t",
    "escalation_pct_per_year",
    "year_prices",
    "standard",
    "project_types",
    "counties",
    "vintage_from",
    "vintage_to",
    "beneficiary",
    "payment_days",
    "total_quantity",
    "tranches",
]


@pytest.mark.parametrize("field", FIELDS)
def test_no_json_value_of_a_plain_field_makes_a_500(client, keys, field):
    for value in BAD_VALUES:
        response = _create(client, keys, body=_body(**{field: value}))
        assert response.status_code in (201, 400), (field, value, response.status_code)


@pytest.mark.parametrize("value", [["retire"], {"retire": 1}, [["holding"]]])
def test_an_unhashable_delivery_mode_is_refused_not_a_500(client, keys, value):
    # Was a DEFECT (fixed): parse_terms does `mode not in set(DeliveryMode)`; a list or dict is unhashable -> TypeError -> 500.
    response = _create(client, keys, body=_body(delivery=value))
    assert response.status_code == 400


@pytest.mark.parametrize(
    "tranche",
    [
        {"due": "2026-02-30", "quantity": 5},
        {"due": None, "quantity": 5},
        {"due": day(2), "quantity": None},
        {"due": day(2), "quantity": True},
        {"due": day(2), "quantity": 1.0},
        {"due": day(2), "quantity": 10**40},
        {"due": day(2), "quantity": "٣"},
        {"due": day(2), "quantity": [5]},
        {"due": [day(2)], "quantity": 5},
        [day(2), 5],
        "x",
        None,
    ],
)
def test_bad_tranches_are_400(client, keys, tranche):
    response = _create(client, keys, body=_body(tranches=[tranche]))
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_tranches_adding_up_beyond_the_ledger_maximum_are_refused(client, keys):
    big = [{"due": day(2), "quantity": 2**31 - 1}, {"due": day(3), "quantity": 2}]
    assert _create(client, keys, body=_body(tranches=big)).status_code == 400


def _signed_via_api(client, keys, **change):
    number = _create(client, keys, body=_body(**change)).get_json()["contract"]["number"]
    assert client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"])).status_code == 200
    return number


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": None},
        {"quantity": True},
        {"quantity": 1.0},
        {"quantity": "1.0"},
        {"quantity": -1},
        {"quantity": 0},
        {"quantity": 10**30},
        {"quantity": [1]},
        {"quantity": {"n": 1}},
        {"quantity": "\x00"},
        [1],
        "12",
    ],
)
def test_bad_delivery_quantities_are_4xx_and_change_nothing(client, keys, body):
    number = _signed_via_api(client, keys)
    response = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json=body, headers=bearer(keys["sales"])
    )
    assert 400 <= response.status_code < 500, response.get_json()
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_tranche_numbers_beyond_any_int_are_404(client, keys):
    number = _signed_via_api(client, keys)
    for n in ("0", "99999999999999999999999999", "-1", "1.0"):
        response = client.post(
            f"/api/v1/contracts/{number}/tranches/{n}/deliver", headers=bearer(keys["sales"])
        )
        assert response.status_code in (404, 405), (n, response.status_code)


def test_buyers_see_only_their_own_signed_contracts(client, keys):
    draft = _create(client, keys).get_json()["contract"]["number"]
    signed = _signed_via_api(client, keys)
    steel, cement = bearer(keys["steel"]), bearer(keys["cement"])
    assert client.get(f"/api/v1/contracts/{draft}", headers=steel).status_code == 404
    assert client.get(f"/api/v1/contracts/{signed}", headers=steel).status_code == 200
    assert client.get(f"/api/v1/contracts/{signed.lower()}", headers=cement).status_code == 404
    assert client.get(f"/api/v1/contracts/{signed}", headers=cement).status_code == 404
    assert client.get("/api/v1/contracts", headers=cement).get_json()["items"] == []
    assert [c["number"] for c in client.get("/api/v1/contracts", headers=steel).get_json()["items"]] == [
        signed
    ]
    # Buyers may not write.
    assert client.post(f"/api/v1/contracts/{signed}/tranches/1/deliver", headers=steel).status_code == 403
    assert client.post("/api/v1/contracts", json=_body(), headers=steel).status_code == 403


def test_a_terminated_draft_stays_hidden_from_the_buyer(client, keys):
    # Was a DEFECT (fixed): terminate() accepts drafts and _visible()/contracts_of() only hide status == "draft",
    # so the sales team's never-signed draft becomes visible to the buyer once terminated.
    # (Drafts are deleted now, not terminated; drafts terminated before that are still hidden.)
    number = _create(client, keys).get_json()["contract"]["number"]
    services.find(number).status = "terminated"
    db.session.commit()
    steel = bearer(keys["steel"])
    assert client.get(f"/api/v1/contracts/{number}", headers=steel).status_code == 404
    assert client.get("/api/v1/contracts", headers=steel).get_json()["items"] == []


def test_a_delivery_idempotency_digest_cannot_be_forged_through_the_body(client, keys):
    # Was a DEFECT (fixed): api.deliver_tranche digests {"tranche": n, **body}: a body key "tranche" overrides the
    # URL's tranche, so a request for tranche 2 replays tranche 1's delivery as if it were its own.
    number = _signed_via_api(client, keys)
    headers = {**bearer(keys["sales"]), "Idempotency-Key": "k-1"}
    first = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json={"quantity": 5}, headers=headers
    )
    assert first.status_code == 201
    second = client.post(
        f"/api/v1/contracts/{number}/tranches/2/deliver", json={"tranche": 1, "quantity": 5}, headers=headers
    )
    assert second.status_code == 422, second.get_json()


def test_idempotent_delivery_replay_is_exact(client, keys):
    number = _signed_via_api(client, keys)
    headers = {**bearer(keys["sales"]), "Idempotency-Key": "k-2"}
    path = f"/api/v1/contracts/{number}/tranches/1/deliver"
    one = client.post(path, json={}, headers=headers)
    two = client.post(path, json={}, headers=headers)
    assert one.status_code == two.status_code == 201
    assert two.headers.get("Idempotent-Replayed") == "true"
    assert one.get_json()["delivery"]["invoice"] == two.get_json()["delivery"]["invoice"]
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
    long_key = {**bearer(keys["sales"]), "Idempotency-Key": "k" * 201}
    assert client.post(path, json={"quantity": 1}, headers=long_key).status_code == 400


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "price, pct, years, expected",
    [
        ("70.00", "2.5", 0, "70.00"),
        ("70.00", "2.5", 1, "71.75"),
        ("70.00", "2.5", 3, "75.38"),  # 75.3828...
        ("1.00", "50", 3, "3.38"),  # 3.375 exactly: half to even
        ("1.00", "50", 1, "1.50"),
        ("0.01", "0.01", 20, "0.01"),
        ("99999.99", "0", 20, "99999.99"),
    ],
)
def test_escalation_is_compounded_once_per_calendar_year_half_to_even(market, price, pct, years, expected):
    start = date(TODAY.year - years, 1, 1)
    contract = _signed(
        market,
        start=start.isoformat(),
        end=day(60),
        price_per_t=price,
        escalation_pct_per_year=pct,
        tranches=[{"due": day(1), "quantity": 1}],
    )
    assert services.price_for(contract, TODAY) == Decimal(expected)
    delivery, _ = services.deliver(contract, 1, 1, actor="s")
    assert delivery.invoice.amount == Decimal(expected)


def test_fixed_year_prices_win_and_invoices_are_exact(market):
    contract = _signed(
        market,
        start=date(TODAY.year, 1, 1).isoformat(),
        end=date(TODAY.year + 2, 12, 31).isoformat(),
        escalation_pct_per_year="3.33",
        price_per_t="33.33",
        year_prices={str(TODAY.year): "33.37"},
        tranches=[{"due": day(1), "quantity": 7}],
    )
    delivery, _ = services.deliver(contract, 1, 7, actor="s")
    assert delivery.invoice.unit_price == Decimal("33.37")
    assert delivery.invoice.amount == Decimal("233.59")


def test_a_bank_transfer_over_100000_yuan_can_be_recorded(app):
    # Was a DEFECT (fixed): record_payment parses the amount with parse_money, whose ceiling is MAX_PRICE (100,000
    # yuan, a *per-tonne* limit): a 700,000-yuan invoice cannot be settled by one bank transfer.
    steel, _cement, sales = _setup()
    factories.batch(quantity=20000, code="BIG-2021", vintage=2021)
    contract, _ = services.create_draft(
        steel, terms(tranches=[{"due": day(1), "quantity": 10000}]), owner=sales, actor="t"
    )
    services.sign(contract, actor="t")
    delivery, _ = services.deliver(contract, 1, 10000, actor="s")
    invoice = delivery.invoice
    assert invoice.amount == Decimal("700000.00")
    services.record_payment(invoice, "700000.00", day(0), "ICBC-BIG", actor="sales")
    assert invoice.status == "paid"


def test_webhook_wrong_currency_amount_unknown_and_paid_by_bank_meanwhile(market, monkeypatch):
    refunds = []
    monkeypatch.setattr(invoices.payments, "refund", lambda i, reference: refunds.append(i) or "re_1")
    contract = _signed(market, tranches=[{"due": day(1), "quantity": 10}])
    delivery, _ = services.deliver(contract, 1, 10, actor="s")
    invoice = delivery.invoice  # 700.00
    invoice.payment_intent_id = "pi_1"
    base = {"id": "pi_1", "amount": 70000, "currency": "cny", "metadata": {"portal_invoice": invoice.number}}
    assert services.invoice_paid_online({**base, "currency": "usd"}) == "refunded"
    assert services.invoice_paid_online({**base, "id": "pi_b", "amount": True}) == "refunded"
    assert services.invoice_paid_online({**base, "id": "pi_f", "amount": 70000.0}) == "refunded"
    assert services.invoice_paid_online({**base, "id": "pi_h", "amount": 10**30}) == "refunded"
    assert services.invoice_paid_online({**base, "id": "pi_n", "amount": -5}) == "refunded"
    assert services.invoice_paid_online({"id": "pi_u", "amount": 1, "currency": "cny"}) == "unknown_invoice"
    assert services.invoice_paid_online(
        {"id": "pi_u", "amount": 1, "metadata": {"portal_invoice": ["x"]}}
    ) == ("unknown_invoice")
    assert invoice.paid_amount == 0
    services.record_payment(invoice, "700.00", day(0), "BANK-1", actor="sales")
    assert services.invoice_paid_online(base) == "refunded"  # paid by bank meanwhile
    assert invoice.paid_amount == Decimal("700.00") and contract.status == "completed"
    assert refunds == ["pi_1", "pi_b", "pi_f", "pi_h", "pi_n", "pi_1"]


def test_a_partial_online_payment_then_bank_rest(market, monkeypatch):
    monkeypatch.setattr(invoices.payments, "refund", lambda i, reference: "re")
    contract = _signed(market, tranches=[{"due": day(1), "quantity": 10}])
    invoice = services.deliver(contract, 1, 10, actor="s")[0].invoice
    intent = {
        "id": "pi_p",
        "amount": 30001,
        "currency": "CNY",
        "metadata": {"portal_invoice": invoice.number},
    }
    assert services.invoice_paid_online(intent) == "paid"
    assert invoice.outstanding == Decimal("399.99")
    services.record_payment(invoice, "399.99", day(0), "B-2", actor="s")
    assert invoice.status == "paid" and contract.status == "completed"


# --- reserve, deliveries, amendments ---------------------------------------------------------------


def test_spot_orders_never_take_reserved_stock(market):
    steel, cement, _sales = market
    contract = _signed(market, tranches=[{"due": day(2), "quantity": 90}])
    assert services.reserved(contract) == 90 and _inventory() == 10
    with pytest.raises(ServiceError):
        orders.create_order(cement, 11, beneficiary="b", purpose="voluntary", actor="x")
    orders.create_order(cement, 10, beneficiary="b", purpose="voluntary", actor="x")
    services.deliver(contract, 1, 90, actor="s")
    _check_reserve_invariant(contract)


def test_a_delivery_racing_another_between_its_two_transactions_is_refused_cleanly(app, monkeypatch):
    # Was a DEFECT (fixed): deliver() commits the top-up, re-locks, re-checks the tranche but not the reserve: a
    # delivery of another tranche that ran in between used the topped-up reserve, and the transfer
    # raises InsufficientCredits (a LedgerError, not a ServiceError) -> 500 from the API.
    steel, _cement, sales = _setup()
    factories.batch(quantity=20, code="A-2021", vintage=2021)
    contract, _ = services.create_draft(steel, terms(), owner=sales, actor="t")
    services.sign(contract, actor="t")
    assert services.reserved(contract) == 20
    factories.batch(quantity=100, code="B-2022", vintage=2022)  # not through the catalog: no signal
    db.session.commit()

    original = delivering._locked
    calls = {"n": 0}

    def locked(c):
        calls["n"] += 1
        if calls["n"] == 2:  # T1 re-locks after committing its top-up: T2 delivers first
            monkeypatch.setattr(delivering, "_locked", original)
            services.deliver(c, 2, 20, actor="other")
            db.session.commit()
        return original(c)

    monkeypatch.setattr(delivering, "_locked", locked)
    try:
        services.deliver(contract, 1, 30, actor="first")
    except ServiceError:
        pass  # a clean refusal is fine
    except LedgerError as exc:
        pytest.fail(f"a ledger error escaped deliver(): {exc!r} (the API answers 500)")
    db.session.rollback()
    _check_reserve_invariant(services.find(contract.number))


def test_amending_away_the_undelivered_rest_completes_a_paid_contract(market):
    # Was a DEFECT (fixed): amend() never calls complete_if_done(): with every remaining tranche delivered and every
    # invoice paid the contract stays "active" for ever (nothing left to deliver or pay to trigger it).
    contract = _signed(market)
    invoice = services.deliver(contract, 1, 30, actor="s")[0].invoice
    services.record_payment(invoice, invoice.amount, day(0), "B-1", actor="s")
    services.amend(contract, terms(tranches=[{"due": day(2), "quantity": 30}]), "buyer needs less", actor="s")
    assert contract.undelivered == 0 and services.reserved(contract) == 0
    assert contract.status == "completed"


def test_an_amendment_respects_a_restricted_buyers_order_limit(market):
    # Was a DEFECT (fixed): sign() checks policy.purchase_refusal(total, contract=True) but amend() does not, so a
    # restricted buyer signs 50 t within its 60 t limit and is then amended to 5,000 t.
    steel, _cement, _sales = market
    steel.status = "restricted"
    steel.order_limit_t = 60
    db.session.flush()
    contract = _signed(market)
    with pytest.raises(ServiceError):
        services.amend(contract, terms(tranches=[{"due": day(2), "quantity": 5000}]), "much more", actor="s")


def test_amendments_keep_deliveries_and_the_reserve_within_what_is_left(market):
    contract = _signed(market, tranches=[{"due": day(2), "quantity": 30}, {"due": day(40), "quantity": 40}])
    assert services.reserved(contract) == 70
    services.deliver(contract, 1, 10, actor="s")
    _check_reserve_invariant(contract)
    # Shrink: tranche 1 keeps its date and delivered 10 t; tranche 2 drops to 5 t.
    services.amend(
        contract,
        terms(tranches=[{"due": day(2), "quantity": 10}, {"due": day(40), "quantity": 5}]),
        "less",
        actor="s",
    )
    assert [t.delivered for t in contract.tranches] == [10, 0]
    assert services.reserved(contract) == 5
    _check_reserve_invariant(contract)
    # Grow beyond the capacity first opened, with a new tranche before the delivered one.
    services.amend(
        contract,
        terms(
            tranches=[
                {"due": day(1), "quantity": 50},
                {"due": day(2), "quantity": 10},
                {"due": day(40), "quantity": 60},
            ]
        ),
        "more",
        actor="s",
    )
    assert [(t.seq, t.delivered) for t in contract.tranches] == [(1, 0), (2, 10), (3, 0)]
    assert services.reserved(contract) == 90  # all that is left in stock
    _check_reserve_invariant(contract)
    with pytest.raises(ServiceError) as refused:
        services.amend(contract, terms(tranches=[{"due": day(3), "quantity": 10}]), "move", actor="s")
    assert refused.value.code == "delivered_tranche"
    delivery = db.session.scalar(select(Delivery))
    assert delivery.tranche.seq == 2 and delivery.invoice.quantity == 10
    services.deliver(contract, 1, 50, actor="s")
    services.terminate(contract, "end", actor="s")
    assert services.reserved(contract) == 0 and _inventory() == 40  # 100 - 60 delivered
    assert verify_ledger().ok
    # Open invoices stay payable after termination; the contract stays terminated.
    for invoice in services.invoices_of(contract=contract):
        services.record_payment(invoice, invoice.amount, day(0), f"B-{invoice.number}", actor="s")
    assert contract.status == "terminated"


def test_reserve_is_never_above_undelivered_through_a_long_sequence(market):
    steel, _cement, sales = market
    contract = _signed(
        market,
        tranches=[
            {"due": day(1), "quantity": 25},
            {"due": day(2), "quantity": 25},
            {"due": day(20), "quantity": 25},
        ],
    )
    steps = [
        lambda: services.deliver(contract, 2, 5, actor="s"),
        lambda: services.amend(
            contract,
            terms(tranches=[{"due": day(1), "quantity": 10}, {"due": day(2), "quantity": 5}]),
            "a",
            actor="s",
        ),
        lambda: services.reserve_all(actor="cli", commit=False),
        lambda: services.deliver(contract, 1, 10, actor="s"),
        lambda: services.amend(
            contract,
            terms(
                tranches=[
                    {"due": day(1), "quantity": 10},
                    {"due": day(2), "quantity": 5},
                    {"due": day(3), "quantity": 99},
                ]
            ),
            "b",
            actor="s",
        ),
        lambda: services.reserve_all(actor="cli", commit=False),
    ]
    for step in steps:
        step()
        db.session.flush()
        _check_reserve_invariant(contract)
    assert services.reserved(contract) == 85  # 100 - 15 delivered: everything else is reserved


# --- numbering ------------------------------------------------------------------------------------


def test_contract_numbers_carry_on_past_9999(market):
    # Was a DEFECT (fixed): _next_number takes max() of the number *strings*: after OC-YYYY-10000 the max is still
    # OC-YYYY-9999, every attempt collides, and create_draft answers 503 "busy" for the rest of the year.
    steel, _cement, sales = market
    contract, _ = services.create_draft(steel, terms(), owner=sales, actor="t")
    contract.number = f"OC-{TODAY.year}-9999"
    db.session.flush()
    second, _ = services.create_draft(steel, terms(), owner=sales, actor="t")
    assert second.number == f"OC-{TODAY.year}-10000"
    third, _ = services.create_draft(steel, terms(), owner=sales, actor="t")
    assert third.number == f"OC-{TODAY.year}-10001"


def test_invoice_numbers_are_consecutive_across_contracts(market):
    a = _signed(market, tranches=[{"due": day(1), "quantity": 10}])
    b = _signed(market, tranches=[{"due": day(1), "quantity": 10}])
    for contract in (a, b, a, b):
        services.deliver(contract, 1, 5, actor="s")
    numbers = list(db.session.scalars(select(Invoice.number).order_by(Invoice.id)))
    assert numbers == [f"INV-{TODAY.year}-{n:06d}" for n in range(1, 5)]


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_client(pg_app):
    from tests.conftest import Client

    pg_app.test_client_class = Client
    return pg_app.test_client()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "change",
    [
        {"org_uscc": "\u0000"},
        {"counties": [1]},
        {"counties": ["r\u0000"]},
        {"counties": {"x": 1}},
    ],
)
def test_nul_and_non_text_in_json_are_400_on_postgres(pg_app, change):
    # Was a DEFECT (fixed): the NUL guard in core/errors.py covers paths, query strings and forms, not JSON bodies;
    # api.create_contract queries org_uscc and parse_terms queries counties (its non-text sentinel is
    # "\0"!) with a NUL, which PostgreSQL refuses -> 500.
    _setup()
    db.session.commit()
    sales = factories.api_key(pg_app, "--user", "sales@portal.cn")
    response = _pg_client(pg_app).post("/api/v1/contracts", json=_body(**change), headers=bearer(sales))
    assert response.status_code == 400


@pytest.mark.postgres
def test_an_escalated_price_beyond_the_columns_is_refused_not_a_500(pg_app):
    # Was a DEFECT (fixed): price_for() is unbounded (100,000 yuan x 1.5^29 = 1.3e10) but invoices.unit_price is
    # NUMERIC(12,2) (and amount NUMERIC(14,2)): PostgreSQL raises "numeric field overflow" at delivery.
    steel, _cement, sales = _setup()
    factories.batch(quantity=10, code="P-2021", vintage=2021)
    start = date(TODAY.year - 20, 6, 1)
    with pytest.raises(services.ContractError) as refused:  # refused when drafted, since the fix
        services.create_draft(
            steel,
            terms(
                start=start.isoformat(),
                end=(start + timedelta(days=30 * 366)).isoformat(),
                price_per_t="100000.00",
                escalation_pct_per_year="50",
                tranches=[{"due": day(1), "quantity": 1}],
            ),
            owner=sales,
            actor="t",
        )
    assert refused.value.code == "invalid_escalation"
    contract, _ = services.create_draft(
        steel,
        terms(
            start=start.isoformat(),
            end=day(60),
            price_per_t="100000.00",
            tranches=[{"due": day(1), "quantity": 1}],
        ),
        owner=sales,
        actor="t",
    )
    db.session.commit()
    try:
        services.sign(contract, actor="t")
        services.deliver(contract, 1, 1, actor="s")
        db.session.commit()
    except ServiceError:
        db.session.rollback()
    except DBAPIError as exc:
        pytest.fail(f"the database refused the invoice: {exc.orig!r} (the API answers 500)")


@pytest.mark.postgres
def test_two_success_events_for_one_intent_never_refund_the_recorded_payment(pg_app, monkeypatch):
    # Was a DEFECT (fixed): invoice_paid_online checks "already recorded" *before* locking the invoice; a second
    # concurrent event for the same PaymentIntent then finds outstanding 0 and refunds the very
    # payment the first one recorded: the invoice is paid, the money is gone.
    steel, _cement, sales = _setup()
    factories.batch(quantity=10, code="W-2021", vintage=2021)
    contract, _ = services.create_draft(
        steel, terms(tranches=[{"due": day(1), "quantity": 10}]), owner=sales, actor="t"
    )
    services.sign(contract, actor="t")
    invoice = services.deliver(contract, 1, 10, actor="s")[0].invoice
    invoice.payment_intent_id = "pi_twice"
    number = invoice.number
    db.session.commit()
    refunds = []
    monkeypatch.setattr(invoices.payments, "refund", lambda i, reference: refunds.append(i) or "re")
    barrier = threading.Barrier(2)
    seen = threading.local()
    original = invoices._locked_invoice

    def locked_invoice(inv):
        if not getattr(seen, "waited", False):
            seen.waited = True
            barrier.wait(timeout=10)  # both have passed the "already recorded" check
        return original(inv)

    monkeypatch.setattr(invoices, "_locked_invoice", locked_invoice)
    intent = {"id": "pi_twice", "amount": 70000, "currency": "cny", "metadata": {"portal_invoice": number}}

    def work(i):
        outcome = services.invoice_paid_online(intent)
        db.session.commit()
        return outcome

    outcomes = race(pg_app, 2, work, refused=(ServiceError,))
    db.session.expire_all()
    paid = services.find_invoice(number)
    assert paid.status == "paid"
    assert refunds == [], outcomes


@pytest.mark.postgres
def test_a_concurrent_repeat_of_a_draft_is_replayed_not_busy(pg_app, monkeypatch):
    # Was a DEFECT (fixed): two concurrent create_draft calls with one Idempotency-Key both miss the lookup; the
    # loser's IntegrityError (on created_by+idempotency_key) is taken for a number collision, retried
    # 20 times and answered 503 "busy" instead of replaying the first draft.
    steel, _cement, sales = _setup()
    db.session.commit()
    steel_id, sales_id = steel.id, sales.id  # read here: worker threads must not touch this session
    barrier = threading.Barrier(2)
    original = drafting.parse_terms

    def parse(data):
        barrier.wait(timeout=10)
        return original(data)

    monkeypatch.setattr(drafting, "parse_terms", parse)

    def work(i):
        contract, created = services.create_draft(
            db.session.get(Organisation, steel_id),
            terms(),
            owner=db.session.get(User, sales_id),
            actor="apikey:x",
            idempotency_key="same",
            digest="d",
        )
        db.session.commit()
        return "created" if created else "replayed"

    outcomes = race(pg_app, 2, work, refused=(ServiceError,))
    assert sorted(outcomes) == ["created", "replayed"], outcomes
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 1


@pytest.mark.postgres
def test_deliveries_of_two_tranches_racing_after_top_ups_are_clean(pg_app, monkeypatch):
    # Was a DEFECT (fixed): the same interleaving as the SQLite test above, in two real PostgreSQL sessions: the
    # second delivery runs between the first one's top-up commit and its re-lock, and the first one's
    # transfer from the reserve raises InsufficientCredits (500) instead of topping up again.
    steel, _cement, sales = _setup()
    factories.batch(quantity=20, code="R-2021", vintage=2021)
    contract, _ = services.create_draft(steel, terms(), owner=sales, actor="t")
    services.sign(contract, actor="t")
    factories.batch(quantity=100, code="R-2022", vintage=2022)
    number = contract.number
    db.session.commit()
    committed_top_up, second_done = threading.Event(), threading.Event()
    original = delivering._locked
    calls = threading.local()

    def locked(c):
        calls.n = getattr(calls, "n", 0) + 1
        if getattr(calls, "first", False) and calls.n == 2:
            committed_top_up.set()
            second_done.wait(timeout=10)
        return original(c)

    monkeypatch.setattr(delivering, "_locked", locked)

    def work(i):
        try:
            if i == 0:
                calls.first = True
                services.deliver(services.find(number), 1, 30, actor="s0")
            else:
                committed_top_up.wait(timeout=10)
                try:
                    services.deliver(services.find(number), 2, 20, actor="s1")
                finally:
                    db.session.commit()
                    second_done.set()
        except LedgerError as exc:
            db.session.rollback()
            return f"ledger:{exc.code}"
        db.session.commit()
        return "delivered"

    outcomes = race(pg_app, 2, work, refused=(ServiceError,))
    assert not any(o.startswith("ledger:") for o in outcomes), outcomes
    db.session.expire_all()
    _check_reserve_invariant(services.find(number))
