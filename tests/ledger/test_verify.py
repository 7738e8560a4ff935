"""``ledger verify`` finds every kind of corruption, and says where."""

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from tests import factories


@pytest.fixture
def ledger_with_history(any_app):
    batch = factories.batch(quantity=100, code="B-VERIFY")
    inventory = ledger.system_account(AccountKind.INVENTORY)
    a = ledger.open_account(AccountKind.HOLDING, "A")
    b = ledger.open_account(AccountKind.HOLDING, "B")
    ledger.transfer(30, source=inventory, destination=a)  # A: 1-30
    ledger.transfer(20, source=inventory, destination=b)  # B: 31-50
    ledger.retire(10, source=a)  # retired: 1-10
    db.session.commit()
    return batch


def _corrupt(sql, **params):
    db.session.execute(text(sql), params)
    db.session.commit()


def _problems():
    report = verify_ledger()
    db.session.rollback()
    return report.problems


def test_a_clean_ledger_verifies(ledger_with_history):
    report = verify_ledger()
    assert report.ok
    assert (report.batches, report.serials, report.retired) == (1, 100, 10)
    assert report.entries == 4


def test_a_gap_is_found(ledger_with_history):
    _corrupt("UPDATE blocks SET serial_end = serial_end - 1 WHERE serial_end = 100")
    assert any("serials 100-100 are in no block" in p for p in _problems())


def test_an_overlap_is_found(ledger_with_history):
    _corrupt("UPDATE blocks SET serial_end = 35 WHERE serial_start = 11")
    assert any("in two blocks" in p for p in _problems())


def test_a_serial_moved_without_a_journal_entry_is_found(ledger_with_history):
    # Someone "un-retires" serials 1-10 straight in the table, bypassing the service.
    inventory = ledger.system_account(AccountKind.INVENTORY)
    _corrupt("UPDATE blocks SET account_id = :a WHERE serial_start = 1", a=inventory.id)
    problems = _problems()
    assert any("replaying the journal does not give the blocks" in p for p in problems)


def test_unmerged_neighbours_are_found(ledger_with_history):
    _corrupt("UPDATE blocks SET serial_end = 40 WHERE serial_start = 31")
    _corrupt(
        "INSERT INTO blocks (batch_id, account_id, serial_start, serial_end) "
        "SELECT batch_id, account_id, 41, 50 FROM blocks WHERE serial_start = 31"
    )
    assert any("not merged" in p for p in _problems())


def test_a_journal_entry_out_of_terminal_account_is_found(ledger_with_history):
    retired = ledger.system_account(AccountKind.RETIRED)
    a = ledger.find_account(AccountKind.HOLDING, "A")
    _corrupt(
        "INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity, "
        "from_account_id, to_account_id, reference, actor, created_at) "
        "SELECT 'x', 'transfer', id, 1, 5, 5, :r, :a, '', '', CURRENT_TIMESTAMP FROM batches",
        r=retired.id,
        a=a.id,
    )
    assert any("out of retired, which is final" in p for p in _problems())


def test_a_hold_over_capacity_is_found(any_app):
    factories.batch(quantity=50)
    hold = ledger.open_account(AccountKind.HOLD, "order-9", capacity=10)
    ledger.transfer(10, source=ledger.system_account(AccountKind.INVENTORY), destination=hold)
    db.session.commit()
    _corrupt("UPDATE accounts SET capacity = 5 WHERE id = :h", h=hold.id)
    assert any("held 10 t at one point; its capacity is 5 t" in p for p in _problems())


def test_the_cli_exits_non_zero_with_a_report(ledger_with_history, any_app):
    runner = any_app.test_cli_runner()
    ok = runner.invoke(args=["ledger", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "checked 1 batches (100 t)" in ok.output and "ledger OK" in ok.output

    _corrupt("UPDATE blocks SET serial_end = serial_end - 1 WHERE serial_end = 100")
    broken = any_app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert broken.exit_code == 1
    assert "LEDGER BROKEN" in broken.output and "B-VERIFY" in broken.output
