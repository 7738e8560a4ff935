"""Contracts under concurrency, on PostgreSQL: spot sales never take reserved stock, a tranche is
never delivered twice over, invoice numbers stay consecutive, and nothing deadlocks."""

import pytest
from sqlalchemy import func, select

from portal.buyers.models import Organisation, User
from portal.contracts import services
from portal.contracts.models import Contract, Invoice
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import Order, OrderStatus
from tests import factories
from tests.concurrency import race
from tests.contracts.helpers import TODAY, day

pytestmark = pytest.mark.postgres


def _terms(tranches, **change):
    return {
        "title": "Race",
        "start": day(-1),
        "end": day(300),
        "price_per_t": "70.00",
        "tranches": [{"due": day(d), "quantity": q} for d, q in tranches],
        **change,
    }


def _inventory():
    return ledger.balance(ledger.system_account(AccountKind.INVENTORY))


def _setup():
    steel, cement = factories.steel_and_cement()
    sales = factories.user("sales@portal.cn", role="sales")
    return steel, cement, sales


def test_spot_orders_racing_signatures_never_take_reserved_stock(pg_app):
    """20 buyers order 5 t each while 4 contracts of 30 t are signed, all at once, over 220 t."""
    steel, cement, sales = _setup()
    factories.batch(quantity=120, code="A-2021", vintage=2021)
    factories.batch(quantity=100, code="B-2022", vintage=2022)
    drafts = [
        services.create_draft(cement, _terms([(5, 30)]), owner=sales, actor="t")[0].number for _ in range(4)
    ]
    db.session.commit()

    steel_id = steel.id  # read here: worker threads must not touch this session

    def work(i):
        if i < 4:
            services.sign(services.find(drafts[i]), actor=f"sales{i}")
            db.session.commit()
            return "signed"
        orders.create_order(
            db.session.get(Organisation, steel_id), 5, beneficiary="b", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 24, work, refused=(ServiceError,))
    assert outcomes[:4] == ["signed"] * 4
    db.session.expire_all()
    reserves = {n: services.reserved(services.find(n)) for n in drafts}
    held = db.session.scalar(
        select(func.coalesce(func.sum(Order.quantity), 0)).where(Order.status == OrderStatus.AWAITING_PAYMENT)
    )
    # Stock was enough for everyone: every contract is covered and every order held.
    assert set(reserves.values()) == {30} and held == 100 and outcomes.count("held") == 20
    assert _inventory() == 0
    assert verify_ledger().ok

    # Now the inventory is empty; a spot order is refused although the reserves hold 120 t.
    with pytest.raises(orders.OrderError) as refused:
        orders.create_order(
            db.session.get(Organisation, steel_id), 1, beneficiary="b", purpose="voluntary", actor="x"
        )
    assert refused.value.code == "insufficient_stock"


def test_when_stock_is_short_orders_and_reservations_split_it_exactly(pg_app):
    steel, cement, sales = _setup()
    factories.batch(quantity=100, code="SHORT-2021", vintage=2021)
    draft = services.create_draft(cement, _terms([(5, 80)]), owner=sales, actor="t")[0].number
    db.session.commit()

    steel_id = steel.id  # read here: worker threads must not touch this session

    def work(i):
        if i == 0:
            services.sign(services.find(draft), actor="sales")
            db.session.commit()
            return "signed"
        orders.create_order(
            db.session.get(Organisation, steel_id), 10, beneficiary="b", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 12, work, refused=(ServiceError,))
    db.session.expire_all()
    contract = services.find(draft)
    reserved = services.reserved(contract)
    held = 10 * outcomes.count("held")
    assert reserved + held + _inventory() == 100
    assert set(outcomes[1:]) <= {"held", "insufficient_stock"}
    cover = services.cover(contract)
    assert cover[0].reserved == reserved and cover[0].uncovered == 80 - reserved
    assert verify_ledger().ok


def test_a_tranche_delivered_from_eight_threads_is_delivered_once_over(pg_app):
    steel, _cement, sales = _setup()
    factories.batch(quantity=40, code="D-2021", vintage=2021)
    contract, _ = services.create_draft(steel, _terms([(2, 30)]), owner=sales, actor="t")
    services.sign(contract, actor="t")
    number = contract.number
    db.session.commit()

    def work(i):
        services.deliver(services.find(number), 1, 10, actor=f"sales{i}")
        db.session.commit()
        return "delivered"

    outcomes = race(pg_app, 8, work, refused=(ServiceError,))
    assert outcomes.count("delivered") == 3 and outcomes.count("tranche_delivered") == 5
    db.session.expire_all()
    contract = services.find(number)
    assert contract.delivered == 30 and services.reserved(contract) == 0
    holding = ledger.find_account(AccountKind.HOLDING, steel.holding_ref)
    assert ledger.balance(holding) == 30 and _inventory() == 10
    numbers = sorted(db.session.scalars(select(Invoice.number)))
    assert numbers == [f"INV-{TODAY.year}-00000{n}" for n in (1, 2, 3)]
    assert verify_ledger().ok


def test_deliveries_topping_up_race_spot_orders_and_each_other_without_deadlock(pg_app):
    """Four contracts with empty reserves deliver (each topping up from inventory in its own
    transaction, then delivering) while 12 spot orders take the same stock, over two batches."""
    steel, cement, sales = _setup()
    numbers = []
    for i in range(4):
        contract, _ = services.create_draft(
            cement if i % 2 else steel,
            _terms([(1, 20)], delivery="retire" if i % 2 else "holding"),
            owner=sales,
            actor="t",
        )
        services.sign(contract, actor="t")  # nothing in stock yet: all uncovered
        numbers.append(contract.number)
    factories.batch(quantity=60, code="E-2021", vintage=2021)  # not through the catalog: no reservation
    factories.batch(quantity=60, code="F-2022", vintage=2022)
    db.session.commit()
    assert all(services.reserved(services.find(n)) == 0 for n in numbers)

    steel_id = steel.id  # read here: worker threads must not touch this session

    def work(i):
        if i < 4:
            services.deliver(services.find(numbers[i]), 1, 20, actor=f"sales{i}")
            db.session.commit()
            return "delivered"
        orders.create_order(
            db.session.get(Organisation, steel_id), 5, beneficiary="b", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 16, work, refused=(ServiceError,))
    db.session.expire_all()
    delivered = 20 * outcomes[:4].count("delivered")
    held = 5 * outcomes[4:].count("held")
    reserved = sum(services.reserved(services.find(n)) for n in numbers)
    assert delivered + held + reserved + _inventory() == 120
    assert set(outcomes[:4]) <= {"delivered", "insufficient_stock"}
    assert verify_ledger().ok
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 4
    assert db.session.scalar(select(User.id).filter_by(email="sales@portal.cn")) is not None


def test_the_supply_plan_agrees_with_each_contracts_cover(pg_app):
    from tests.contracts.test_contracts import _plan_agrees_with_cover

    steel, cement, sales = _setup()
    factories.batch(quantity=200, code="PLAN-2021", vintage=2021)
    for org, tranches in ((steel, [(5, 60), (40, 50), (290, 70)]), (cement, [(10, 30), (280, 40)])):
        contract, _ = services.create_draft(org, _terms(tranches), owner=sales, actor="t")
        services.sign(contract, actor="t")
    services.deliver(contract, 1, 20, actor="t")
    db.session.commit()
    plan = services.plan()
    assert plan.active_contracts == 2 and sum(y.reserved for y in plan.years) == 180
    _plan_agrees_with_cover()


def test_a_tranche_delivered_twice_at_once_without_a_quantity_is_delivered_once(pg_app):
    """Through the API, as two sales systems would: one 201 for what is left, one 409."""
    steel, _cement, sales = _setup()
    factories.batch(quantity=40, code="G-2021", vintage=2021)
    contract, _ = services.create_draft(steel, _terms([(2, 30), (5, 10)]), owner=sales, actor="t")
    services.sign(contract, actor="t")
    number = contract.number
    db.session.commit()
    key = factories.api_key(pg_app, "--user", "sales@portal.cn")

    def work(i):
        response = pg_app.test_client().post(
            f"/api/v1/contracts/{number}/tranches/1/deliver", headers=factories.bearer(key)
        )
        body = response.get_json()
        return response.status_code, body["delivery"]["quantity"] if response.status_code == 201 else body[
            "error"
        ]["code"]

    outcomes = race(pg_app, 2, work)
    assert sorted(outcomes) == [(201, 30), (409, "tranche_delivered")]
    db.session.expire_all()
    contract = services.find(number)
    assert [t.delivered for t in contract.tranches] == [30, 0]
    assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
    holding = ledger.find_account(AccountKind.HOLDING, steel.holding_ref)
    assert ledger.balance(holding) == 30 and services.reserved(contract) == 10
    assert verify_ledger().ok


def test_many_deliveries_without_a_quantity_at_once_deliver_the_tranche_once(pg_app):
    steel, _cement, sales = _setup()
    factories.batch(quantity=40, code="H-2021", vintage=2021)
    contract, _ = services.create_draft(steel, _terms([(2, 30)]), owner=sales, actor="t")
    services.sign(contract, actor="t")
    number = contract.number
    db.session.commit()

    def work(i):
        delivery, _created = services.deliver(services.find(number), 1, None, actor=f"sales{i}")
        db.session.commit()
        return delivery.quantity

    outcomes = race(pg_app, 8, work, refused=(ServiceError,))
    assert sorted(outcomes, key=str) == [30] + ["tranche_delivered"] * 7
    db.session.expire_all()
    assert services.find(number).delivered == 30
    assert verify_ledger().ok
