"""Reading the log: entries, tree heads, inclusion and consistency proofs, each a few indexed
reads (on PostgreSQL on an autocommit connection of its own: one round trip each, no
transaction). Every refusal is a ``LogError`` with a 4xx status."""

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.core.database import autocommit_reader, raw_rows, read_once_more
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
    """PostgreSQL: the worker's autocommit engine for the log's public reads: a proof is one
    round trip per query. What it reads never changes once written, so no transaction is
    needed to read it consistently. Every query is a look-up by primary key or index: each is
    planned once per connection (``generic_plans``)."""
    return autocommit_reader("transparency.reader", generic_plans=True)


def _rows(query):
    if db.engine.dialect.name != "postgresql":
        return db.session.execute(query).all()

    def read():
        with _reader().connect() as connection:
            return connection.execute(query).all()

    return read_once_more(read)  # a connection the server dropped while idle: read again


def _raw_rows(sql: str, params: dict) -> list[tuple]:
    """PostgreSQL: ``sql`` on the reader's pool through the driver's own cursor
    (``core.database.raw_rows``): a proof's one query costs about a quarter of the CPU it costs
    through SQLAlchemy's execution, which was a third of a proof request's."""
    return raw_rows(_reader(), sql, params)


#: Answers that never change, kept per process (``_Answers``): proofs read from a tree that
#: had reached the size asked about (a perfect subtree's hash never changes, and every later
#: event of a certificate lies beyond that size). An inclusion answer holds its leaves (a few
#: kB each): at most a few MB per worker.
ANSWERS_KEPT = 1024


class _Answers:
    """A bounded, least-recently-used map from a proof's question to its answer."""

    def __init__(self, size: int):
        self.size = size
        self.kept: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
            return found

    def put(self, key, value) -> None:
        with self.lock:
            self.kept[key] = value
            self.kept.move_to_end(key)
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)


def _answers() -> _Answers | None:
    """This app's kept answers (each app its own: tests use many databases in one process).
    None on SQLite, where the log is read in the request's own session, which may hold writes
    not yet committed (a test's, a command's): only answers read from committed data are kept."""
    if db.engine.dialect.name != "postgresql":
        return None
    found = current_app.extensions.get("transparency.answers")
    if found is None:
        found = current_app.extensions["transparency.answers"] = _Answers(ANSWERS_KEPT)
    return found


def tree_size() -> int:
    rows = _rows(select(LogState.tree_size).where(LogState.id == 1))
    return rows[0].tree_size if rows else 0


def _beyond(size: int):
    return LogError(
        "beyond_tree",
        _("The log has fewer than %(size)s entries.", size=size),
        field="tree_size",
    )


_NODES = "SELECT leaf_index, hashes FROM log_nodes WHERE leaf_index = ANY(%(rows)s::bigint[])"


def node_hashes(nodes: set[merkle.Node], size: int) -> dict[merkle.Node, bytes]:
    """The hashes of ``nodes`` (perfect subtrees), read in one query; LogError if one lies
    beyond the tree (``size`` is the size asked about)."""
    if not nodes:
        return {}
    wanted = sorted({merkle.row_of(node) for node in nodes})
    if db.engine.dialect.name == "postgresql":
        found_rows = _raw_rows(_NODES, {"rows": wanted})  # one prepared statement, whatever the count
    else:
        found_rows = _rows(select(LogNode.leaf_index, LogNode.hashes).where(LogNode.leaf_index.in_(wanted)))
    rows = dict(found_rows)
    found = {}
    for node in nodes:
        level = node[0]
        hashes = rows.get(merkle.row_of(node))
        if hashes is None or len(hashes) < (level + 1) * merkle.HASH_SIZE:
            raise _beyond(size)
        found[node] = bytes(hashes[level * merkle.HASH_SIZE : (level + 1) * merkle.HASH_SIZE])
    return found


def _prove(ranges, size) -> list[bytes]:
    """The hashes of ``ranges`` of the tree of ``size`` leaves, read in one query at most: on
    PostgreSQL those ending at its right edge come from the edge kept for the size (read with
    the first proof for it, ``_right_edge``)."""
    answers = _answers()
    edge = answers.get(("edge", size)) if answers is not None else None
    wanted = {
        node
        for start, end in ranges
        if edge is None or end != size or start not in edge
        for node in merkle.pieces(start, end)
    }
    if answers is not None and edge is None:
        wanted.update(merkle.frontier_nodes(size))
    hashes = node_hashes(wanted, size)
    if answers is not None and edge is None:
        edge = _keep_right_edge(answers, size, hashes.__getitem__)
    edge = edge or {}
    return [
        edge[start] if end == size and start in edge else merkle.range_hash(start, end, hashes.__getitem__)
        for start, end in ranges
    ]


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
    # Kept once found: the proof reads the hash of leaf ``second`` − 1, so the tree had reached
    # that size, and the proof between two sizes of it never changes.
    answers, key = _answers(), ("consistency", first, second)
    found = answers.get(key) if answers is not None else None
    if found is None:
        found = _prove(merkle.consistency_ranges(first, second), second)
        if answers is not None:
            answers.put(key, found)
    return found


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


_EVENTS_AND_NODES = """
    WITH e AS (
        SELECT leaf_index, kind, certificate_number, leaf_input, logged_at
        FROM log_entries WHERE certificate_number = %(number)s
    )
    SELECT leaf_index, kind, certificate_number, leaf_input, logged_at, NULL::bytea AS hashes FROM e
    UNION ALL
    SELECT n.leaf_index, NULL, NULL, NULL, NULL, n.hashes FROM log_nodes n
    WHERE n.leaf_index < %(size)s AND n.leaf_index = ANY(
        ARRAY(
            SELECT ((((e.leaf_index >> k) # 1) + 1) << k) - 1
            FROM e, generate_series(0, %(levels)s) AS k WHERE e.leaf_index < %(size)s
        ) || %(edge)s::bigint[]
    )
"""


def certificate_proofs(number: str, size: int) -> tuple[list["Entry"], list[list[bytes]]]:
    """The certificate's events (all of them), and the audit paths of those in the tree of
    ``size`` leaves. On PostgreSQL one query: with the events come every perfect subtree that
    could be a sibling on their paths, and the tree's right edge (a proof needs nothing else).

    Kept once found for events in the tree (``_Answers``), as just those events: a path reads
    the hash of leaf ``size`` − 1 (or is that leaf's own), so the tree had reached that size and
    every later event of the certificate (a revocation) lies beyond it."""
    answers, key = _answers(), ("inclusion", number, size)
    found = answers.get(key) if answers is not None else None
    if found is not None:
        return found
    events, paths = _certificate_proofs(number, size)
    if paths and answers is not None:
        answers.put(key, ([e for e in events if e.leaf_index < size], paths))
    return events, paths


#: Perfect subtrees of 2^KEPT_LEVEL leaves or more are kept by each worker once read (a tree of a
#: million leaves has fewer than 8,000 of them, 32 bytes each; their hashes never change): an
#: audit path's query then reads its lower levels only, the few upper ones being shared by many.
KEPT_LEVEL = 8
KEPT_NODES = 100_000


def _kept_nodes() -> dict:
    found = current_app.extensions.get("transparency.kept_nodes")
    if found is None or len(found) > KEPT_NODES:
        found = current_app.extensions["transparency.kept_nodes"] = {}
    return found


def _certificate_proofs(number: str, size: int) -> tuple[list["Entry"], list[list[bytes]]]:
    if db.engine.dialect.name != "postgresql":
        events = entries_of(number)
        covered = [e.leaf_index for e in events if e.leaf_index < size]
        return events, inclusions(covered, size) if covered else []
    # The tree's right edge at this size, kept once read (``_right_edge``): then not read again.
    answers = _answers()  # PostgreSQL: always kept
    edge = answers.get(("edge", size))
    edge_rows = [] if edge is not None else [merkle.row_of(node) for node in merkle.frontier_nodes(size)]
    kept = _kept_nodes()
    levels = min(size.bit_length(), KEPT_LEVEL - 1)
    rows = _raw_rows(_EVENTS_AND_NODES, {"number": number, "size": size, "levels": levels, "edge": edge_rows})
    events = sorted(
        (Entry(*row[:4], row[4].astimezone(UTC)) for row in rows if row[1] is not None),
        key=lambda e: e.leaf_index,
    )
    stored = {row[0]: row[5] for row in rows if row[1] is None}

    def node(found: merkle.Node) -> bytes:
        level = found[0]
        hashes = stored.get(merkle.row_of(found))
        if hashes is None or len(hashes) < (level + 1) * merkle.HASH_SIZE:
            if found in kept:
                return kept[found]
            raise _beyond(size)
        return bytes(hashes[level * merkle.HASH_SIZE : (level + 1) * merkle.HASH_SIZE])

    covered = [e for e in events if e.leaf_index < size]
    if not covered:
        return events, []
    if edge is None:
        edge = _keep_right_edge(answers, size, node)
    plans = []  # per event: its path's ranges, each an edge start or a perfect subtree
    for event in covered:
        plan = []
        for start, end in merkle.inclusion_ranges(event.leaf_index, size):
            if end == size and start in edge:
                plan.append(start)
            else:  # a perfect subtree: its hash is kept as it is
                level = (end - start).bit_length() - 1
                plan.append((level, start >> level))
        plans.append(plan)
    upper = {part for plan in plans for part in plan if isinstance(part, tuple) and part[0] >= KEPT_LEVEL}
    missing = {part for part in upper if part not in kept}
    if missing:  # read once per worker (``node_hashes`` refuses one beyond the tree)
        kept.update(node_hashes(missing, size))
    return events, [[edge[p] if isinstance(p, int) else node(p) for p in plan] for plan in plans]


def _keep_right_edge(answers: "_Answers", size: int, node) -> dict[int, bytes]:
    """``_right_edge``, kept for the size (it never changes once the tree reached it)."""
    edge = _right_edge(size, node)
    answers.put(("edge", size), edge)
    return edge


def _right_edge(size: int, node) -> dict[int, bytes]:
    """MTH(D[start:size]) for every ``start`` where the tree's frontier pieces begin: the only
    ranges of an audit path that are not perfect subtrees (they end at the tree's right edge and
    begin where RFC 9162's recursion splits it, at a piece's start)."""
    pieces = merkle.frontier_nodes(size)
    found, value = {}, None
    for level, position in reversed(pieces):
        piece = node((level, position))
        value = piece if value is None else merkle.node_hash(piece, value)
        found[position << level] = value
    return found


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
