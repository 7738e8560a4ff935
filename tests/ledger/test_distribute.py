"""``ledger.distribute``: one batch shared among many accounts in one movement."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InvalidMovement, InvalidQuantity
from portal.ledger.models import AccountKind, Block, LedgerEntry
from portal.ledger.verify import verify_ledger
from tests import factories


def _blocks(account, batch):
    return [
        (b.serial_start, b.serial_end)
        for b in db.session.scalars(
            select(Block).filter_by(account_id=account.id, batch_id=batch.id).order_by(Block.serial_start)
        )
    ]


def test_in_order_lowest_serials_first_capped_and_merged(app):
    batch = factories.batch(quantity=100, code="D-2021", vintage=2021)
    inventory = ledger.system_account(AccountKind.INVENTORY)
    a = ledger.open_account(AccountKind.RESERVE, "contract:A", 30)
    b = ledger.open_account(AccountKind.RESERVE, "contract:B", 500)
    c = ledger.open_account(AccountKind.RESERVE, "contract:C", 500)
    hold = ledger.open_account(AccountKind.HOLD, "order:x", 10)
    # Fragment the inventory: serials 11..20 are held elsewhere; A already has 1..10.
    ledger.transfer(10, source=inventory, destination=a)
    ledger.transfer(10, source=inventory, destination=hold)
    movement, given = ledger.distribute(
        batch, source=inventory, allocations=[(a, 50), (b, 40), (c, 100)], reference="t", actor="t"
    )
    # A had room for 20 more (capacity 30), B got 40, C what was left (80 − 60 = 20).
    assert given == {a.id: 20, b.id: 40, c.id: 20}
    assert _blocks(a, batch) == [(1, 10), (21, 40)]  # not adjacent to 1..10: 11..20 are held
    assert _blocks(b, batch) == [(41, 80)]
    assert _blocks(c, batch) == [(81, 100)]
    assert _blocks(inventory, batch) == []
    assert (
        db.session.scalar(select(func.count()).select_from(LedgerEntry).filter_by(movement_id=movement.id))
        == 3
    )
    # The hold goes back: 11..20 returns to inventory; now A's blocks merge when it gets them.
    ledger.transfer(10, source=hold, destination=inventory)
    assert ledger.distribute(batch, source=inventory, allocations=[(a, 10)])[1] == {}  # A is full
    ledger.raise_capacity(a, 40)
    ledger.distribute(batch, source=inventory, allocations=[(a, 10)])
    assert _blocks(a, batch) == [(1, 40)]
    assert verify_ledger().ok


def test_refuses_what_the_flows_do_not_allow(app):
    batch = factories.batch(quantity=10)
    inventory = ledger.system_account(AccountKind.INVENTORY)
    retired = ledger.system_account(AccountKind.RETIRED)
    reserve = ledger.open_account(AccountKind.RESERVE, "contract:Z", 5)
    for allocations in ([(retired, 1)], [(inventory, 1)], [(reserve, 0)], [(reserve, 1), (reserve, 1)]):
        with pytest.raises(Exception) as refused:
            ledger.distribute(batch, source=inventory, allocations=allocations)
        assert isinstance(refused.value, InvalidMovement | InvalidQuantity)
    assert ledger.distribute(batch, source=inventory, allocations=[])[1] == {}
    assert verify_ledger().ok


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    taken=st.lists(st.integers(1, 15), max_size=4),
    wants=st.lists(st.tuples(st.integers(1, 30), st.integers(1, 40)), min_size=1, max_size=6),
)
def test_random_shares_keep_every_invariant(app, taken, wants):
    batch = factories.batch(quantity=60)
    inventory = ledger.system_account(AccountKind.INVENTORY)
    for i, n in enumerate(taken):  # fragment the inventory with holds
        if ledger.balance(inventory, batch) >= n:
            ledger.transfer(
                n,
                source=inventory,
                destination=ledger.open_account(AccountKind.HOLD, f"h{batch.id}-{i}", n),
                batch_codes=[batch.code],
            )
    before = ledger.balance(inventory, batch)
    accounts = [
        (ledger.open_account(AccountKind.RESERVE, f"r{batch.id}-{i}", capacity), want)
        for i, (capacity, want) in enumerate(wants)
    ]
    _movement, given = ledger.distribute(batch, source=inventory, allocations=accounts)
    assert (
        sum(given.values()) == min(before, sum(min(c.capacity, w) for c, w in accounts))
        or sum(given.values()) == before
    )
    for account, want in accounts:
        assert given.get(account.id, 0) <= min(want, account.capacity)
        assert ledger.balance(account, batch) == given.get(account.id, 0)
    assert ledger.balance(inventory, batch) == before - sum(given.values())
    assert verify_ledger().ok
