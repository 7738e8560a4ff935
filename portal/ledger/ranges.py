"""Movements decided by serial, not by quantity: withholding serials a registry account does not
show, and releasing or cancelling them afterwards. Same locks, same journal and the same normal
form of blocks as every movement of ``portal.ledger.services``; one movement per transaction."""

import logging
import uuid

from sqlalchemy import insert, select, update

from portal.extensions import db
from portal.ledger.accounts import _check_quantity
from portal.ledger.errors import InsufficientCredits, InvalidMovement, TerminalAccount, UnknownAccount
from portal.ledger.models import ALLOWED_MOVES, TERMINAL_KINDS, Account, AccountKind, Batch, EntryKind
from portal.ledger.statements import BLOCKS
from portal.ledger.writing import (
    MovedRange,
    Movement,
    entry,
    expire_loaded_blocks,
    place,
)
from portal.ledger.writing import lock_batch as _lock_batch_id

log = logging.getLogger(__name__)


def move_range(
    batch: Batch,
    serial_start: int,
    serial_end: int,
    *,
    source: Account,
    destination: Account,
    reference: str = "",
    actor: str = "",
) -> Movement:
    """Move exactly serials ``serial_start..serial_end`` of ``batch`` from ``source`` to
    ``destination`` (a transfer, or a cancellation into ``cancelled``): the range must lie
    entirely in ``source``. For moves decided by serial, not by quantity (withholding serials a
    registry does not show, and releasing them). Locks the batch like every movement."""
    for account in (source, destination):
        if account is None or account.id is None:
            raise UnknownAccount(account=str(account))
    if source.kind in TERMINAL_KINDS:
        raise TerminalAccount(account=str(source))
    if source.id == destination.id:
        raise InvalidMovement(reason="same_account", account=str(source))
    if destination.kind not in ALLOWED_MOVES[source.kind] or destination.kind == AccountKind.RETIRED:
        raise InvalidMovement(reason="not_allowed", source=str(source), account=str(destination))
    if destination.capacity is not None:
        raise InvalidMovement(reason="not_allowed", source=str(source), account=str(destination))
    _check_quantity(serial_end - serial_start + 1 if serial_start >= 1 else 0)
    _lock_batch_id(batch.id)
    rows = db.session.execute(
        select(BLOCKS.c.id, BLOCKS.c.serial_start, BLOCKS.c.serial_end, BLOCKS.c.account_id)
        .where(
            BLOCKS.c.batch_id == batch.id,
            BLOCKS.c.serial_end >= serial_start,
            BLOCKS.c.serial_start <= serial_end,
        )
        .order_by(BLOCKS.c.serial_start)
    ).all()
    covered = serial_start
    for row in rows:
        if row.account_id != source.id or row.serial_start > covered:
            break
        covered = row.serial_end + 1
    if covered <= serial_end:
        raise InsufficientCredits(
            account=str(source), available=covered - serial_start, requested=serial_end - serial_start + 1
        )
    kind = EntryKind.CANCEL if destination.kind == AccountKind.CANCELLED else EntryKind.TRANSFER
    movement = Movement(uuid.uuid4().hex, kind, source, destination)
    for row in rows:
        start, end = max(row.serial_start, serial_start), min(row.serial_end, serial_end)
        if row.serial_start < start:  # the head stays where it was, in a block of its own
            db.session.execute(update(BLOCKS).where(BLOCKS.c.id == row.id).values(serial_end=start - 1))
            db.session.execute(
                insert(BLOCKS).values(
                    batch_id=batch.id, account_id=source.id, serial_start=start, serial_end=row.serial_end
                )
            )
            block_id = db.session.scalar(
                select(BLOCKS.c.id).where(BLOCKS.c.batch_id == batch.id, BLOCKS.c.serial_start == start)
            )
        else:
            block_id = row.id
        if end < row.serial_end:  # the tail too
            db.session.execute(update(BLOCKS).where(BLOCKS.c.id == block_id).values(serial_end=end))
            db.session.execute(
                insert(BLOCKS).values(
                    batch_id=batch.id, account_id=source.id, serial_start=end + 1, serial_end=row.serial_end
                )
            )
        place(block_id, batch.id, start, end, destination.id)
        db.session.add(entry(movement, kind, batch.id, start, end, source, destination, reference, actor))
        movement.ranges.append(MovedRange(batch.id, batch.code, start, end))
    db.session.flush()
    expire_loaded_blocks()
    log.info(
        "%s serials %s-%s of %s from %s to %s (%s, ref %s)",
        kind,
        serial_start,
        serial_end,
        batch.code,
        source,
        destination,
        movement.id,
        reference or "-",
    )
    return movement


def lock_batch(batch: Batch) -> None:
    """Lock ``batch`` as a movement would, to read its blocks and then move by serial."""
    _lock_batch_id(batch.id)
