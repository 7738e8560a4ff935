"""What a movement would take, read before it takes its locks (``forecast``).

A movement decides what it takes only once it holds its batches' locks (``ledger.writing``).
Work that depends on the outcome but need not be done under those locks (a certificate made and
signed for the serials it will certify) can be done before, from what the source holds now,
and checked against what the movement took: a contended batch is then locked only for the
writing, not for that work.
"""

import functools
from collections.abc import Sequence

from sqlalchemy import ARRAY, String, any_, bindparam, select

from portal.core.database import for_driver, is_postgresql, session_rows
from portal.extensions import db
from portal.ledger import loading
from portal.ledger.models import Account, Batch, Block
from portal.ledger.writing import _ORDER, ALLOCATION_ORDER, MovedRange

#: Built once (a fulfilment reads its hold so, a retirement the source it will most likely
#: take): at most ``most`` blocks (each holds a tonne at least), of the batches ``codes`` if
#: given.
_FORECAST = (
    select(Block.batch_id, Batch.code, Block.serial_start, Block.serial_end)
    .join(Batch, Block.batch_id == Batch.id)
    .where(Block.account_id == bindparam("account"))
    .order_by(*ALLOCATION_ORDER, Block.serial_start)
    .limit(bindparam("most"))
)
_FORECAST_OF = _FORECAST.where(Batch.code.in_(bindparam("codes", expanding=True)))


def forecast(
    quantity: int, source: Account, batch_codes: Sequence[str] | None = None, *, load: bool = False
) -> list[MovedRange]:
    """The ranges a movement of ``quantity`` t from ``source`` (of the batches ``batch_codes``
    if given) would take now (allocation order, lowest serials first; fewer tonnes if it holds
    fewer), read **without locking** any batch. ``load``: the batches are put in the session
    with their projects and regions by the same statement (``loading``), on PostgreSQL.

    For work that depends on what will move, done before the batches are locked: for a source
    that nobody but the caller can change (an order's hold, while the order is locked), the
    movement given these ranges as ``expect`` checks them under its locks; for any other, the
    caller compares them with what the movement took and redoes the work if they differ.
    """
    params = {"account": source.id, "most": quantity}
    if batch_codes is not None:
        params["codes"] = list(dict.fromkeys(batch_codes))
    if load and is_postgresql():
        sql, own = _forecast_loading(batch_codes is not None)
        rows = [
            (loading.attach(row).id, row[-3], row[-2], row[-1]) for row in session_rows(sql, own | params)
        ]
    else:
        rows = db.session.execute(_FORECAST if batch_codes is None else _FORECAST_OF, params)
    ranges, remaining = [], quantity
    for batch_id, code, start, end in rows:
        if remaining <= 0:
            break
        take = min(remaining, end - start + 1)
        ranges.append(MovedRange(batch_id, code, start, start + take - 1))
        remaining -= take
    return ranges


@functools.cache
def _forecast_loading(named: bool) -> tuple[str, dict]:
    """PostgreSQL: ``_FORECAST`` (``_FORECAST_OF`` if ``named``: the codes as one array) in the
    driver's SQL, each block's row led by its batch's, project's and region's columns
    (``loading.query()``) and ending with the batch's code and the block's range."""
    blocks = Block.__table__
    query = (
        loading.query()
        .add_columns(Batch.__table__.c.code, blocks.c.serial_start, blocks.c.serial_end)
        .join_from(Batch.__table__, blocks, blocks.c.batch_id == Batch.__table__.c.id)
        .where(blocks.c.account_id == bindparam("account"))
        .order_by(*_ORDER, blocks.c.serial_start)
        .limit(bindparam("most"))
    )
    if named:
        query = query.where(Batch.__table__.c.code == any_(bindparam("codes", type_=ARRAY(String))))
    return for_driver(query)
