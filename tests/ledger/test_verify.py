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


def test_an_issue_into_the_wrong_account_is_found(ledger_with_history):
    retired = ledger.system_account(AccountKind.RETIRED)
    _corrupt(
        "INSERT INTO batches (code, project_id, vintage_start, vintage_end, quantity, buffer_quantity, "
        "issued_on, registry_reference, registry_serial_start, registry_serial_end, created_at) "
        "SELECT 'B-ROGUE', project_id, vintage_start, vintage_end, 10, 0, issued_on, '', '', '', created_at "
        "FROM batches"
    )
    _corrupt(
        "INSERT INTO blocks (batch_id, account_id, serial_start, serial_end) "
        "SELECT id, :r, 1, 10 FROM batches WHERE code = 'B-ROGUE'",
        r=retired.id,
    )
    _corrupt(
        "INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity, "
        "to_account_id, reference, actor, created_at) "
        "SELECT 'x', 'issue', id, 1, 10, 10, :r, '', '', CURRENT_TIMESTAMP FROM batches WHERE code = 'B-ROGUE'",
        r=retired.id,
    )
    assert any("B-ROGUE" in p and "not inventory or buffer" in p for p in _problems())


def test_a_wrong_buffer_share_is_found(ledger_with_history):
    _corrupt("UPDATE batches SET buffer_quantity = 7")
    assert any("0 t were issued to the buffer; the batch records 7 t" in p for p in _problems())


def test_a_move_outside_the_flows_is_found(ledger_with_history):
    inventory = ledger.system_account(AccountKind.INVENTORY)
    a = ledger.find_account(AccountKind.HOLDING, "A")
    # A holding's serials 11-15 pushed back into inventory, with a journal entry to match.
    _corrupt("UPDATE blocks SET serial_start = 16 WHERE serial_start = 11")
    _corrupt(
        "INSERT INTO blocks (batch_id, account_id, serial_start, serial_end) "
        "SELECT id, :i, 11, 15 FROM batches",
        i=inventory.id,
    )
    _corrupt(
        "INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity, "
        "from_account_id, to_account_id, reference, actor, created_at) "
        "SELECT 'x', 'transfer', id, 11, 15, 5, :a, :i, '', '', CURRENT_TIMESTAMP FROM batches",
        a=a.id,
        i=inventory.id,
    )
    assert any("from holding:A to inventory, which is not allowed" in p for p in _problems())


def test_verify_reads_one_snapshot_while_movements_commit(pg_app):
    """On PostgreSQL a movement committing in the middle of verify must not cause a false alarm."""
    import threading

    from sqlalchemy import event

    factories.batch(quantity=100)
    db.session.commit()
    moved = threading.Event()

    def move_meanwhile():
        with pg_app.app_context():
            ledger.transfer(
                5,
                source=ledger.system_account(AccountKind.INVENTORY),
                destination=ledger.open_account(AccountKind.HOLDING, "NEW"),
            )
            db.session.commit()
            db.session.remove()
        moved.set()

    def between_queries(conn, cursor, statement, parameters, context, executemany):
        if "FROM ledger_entries" in statement and not moved.is_set():
            thread = threading.Thread(target=move_meanwhile)
            thread.start()
            thread.join(30)

    event.listen(db.engine, "before_cursor_execute", between_queries)
    try:
        report = verify_ledger()
    finally:
        event.remove(db.engine, "before_cursor_execute", between_queries)
    db.session.rollback()
    assert moved.is_set()
    assert report.ok, report.problems
    assert verify_ledger().ok  # and the movement itself is sound
