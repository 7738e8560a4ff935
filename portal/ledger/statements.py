"""The ledger's hot path statements, built once at import with bound parameters
(``portal.ledger.writing`` runs them): SQLAlchemy reuses their compiled form and PostgreSQL its
prepared plans. The PostgreSQL forms write a movement's blocks and journal with data-modifying
``WITH`` clauses; the locking read of a movement's first batch leaves the batch's id in a
setting of the transaction (``LOCKED_SETTING``) for the movement's statement sent right behind
it, in the same round trip (``lock_first_sql``, ``take_locked_sql``)."""

import functools

from sqlalchemy import String, any_, bindparam, delete, exists, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY

from portal.core.driver import for_driver
from portal.ledger.models import Batch, Block, LedgerEntry
from portal.timeutil import UTCDateTime

BATCHES = Batch.__table__
BLOCKS = Block.__table__
ENTRIES = LedgerEntry.__table__

#: ``writing.ALLOCATION_ORDER`` on the table's columns.
ORDER = (BATCHES.c.vintage_start, BATCHES.c.vintage_end, BATCHES.c.id)

LOCK_BATCH = select(BATCHES.c.id).where(BATCHES.c.id == bindparam("batch")).with_for_update(key_share=True)

SOURCE_BLOCKS = (
    select(BLOCKS.c.id, BLOCKS.c.serial_start, BLOCKS.c.serial_end)
    .where(BLOCKS.c.batch_id == bindparam("batch"), BLOCKS.c.account_id == bindparam("source"))
    .order_by(BLOCKS.c.serial_start)
)

INSERT_BLOCK = insert(BLOCKS).values(
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
    select(BLOCKS.c.id)
    .where(BLOCKS.c.batch_id == bindparam("batch"), BLOCKS.c.serial_start <= bindparam("before"))
    .order_by(BLOCKS.c.serial_start.desc())
    .limit(1)
    .scalar_subquery()
)
_NEIGHBOUR_AFTER = (
    select(BLOCKS.c.id)
    .where(BLOCKS.c.batch_id == bindparam("batch"), BLOCKS.c.serial_start == bindparam("after"))
    .scalar_subquery()
)
TAKE_NEIGHBOURS = (
    delete(BLOCKS)
    .where(
        or_(BLOCKS.c.id == _NEIGHBOUR_BEFORE, BLOCKS.c.id == _NEIGHBOUR_AFTER),
        BLOCKS.c.batch_id == bindparam("batch"),
        BLOCKS.c.account_id == bindparam("account"),
        or_(BLOCKS.c.serial_end == bindparam("before"), BLOCKS.c.serial_start == bindparam("after")),
    )
    .returning(BLOCKS.c.serial_start, BLOCKS.c.serial_end)
)

REWRITE_BLOCK = (
    update(BLOCKS)
    .where(BLOCKS.c.id == bindparam("block"))
    .values(account_id=bindparam("account"), serial_start=bindparam("start"), serial_end=bindparam("end"))
)

INSERT_ENTRIES = insert(ENTRIES)


def _neighbours(before: str, after: str) -> str:
    """PostgreSQL: the CTEs ``near`` and ``gone`` of a statement placing a moved range: the
    destination's blocks ending at ``before`` or starting at ``after`` (SQL expressions),
    found by serial as ``TAKE_NEIGHBOURS`` finds them, deleted, their ranges returned."""
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
PLACE_ONE_STATEMENT = text(
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
#: first of them holds the whole movement (and, unless ``expect_start`` is 0, starts there in
#: the batch ``expect_batch``), the
#: movement written from it (steps 3–6, as ``PLACE_ONE_STATEMENT`` writes them) in the same
#: statement. Its rows: that block as moved (``moved`` true; the serials taken), or, when it was
#: not enough (nothing written), every block the source holds of the batch, lowest serials
#: first, exactly as ``SOURCE_BLOCKS`` reads them. ``held`` is read with the statement's
#: snapshot, taken after the lock was granted, so it is what the lock protects.
TAKE_FIRST_BLOCK = text(
    """
    WITH held AS (
        SELECT id, serial_start, serial_end FROM blocks
        WHERE batch_id = :batch AND account_id = :source
    ),
    fit AS (
        SELECT id, serial_start AS first, serial_start + :quantity - 1 AS last, serial_end
        FROM (SELECT * FROM held ORDER BY serial_start LIMIT 1) AS lowest
        WHERE serial_end - serial_start + 1 >= :quantity
          AND (:expect_start = 0 OR (serial_start = :expect_start AND :batch = :expect_batch))
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


def next_batch_statement(named: bool, resumed: bool):
    """The next batch holding the source's blocks, in allocation order, locked: its id, code and
    vintage."""
    query = (
        select(BATCHES.c.id, BATCHES.c.code, BATCHES.c.vintage_start, BATCHES.c.vintage_end)
        .where(exists().where(BLOCKS.c.batch_id == BATCHES.c.id, BLOCKS.c.account_id == bindparam("source")))
        .order_by(*ORDER)
        .limit(1)
        .with_for_update(key_share=True, of=BATCHES)
    )
    if named:
        query = query.where(BATCHES.c.code.in_(bindparam("codes", expanding=True)))
    if resumed:
        query = query.where(
            tuple_(*ORDER) > tuple_(bindparam("after_start"), bindparam("after_end"), bindparam("after_id"))
        )
    return query


NEXT_BATCH = {(n, r): next_batch_statement(n, r) for n in (False, True) for r in (False, True)}


@functools.cache
def next_batch_sql(resumed: bool) -> tuple[str, dict]:
    """PostgreSQL: ``NEXT_BATCH``'s lock in the driver's SQL (half the CPU of SQLAlchemy's
    execution). It reads what the movement needs of the batch and no more: whoever shows the
    batch has it already (a retirement's certificate is made from the batches
    ``ledger.forecast`` loaded before the lock, an order's lines bring theirs) and the lock is
    held by the time a row of forty columns would have been converted."""
    return for_driver(next_batch_statement(False, resumed))


#: The transaction's own setting in which the lock of a movement's first batch leaves the
#: batch's id for the statement sent right behind it (``writing._lock_and_take_first``).
LOCKED_SETTING = "portal.locked_batch"


@functools.cache
def lock_first_sql(named: bool) -> tuple[str, dict]:
    """PostgreSQL: ``NEXT_BATCH``'s lock of a movement's first batch (the one named batch as an
    array's element), which also sets the transaction's ``LOCKED_SETTING`` to the batch's id
    (to nothing when there is none). Always one row: the batch's ``(id, code, vintage start,
    vintage end)``, all NULL when there is none. The lock is taken in a materialised CTE, so the
    setting is made once, from the row locked."""
    query = next_batch_statement(False, False)
    if named:
        query = query.where(BATCHES.c.code == any_(bindparam("codes", type_=ARRAY(String))))
    sql, own = for_driver(query)
    return (
        f"WITH locked AS MATERIALIZED ({sql}) "
        "SELECT locked.id, locked.code, locked.vintage_start, locked.vintage_end, "
        f"set_config('{LOCKED_SETTING}', COALESCE(CAST(locked.id AS text), ''), true) "
        "FROM (SELECT 1) AS one LEFT OUTER JOIN locked ON true",
        own,
    )


@functools.cache
def take_locked_sql() -> str:
    """PostgreSQL: ``TAKE_FIRST_BLOCK`` on the batch ``lock_first_sql`` locked (its id read
    from the transaction's setting; none when it locked none)."""
    sql, _own = for_driver(TAKE_FIRST_BLOCK)
    return sql.replace("%(batch)s", f"CAST(NULLIF(current_setting('{LOCKED_SETTING}', true), '') AS bigint)")
