"""How many SQL statements a movement sends, on SQLite and PostgreSQL: the hot path's round trips
are counted here so that they cannot creep back up (see ``portal.ledger.writing``)."""

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, InvalidMovement, UnknownBatch
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from tests import factories
from tests.sql import statements_of


@pytest.fixture
def stock(any_app):
    inventory = ledger.system_account(AccountKind.INVENTORY)
    batches = [factories.batch(quantity=100, vintage=2021), factories.batch(quantity=100, vintage=2022)]
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-S")
    db.session.flush()
    return inventory, holding, batches


def kinds(statements):
    return [" ".join(s.split()[:3]).upper() for s in statements]


def postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def writes(sqlite: int) -> int:
    """A take's writes: on PostgreSQL one statement (the rest of a split block, the neighbours,
    the moved block and, with the last take, the journal); on SQLite one each."""
    return 1 if postgres() else sqlite


def filled_hold(inventory, tonnes: int):
    """An order's hold, given the first ``tonnes`` the inventory has."""
    hold = ledger.open_account(AccountKind.HOLD, "ORDER-S", capacity=tonnes)
    db.session.flush()
    ledger.transfer(tonnes, source=inventory, destination=hold)
    return hold


def serials(account) -> list[tuple[int, int]]:
    return [(b.serial_start, b.serial_end) for b in ledger.blocks_of(account)]


def read_and_writes(sqlite: int) -> int:
    """A movement the first block it reads holds: on PostgreSQL the read and the writes are one
    statement (``statements.TAKE_FIRST_BLOCK``); on SQLite the read, then one statement each."""
    return 1 if postgres() else 1 + sqlite


def test_a_split_transfer_is_two_or_six_statements(stock):
    inventory, holding, _batches = stock
    sent = statements_of(lambda: ledger.transfer(10, source=inventory, destination=holding))
    # lock the next batch (chosen in the same statement), read its blocks, then insert the rest
    # of the split block, take the destination's neighbours, rewrite the moved block, journal
    assert len(sent) == 1 + read_and_writes(4), sent
    if postgres():
        assert "FOR NO KEY UPDATE" in sent[0]
        for part in (
            "FROM blocks",
            "INSERT INTO blocks",
            "DELETE FROM blocks",
            "UPDATE blocks",
            "INSERT INTO ledger_entries",
        ):
            assert part in sent[1], part
    else:
        assert kinds(sent)[2].startswith("INSERT INTO BLOCKS")
        assert kinds(sent)[3].startswith("DELETE FROM BLOCKS")
        assert kinds(sent)[5].startswith("INSERT INTO LEDGER_ENTRIES")
    assert verify_ledger().ok


def test_a_whole_block_and_a_merge_is_two_or_five_statements(stock):
    inventory, holding, batches = stock
    ledger.transfer(10, source=inventory, destination=holding)
    # the rest of the oldest batch, exactly: no split, and it merges with serials 1..10
    sent = statements_of(lambda: ledger.transfer(90, source=inventory, destination=holding))
    assert len(sent) == 1 + read_and_writes(3), sent
    assert [(b.batch_id, b.serial_start, b.serial_end) for b in ledger.blocks_of(holding)] == [
        (batches[0].id, 1, 100)
    ]
    assert verify_ledger().ok


def test_a_named_batch_costs_no_extra_look_up(stock):
    inventory, holding, batches = stock
    sent = statements_of(
        lambda: ledger.transfer(5, source=inventory, destination=holding, batch_codes=[batches[1].code])
    )
    assert len(sent) == 1 + read_and_writes(4), sent
    assert ledger.balances_by_batch(holding) == {batches[1].id: 5}


def test_two_batches_cost_two_statements_more_each(stock):
    inventory, holding, _batches = stock
    # 150 t: all of the first batch (no split), then 50 of the second (split)
    sent = statements_of(lambda: ledger.transfer(150, source=inventory, destination=holding))
    # per batch: lock and choose, read blocks, [split], neighbours, rewrite; one journal insert
    # (on PostgreSQL a batch's writes are one statement, the journal with the last; the first
    # batch's read is the one that would have written a movement its first block held, and
    # wrote nothing)
    assert len(sent) == (2 + 1 + 2 + 1 if postgres() else 2 + 2 + 2 + 3 + 1), sent
    assert ledger.balance(holding) == 150
    journal = db.session.execute(
        text("SELECT batch_id, serial_start, serial_end FROM ledger_entries ORDER BY id DESC LIMIT 2")
    ).all()
    assert sorted(journal) == sorted([(_batches[0].id, 1, 100), (_batches[1].id, 1, 50)])
    assert verify_ledger().ok


def test_a_retirement_is_two_or_six_statements_after_its_account_look_up(stock):
    inventory, holding, _batches = stock
    ledger.transfer(10, source=inventory, destination=holding)
    retired = ledger.system_account(AccountKind.RETIRED)
    sent = statements_of(lambda: ledger.retire(4, source=holding))
    # the retired account's look-up, then the movement
    assert len(sent) == 1 + 1 + read_and_writes(4), sent
    assert ledger.balance(retired) == 4


def test_an_unknown_named_batch_is_still_refused_as_unknown(stock):
    inventory, holding, batches = stock
    with pytest.raises(UnknownBatch):
        ledger.transfer(5, source=inventory, destination=holding, batch_codes=[batches[0].code, "NO-SUCH"])
    with pytest.raises(UnknownBatch):
        ledger.transfer(5, source=inventory, destination=holding, batch_codes=["NO-SUCH"])
    assert ledger.balance(holding) == 0


def test_a_short_named_batch_is_refused_with_what_there_is(stock):
    inventory, holding, batches = stock
    with pytest.raises(InsufficientCredits) as refused:
        ledger.transfer(150, source=inventory, destination=holding, batch_codes=[batches[0].code])
    assert refused.value.params["available"] == 100
    assert ledger.balance(holding) == 0
    assert verify_ledger().ok


def test_a_first_block_too_small_is_planned_from_the_same_read(stock):
    inventory, holding, _batches = stock
    hold = filled_hold(inventory, 10)
    ledger.transfer(10, source=inventory, destination=holding)
    ledger.transfer(5, source=hold, destination=inventory)  # inventory: 1-5, 21-100 of batch 1
    sent = statements_of(lambda: ledger.transfer(8, source=inventory, destination=holding))
    # lock, read (the first block, 5 t, is too small: nothing written), then both takes' writes
    assert len(sent) == (1 + 1 + 2 if postgres() else 2 + 2 + 3 + 1), sent
    assert serials(holding) == [(1, 5), (11, 23)]
    assert serials(inventory)[:1] == [(24, 100)]
    assert verify_ledger().ok


def test_an_expected_range_that_changed_is_refused_before_anything_is_written(stock):
    inventory, _holding, _batches = stock
    hold = filled_hold(inventory, 10)
    expected = ledger.forecast(4, hold)
    ledger.transfer(1, source=hold, destination=inventory)  # serial 1 goes back: 2..10 held
    before = db.session.execute(text("SELECT count(*) FROM ledger_entries")).scalar()
    with pytest.raises(InvalidMovement) as refused:
        ledger.retire(4, source=hold, expect=expected)
    assert refused.value.params.get("reason") == "changed"
    assert db.session.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == before
    assert ledger.balance(hold) == 9
    moved = ledger.retire(4, source=hold, expect=ledger.forecast(4, hold))
    assert [(r.serial_start, r.serial_end) for r in moved.ranges] == [(2, 5)]
    assert verify_ledger().ok


def test_neighbours_are_found_by_serial_among_many_blocks_of_the_destination(stock):
    """The destination's neighbours are two probes by serial (``statements.TAKE_NEIGHBOURS``,
    ``near`` in the PostgreSQL statements), not a walk over all it holds of the batch: here
    every other serial of the batch, and the one moved in between merges with both."""
    inventory, holding, batches = stock
    hold = ledger.open_account(AccountKind.HOLD, "ORDER-N", capacity=50)
    db.session.flush()
    for _ in range(20):  # holding: 1, 3, 5 … 39; hold: 2, 4, 6 … 40
        ledger.transfer(1, source=inventory, destination=holding)
        ledger.transfer(1, source=inventory, destination=hold)
    assert len(ledger.blocks_of(holding)) == 20
    sent = statements_of(lambda: ledger.transfer(1, source=hold, destination=holding))
    assert len(sent) == 1 + read_and_writes(3), sent  # lock, read, rewrite with both neighbours
    assert serials(holding)[0] == (1, 3) and len(serials(holding)) == 19
    moved = ledger.transfer(2, source=hold, destination=holding)  # 4, then 6: two blocks of one batch
    assert [(r.serial_start, r.serial_end) for r in moved.ranges] == [(4, 4), (6, 6)]
    assert serials(holding)[0] == (1, 7)
    assert len(serials(holding)) == 17 and ledger.balances_by_batch(holding) == {batches[0].id: 23}
    assert verify_ledger().ok


@pytest.mark.postgres
def test_a_forecast_loads_the_batches_with_their_projects_and_regions_as_the_orm_would(pg_app):
    """On PostgreSQL ``ledger.forecast(load=True)`` brings each batch's row with its project and
    region in the statement that reads the source's blocks (``ledger.loading``), kept for the
    transaction: what names them (a certificate made before the lock) reads nothing more, and
    finds what the ORM would load. The movement's lock then reads only what it needs."""
    from sqlalchemy import inspect

    from portal.catalog.models import Project
    from portal.ledger import loading
    from portal.ledger.models import Batch

    shown = [
        c.key
        for c in Project.__table__.columns
        if c.key not in ("boundary_geojson", "description_zh", "description_en")
    ]

    def described(batch):
        return (
            {c.key: getattr(batch, c.key) for c in Batch.__table__.columns},
            {key: getattr(batch.project, key) for key in shown},
            (batch.project.region.code, batch.project.region.name_zh, batch.project.region.name_en),
        )

    batch = factories.batch(quantity=100, vintage=2021)
    later = factories.batch(quantity=100, code="LATER-2023", vintage=2023)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-L")
    ledger.transfer(10, source=ledger.system_account(AccountKind.INVENTORY), destination=holding)
    ledger.transfer(
        5, source=ledger.system_account(AccountKind.INVENTORY), destination=holding, batch_codes=[later.code]
    )
    db.session.commit()
    expected = described(batch)
    batch_id, holding_id = batch.id, holding.id
    db.session.remove()

    holding = db.session.get(type(holding), holding_id)
    sent = statements_of(lambda: ledger.forecast(12, holding, load=True))
    assert len(sent) == 1
    ranges = ledger.forecast(12, holding, load=True)
    assert [(r.batch_code, r.serial_start, r.serial_end) for r in ranges] == [
        (batch.code, 1, 10),
        ("LATER-2023", 1, 2),
    ]
    loaded = loading.loaded(batch_id)
    assert loaded is not None and not inspect(loaded).expired
    read = []
    sent = statements_of(lambda: read.append(described(loaded)))
    assert sent == [] and read == [expected]
    sent = statements_of(lambda: ledger.retire(12, source=holding))
    assert not any("projects" in s for s in sent)  # the lock reads the batch's id, code, vintage
    db.session.commit()
    assert loading.loaded(batch_id) is None  # forgotten with the transaction
    assert verify_ledger().ok


def rows_written(table: str, action) -> tuple[int, int, int]:
    """(inserted, updated, deleted) rows of ``table`` by ``action``, in this transaction
    (PostgreSQL's ``pg_stat_xact_user_tables``: exact, counted as the statements run)."""
    counts = text(
        "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables WHERE relname = :table"
    )
    before = db.session.execute(counts, {"table": table}).one()
    action()
    after = db.session.execute(counts, {"table": table}).one()
    return tuple(a - b for a, b in zip(after, before, strict=True))


def test_a_take_that_continues_the_destinations_run_writes_three_block_rows(pg_app):
    """One holding's serials retired one after the other (the API's retirements): the take's
    block moves to the retired account over its neighbour there (deleted) and the rest of the
    holding's block is inserted anew, a row of each kind. (Widening the neighbour in place, an
    update of its end alone, wrote two rows and no index entry for it, but the one row updated at
    every movement of a batch made 8 clients' spread movements slower: bench/README.md, the
    twenty-first round.) Pinned so that a change of what a movement writes is seen."""
    inventory = ledger.system_account(AccountKind.INVENTORY)
    factories.batch(quantity=100, vintage=2021)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-W")
    db.session.flush()
    ledger.transfer(30, source=inventory, destination=holding)
    retired = ledger.system_account(AccountKind.RETIRED)
    ledger.retire(4, source=holding)
    assert rows_written("blocks", lambda: ledger.retire(5, source=holding)) == (1, 1, 1)
    assert serials(retired) == [(1, 9)] and serials(holding) == [(10, 30)]
    # the last of the holding: the block moves whole over its neighbour, nothing inserted
    assert rows_written("blocks", lambda: ledger.retire(21, source=holding)) == (0, 1, 1)
    assert serials(retired) == [(1, 30)] and serials(holding) == []
    assert verify_ledger().ok


def test_a_take_between_two_blocks_of_the_destination_joins_them(pg_app):
    """The take fills the gap between two of the destination's blocks: both are deleted and the
    take's block is widened over their ranges; a movement of two batches (``PLACE_ONE_STATEMENT``,
    a statement per take) writes each take so."""
    inventory = ledger.system_account(AccountKind.INVENTORY)
    batches = [factories.batch(quantity=100, vintage=2021), factories.batch(quantity=100, vintage=2022)]
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-J")
    reserve = ledger.open_account(AccountKind.RESERVE, "CONTRACT-J", capacity=10)
    db.session.flush()
    ledger.transfer(10, source=inventory, destination=holding)  # 1..10
    ledger.transfer(10, source=inventory, destination=reserve)  # 11..20
    ledger.transfer(80, source=inventory, destination=holding)  # 21..100, after the gap
    joined = rows_written("blocks", lambda: ledger.transfer(10, source=reserve, destination=holding))
    assert joined == (0, 1, 2) and serials(holding) == [(1, 100)]
    ledger.transfer(20, source=inventory, destination=holding)  # batch 2: 1..20
    retired = ledger.system_account(AccountKind.RETIRED)
    ledger.retire(50, source=holding)  # batch 1: 1..50, no neighbour
    ledger.retire(5, source=holding, batch_codes=[batches[1].code])  # batch 2: 1..5
    # batch 1's 51..100 (all of the block: over the retired 1..50), then 10 of batch 2's 6..20
    # (over the retired 1..5, the rest 16..20 inserted)
    written = rows_written("blocks", lambda: ledger.retire(60, source=holding))
    assert written == (1, 2, 2), written
    assert ledger.balances_by_batch(retired) == {batches[0].id: 100, batches[1].id: 15}
    assert sorted(serials(retired)) == [(1, 15), (1, 100)] and serials(holding) == [(16, 20)]
    assert verify_ledger().ok
