"""How a movement reads and rewrites blocks: the ledger's hot path, in prebuilt SQL statements.

Every movement runs through here (``portal.ledger.services`` decides what moves, this module
locks, plans and writes it), so each statement is built once, at import, with bound
parameters (``portal.ledger.statements``): SQLAlchemy then reuses its compiled form and
PostgreSQL its prepared plan, and a movement costs a handful of round trips rather than a
handful of statement constructions.
``tests/ledger/test_statements.py`` holds the statement counts so that they cannot creep up.

A movement of one block is, after the caller's account look-ups:

1. the next candidate batch in allocation order, **locked** in the same statement
   (``… ORDER BY vintage, id LIMIT 1 FOR NO KEY UPDATE``, so the lock order is still the global
   allocation order), reading only its id, code and vintage (whoever shows the batch, a
   certificate or an order's line, has read it before the lock: ``ledger.forecast``);
2. the source's blocks of that batch, read after the lock is held (in READ COMMITTED a statement
   sees what was committed before it began, so the read cannot share the locking statement);
3. the rest of a split block, inserted (only when the block is split);
4. the destination's adjacent blocks, deleted and returned in one statement;
5. the moved block, rewritten to its widened range and new account;
6. the journal, one insert for the whole movement.

On PostgreSQL steps 3–5 of each take, and step 6 with the movement's last take, are one
statement (``PLACE_ONE_STATEMENT``). A movement that the first block it reads can satisfy (most
are: a sale, a retirement, a delivery from one batch) folds step 2 into that statement too
(``TAKE_FIRST_BLOCK``), and without a condition on the batches that statement is sent with the
lock, in one round trip (``_lock_and_take_first``): the server runs it once the lock is granted,
on the batch the lock took, so a contended batch's lock is held for the movement's statement
and the commit, with no round trip to the worker between. SQLite, which has no writable CTEs,
sends them one by one; all ways write exactly the same rows.
"""

import logging
import uuid
from dataclasses import dataclass, field

from portal.core.driver import for_driver, session_rows, session_rows_together
from portal.extensions import db
from portal.ledger.models import Account, Batch, Block, EntryKind, LedgerEntry
from portal.ledger.statements import (
    INSERT_BLOCK,
    INSERT_ENTRIES,
    LOCK_BATCH,
    NEXT_BATCH,
    PLACE_ONE_STATEMENT,
    REWRITE_BLOCK,
    SOURCE_BLOCKS,
    TAKE_FIRST_BLOCK,
    TAKE_NEIGHBOURS,
    lock_first_sql,
    next_batch_sql,
    take_locked_sql,
)
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

#: The stated allocation rule: oldest vintage first, then the earlier-recorded batch.
ALLOCATION_ORDER = (Batch.vintage_start, Batch.vintage_end, Batch.id)


@dataclass(frozen=True)
class MovedRange:
    batch_id: int
    batch_code: str
    serial_start: int
    serial_end: int

    @property
    def quantity(self) -> int:
        return self.serial_end - self.serial_start + 1


@dataclass
class Movement:
    id: str
    kind: EntryKind
    source: Account | None
    destination: Account
    ranges: list[MovedRange] = field(default_factory=list)
    #: The rows of the statement the caller asked to be sent with the movement's (``along``),
    #: when it was; None when it was not sent.
    along: list[tuple] | None = None

    @property
    def quantity(self) -> int:
        return sum(r.quantity for r in self.ranges)


@dataclass(frozen=True)
class Take:
    """Part of a planned movement: the first ``quantity`` serials of one source block."""

    block_id: int
    batch_id: int
    batch_code: str
    serial_start: int
    serial_end: int
    quantity: int


@dataclass
class AtOnce:
    """A movement ``plan`` may write with its first batch's read (PostgreSQL): what to write,
    and, once written, the ``movement``. ``expect``: the one range it must take, if any.
    ``along``: a statement of the caller's (driver SQL and parameters) sent in the same round
    trip as the movement's, run just after it in the transaction whether or not it moved (it
    checks for itself that the movement is the one it goes with); its rows end up as
    ``movement.along``."""

    kind: EntryKind
    source: Account
    destination: Account
    reference: str
    actor: str
    movement_id: str | None = None
    expect: "MovedRange | None" = None
    movement: Movement | None = None
    along: tuple[str, dict] | None = None


# --- locking and planning ------------------------------------------------------------------------


def _next_batch(codes, after, condition, params):
    """The next batch to lock and read, locked: ``(id, code, vintage start, vintage end)``."""
    if codes is None and condition is None and _on_postgresql():
        sql, own = next_batch_sql(after is not None)
        rows = session_rows(sql, own | params)
        return rows[0] if rows else None
    query = NEXT_BATCH[(codes is not None, after is not None)]
    if condition is not None:
        query = query.where(condition)
    return db.session.execute(query, params).first()


def lock_batch(batch_id: int) -> None:
    db.session.execute(LOCK_BATCH, {"batch": batch_id})


def source_blocks(batch_id: int, source_id: int):
    """``(block id, start, end)`` of what ``source_id`` holds of a batch, lowest serials first.
    The batch must be locked: nobody reads a batch's blocks without holding it."""
    return db.session.execute(SOURCE_BLOCKS, {"batch": batch_id, "source": source_id})


def plan(
    quantity: int, source_id: int, codes: list[str] | None, condition=None, *, at_once: AtOnce | None = None
) -> tuple[list[Take], set[str]]:
    """Lock batches one by one in allocation order and choose the blocks to take, without
    writing: ``(takes, codes of the batches locked)``; the takes fall short of ``quantity``
    when the source holds less. ``codes`` limits the batches to those named; ``condition`` (SQL
    on ``Batch``) narrows them further.

    ``at_once`` (used on PostgreSQL only): when the first block of the first batch locked holds
    the whole movement, it is written with that batch's read (``TAKE_FIRST_BLOCK``) and set as
    ``at_once.movement``; ``takes`` is then empty. Otherwise planning goes on from that read.
    Without ``condition`` that read is sent with the lock itself (``_lock_and_take_first``)."""
    takes: list[Take] = []
    seen: set[str] = set()
    remaining = quantity
    after = None
    while remaining > 0:
        first = at_once is not None and not takes and _on_postgresql()
        if first and after is None and condition is None and _fits_expected(at_once, quantity):
            row, blocks = _lock_and_take_first(at_once, quantity, source_id, codes)
        else:
            params = {"source": source_id}
            if codes is not None:
                params["codes"] = codes
            if after is not None:
                params["after_start"], params["after_end"], params["after_id"] = after
            row = _next_batch(codes, after, condition, params)
            blocks = None
        if row is None:
            break
        batch_id, code, vintage_start, vintage_end = row
        after = (vintage_start, vintage_end, batch_id)
        seen.add(code)
        if blocks is None and first:
            blocks = _take_first_block(at_once, quantity, batch_id, code)
        elif blocks is None:
            blocks = source_blocks(batch_id, source_id)
        if first and at_once.movement is not None:
            return [], seen
        for block_id, start, end in blocks:
            take = min(remaining, end - start + 1)
            takes.append(Take(block_id, batch_id, code, start, end, take))
            remaining -= take
            if remaining == 0:
                break
    return takes, seen


def _fits_expected(at_once: AtOnce, quantity: int) -> bool:
    return at_once.expect is None or at_once.expect.quantity == quantity


def _lock_and_take_first(at_once: AtOnce, quantity: int, source_id: int, codes):
    """The first batch locked and ``_take_first_block``'s statement on it, sent together in one
    round trip: ``(the lock's row or None, the take's blocks)``. The take runs once the lock is
    granted, with a snapshot taken then (READ COMMITTED: each statement its own), so it reads
    what the lock protects, as when it is sent after the lock's answer; and it acts only on the
    batch the lock took (the id the lock left in the transaction's setting)."""
    lock_sql, own = lock_first_sql(codes is not None)
    lock_params = own | {"source": source_id}
    if codes is not None:
        lock_params["codes"] = codes
    movement, take_params = _first_block_take(at_once, quantity)
    statements = [(lock_sql, lock_params), (take_locked_sql(), take_params)]
    if at_once.along is not None:
        statements.append(at_once.along)
    rows, taken, *along = session_rows_together(statements)
    if rows[0][0] is None:
        return None, []
    batch_id, code = rows[0][0], rows[0][1]
    return rows[0][:4], _taken(at_once, movement, batch_id, code, taken, along[0] if along else None)


def _first_block_take(at_once: AtOnce, quantity: int) -> tuple[Movement, dict]:
    """The movement ``TAKE_FIRST_BLOCK`` would write, and the statement's parameters but the
    batch (the statement writes nothing in a batch other than an expected range's)."""
    expect = at_once.expect
    movement = Movement(
        at_once.movement_id or new_movement_id(), at_once.kind, at_once.source, at_once.destination
    )
    params = {
        "source": at_once.source.id,
        "account": at_once.destination.id,
        "quantity": quantity,
        "expect_start": expect.serial_start if expect is not None else 0,
        "expect_batch": expect.batch_id if expect is not None else 0,
        "movement": movement.id,
        "kind": str(at_once.kind),
        "reference": (at_once.reference or "")[:120],
        "actor": (at_once.actor or "")[:120],
        "now": utcnow(),
    }
    return movement, params


def _take_first_block(at_once: AtOnce, quantity: int, batch_id: int, code: str) -> list[tuple[int, int, int]]:
    """``TAKE_FIRST_BLOCK`` on the locked batch ``batch_id``: ``at_once.movement`` set if it
    wrote the movement, else the source's blocks of the batch (``source_blocks``' rows)."""
    expect = at_once.expect
    if not _fits_expected(at_once, quantity) or (expect is not None and expect.batch_id != batch_id):
        return list(source_blocks(batch_id, at_once.source.id))  # planned as usual, then refused
    movement, params = _first_block_take(at_once, quantity)
    take = (for_driver(TAKE_FIRST_BLOCK)[0], params | {"batch": batch_id})
    if at_once.along is None:
        rows, along = session_rows(*take), None
    else:
        rows, along = session_rows_together([take, at_once.along])
    return _taken(at_once, movement, batch_id, code, rows, along)


def _taken(at_once: AtOnce, movement: Movement, batch_id: int, code: str, rows, along):
    """What ``TAKE_FIRST_BLOCK`` answered: the movement written (``at_once.movement``, the
    blocks then none), or the source's blocks of the batch when it wrote nothing."""
    if rows and rows[0][3]:
        _block_id, first, last, _moved = rows[0]
        movement.ranges.append(MovedRange(batch_id, code, first, last))
        movement.along = along
        at_once.movement = _written(movement, (at_once.reference or "")[:120])
        return []
    return [(block_id, start, end) for block_id, start, end, _moved in rows]


# --- writing -------------------------------------------------------------------------------------


def _on_postgresql() -> bool:
    """Whether the session writes to PostgreSQL (writable CTEs: the one-statement forms)."""
    return db.session.get_bind().dialect.name == "postgresql"


def new_movement_id() -> str:
    return uuid.uuid4().hex


def carry_out(
    kind, takes: list[Take], source, destination, reference, actor, *, movement_id=None
) -> Movement:
    """Write a planned movement: split the last block of each take, place the blocks, journal."""
    movement = Movement(movement_id or new_movement_id(), kind, source, destination)
    reference, actor = (reference or "")[:120], (actor or "")[:120]
    for take in takes:
        end = take.serial_start + take.quantity - 1
        movement.ranges.append(MovedRange(take.batch_id, take.batch_code, take.serial_start, end))
    if takes and _on_postgresql():
        _carry_out_in_one_statement_each(kind, takes, movement, source, destination, reference, actor)
    else:
        entries = []
        for take, moved in zip(takes, movement.ranges, strict=True):
            start, end = moved.serial_start, moved.serial_end
            if end < take.serial_end:  # split: the rest of the block stays where it was
                db.session.execute(
                    INSERT_BLOCK,
                    {"batch": take.batch_id, "account": source.id, "start": end + 1, "end": take.serial_end},
                )
            place(take.block_id, take.batch_id, start, end, destination.id)
            entries.append(
                {
                    "movement_id": movement.id,
                    "kind": kind,
                    "batch_id": take.batch_id,
                    "serial_start": start,
                    "serial_end": end,
                    "quantity": end - start + 1,
                    "from_account_id": source.id,
                    "to_account_id": destination.id,
                    "reference": reference,
                    "actor": actor,
                }
            )
        db.session.execute(INSERT_ENTRIES, entries)
    return _written(movement, reference)


def _written(movement: Movement, reference: str) -> Movement:
    """After a movement's statements: the session forgets the blocks it held, the log says it."""
    expire_loaded_blocks()
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s t from %s to %s (%s, ref %s)",
            movement.kind,
            movement.quantity,
            movement.source,
            movement.destination,
            movement.id,
            reference or "-",
        )
    return movement


def _carry_out_in_one_statement_each(kind, takes, movement, source, destination, reference, actor) -> None:
    """PostgreSQL: one statement per take, the journal with the last (``PLACE_ONE_STATEMENT``).
    Takes are written in order, each seeing the one before (two takes of one batch may meet).
    Source and destination differ (``services._check_movable``): the statement's neighbours are
    read before its own remainder exists, so it could not merge a block back into its source."""
    assert source.id != destination.id, "a movement within one account"
    ranges = movement.ranges
    journal = {
        "batches": [r.batch_id for r in ranges],
        "firsts": [r.serial_start for r in ranges],
        "lasts": [r.serial_end for r in ranges],
    }
    nothing = {"batches": [], "firsts": [], "lasts": []}
    common = {
        "source": source.id,
        "account": destination.id,
        "movement": movement.id,
        "kind": str(kind),
        "reference": reference,
        "actor": actor,
        "now": utcnow(),
    }
    for n, (take, moved) in enumerate(zip(takes, ranges, strict=True)):
        start, end = moved.serial_start, moved.serial_end
        db.session.execute(
            PLACE_ONE_STATEMENT,
            {
                **common,
                **(journal if n == len(takes) - 1 else nothing),
                "batch": take.batch_id,
                "block": take.block_id,
                "start": start,
                "end": end,
                "before": start - 1,
                "after": end + 1,
                "rest_start": end + 1,
                "rest_end": take.serial_end,
            },
        )


def place(block_id: int, batch_id: int, start: int, end: int, account_id: int) -> None:
    """Make block ``block_id`` cover ``start..end`` in ``account_id``, absorbing the adjacent
    blocks of the same batch already there, so that blocks stay merged."""
    # The neighbours go first, so that the widened block's start is free (unique per batch).
    for first, last in db.session.execute(
        TAKE_NEIGHBOURS, {"batch": batch_id, "account": account_id, "before": start - 1, "after": end + 1}
    ):
        start, end = min(start, first), max(end, last)
    db.session.execute(REWRITE_BLOCK, {"block": block_id, "account": account_id, "start": start, "end": end})


def expire_loaded_blocks() -> None:
    """Blocks are written with SQL statements; forget any stale copies the session holds."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Block):
            db.session.expire(obj)


def entry(movement, kind, batch_id, start, end, source, destination, reference, actor) -> LedgerEntry:
    return LedgerEntry(
        movement_id=movement.id,
        kind=kind,
        batch_id=batch_id,
        serial_start=start,
        serial_end=end,
        quantity=end - start + 1,
        from_account_id=source.id if source is not None else None,
        to_account_id=destination.id,
        reference=(reference or "")[:120],
        actor=(actor or "")[:120],
    )
