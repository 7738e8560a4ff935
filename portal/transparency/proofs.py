"""Reading the log: entries, tree heads, inclusion and consistency proofs, each a few indexed
reads (on PostgreSQL on an autocommit connection of its own: one round trip each, no
transaction). Every refusal is a ``LogError`` with a 4xx status."""

import re
from dataclasses import dataclass
from datetime import UTC

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import DBAPIError

from portal.core.errors import ServiceError
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency.models import LogEntry, LogNode, LogState, TreeHead

#: The most entries or tree heads one answer holds.
PAGE_LIMIT = 1000
_LARGEST = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


class LogError(ServiceError):
    """A request about the log that cannot be answered: nothing was changed."""


def parse_size(value, field: str, *, required: bool = True, minimum: int = 0) -> int | None:
    """A whole number from a query parameter (plain ASCII digits, nothing else), at least
    ``minimum``; None when absent and not required."""
    if value is None or value == "":
        if required:
            raise LogError(
                "missing_parameter", _("The parameter %(field)s is required.", field=field), field=field
            )
        return None
    if not isinstance(value, str) or not _DIGITS.fullmatch(value) or int(value) > _LARGEST:
        raise LogError(
            "invalid_parameter",
            _(
                "The parameter %(field)s must be a whole number of at least %(minimum)s.",
                field=field,
                minimum=minimum,
            ),
            field=field,
        )
    number = int(value)
    if number < minimum:
        raise LogError(
            "invalid_parameter",
            _(
                "The parameter %(field)s must be a whole number of at least %(minimum)s.",
                field=field,
                minimum=minimum,
            ),
            field=field,
        )
    return number


def _reader():
    """PostgreSQL: an engine of the worker's own for the log's public reads, in autocommit: a
    proof is one round trip per query (no BEGIN, no ping, no reset). What it reads never
    changes once written, so no transaction is needed to read it consistently."""
    engine = current_app.extensions.get("transparency.reader")
    if engine is None:
        engine = create_engine(
            db.engine.url,
            isolation_level="AUTOCOMMIT",
            pool_size=2,
            max_overflow=8,
            pool_recycle=300,
            pool_reset_on_return=None,
        )
        current_app.extensions["transparency.reader"] = engine

        @event.listens_for(db.engine, "engine_disposed")
        def _dispose_with_the_main_engine(_engine, extensions=current_app.extensions):
            extensions.pop("transparency.reader", None)
            engine.dispose()

    return engine


def _rows(query):
    if db.engine.dialect.name != "postgresql":
        return db.session.execute(query).all()
    for attempt in (1, 2):
        try:
            with _reader().connect() as connection:
                return connection.execute(query).all()
        except DBAPIError as exc:
            # A connection the server dropped while it was idle: the pool has discarded it.
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def tree_size() -> int:
    rows = _rows(select(LogState.tree_size).where(LogState.id == 1))
    return rows[0].tree_size if rows else 0


def _beyond(size: int):
    return LogError(
        "beyond_tree",
        _("The log has fewer than %(size)s entries.", size=size),
        field="tree_size",
    )


_NODES = text("SELECT leaf_index, hashes FROM log_nodes WHERE leaf_index = ANY(CAST(:rows AS bigint[]))")


def node_hashes(nodes: set[merkle.Node], size: int) -> dict[merkle.Node, bytes]:
    """The hashes of ``nodes`` (perfect subtrees), read in one query; LogError if one lies
    beyond the tree (``size`` is the size asked about)."""
    if not nodes:
        return {}
    wanted = sorted({merkle.row_of(node) for node in nodes})
    if db.engine.dialect.name == "postgresql":
        query = _NODES.bindparams(rows=wanted)  # one prepared statement, whatever the count
    else:
        query = select(LogNode.leaf_index, LogNode.hashes).where(LogNode.leaf_index.in_(wanted))
    rows = {r.leaf_index: r.hashes for r in _rows(query)}
    found = {}
    for node in nodes:
        level = node[0]
        hashes = rows.get(merkle.row_of(node))
        if hashes is None or len(hashes) < (level + 1) * merkle.HASH_SIZE:
            raise _beyond(size)
        found[node] = bytes(hashes[level * merkle.HASH_SIZE : (level + 1) * merkle.HASH_SIZE])
    return found


def _prove(ranges, size) -> list[bytes]:
    hashes = node_hashes(merkle.nodes_for(ranges), size)
    return merkle.proof(ranges, hashes.__getitem__)


def consistency(first: int, second: int) -> list[bytes]:
    """RFC 9162's consistency proof between the trees of ``first`` and ``second`` leaves."""
    if first < 1:
        raise LogError("invalid_parameter", _("The first tree size must be at least 1."), field="first")
    if first > second:
        raise LogError(
            "invalid_range", _("The first tree size may not be larger than the second."), field="first"
        )
    if first == second:
        if second > tree_size():
            raise _beyond(second)
        return []
    return _prove(merkle.consistency_ranges(first, second), second)


def inclusion(leaf_index: int, size: int) -> list[bytes]:
    """RFC 9162's audit path of leaf ``leaf_index`` in the tree of ``size`` leaves."""
    if leaf_index >= size:
        raise LogError(
            "leaf_not_in_tree",
            _("Entry %(index)s is not in a tree of %(size)s entries.", index=leaf_index, size=size),
            field="tree_size",
        )
    return inclusions([leaf_index], size)[0]


def inclusions(leaf_indexes: list[int], size: int) -> list[list[bytes]]:
    """The audit paths of several leaves in the tree of ``size`` leaves, read in one query."""
    plans = [merkle.inclusion_ranges(index, size) for index in leaf_indexes]
    hashes = node_hashes(merkle.nodes_for(r for plan in plans for r in plan), size)
    return [merkle.proof(plan, hashes.__getitem__) for plan in plans]


_EVENTS_AND_NODES = text(
    """
    WITH e AS (
        SELECT leaf_index, kind, certificate_number, leaf_input, logged_at
        FROM log_entries WHERE certificate_number = :number
    )
    SELECT leaf_index, kind, certificate_number, leaf_input, logged_at, NULL::bytea AS hashes FROM e
    UNION ALL
    SELECT n.leaf_index, NULL, NULL, NULL, NULL, n.hashes FROM log_nodes n
    WHERE n.leaf_index < :size AND n.leaf_index = ANY(
        ARRAY(
            SELECT ((((e.leaf_index >> k) # 1) + 1) << k) - 1
            FROM e, generate_series(0, :levels) AS k WHERE e.leaf_index < :size
        ) || CAST(:edge AS bigint[])
    )
    """
)


def certificate_proofs(number: str, size: int) -> tuple[list["Entry"], list[list[bytes]]]:
    """The certificate's events (all of them), and the audit paths of those in the tree of
    ``size`` leaves. On PostgreSQL one query: with the events come every perfect subtree that
    could be a sibling on their paths, and the tree's right edge (a proof needs nothing else)."""
    if db.engine.dialect.name != "postgresql":
        events = entries_of(number)
        covered = [e.leaf_index for e in events if e.leaf_index < size]
        return events, inclusions(covered, size) if covered else []
    edge = [merkle.row_of(node) for node in merkle.frontier_nodes(size)]
    rows = _rows(_EVENTS_AND_NODES.bindparams(number=number, size=size, levels=size.bit_length(), edge=edge))
    events = sorted(
        (Entry(*row[:4], row.logged_at.astimezone(UTC)) for row in rows if row.kind is not None),
        key=lambda e: e.leaf_index,
    )
    stored = {row.leaf_index: row.hashes for row in rows if row.kind is None}
    plans = [merkle.inclusion_ranges(e.leaf_index, size) for e in events if e.leaf_index < size]

    def node(found: merkle.Node) -> bytes:
        level = found[0]
        hashes = stored.get(merkle.row_of(found))
        if hashes is None or len(hashes) < (level + 1) * merkle.HASH_SIZE:
            raise _beyond(size)
        return bytes(hashes[level * merkle.HASH_SIZE : (level + 1) * merkle.HASH_SIZE])

    return events, [merkle.proof(plan, node) for plan in plans]


@dataclass(frozen=True)
class Entry:
    leaf_index: int
    kind: str
    certificate_number: str
    leaf_input: bytes
    logged_at: object


_ENTRY_COLUMNS = (
    LogEntry.leaf_index,
    LogEntry.kind,
    LogEntry.certificate_number,
    LogEntry.leaf_input,
    LogEntry.logged_at,
)


def entries_of(certificate_number: str) -> list[Entry]:
    """The certificate's events in the log, in order."""
    query = (
        select(*_ENTRY_COLUMNS)
        .where(LogEntry.certificate_number == certificate_number)
        .order_by(LogEntry.leaf_index)
    )
    return [Entry(*row) for row in _rows(query)]


def entries(start: int, end: int | None) -> tuple[list[Entry], int]:
    """Leaves ``start`` … ``end − 1`` (at most ``PAGE_LIMIT``, and not past the tree), and the
    tree's size."""
    size = tree_size()
    if end is not None and end <= start:
        raise LogError("invalid_range", _("The end must be larger than the start."), field="end")
    if start >= size:
        raise LogError(
            "beyond_tree",
            _("The log has %(size)s entries: the start must be smaller.", size=size),
            field="start",
        )
    stop = min(size, start + PAGE_LIMIT, end if end is not None else size)
    query = (
        select(*_ENTRY_COLUMNS)
        .where(LogEntry.leaf_index >= start, LogEntry.leaf_index < stop)
        .order_by(LogEntry.leaf_index)
    )
    return [Entry(*row) for row in _rows(query)], size


def heads_after(after: int | None) -> list[TreeHead]:
    query = select(TreeHead).order_by(TreeHead.tree_size).limit(PAGE_LIMIT)
    if after is not None:
        query = query.where(TreeHead.tree_size > after)
    return list(db.session.scalars(query))
