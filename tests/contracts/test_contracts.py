"""Offtake contracts: terms, reservation, delivery, invoices, payments, amendments, the end."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers.models import Organisation, User
from portal.catalog import services as catalog
from portal.certificates.models import Certificate
from portal.contracts import services
from portal.contracts.models import Contract, ContractVersion, Delivery, Invoice, InvoicePayment
from portal.core.errors import ServiceError
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, LedgerEntry
from portal.ledger.verify import verify_ledger
from portal.revenue.models import RevenueLine
from tests import factories
from tests.contracts.helpers import TODAY, day, terms


@pytest.fixture
def market(app):
    steel, cement = factories.steel_and_cement()
    factories.user("admin@steel.cn", organisation=steel, org_admin=True)
    sales = factories.user("sales@portal.cn", role="sales")
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    return steel, cement, sales


def _draft(market, **change):
    steel, _cement, sales = market
    contract, created = services.create_draft(steel, terms(**change), owner=sales, actor="t")
    assert created
    return contract


def _signed(market, **change):
    contract = _draft(market, **change)
    services.sign(contract, actor="t")
    db.session.flush()
    return contract


def _inventory() -> int:
    return ledger.balance(ledger.system_account(AccountKind.INVENTORY))


def _reserve(contract) -> int:
    return services.reserved(contract)


def _counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Contract, Delivery, Invoice, InvoicePayment, LedgerEntry, Certificate)
    )


# --- terms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, code",
    [
        ({"total_quantity": 150}, "tranches_total"),
        ({"tranches": [{"due": day(900), "quantity": 10}]}, "tranche_outside_term"),
        ({"tranches": [{"due": day(-20), "quantity": 10}]}, "tranche_outside_term"),
        ({"tranches": []}, "invalid_tranches"),
        ({"tranches": [{"due": day(5), "quantity": 0}]}, "invalid_quantity"),
        ({"tranches": [{"due": day(5), "quantity": -4}]}, "invalid_quantity"),
        ({"tranches": [{"due": day(5), "quantity": "2.5"}]}, "invalid_quantity"),
        ({"tranches": [{"due": "next week", "quantity": 5}]}, "invalid_tranches"),
        ({"tranches": "lots"}, "invalid_tranches"),
        ({"price_per_t": "0"}, "invalid_price_per_t"),
        ({"price_per_t": "-70"}, "invalid_price_per_t"),
        ({"price_per_t": "70.001"}, "invalid_price_per_t"),
        ({"price_per_t": "NaN"}, "invalid_price_per_t"),
        ({"price_per_t": True}, "invalid_price_per_t"),
        ({"escalation_pct_per_year": "60"}, "invalid_escalation"),
        ({"escalation_pct_per_year": "-1"}, "invalid_escalation"),
        ({"year_prices": {"1999": "70.00"}}, "invalid_year_prices"),
        ({"end": day(-30)}, "invalid_term"),
        ({"start": "2026-02-30"}, "invalid_start"),
        ({"title": ""}, "invalid_title"),
        ({"title": "x" * 201}, "invalid_title"),
        ({"beneficiary": "evil\u202ename"}, "invalid_beneficiary"),
        ({"standard": "GS"}, "invalid_standard"),
        ({"project_types": ["coal"]}, "invalid_project_types"),
        ({"counties": ["atlantis"]}, "invalid_counties"),
        ({"vintage_from": 2024, "vintage_to": 2021}, "invalid_vintage"),
        ({"delivery": "post"}, "invalid_delivery"),
        ({"payment_days": 400}, "invalid_payment_days"),
    ],
)
def test_bad_terms_are_refused_and_create_nothing(market, change, code):
    before = _counts()
    with pytest.raises(services.ContractError) as refused:
        _draft(market, **change)
    assert refused.value.code == code
    assert refused.value.message  # a translated sentence for the user
    assert _counts() == before


def test_prices_escalate_per_calendar_year_or_are_fixed(market):
    contract = _draft(
        market,
        start="2026-03-01",
        end="2030-12-31",
        tranches=[{"due": "2026-12-01", "quantity": 1}],
        escalation_pct_per_year="2.5",
        year_prices={"2029": "99.99"},
    )
    assert services.price_for(contract, date(2026, 12, 1)) == Decimal("70.00")
    assert services.price_for(contract, date(2027, 1, 1)) == Decimal("71.75")
    # 70 × 1.025² = 73.54375 → 73.54 (half to even at the fen)
    assert services.price_for(contract, date(2028, 6, 1)) == Decimal("73.54")
    assert services.price_for(contract, date(2029, 6, 1)) == Decimal("99.99")
    assert services.price_for(contract, date(2030, 6, 1)) == Decimal("77.27")  # 70 × 1.025⁴ = 77.2669…


def test_tranches_are_numbered_in_due_order(market):
    contract = _draft(market, tranches=[{"due": day(300), "quantity": 2}, {"due": day(3), "quantity": 5}])
    assert [(t.seq, t.quantity) for t in contract.tranches] == [(1, 5), (2, 2)]
    assert contract.total_quantity == 7 and contract.number.startswith(f"OC-{TODAY.year}-")


def test_a_draft_is_edited_freely_and_a_signed_contract_only_by_amendment(market):
    contract = _draft(market)
    services.update_draft(contract, terms(price_per_t="72.50"), actor="t")
    assert contract.price_per_t == Decimal("72.50")
    services.sign(contract, actor="t")
    with pytest.raises(services.ContractError) as refused:
        services.update_draft(contract, terms(price_per_t="10.00"), actor="t")
    assert refused.value.code == "signed_contract" and refused.value.status == 409
    db.session.refresh(contract)
    assert contract.price_per_t == Decimal("72.50")
    with pytest.raises(services.ContractError):
        services.sign(contract, actor="t")


# --- signing and reserving ------------------------------------------------------------------------


def test_signing_reserves_for_the_soonest_tranches_and_shows_the_rest_uncovered(market):
    contract = _signed(market)
    assert contract.status == "active" and contract.version == 1
    cover = services.cover(contract)
    assert [(c.reserved, c.uncovered) for c in cover] == [(60, 0), (40, 40)]
    assert _inventory() == 0 and _reserve(contract) == 100
    (version,) = services.versions(contract)
    signed = json.loads(version.terms)
    assert signed["version"] == 1 and signed["total_quantity"] == 140 and signed["buyer"]["uscc"]
    # The buyer's administrator and the owner are told.
    to = set(db.session.scalars(select(OutboxMessage.to)))
    assert {"admin@steel.cn", "sales@portal.cn"} <= to


def test_a_pending_or_suspended_buyer_cannot_sign(market):
    steel, _cement, _sales = market
    contract = _draft(market)
    steel.status = "pending"
    with pytest.raises(services.ContractError) as refused:
        services.sign(contract, actor="t")
    assert refused.value.code == "buyer_refused" and contract.status == "draft" and _inventory() == 100


def test_reservation_follows_the_preferences_and_listing(market):
    vcs = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=50, code="VCS-2022", vintage=2022, project_=vcs)
    factories.batch(quantity=30, code="VCS-2019", vintage=2019, project_=vcs)  # outside the vintages
    unlisted = factories.batch(quantity=500, code="UNLISTED", vintage=2022, project_=vcs)
    unlisted.listing.is_active = False
    contract = _signed(market, standard="VCS", vintage_from=2020, vintage_to=2025)
    assert _reserve(contract) == 50
    blocks = ledger.blocks_of(ledger.find_account(AccountKind.RESERVE, contract.reserve_ref))
    assert {b.batch.code for b in blocks} == {"VCS-2022"}
    # Listing the withheld batch is new stock: reserved at once, for what is still uncovered.
    catalog.set_listing(unlisted, price_per_t=Decimal("80"), active=True, actor="t")
    assert _reserve(contract) == 140


def test_a_newly_issued_batch_is_reserved_for_the_most_urgent_contracts_first(market):
    steel, cement, sales = market
    later, _ = services.create_draft(
        cement, terms(tranches=[{"due": day(200), "quantity": 70}]), owner=sales, actor="t"
    )
    services.sign(later, actor="t")  # takes the 100 t in stock … no: 70 of them
    sooner = _signed(market)  # 30 left for it
    assert (_reserve(later), _reserve(sooner)) == (70, 30)
    project = factories.project()
    catalog.record_issuance(
        project,
        vintage_start=date(2023, 1, 1),
        vintage_end=date(2023, 12, 31),
        quantity=120,
        buffer_quantity=0,
        issued_on=TODAY,
        registry_reference="CCER-2026-0042",
        registry_serial_start="CN-CCER-14-2026042-2023-000000001",
        registry_serial_end="CN-CCER-14-2026042-2023-000000120",
        price_per_t=Decimal("66.00"),
        actor="operator",
    )
    # The sooner contract lacks 110 t; the later one lacks nothing.
    assert (_reserve(later), _reserve(sooner)) == (70, 140)
    assert _inventory() == 10
    assert verify_ledger().ok


# --- delivering -----------------------------------------------------------------------------------


def test_delivery_to_the_holding_issues_an_invoice(market):
    steel, _cement, _sales = market
    contract = _signed(market, payment_days=15)
    delivery, created = services.deliver(contract, 1, 25, actor="sales")
    assert created and delivery.mode == "holding" and delivery.certificate is None
    assert ledger.balance(ledger.find_account(AccountKind.HOLDING, steel.holding_ref)) == 25
    invoice = delivery.invoice
    assert invoice.number == f"INV-{TODAY.year}-000001"
    assert (invoice.quantity, invoice.unit_price, invoice.amount) == (
        25,
        Decimal("70.00"),
        Decimal("1750.00"),
    )
    assert invoice.due_on == TODAY + timedelta(days=15) and invoice.status == "open"
    second, _ = services.deliver(contract, 1, 35, actor="sales")
    assert second.invoice.number == f"INV-{TODAY.year}-000002"
    assert [c.tranche.delivered for c in services.cover(contract)] == [60, 0]
    assert _reserve(contract) == 40


def test_retiring_delivery_signs_a_certificate_for_the_beneficiary(market):
    contract = _signed(market, delivery="retire", beneficiary="2026 赤峰马拉松")
    delivery, _ = services.deliver(contract, 1, 60, actor="sales")
    certificate = delivery.certificate
    assert certificate.quantity == 60 and certificate.beneficiary == "2026 赤峰马拉松"
    assert certificate.source == "contract" and certificate.source_ref == contract.number
    assert json.loads(certificate.payload)["quantity"] == 60
    assert [line.quantity for line in delivery.lines] == [60]


@pytest.mark.parametrize(
    "seq, quantity, code",
    [
        (1, 61, "beyond_due"),
        (1, 0, "invalid_quantity"),
        (1, "x", "invalid_quantity"),
        (3, 1, "unknown_tranche"),
        (2, 1, "not_due_yet"),
    ],
)
def test_bad_deliveries_change_nothing(market, seq, quantity, code):
    contract = _signed(market)
    db.session.commit()
    before = (_counts(), _reserve(contract))
    with pytest.raises(services.ContractError) as refused:
        services.deliver(contract, seq, quantity, actor="sales")
    assert refused.value.code == code
    db.session.rollback()
    assert (_counts(), _reserve(contract)) == before


def test_a_short_reserve_is_topped_up_from_inventory_or_refused(market):
    contract = _signed(market, tranches=[{"due": day(1), "quantity": 150}])
    assert _reserve(contract) == 100
    with pytest.raises(services.ContractError) as refused:
        services.deliver(contract, 1, 120, actor="sales")
    assert refused.value.code == "insufficient_stock" and refused.value.status == 409
    db.session.expire_all()
    assert _reserve(contract) == 100 and _inventory() == 0
    factories.batch(quantity=50, code="EXTRA-2022", vintage=2022)  # issued without the catalog
    delivery, _ = services.deliver(contract, 1, 120, actor="sales")
    assert delivery.from_inventory == 20 and _reserve(contract) == 0 and _inventory() == 30
    assert verify_ledger().ok


def test_late_tranches_are_flagged(market):
    contract = _signed(market, tranches=[{"due": day(-3), "quantity": 10}, {"due": day(20), "quantity": 5}])
    assert [c.late for c in services.cover(contract)] == [True, False]
    assert [(c.number, t.seq) for c, t in services.due_tranches()] == [
        (contract.number, 1),
        (contract.number, 2),
    ]


# --- invoices and payment -------------------------------------------------------------------------


def _delivered(market, **change):
    contract = _signed(market, tranches=[{"due": day(2), "quantity": 40}], **change)
    delivery, _ = services.deliver(contract, 1, 40, actor="sales")
    return contract, delivery.invoice


@pytest.mark.parametrize(
    "amount, received, reference, code",
    [
        ("2800.01", day(0), "B-1", "overpayment"),
        ("0", day(0), "B-1", "invalid_amount"),
        ("12.345", day(0), "B-1", "invalid_amount"),
        ("100", day(1), "B-1", "invalid_received_on"),
        ("100", "yesterday", "B-1", "invalid_received_on"),
        ("100", day(0), "", "invalid_reference"),
    ],
)
def test_bad_payments_are_refused(market, amount, received, reference, code):
    _contract, invoice = _delivered(market)
    with pytest.raises(services.ContractError) as refused:
        services.record_payment(invoice, amount, received, reference, actor="sales")
    assert refused.value.code == code
    assert invoice.paid_amount == 0 and invoice.status == "open"


def test_bank_payments_settle_the_invoice_share_revenue_and_complete_the_contract(market):
    contract, invoice = _delivered(market)
    assert invoice.amount == Decimal("2800.00")
    services.record_payment(invoice, "800.00", day(-1), "ICBC-0001", actor="sales")
    assert invoice.status == "open" and invoice.outstanding == Decimal("2000.00")
    assert contract.status == "active"
    with pytest.raises(services.ContractError) as again:
        services.record_payment(invoice, "100.00", day(0), "ICBC-0001", actor="sales")
    assert again.value.code == "duplicate_reference"
    services.record_payment(invoice, "2000.00", day(0), "ICBC-0002", actor="sales")
    assert invoice.status == "paid" and invoice.paid_at is not None
    lines = db.session.scalars(
        select(RevenueLine).filter_by(sale_kind="invoice", sale_ref=invoice.number)
    ).all()
    assert sum(line.amount_fen for line in lines) == 280000
    assert all(line.city_fen + line.county_fen == line.amount_fen for line in lines)
    assert contract.status == "completed" and contract.completed_at is not None
    with pytest.raises(services.ContractError) as paid:
        services.record_payment(invoice, "1.00", day(0), "ICBC-0003", actor="sales")
    assert paid.value.code == "already_paid"


def test_an_online_payment_is_recorded_once_and_a_double_payment_refunded(market):
    contract, invoice = _delivered(market)
    invoice.payment_intent_id = "pi_inv_1"
    intent = {
        "id": "pi_inv_1",
        "amount": 280000,
        "currency": "cny",
        "metadata": {"portal_invoice": invoice.number},
    }
    assert services.invoice_paid_online(intent) == "paid"
    assert services.invoice_paid_online(intent) == "already_recorded"
    assert invoice.status == "paid" and contract.status == "completed"
    # Paid again through another intent after it was settled: given back, staff told.
    other = {**intent, "id": "pi_inv_2"}
    assert services.invoice_paid_online(other) == "refunded"
    assert invoice.paid_amount == invoice.amount
    assert services.invoice_paid_online({"id": "pi_x", "amount": 1, "currency": "cny", "metadata": {}}) == (
        "unknown_invoice"
    )


def test_an_online_invoice_payment_refunded_in_stripe_is_reversed_and_brought_to_staff(market, app):
    """A charge event names only its PaymentIntent: the order handler does not know it, the
    invoice handler does, reverses the revenue and tells staff (recorded payments are never
    rewritten)."""
    import stripe

    contract, invoice = _delivered(market)
    invoice.payment_intent_id = "pi_inv_1"
    intent = {"id": "pi_inv_1", "amount": 280000, "currency": "cny", "metadata": {}}
    assert services.invoice_paid_online({**intent, "metadata": {"portal_invoice": invoice.number}}) == "paid"
    factories.user("ops@portal.cn", role="operator")
    db.session.commit()
    app.config["STRIPE_WEBHOOK_SECRET"] = secret = "whsec_test"
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_inv_1", "amount_refunded": 280000}
    payload = json.dumps(
        {"id": "evt_1", "object": "event", "type": "charge.refunded", "data": {"object": charge}}
    )
    headers = {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(payload, secret)}
    response = app.test_client().post("/stripe/webhook", data=payload, headers=headers)
    assert response.get_json()["outcome"] == "staff_told"
    db.session.expire_all()
    told = db.session.scalar(select(OutboxMessage).filter_by(to="ops@portal.cn"))
    assert told is not None and invoice.number in told.body
    assert db.session.get(Invoice, invoice.id).status == "paid"
    lines = db.session.scalars(select(RevenueLine).filter_by(sale_kind="invoice", sale_ref=invoice.number))
    assert sum(line.amount_fen for line in lines) == 0  # the refund is out of the revenue


def test_overdue_invoices_are_told_once(market):
    _contract, invoice = _delivered(market, payment_days=0)
    assert services.notify_overdue(TODAY) == []
    later = TODAY + timedelta(days=1)
    assert services.notify_overdue(later) == [invoice]
    assert services.notify_overdue(later) == []
    assert invoice.is_overdue(later) and services.overdue_invoices(today=later) == [invoice]
    subjects = list(
        db.session.scalars(select(OutboxMessage.subject).where(OutboxMessage.subject.contains("INV")))
    )
    assert any(invoice.number in s for s in subjects)


# --- amendments and ending ------------------------------------------------------------------------


def test_amendment_keeps_delivered_tranches_and_every_version(market):
    contract = _signed(market)
    services.deliver(contract, 1, 20, actor="sales")
    with pytest.raises(services.ContractError) as refused:  # drops the delivered tranche
        services.amend(contract, terms(tranches=[{"due": day(400), "quantity": 80}]), "shorter", actor="s")
    assert refused.value.code == "delivered_tranche"
    with pytest.raises(services.ContractError) as no_reason:
        services.amend(contract, terms(price_per_t="75.00"), " ", actor="s")
    assert no_reason.value.code == "invalid_reason"
    db.session.refresh(contract)

    smaller = terms(
        price_per_t="75.00",
        tranches=[{"due": day(5), "quantity": 30}, {"due": day(100), "quantity": 10}],
    )
    services.amend(contract, smaller, "Buyer's demand fell", actor="s")
    assert contract.version == 2 and contract.total_quantity == 40
    assert [(t.seq, t.quantity, t.delivered) for t in contract.tranches] == [(1, 30, 20), (2, 10, 0)]
    # The reserve never holds more than is left to deliver: the excess went back.
    assert _reserve(contract) == 20 and _inventory() == 60
    first, second = services.versions(contract)
    assert json.loads(first.terms)["price_per_t"] == "70.00"
    assert json.loads(second.terms)["price_per_t"] == "75.00" and second.reason == "Buyer's demand fell"

    bigger = terms(tranches=[{"due": day(5), "quantity": 30}, {"due": day(100), "quantity": 200}])
    services.amend(contract, bigger, "More demand", actor="s")
    assert contract.total_quantity == 230 and _reserve(contract) == 80  # 60 more were in stock
    assert [c.uncovered for c in services.cover(contract)] == [0, 130]
    assert verify_ledger().ok


def test_termination_releases_the_reserve_to_spot_sales(market):
    contract = _signed(market)
    with pytest.raises(services.ContractError):
        services.terminate(contract, "", actor="s")
    services.terminate(contract, "Buyer closed its plant", actor="s")
    assert contract.status == "terminated" and _reserve(contract) == 0 and _inventory() == 100
    with pytest.raises(services.ContractError):
        services.deliver(contract, 1, 1, actor="s")
    events = db.session.scalars(select(AuditEvent.action).filter_by(subject_id=contract.number)).all()
    assert events == ["contract.draft", "contract.sign", "contract.terminate"]


def test_versions_and_payments_are_append_only(market):
    contract, invoice = _delivered(market)
    services.record_payment(invoice, "1.00", day(0), "B-9", actor="s")
    db.session.commit()
    for statement in (
        ContractVersion.__table__.update().values(reason="forged"),
        ContractVersion.__table__.delete(),
        InvoicePayment.__table__.update().values(amount=Decimal("2800.00")),
    ):
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(statement)
        db.session.rollback()


def test_the_supply_plan_adds_up(market):
    contract = _signed(market)
    services.deliver(contract, 1, 10, actor="s")
    plan = services.plan()
    assert plan.active_contracts == 1
    assert [y.year for y in plan.years] == [
        (TODAY + timedelta(days=5)).year,
        (TODAY + timedelta(days=400)).year,
    ]
    assert sum(y.contracted for y in plan.years) == 140
    assert sum(y.delivered for y in plan.years) == 10
    assert sum(y.reserved for y in plan.years) == 90
    assert sum(y.uncovered for y in plan.years) == 40
    assert plan.available == {"CCER": 0}
    _plan_agrees_with_cover()


# --- a property: whatever happens, the reserve never exceeds what is left to deliver ----------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tranches=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    stock=st.lists(st.integers(1, 60), min_size=1, max_size=3),
    steps=st.lists(st.tuples(st.sampled_from(["deliver", "issue", "amend"]), st.integers(1, 50)), max_size=6),
)
def test_reserve_never_exceeds_what_is_left_to_deliver(app, tranches, stock, steps):
    # One database for all examples: find what an earlier example made.
    steel = db.session.scalar(select(Organisation).filter_by(uscc=factories.STEEL_USCC))
    if steel is None:
        steel, _ = factories.steel_and_cement()
        factories.user("prop@portal.cn", role="sales")
    sales = db.session.scalar(select(User).filter_by(email="prop@portal.cn"))
    for quantity in stock:
        factories.batch(quantity=quantity)
    contract, _ = services.create_draft(
        steel,
        terms(tranches=[{"due": day(i), "quantity": q} for i, q in enumerate(tranches)]),
        owner=sales,
        actor="p",
    )
    services.sign(contract, actor="p")
    db.session.commit()
    for action, n in steps:
        try:
            if action == "deliver":
                open_ = [t for t in contract.tranches if t.remaining]
                if open_:
                    services.deliver(contract, open_[0].seq, min(n, open_[0].remaining), actor="p")
            elif action == "issue":
                factories.batch(quantity=n)
                services.reserve(contract, actor="p")
            else:
                kept = [
                    {"due": t.due.isoformat(), "quantity": max(t.delivered, 1)} for t in contract.tranches
                ]
                kept.append({"due": day(30), "quantity": n})
                services.amend(contract, terms(tranches=kept), "change", actor="p")
            db.session.commit()
        except ServiceError:
            db.session.rollback()
        db.session.refresh(contract)
        assert 0 <= services.reserved(contract) <= contract.undelivered
    assert verify_ledger().ok
    _plan_agrees_with_cover()


def _plan_agrees_with_cover():
    """The supply plan (computed in SQL) says per year what each contract's cover says."""
    expected: dict[int, list[int]] = {}
    for contract in services.all_contracts(status="active", limit=10_000):
        for cover in services.cover(contract):
            row = expected.setdefault(cover.tranche.due.year, [0, 0, 0, 0])
            row[0] += cover.tranche.quantity
            row[1] += cover.tranche.delivered
            row[2] += cover.reserved
            row[3] += cover.uncovered
    got = {y.year: [y.contracted, y.delivered, y.reserved, y.uncovered] for y in services.plan().years}
    assert got == expected
