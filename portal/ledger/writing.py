"""How a movement reads and rewrites blocks: the ledger's hot path, in prebuilt SQL statements.

Every movement runs through here (``portal.ledger.services`` decides what moves, this module
locks, plans and writes it), so each statement is built once, at import, with bound
parameters: SQLAlchemy then reuses its compiled form and PostgreSQL its prepared plan, and a
movement costs a handful of round trips rather than a handful of statement constructions.
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
statement (``_PLACE_ONE_STATEMENT``). A movement that the first block it reads can satisfy (most
are: a sale, a retirement, a delivery from one batch) folds step 2 into that statement too
(``_TAKE_FIRST_BLOCK``): it is two round trips and the commit, and a contended batch's lock is
held for one of them and the commit. SQLite, which has no writable CTEs, sends them one by one;
all ways write exactly the same rows.
"""

import functools
import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, exists, insert, or_, select, text, tuple_, update

from portal.core.database import for_driver, session_rows, session_rows_together
from portal.extensions import db
from portal.ledger.models import Account, Batch, Block, EntryKind, LedgerEntry
from portal.timeutil import UTCDateTime, utcnow

log = logging.getLogger(__name__)

_BATCHES = Batch.__table__
_BLOCKS = Block.__table__
_ENTRIES = LedgerEntry.__table__

#: The stated allocation rule: oldest vintage first, then the earlier-recorded batch.
ALLOCATION_ORDER = (Batch.vintage_start, Batch.vintage_end, Batch.id)
_ORDER = (_BATCHES.c.vintage_start, _BATCHES.c.vintage_end, _BATCHES.c.id)


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


# --- the statements ------------------------------------------------------------------------------

_LOCK_BATCH = select(_BATCHES.c.id).where(_BATCHES.c.id == bindparam("batch")).with_for_update(key_share=True)

_SOURCE_BLOCKS = (
    select(_BLOCKS.c.id, _BLOCKS.c.serial_start, _BLOCKS.c.serial_end)
    .where(_BLOCKS.c.batch_id == bindparam("batch"), _BLOCKS.c.account_id == bindparam("source"))
    .order_by(_BLOCKS.c.serial_start)
)

_INSERT_BLOCK = insert(_BLOCKS).values(
    batch_id=bindparam("batch"),
    account_id=bindparam("account"),
    serial_start=bindparam("start"),
    serial_end=bindparam("end"),
)

#: The destination's blocks adjacent to ``start..end``: gone, their ranges returned to widen
#: the moved block (blocks stay merged: one block per run of consecutive serials and account).
#: A batch's blocks cover its serials without gaps or overlaps, so the neighbours are found by
#: serial on the batch's unique ``(batch_id, serial_start)`` index, two probes: the block
#: holding ``before`` (the last to start at or below it) and the one starting at ``after``; the
#: account and range conditions then decide. (Read by account instead, the look-up walked every
#: block the destination holds of the batch: thousands for a buyer of many small lots.)
_NEIGHBOUR_BEFORE = (
    select(_BLOCKS.c.id)
    .where(_BLOCKS.c.batch_id == bindparam("batch"), _BLOCKS.c.serial_start <= bindparam("before"))
    .order_by(_BLOCKS.c.serial_start.desc())
    .limit(1)
    .scalar_subquery()
)
_NEIGHBOUR_AFTER = (
    select(_BLOCKS.c.id)
    .where(_BLOCKS.c.batch_id == bindparam("batch"), _BLOCKS.c.serial_start == bindparam("after"))
    .scalar_subquery()
)
_TAKE_NEIGHBOURS = (
    delete(_BLOCKS)
    .where(
        or_(_BLOCKS.c.id == _NEIGHBOUR_BEFORE, _BLOCKS.c.id == _NEIGHBOUR_AFTER),
        _BLOCKS.c.batch_id == bindparam("batch"),
        _BLOCKS.c.account_id == bindparam("account"),
        or_(_BLOCKS.c.serial_end == bindparam("before"), _BLOCKS.c.serial_start == bindparam("after")),
    )
    .returning(_BLOCKS.c.serial_start, _BLOCKS.c.serial_end)
)

_REWRITE_BLOCK = (
    update(_BLOCKS)
    .where(_BLOCKS.c.id == bindparam("block"))
    .values(account_id=bindparam("account"), serial_start=bindparam("start"), serial_end=bindparam("end"))
)

_INSERT_ENTRIES = insert(_ENTRIES)


def _neighbours(before: str, after: str) -> str:
    """PostgreSQL: the CTEs ``near`` and ``gone`` of a statement placing a moved range: the
    destination's blocks ending at ``before`` or starting at ``after`` (SQL expressions),
    found by serial as ``_TAKE_NEIGHBOURS`` finds them, deleted, their ranges returned."""
    return f"""near AS (
        (SELECT id, account_id, serial_start, serial_end FROM blocks
         WHERE batch_id = :batch AND serial_start <= {before} ORDER BY serial_start DESC LIMIT 1)
        UNION ALL
        (SELECT id, account_id, serial_start, serial_end FROM blocks
         WHERE batch_id = :batch AND serial_start = {after})
    ),
    gone AS (
        DELETE FROM blocks
        WHERE id IN (SELECT id FROM near WHERE account_id = :account
                                             AND (serial_end = {before} OR serial_start = {after}))
        RETURNING serial_start, serial_end
    )"""


#: PostgreSQL: all of one take's writes in one statement (steps 3–5 above, and step 6, the
#: journal of the whole movement, with its last take), so that a contended batch's lock is held
#: for two round trips and the commit rather than five. Writable CTEs share one snapshot; the
#: order that matters is made explicit: the moved block reads ``gone`` (the neighbours' ranges),
#: so the neighbours are deleted before it is rewritten over their serials (its new start may be
#: a deleted neighbour's: the unique ``(batch_id, serial_start)`` holds). ``rest`` is the split
#: block's remainder (none when ``rest_start > rest_end``); ``near`` and ``gone`` the neighbours
#: (``_neighbours``); ``journal`` inserts one entry per element of the arrays, in their order
#: (none when they are empty: a movement's earlier takes).
_PLACE_ONE_STATEMENT = text(
    """
    WITH rest AS (
        INSERT INTO blocks (batch_id, account_id, serial_start, serial_end)
        SELECT :batch, :source, :rest_start, :rest_end WHERE :rest_start <= :rest_end
    ),
    {neighbours},
    journal AS (
        INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity,
                                    from_account_id, to_account_id, reference, actor, created_at)
        SELECT :movement, :kind, j.batch, j.first, j.last, j.last - j.first + 1,
               :source, :account, :reference, :actor, :now
        FROM unnest(CAST(:batches AS bigint[]), CAST(:firsts AS bigint[]), CAST(:lasts AS bigint[]))
             WITH ORDINALITY AS j(batch, first, last, n)
        ORDER BY j.n
    )
    UPDATE blocks
    SET account_id = :account,
        serial_start = LEAST(:start, (SELECT min(serial_start) FROM gone)),
        serial_end = GREATEST(:end, (SELECT max(serial_end) FROM gone))
    WHERE id = :block
    """.format(neighbours=_neighbours(":before", ":after"))
).bindparams(bindparam("now", type_=UTCDateTime()))

#: PostgreSQL, with the batch locked: the source's blocks of the batch (step 2) and, when the
#: first of them holds the whole movement (and starts at ``expect_start`` unless that is 0), the
#: movement written from it (steps 3–6, as ``_PLACE_ONE_STATEMENT`` writes them) in the same
#: statement. Its rows: that block as moved (``moved`` true; the serials taken), or, when it was
#: not enough (nothing written), every block the source holds of the batch, lowest serials
#: first, exactly as ``_SOURCE_BLOCKS`` reads them. ``held`` is read with the statement's
#: snapshot, taken after the lock was granted, so it is what the lock protects.
_TAKE_FIRST_BLOCK = text(
    """
    WITH held AS (
        SELECT id, serial_start, serial_end FROM blocks
        WHERE batch_id = :batch AND account_id = :source
    ),
    fit AS (
        SELECT id, serial_start AS first, serial_start + :quantity - 1 AS last, serial_end
        FROM (SELECT * FROM held ORDER BY serial_start LIMIT 1) AS lowest
        WHERE serial_end - serial_start + 1 >= :quantity
          AND (:expect_start = 0 OR serial_start = :expect_start)
    ),
    rest AS (
        INSERT INTO blocks (batch_id, account_id, serial_start, serial_end)
        SELECT :batch, :source, last + 1, serial_end FROM fit WHERE last < serial_end
    ),
    {neighbours},
    journal AS (
        INSERT INTO ledger_entries (movement_id, kind, batch_id, serial_start, serial_end, quantity,
                                    from_account_id, to_account_id, reference, actor, created_at)
        SELECT :movement, :kind, :batch, first, last, :quantity, :source, :account, :reference,
               :actor, :now
        FROM fit
    ),
    moved AS (
        UPDATE blocks
        SET account_id = :account,
            serial_start = LEAST(fit.first, (SELECT min(serial_start) FROM gone)),
            serial_end = GREATEST(fit.last, (SELECT max(serial_end) FROM gone))
        FROM fit
        WHERE blocks.id = fit.id
        RETURNING fit.id, fit.first, fit.last
    )
    SELECT id, first, last, true AS moved FROM moved
    UNION ALL
    SELECT id, serial_start, serial_end, false FROM held WHERE NOT EXISTS (SELECT FROM moved)
    ORDER BY 2
    """.format(neighbours=_neighbours("(SELECT first - 1 FROM fit)", "(SELECT last + 1 FROM fit)"))
).bindparams(bindparam("now", type_=UTCDateTime()))


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


def _next_batch_statement(named: bool, resumed: bool):
    """The next batch holding the source's blocks, in allocation order, locked: its id, code and
    vintage."""
    query = (
        select(_BATCHES.c.id, _BATCHES.c.code, _BATCHES.c.vintage_start, _BATCHES.c.vintage_end)
        .where(
            exists().where(_BLOCKS.c.batch_id == _BATCHES.c.id, _BLOCKS.c.account_id == bindparam("source"))
        )
        .order_by(*_ORDER)
        .limit(1)
        .with_for_update(key_share=True, of=_BATCHES)
    )
    if named:
        query = query.where(_BATCHES.c.code.in_(bindparam("codes", expanding=True)))
    if resumed:
        query = query.where(
            tuple_(*_ORDER) > tuple_(bindparam("after_start"), bindparam("after_end"), bindparam("after_id"))
        )
    return query


_NEXT_BATCH = {(n, r): _next_batch_statement(n, r) for n in (False, True) for r in (False, True)}


@functools.cache
def _next_batch_sql(resumed: bool) -> tuple[str, dict]:
    """PostgreSQL: ``_NEXT_BATCH``'s lock in the driver's SQL (half the CPU of SQLAlchemy's
    execution). It reads what the movement needs of the batch and no more: whoever shows the
    batch has it already (a retirement's certificate is made from the batches
    ``ledger.forecast`` loaded before the lock, an order's lines bring theirs) and the lock is
    held by the time a row of forty columns would have been converted."""
    return for_driver(_next_batch_statement(False, resumed))


def _next_batch(codes, after, condition, params):
    """The next batch to lock and read, locked: ``(id, code, vintage start, vintage end)``."""
    if codes is None and condition is None and _on_postgresql():
        sql, own = _next_batch_sql(after is not None)
        rows = session_rows(sql, own | params)
        return rows[0] if rows else None
    query = _NEXT_BATCH[(codes is not None, after is not None)]
    if condition is not None:
        query = query.where(condition)
    return db.session.execute(query, params).first()


# --- locking and planning ------------------------------------------------------------------------


def lock_batch(batch_id: int) -> None:
    db.session.execute(_LOCK_BATCH, {"batch": batch_id})


def source_blocks(batch_id: int, source_id: int):
    """``(block id, start, end)`` of what ``source_id`` holds of a batch, lowest serials first.
    The batch must be locked: nobody reads a batch's blocks without holding it."""
    return db.session.execute(_SOURCE_BLOCKS, {"batch": batch_id, "source": source_id})


def plan(
    quantity: int, source_id: int, codes: list[str] | None, condition=None, *, at_once: AtOnce | None = None
) -> tuple[list[Take], set[str]]:
    """Lock batches one by one in allocation order and choose the blocks to take, without
    writing: ``(takes, codes of the batches locked)``; the takes fall short of ``quantity``
    when the source holds less. ``codes`` limits the batches to those named; ``condition`` (SQL
    on ``Batch``) narrows them further.

    ``at_once`` (used on PostgreSQL only): when the first block of the first batch locked holds
    the whole movement, it is written with that batch's read (``_TAKE_FIRST_BLOCK``) and set as
    ``at_once.movement``; ``takes`` is then empty. Otherwise planning goes on from that read."""
    takes: list[Take] = []
    seen: set[str] = set()
    remaining = quantity
    after = None
    while remaining > 0:
        params = {"source": source_id}
        if codes is not None:
            params["codes"] = codes
        if after is not None:
            params["after_start"], params["after_end"], params["after_id"] = after
        row = _next_batch(codes, after, condition, params)
        if row is None:
            break
        batch_id, code, vintage_start, vintage_end = row
        after = (vintage_start, vintage_end, batch_id)
        seen.add(code)
        if at_once is not None and not takes and _on_postgresql():
            blocks = _take_first_block(at_once, quantity, batch_id, code)
            if at_once.movement is not None:
                return [], seen
        else:
            blocks = source_blocks(batch_id, source_id)
        for block_id, start, end in blocks:
            take = min(remaining, end - start + 1)
            takes.append(Take(block_id, batch_id, code, start, end, take))
            remaining -= take
            if remaining == 0:
                break
    return takes, seen


def _take_first_block(at_once: AtOnce, quantity: int, batch_id: int, code: str) -> list[tuple[int, int, int]]:
    """``_TAKE_FIRST_BLOCK`` on the locked batch ``batch_id``: ``at_once.movement`` set if it
    wrote the movement, else the source's blocks of the batch (``source_blocks``' rows)."""
    expect = at_once.expect
    if expect is not None and (expect.batch_id != batch_id or expect.quantity != quantity):
        return list(source_blocks(batch_id, at_once.source.id))  # planned as usual, then refused
    movement = Movement(
        at_once.movement_id or new_movement_id(), at_once.kind, at_once.source, at_once.destination
    )
    reference, actor = (at_once.reference or "")[:120], (at_once.actor or "")[:120]
    take = (
        for_driver(_TAKE_FIRST_BLOCK)[0],
        {
            "batch": batch_id,
            "source": at_once.source.id,
            "account": at_once.destination.id,
            "quantity": quantity,
            "expect_start": expect.serial_start if expect is not None else 0,
            "movement": movement.id,
            "kind": str(at_once.kind),
            "reference": reference,
            "actor": actor,
            "now": utcnow(),
        },
    )
    if at_once.along is None:
        rows, along = session_rows(*take), None
    else:
        rows, along = session_rows_together([take, at_once.along])
    if rows and rows[0][3]:
        _block_id, first, last, _moved = rows[0]
        movement.ranges.append(MovedRange(batch_id, code, first, last))
        movement.along = along
        at_once.movement = _written(movement, reference)
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
                    _INSERT_BLOCK,
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
        db.session.execute(_INSERT_ENTRIES, entries)
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
    """PostgreSQL: one statement per take, the journal with the last (``_PLACE_ONE_STATEMENT``).
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
            _PLACE_ONE_STATEMENT,
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
        _TAKE_NEIGHBOURS, {"batch": batch_id, "account": account_id, "before": start - 1, "after": end + 1}
    ):
        start, end = min(start, first), max(end, last)
    db.session.execute(_REWRITE_BLOCK, {"block": block_id, "account": account_id, "start": start, "end": end})


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
