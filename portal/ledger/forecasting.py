"""What a movement would take, read before it takes its locks (``forecast``).

A movement decides what it takes only once it holds its batches' locks (``ledger.writing``).
Work that depends on the outcome but need not be done under those locks (a certificate made and
signed for the serials it will certify) can be done before, from what the source holds now,
and checked against what the movement took: a contended batch is then locked only for the
writing, not for that work.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ARRAY, String, any_, bindparam, select

from portal.core.database import is_postgresql
from portal.core.driver import for_driver, session_rows
from portal.extensions import db
from portal.ledger import loading
from portal.ledger.models import Account, Batch, Block
from portal.ledger.statements import ORDER
from portal.ledger.writing import ALLOCATION_ORDER, MovedRange

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
#: The same in the driver's SQL (``core.driver.for_driver``): the codes as one array.
_FORECAST_OF_PG = _FORECAST.where(Batch.code == any_(bindparam("codes", type_=ARRAY(String))))


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
    if is_postgresql():
        read = forecast_read(quantity, source, batch_codes, load=load)
        return read.ranges(session_rows(read.sql, read.params))
    params = _params(quantity, source, batch_codes)
    rows = db.session.execute(_FORECAST if batch_codes is None else _FORECAST_OF, params)
    return _ranges(rows, quantity)


@dataclass(frozen=True)
class ForecastRead:
    """PostgreSQL: ``forecast``'s statement (driver SQL and parameters), for a caller that sends
    it together with reads of its own (``core.driver.session_rows_together``), and what makes
    the ranges of its rows (``ranges``)."""

    sql: str
    params: dict
    quantity: int
    load: bool

    def ranges(self, rows) -> list[MovedRange]:
        if self.load:
            rows = [(loading.attach(row).id, row[-3], row[-2], row[-1]) for row in rows]
        return _ranges(rows, self.quantity)


def forecast_read(
    quantity: int, source: Account, batch_codes: Sequence[str] | None = None, *, load: bool = False
) -> ForecastRead:
    """PostgreSQL: ``forecast``'s read, not yet sent. (Without ``load``, what the session has
    pending is flushed first, as the ORM's own query would.)"""
    if not load and db.session.autoflush:
        db.session.flush()
    named = batch_codes is not None
    sql, own = _forecast_loading(named) if load else for_driver(_FORECAST_OF_PG if named else _FORECAST)
    return ForecastRead(sql, own | _params(quantity, source, batch_codes), quantity, load)


def _params(quantity: int, source: Account, batch_codes) -> dict:
    params = {"account": source.id, "most": quantity}
    if batch_codes is not None:
        params["codes"] = list(dict.fromkeys(batch_codes))
    return params


def _ranges(rows, quantity: int) -> list[MovedRange]:
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
        .order_by(*ORDER, blocks.c.serial_start)
        .limit(bindparam("most"))
    )
    if named:
        query = query.where(Batch.__table__.c.code == any_(bindparam("codes", type_=ARRAY(String))))
    return for_driver(query)
