"""The ledger service on SQLite and PostgreSQL: movements, splitting, merging, refusals."""

from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import (
    CapacityExceeded,
    InsufficientCredits,
    InvalidMovement,
    InvalidQuantity,
    TerminalAccount,
    UnknownAccount,
    UnknownBatch,
)
from portal.ledger.models import AccountKind, Batch, Block, LedgerEntry
from portal.ledger.verify import verify_ledger
from tests import factories


def ranges(account):
    return [(b.batch.code, b.serial_start, b.serial_end) for b in ledger.blocks_of(account)]


def journal_size():
    return db.session.scalar(select(func.count()).select_from(LedgerEntry))


@pytest.fixture
def inventory(any_app):
    return ledger.system_account(AccountKind.INVENTORY)


def test_issue_puts_serials_in_inventory_and_buffer(inventory):
    batch = factories.batch(quantity=1000, buffer=150)
    buffer = ledger.system_account(AccountKind.BUFFER)
    assert ranges(inventory) == [(batch.code, 1, 850)]
    assert ranges(buffer) == [(batch.code, 851, 1000)]
    assert verify_ledger().ok


def test_a_batch_is_issued_once(inventory):
    batch = factories.batch(quantity=10)
    with pytest.raises(InvalidMovement):
        ledger.issue_batch(batch)


def test_transfer_takes_oldest_vintage_first_and_splits_the_last_block(inventory):
    old = factories.batch(quantity=30, vintage=2021)
    new = factories.batch(quantity=50, vintage=2023)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")

    movement = ledger.transfer(45, source=inventory, destination=holding, reference="t")

    assert movement.quantity == 45
    assert [(r.batch_code, r.serial_start, r.serial_end) for r in movement.ranges] == [
        (old.code, 1, 30),
        (new.code, 1, 15),
    ]
    assert ranges(holding) == [(old.code, 1, 30), (new.code, 1, 15)]
    assert ranges(inventory) == [(new.code, 16, 50)]
    assert verify_ledger().ok


def test_transfer_from_a_chosen_batch_only(inventory):
    factories.batch(quantity=30, vintage=2021)
    chosen = factories.batch(quantity=50, vintage=2023)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    ledger.transfer(20, source=inventory, destination=holding, batch_codes=[chosen.code])
    assert ranges(holding) == [(chosen.code, 1, 20)]


def test_adjacent_blocks_in_one_account_merge(inventory):
    batch = factories.batch(quantity=100)
    hold = ledger.open_account(AccountKind.HOLD, "order-1", capacity=40)
    for _ in range(4):
        ledger.transfer(10, source=inventory, destination=hold)
    assert ranges(hold) == [(batch.code, 1, 40)]
    # Released: the serials merge with inventory's block again.
    ledger.transfer(40, source=hold, destination=inventory)
    assert ranges(inventory) == [(batch.code, 1, 100)]
    assert db.session.scalar(select(func.count()).select_from(Block)) == 1
    assert verify_ledger().ok


def test_merging_across_a_gap_filled_later(inventory):
    batch = factories.batch(quantity=30)
    a = ledger.open_account(AccountKind.HOLDING, "A")
    b = ledger.open_account(AccountKind.RESERVE, "CT-1", capacity=10)
    ledger.transfer(10, source=inventory, destination=a)  # 1-10
    ledger.transfer(10, source=inventory, destination=b)  # 11-20
    ledger.transfer(10, source=inventory, destination=a)  # 21-30
    ledger.transfer(10, source=b, destination=a)  # 11-20 delivered: joins both sides
    assert ranges(a) == [(batch.code, 1, 30)]
    assert verify_ledger().ok


def test_retire_is_final(inventory):
    batch = factories.batch(quantity=20)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    ledger.transfer(20, source=inventory, destination=holding)
    ledger.retire(5, source=holding, reference="retirement:1")
    retired = ledger.system_account(AccountKind.RETIRED)
    assert ranges(retired) == [(batch.code, 1, 5)]
    with pytest.raises(TerminalAccount):
        ledger.transfer(1, source=retired, destination=holding)
    with pytest.raises(TerminalAccount):
        ledger.retire(1, source=retired)
    with pytest.raises(InvalidMovement):
        ledger.transfer(1, source=holding, destination=retired)
    cancelled = ledger.system_account(AccountKind.CANCELLED)
    ledger.cancel(3, source=holding)
    with pytest.raises(TerminalAccount):
        ledger.transfer(1, source=cancelled, destination=holding)
    assert ledger.balance(holding) == 12
    assert verify_ledger().ok


@pytest.mark.parametrize("quantity", [0, -5, 2.5, 10.0, "10", True, None])
def test_bad_quantities_change_nothing(inventory, quantity):
    factories.batch(quantity=100)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    before = journal_size()
    with pytest.raises(InvalidQuantity) as caught:
        ledger.transfer(quantity, source=inventory, destination=holding)
    assert caught.value.code == "invalid_quantity"
    assert str(quantity) in caught.value.message
    assert journal_size() == before
    assert ledger.balance(holding) == 0


def test_more_than_available_changes_nothing(inventory):
    batch = factories.batch(quantity=100)
    factories.batch(quantity=50, vintage=2024)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    before = journal_size()
    with pytest.raises(InsufficientCredits) as caught:
        ledger.transfer(151, source=inventory, destination=holding)
    assert caught.value.params == {"account": "inventory", "available": 150, "requested": 151}
    assert "150" in caught.value.message and "151" in caught.value.message
    assert journal_size() == before
    assert ranges(inventory)[0] == (batch.code, 1, 100)
    with pytest.raises(InsufficientCredits):
        ledger.transfer(101, source=inventory, destination=holding, batch_codes=[batch.code])


def test_unknown_batch_and_account(inventory):
    factories.batch(quantity=10)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    with pytest.raises(UnknownBatch) as caught:
        ledger.transfer(1, source=inventory, destination=holding, batch_codes=["NO-SUCH-BATCH"])
    assert "NO-SUCH-BATCH" in caught.value.message
    with pytest.raises(UnknownAccount):
        ledger.find_account(AccountKind.HOLDING, "NOBODY")
    with pytest.raises(InvalidMovement):
        ledger.transfer(1, source=holding, destination=holding)


def test_hold_never_exceeds_its_capacity(inventory):
    factories.batch(quantity=100)
    hold = ledger.open_account(AccountKind.HOLD, "order-1", capacity=30)
    ledger.transfer(20, source=inventory, destination=hold)
    with pytest.raises(CapacityExceeded):
        ledger.transfer(11, source=inventory, destination=hold)
    ledger.transfer(10, source=inventory, destination=hold)
    ledger.transfer(30, source=hold, destination=inventory)  # released
    ledger.transfer(30, source=inventory, destination=hold)  # and held again, within capacity
    assert ledger.balance(hold) == 30


def test_open_account_is_idempotent(inventory):
    first = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    assert ledger.open_account(AccountKind.HOLDING, "ORG-A").id == first.id
    with pytest.raises(ValueError):
        ledger.open_account(AccountKind.RETIRED, "x")


def test_holds_and_reserves_need_a_capacity_and_keep_it(inventory):
    for kind in (AccountKind.HOLD, AccountKind.RESERVE):
        with pytest.raises(InvalidQuantity):
            ledger.open_account(kind, "no-capacity")
    with pytest.raises(ValueError):
        ledger.open_account(AccountKind.HOLDING, "ORG-A", capacity=5)
    ledger.open_account(AccountKind.HOLD, "order-7", capacity=10)
    with pytest.raises(InvalidMovement) as caught:
        ledger.open_account(AccountKind.HOLD, "order-7", capacity=50)
    assert caught.value.params["capacity"] == 10
    with pytest.raises(IntegrityError):  # and the database agrees
        db.session.execute(
            text("INSERT INTO accounts (kind, ref, created_at) VALUES ('hold', 'x', CURRENT_TIMESTAMP)")
        )
    db.session.rollback()


@pytest.mark.parametrize(
    ("source", "destination"),
    [
        ("buffer", "holding"),
        ("buffer", "inventory"),
        ("buffer", "retired"),
        ("buffer", "hold"),
        ("holding", "inventory"),
        ("holding", "hold"),
        ("hold", "reserve"),
        ("reserve", "hold"),
    ],
)
def test_moves_outside_the_flows_are_refused(inventory, source, destination):
    factories.batch(quantity=100, buffer=20)
    accounts = {
        "inventory": inventory,
        "buffer": ledger.system_account(AccountKind.BUFFER),
        "retired": ledger.system_account(AccountKind.RETIRED),
        "holding": ledger.open_account(AccountKind.HOLDING, "ORG-A"),
        "hold": ledger.open_account(AccountKind.HOLD, "order-1", capacity=10),
        "reserve": ledger.open_account(AccountKind.RESERVE, "CT-1", capacity=10),
    }
    for name in ("holding", "hold", "reserve"):
        ledger.transfer(5, source=inventory, destination=accounts[name])
    before = journal_size()
    with pytest.raises(InvalidMovement) as caught:
        if destination == "retired":
            ledger.retire(1, source=accounts[source])
        else:
            ledger.transfer(1, source=accounts[source], destination=accounts[destination])
    assert caught.value.params["reason"] == "not_allowed"
    assert journal_size() == before


def test_buffer_credits_may_only_be_cancelled(inventory):
    factories.batch(quantity=100, buffer=20)
    buffer = ledger.system_account(AccountKind.BUFFER)
    ledger.cancel(5, source=buffer, reference="reversal")
    assert ledger.balance(buffer) == 15
    assert verify_ledger().ok


def test_quantities_beyond_32_bits_are_refused(inventory):
    with pytest.raises(InvalidQuantity):
        ledger.open_account(AccountKind.HOLD, "order-big", capacity=2**31)
    project = factories.project()
    huge = Batch(
        code="HUGE",
        project_id=project.id,
        vintage_start=date(2022, 1, 1),
        vintage_end=date(2022, 12, 31),
        quantity=2**31,
        issued_on=date(2023, 6, 1),
    )
    with pytest.raises(InvalidQuantity):
        ledger.issue_batch(huge)  # refused before anything reaches the database
    db.session.rollback()


def test_missing_reference_and_actor_are_empty(inventory):
    factories.batch(quantity=10)
    movement = ledger.retire(1, source=inventory, reference=None, actor=None)
    assert movement.quantity == 1


def test_journal_is_append_only(inventory):
    factories.batch(quantity=10)
    db.session.commit()
    with pytest.raises((DBAPIError, IntegrityError)) as caught:
        db.session.execute(text("UPDATE ledger_entries SET quantity = 5"))
    assert "append-only" in str(caught.value)
    db.session.rollback()
    with pytest.raises((DBAPIError, IntegrityError)):
        db.session.execute(text("DELETE FROM ledger_entries"))
    db.session.rollback()
    assert journal_size() == 1


def test_block_constraints_hold_in_the_database(inventory):
    batch = factories.batch(quantity=10)
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE blocks SET serial_start = 11 WHERE batch_id = :b"), {"b": batch.id})
    db.session.rollback()


def test_a_failed_flush_leaves_the_ledger_as_it_was(inventory):
    """A fault in the middle of a movement (a crash between two writes) is rolled back whole."""
    first = factories.batch(quantity=50, vintage=2021)
    second = factories.batch(quantity=50, vintage=2022)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-A")
    db.session.commit()

    from sqlalchemy import event

    calls = {"n": 0}

    def crash_on_second_block_update(conn, cursor, statement, parameters, context, executemany):
        if "UPDATE blocks" in statement:  # each block rewritten (on PostgreSQL, with the take's other writes)
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("simulated crash during the movement")

    event.listen(db.engine, "before_cursor_execute", crash_on_second_block_update)
    try:
        with pytest.raises(RuntimeError):
            ledger.transfer(60, source=inventory, destination=holding)
    finally:
        event.remove(db.engine, "before_cursor_execute", crash_on_second_block_update)
    assert calls["n"] == 2  # the first batch's piece had been written when the crash came
    db.session.rollback()
    assert ranges(inventory) == [(first.code, 1, 50), (second.code, 1, 50)]
    assert ledger.balance(holding) == 0
    assert verify_ledger().ok


def test_an_unsaved_account_is_refused_before_anything_is_written(inventory):
    from portal.ledger.models import Account

    factories.batch(quantity=10)
    before = journal_size()
    with pytest.raises(UnknownAccount):
        ledger.transfer(1, source=inventory, destination=Account(kind="holding", ref="ghost"))
    assert journal_size() == before
