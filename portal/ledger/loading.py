"""A batch as the ORM loads it, from columns a statement selected through the driver.

``Batch.project`` and ``Project.region`` are joined loads: wherever a batch is shown (a
certificate's payload, its registry instructions, an order's line) its project and region come
with it. A statement sent through the driver (``core.driver.session_rows``) can select the
three rows (``query()``, to which it adds its own conditions); ``attach`` puts them in the
session as loaded (``core.database.attached``) and keeps them for the transaction (``loaded``:
the session's identity map holds objects weakly), so that nothing reads them again in the
transaction. The project's descriptions and boundary (a forest's boundary can be megabytes) are
left out, as everywhere a batch is loaded for what it says rather than for its project's page:
they load if asked for.
"""

import functools

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from portal.core.database import attached, plain_columns, transaction_cache
from portal.ledger.models import Batch

_LOADED = "ledger.loaded_batches"
_UNSHOWN = frozenset({"boundary_geojson", "description_zh", "description_en"})


@functools.cache
def shapes() -> tuple:
    """``(model, its (attribute, column) pairs)`` of the batch, its project and its region, in
    the order ``query()`` selects them (built at the first call: every model mapped)."""
    project = Batch.project.property.mapper.class_
    region = project.region.property.mapper.class_
    return (
        (Batch, plain_columns(Batch)),
        (project, tuple(c for c in plain_columns(project) if c[1] not in _UNSHOWN)),
        (region, plain_columns(region)),
    )


def query():
    """The batch's, its project's and its region's columns (``shapes``), from the batches
    joined with both: the caller adds which batches (the tables are SQLAlchemy's)."""
    (batch, batch_pairs), (project, project_pairs), (region, region_pairs) = shapes()
    selected = [
        model.__table__.c[name]
        for model, pairs in ((batch, batch_pairs), (project, project_pairs), (region, region_pairs))
        for _key, name in pairs
    ]
    tables = batch.__table__.join(project.__table__).join(region.__table__)
    return select(*selected).select_from(tables)


def attach(row) -> Batch:
    """The batch of a row of ``query()``, in the session with its project and region as
    loaded."""
    loaded, start = [], 0
    for model, pairs in shapes():
        loaded.append(attached(model, {key: row[start + n] for n, (key, _name) in enumerate(pairs)}))
        start += len(pairs)
    batch, project, region = loaded
    set_committed_value(project, "region", region)
    set_committed_value(batch, "project", project)
    transaction_cache(_LOADED)[batch.id] = batch
    return batch


def loaded(batch_id: int) -> Batch | None:
    """The batch ``batch_id`` as ``attach`` put it in the session in this transaction, if it
    did."""
    return transaction_cache(_LOADED).get(batch_id)
