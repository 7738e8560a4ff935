"""The only code that moves credits.

Every public function runs inside the caller's transaction and only flushes; the request (or
CLI command) commits once. A refused movement raises a :class:`~portal.ledger.errors.LedgerError`
before anything is written, so a rollback is never needed to undo half a movement.

Locking: a movement locks the destination account (when it has a capacity) and then each batch
it reads, one by one in the global allocation order (oldest vintage first, then id). Every
movement takes its locks in that same order, so concurrent movements cannot deadlock, and
no movement reads a batch's blocks without holding the batch: under any number of concurrent
buyers the last tonne goes once. (``forecast`` reads a source's blocks without locks, for a
source only its caller can change; the movement given them as ``expect`` checks them again
under its locks.) The locks are ``FOR NO KEY UPDATE``: they exclude each other
but not the ``FOR KEY SHARE`` locks PostgreSQL's foreign-key checks take, so a transaction
writing an entry that merely *references* a locked account never waits on its holder.

The no-deadlock argument holds for **one movement per transaction**: locks last until commit,
so a second movement in the same transaction may need a batch earlier in the order than one it
already holds. Request handlers and workers that run concurrently make one movement per
transaction; several movements in one transaction are for single-writer work (demo load,
migrations), and PostgreSQL would detect and abort a deadlock rather than hang.

Allocation is decided from the candidates seen when the movement starts: a release committed a
moment later (older serials returning to inventory) is used by the next movement, not this one.
No serial is ever taken twice either way; only which serials a buyer gets can differ. On SQLite every transaction starts with ``BEGIN IMMEDIATE``
(see ``portal.core.database``), which serialises writers.
"""

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, exists, func, insert, select

from portal.extensions import db
from portal.ledger.accounts import (  # noqa: F401  (the ledger's interface: re-exported)
    _QUANTITY,
    _check_quantity,
    balance,
    balances_by_batch,
    find_account,
    held_per_batch,
    open_account,
    parse_quantity,
    raise_capacity,
    system_account,
)
from portal.ledger.errors import (
    CapacityExceeded,
    InsufficientCredits,
    InvalidMovement,
    TerminalAccount,
    UnknownAccount,
    UnknownBatch,
)
from portal.ledger.forecasting import (  # noqa: F401  (the ledger's interface: re-exported)
    ForecastRead,
    forecast,
    forecast_read,
)
from portal.ledger.models import (
    ALLOWED_MOVES,
    TERMINAL_KINDS,
    Account,
    AccountKind,
    Batch,
    Block,
    EntryKind,
    LedgerEntry,
)
from portal.ledger.statements import BLOCKS
from portal.ledger.writing import (  # noqa: F401  (ALLOCATION_ORDER, MovedRange, new_movement_id: re-exported)
    ALLOCATION_ORDER,
    AtOnce,
    MovedRange,
    Movement,
    Take,
    carry_out,
    entry,
    expire_loaded_blocks,
    lock_batch,
    new_movement_id,
    plan,
    source_blocks,
)

log = logging.getLogger(__name__)


# --- reading in allocation order ---------------------------------------------------------------


def blocks_of(account: Account) -> list[Block]:
    """The account's blocks in allocation order."""
    query = (
        select(Block)
        .join(Batch, Block.batch_id == Batch.id)
        .where(Block.account_id == account.id)
        .order_by(*ALLOCATION_ORDER, Block.serial_start)
    )
    return list(db.session.scalars(query))


# --- movements -------------------------------------------------------------------------------


def issue_batch(
    batch: Batch, *, buffer_quantity: int | None = None, reference: str = "", actor: str = ""
) -> Movement:
    """Bring a newly recorded batch into the ledger: serials 1..quantity into inventory, the
    last ``buffer_quantity`` of them (default: the batch's own ``buffer_quantity``, or none)
    into the buffer."""
    _check_quantity(batch.quantity)
    if buffer_quantity is None:
        buffer_quantity = batch.buffer_quantity or 0
    if type(buffer_quantity) is not int or buffer_quantity < 0 or buffer_quantity >= batch.quantity:
        raise InvalidMovement(reason="buffer_too_large", buffer=buffer_quantity, quantity=batch.quantity)
    if batch.id is None:
        db.session.add(batch)
        db.session.flush()
    lock_batch(batch.id)
    already = db.session.scalar(
        select(exists().where(LedgerEntry.batch_id == batch.id))
    ) or db.session.scalar(select(exists().where(Block.batch_id == batch.id)))
    if already:
        raise InvalidMovement(reason="already_issued", batch=batch.code)

    batch.buffer_quantity = buffer_quantity
    movement = Movement(uuid.uuid4().hex, EntryKind.ISSUE, None, system_account(AccountKind.INVENTORY))
    for_sale = batch.quantity - buffer_quantity
    pieces = [(system_account(AccountKind.INVENTORY), 1, for_sale)]
    if buffer_quantity:
        pieces.append((system_account(AccountKind.BUFFER), for_sale + 1, batch.quantity))
    for account, start, end in pieces:
        db.session.add(Block(batch_id=batch.id, account_id=account.id, serial_start=start, serial_end=end))
        db.session.add(
            entry(movement, EntryKind.ISSUE, batch.id, start, end, None, account, reference, actor)
        )
        movement.ranges.append(MovedRange(batch.id, batch.code, start, end))
    db.session.flush()
    log.info("issued batch %s: %s t (%s t to buffer)", batch.code, batch.quantity, buffer_quantity)
    return movement


def transfer(
    quantity: int,
    *,
    source: Account,
    destination: Account,
    batch_codes: Sequence[str] | None = None,
    batch_condition=None,
    reference: str = "",
    actor: str = "",
    up_to: bool = False,
) -> Movement:
    """Move ``quantity`` tonnes from ``source`` to ``destination`` (neither terminal).

    Credits are taken oldest vintage first, lowest serials first, from the batches named in
    ``batch_codes`` or from any batch; the last block taken is split. ``batch_condition``, a SQL
    condition on ``Batch``, narrows the batches further (e.g. "listed for sale"). With
    ``up_to``, as much as there is up to ``quantity`` is moved (the movement says how much),
    decided under the same locks; only finding nothing at all is refused.
    """
    if destination.kind in TERMINAL_KINDS:
        raise InvalidMovement(reason="use_retire", account=str(destination))
    return _move(
        EntryKind.TRANSFER,
        quantity,
        source,
        destination,
        batch_codes,
        reference,
        actor,
        batch_condition,
        up_to=up_to,
    )


def retire(
    quantity: int,
    *,
    source: Account,
    batch_codes: Sequence[str] | None = None,
    reference: str = "",
    actor: str = "",
    expect: Sequence[MovedRange] | None = None,
    movement_id: str | None = None,
    along: tuple[str, dict] | None = None,
) -> Movement:
    """Retire ``quantity`` tonnes from ``source``: final, each serial at most once.

    ``expect``: the ranges the caller read beforehand (``forecast``) and already acted on; the
    movement is refused (``InvalidMovement``, reason ``changed``), before anything is written,
    unless it takes exactly those. ``movement_id``: the id the caller already gave it.
    ``along`` (PostgreSQL): a statement of the caller's (driver SQL, parameters) to send in the
    movement's round trip when the movement is written in one statement; it runs right after
    the movement's statement, moved or not, so it must check for itself (in its SQL) that the
    movement it goes with was written. Its rows are then ``Movement.along``; when it was not
    sent (the movement took several statements), that is None.
    """
    return _move(
        EntryKind.RETIRE,
        quantity,
        source,
        system_account(AccountKind.RETIRED),
        batch_codes,
        reference,
        actor,
        expect=expect,
        movement_id=movement_id,
        along=along,
    )


def cancel(
    quantity: int,
    *,
    source: Account,
    batch_codes: Sequence[str] | None = None,
    reference: str = "",
    actor: str = "",
) -> Movement:
    """Cancel ``quantity`` tonnes (registry cancellation or reversal): final, never sold."""
    return _move(
        EntryKind.CANCEL,
        quantity,
        source,
        system_account(AccountKind.CANCELLED),
        batch_codes,
        reference,
        actor,
    )


def _move(
    kind,
    quantity,
    source,
    destination,
    batch_codes,
    reference,
    actor,
    batch_condition=None,
    *,
    up_to=False,
    expect=None,
    movement_id=None,
    along=None,
) -> Movement:
    _check_quantity(quantity)
    _check_movable(source, destination)
    codes = list(dict.fromkeys(batch_codes)) if batch_codes is not None else None
    _check_capacity(destination, quantity)
    at_once = None
    if _may_write_at_once(codes, expect):
        only = expect[0] if expect else None
        at_once = AtOnce(kind, source, destination, reference, actor, movement_id, only, along=along)
    takes, seen = plan(quantity, source.id, codes, batch_condition, at_once=at_once)
    if at_once is not None and at_once.movement is not None:
        return at_once.movement
    if codes is not None and len(seen) < len(codes):
        _resolve_batches(codes)  # a named batch that does not exist is refused as such
    taken = sum(take.quantity for take in takes)
    if taken < quantity and not (up_to and takes):
        raise InsufficientCredits(account=str(source), available=taken, requested=quantity)
    if expect is not None:
        planned = [(t.batch_id, t.serial_start, t.serial_start + t.quantity - 1) for t in takes]
        if planned != [(r.batch_id, r.serial_start, r.serial_end) for r in expect]:
            raise InvalidMovement(reason="changed", account=str(source))
    return carry_out(kind, takes, source, destination, reference, actor, movement_id=movement_id)


def _may_write_at_once(codes, expect) -> bool:
    """Whether a movement may be written with its first batch's read (``writing.AtOnce``): when
    no check stands between planning and writing that the one-statement form could not make
    first (every named batch known: at most one is named, and it is the batch locked; the
    expected ranges: at most one, checked in the statement)."""
    return (codes is None or len(codes) == 1) and (expect is None or len(expect) == 1)


def _check_movable(source, destination) -> None:
    for account in (source, destination):
        if account is None or account.id is None:
            raise UnknownAccount(account=str(account))
    if source.kind in TERMINAL_KINDS:
        raise TerminalAccount(account=str(source))
    if source.id == destination.id:
        raise InvalidMovement(reason="same_account", account=str(source))
    if destination.kind not in ALLOWED_MOVES[source.kind]:
        raise InvalidMovement(reason="not_allowed", source=str(source), account=str(destination))


def _check_capacity(destination, quantity: int) -> None:
    """Lock a destination with a capacity and refuse a movement that would overfill it."""
    if destination.capacity is None:
        return
    db.session.execute(select(Account.id).where(Account.id == destination.id).with_for_update(key_share=True))
    held = balance(destination)
    if held + quantity > destination.capacity:
        raise CapacityExceeded(
            account=str(destination), capacity=destination.capacity, balance=held, requested=quantity
        )


def transfer_each(
    quantities: Sequence[tuple[str, int]],
    *,
    source: Account,
    destination: Account,
    batch_condition=None,
    reference: str = "",
    actor: str = "",
) -> Movement:
    """Move exactly the given tonnes of each named batch (``[(code, quantity), …]``, each batch
    once) from ``source`` to ``destination`` in one movement: every batch or none.

    The batches are locked in the global allocation order whatever order they are named in, so
    this is one movement for the no-deadlock argument. ``batch_condition`` (SQL on ``Batch``)
    must hold for each batch; one that fails it, or is short, raises InsufficientCredits naming
    the batch (``batch``, ``available``, ``requested``) before anything is written.
    """
    if destination.kind in TERMINAL_KINDS:
        raise InvalidMovement(reason="use_retire", account=str(destination))
    wanted = dict(quantities)
    if not wanted or len(wanted) != len(quantities):
        raise InvalidMovement(reason="batch_named_twice", account=str(destination))
    for quantity in wanted.values():
        _check_quantity(quantity)
    _check_movable(source, destination)
    ids = dict(zip(wanted, _resolve_batches(list(wanted)), strict=True))
    _check_capacity(destination, sum(wanted.values()))
    query = select(Batch.id, Batch.code).where(Batch.id.in_(list(ids.values()))).order_by(*ALLOCATION_ORDER)
    if batch_condition is not None:
        query = query.where(batch_condition)
    eligible = db.session.execute(query).all()
    missing = set(wanted) - {code for _id, code in eligible}
    if missing:
        code = min(missing)
        raise InsufficientCredits(account=str(source), available=0, requested=wanted[code], batch=code)
    takes: list[Take] = []
    for batch_id, code in eligible:
        lock_batch(batch_id)
        remaining = wanted[code]
        for block_id, start, end in source_blocks(batch_id, source.id):
            take = min(remaining, end - start + 1)
            takes.append(Take(block_id, batch_id, code, start, end, take))
            remaining -= take
            if remaining == 0:
                break
        if remaining:
            raise InsufficientCredits(
                account=str(source), available=wanted[code] - remaining, requested=wanted[code], batch=code
            )
    return carry_out(EntryKind.TRANSFER, takes, source, destination, reference, actor)


def distribute(
    batch: Batch,
    *,
    source: Account,
    allocations: Sequence[tuple[Account, int]],
    reference: str = "",
    actor: str = "",
) -> tuple[Movement, dict[int, int]]:
    """Share one batch's credits in ``source`` among many accounts in one movement (new stock
    reserved for many contracts at once): each ``(account, quantity)`` in the order given gets
    up to ``quantity``, less if its capacity or the batch's stock runs out first; lowest
    serials first. Returns the movement and ``{account id: tonnes given}``.

    A constant number of statements whatever the number of accounts: the batch is locked once,
    the capacity accounts in id order, and blocks are rewritten in bulk, in normal form.
    """
    if source.kind in TERMINAL_KINDS or source.id is None:
        raise InvalidMovement(reason="not_allowed", source=str(source), account="-")
    wanted: dict[int, int] = {}
    accounts: dict[int, Account] = {}
    for account, quantity in allocations:
        _check_quantity(quantity)
        if account.id is None or account.id == source.id or account.kind not in ALLOWED_MOVES[source.kind]:
            raise InvalidMovement(reason="not_allowed", source=str(source), account=str(account))
        if account.kind in TERMINAL_KINDS:
            raise InvalidMovement(reason="use_retire", account=str(account))
        if account.id in wanted:
            raise InvalidMovement(reason="same_account", account=str(account))
        wanted[account.id] = quantity
        accounts[account.id] = account
    if not wanted:
        return Movement(uuid.uuid4().hex, EntryKind.TRANSFER, source, source), {}
    movement = Movement(uuid.uuid4().hex, EntryKind.TRANSFER, source, accounts[next(iter(wanted))])
    lock_batch(batch.id)
    capped = sorted(i for i, a in accounts.items() if a.capacity is not None)
    if capped:
        db.session.execute(
            select(Account.id)
            .where(Account.id.in_(capped))
            .order_by(Account.id)
            .with_for_update(key_share=True)
        )
        held = dict(
            db.session.execute(
                select(Block.account_id, func.sum(_QUANTITY))
                .where(Block.account_id.in_(capped))
                .group_by(Block.account_id)
            ).all()
        )
        for account_id in capped:
            room = accounts[account_id].capacity - int(held.get(account_id) or 0)
            wanted[account_id] = max(0, min(wanted[account_id], room))

    involved = [source.id, *wanted]
    rows = db.session.execute(
        select(BLOCKS.c.id, BLOCKS.c.serial_start, BLOCKS.c.serial_end, BLOCKS.c.account_id)
        .where(BLOCKS.c.batch_id == batch.id, BLOCKS.c.account_id.in_(involved))
        .order_by(BLOCKS.c.serial_start)
    ).all()
    before = {(r.serial_start, r.serial_end, r.account_id): r.id for r in rows}
    pieces = [[r.serial_start, r.serial_end] for r in rows if r.account_id == source.id]
    after = [(r.serial_start, r.serial_end, r.account_id) for r in rows if r.account_id != source.id]
    given: dict[int, int] = {}
    entries = []
    for account_id, quantity in wanted.items():
        while quantity > 0 and pieces:
            piece = pieces[0]
            end = min(piece[1], piece[0] + quantity - 1)
            after.append((piece[0], end, account_id))
            entries.append(
                {
                    "movement_id": movement.id,
                    "kind": EntryKind.TRANSFER,
                    "batch_id": batch.id,
                    "serial_start": piece[0],
                    "serial_end": end,
                    "quantity": end - piece[0] + 1,
                    "from_account_id": source.id,
                    "to_account_id": account_id,
                    "reference": (reference or "")[:120],
                    "actor": (actor or "")[:120],
                }
            )
            movement.ranges.append(MovedRange(batch.id, batch.code, piece[0], end))
            given[account_id] = given.get(account_id, 0) + end - piece[0] + 1
            quantity -= end - piece[0] + 1
            if end == piece[1]:
                pieces.pop(0)
            else:
                piece[0] = end + 1
    if not entries:
        return movement, {}
    after.extend((start, end, source.id) for start, end in pieces)
    merged: list[list[int]] = []
    for start, end, account_id in sorted(after):
        if merged and merged[-1][2] == account_id and merged[-1][1] + 1 == start:
            merged[-1][1] = end
        else:
            merged.append([start, end, account_id])
    now = {tuple(m) for m in merged}
    gone = [block_id for key, block_id in before.items() if key not in now]
    if gone:
        db.session.execute(delete(BLOCKS).where(BLOCKS.c.id.in_(gone)))
    new = [
        {"batch_id": batch.id, "serial_start": a, "serial_end": b, "account_id": acc}
        for a, b, acc in sorted(now)
        if (a, b, acc) not in before
    ]
    if new:
        db.session.execute(insert(BLOCKS), new)
    db.session.execute(insert(LedgerEntry.__table__), entries)
    expire_loaded_blocks()
    log.info(
        "distributed %s t of %s from %s to %s accounts (%s, ref %s)",
        sum(given.values()),
        batch.code,
        source,
        len(given),
        movement.id,
        reference or "-",
    )
    return movement, given


def _resolve_batches(codes: Sequence[str]) -> list[int]:
    codes = list(dict.fromkeys(codes))
    found = dict(db.session.execute(select(Batch.code, Batch.id).where(Batch.code.in_(codes))).all())
    for code in codes:
        if code not in found:
            raise UnknownBatch(batch=code)
    return list(found.values())
