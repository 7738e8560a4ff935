"""Writing a retirement's certificates with what goes with them: their blocks, registry
instructions and audit events.

The rows are made by the modules whose rules they are (``issuing`` the certificates and blocks,
``registry.instructions.instruction_rows``, ``audit.row``); this module only writes them. On
PostgreSQL all of them go in **one statement** (data-modifying ``WITH`` clauses, each table's
rows passed as one JSON array and read in their order, the blocks and instructions joined to the
certificates they belong to by number): one round trip instead of four, and no unit of work (a
JSON parameter per table costs the worker about a third of what an array per column did).
SQLite, which has no data-modifying ``WITH``, gets the same rows in one statement per table.
Either way the certificates are then put in the session as loaded (``core.database.attached``).
"""

import functools
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql

from portal.audit.models import AuditEvent
from portal.certificates.models import Certificate, CertificateBlock, CertificateStatus
from portal.core.database import attached, is_postgresql, plain_columns
from portal.core.driver import session_rows
from portal.extensions import db
from portal.registry.models import RegistryInstruction

#: What a new certificate's row holds besides what the issuer gives.
_FRESH = {"status": CertificateStatus.VALID, "revoked_at": None, "revoked_reason": None, "revoked_by": None}


@dataclass(frozen=True)
class Rows:
    """A retirement's rows, ready to write (``rows``): on PostgreSQL with the statement's
    parameters already encoded, so that writing them is one round trip and little else (a
    retirement makes them before it locks its batch, and writes them while holding it)."""

    certificates: list[dict]
    blocks: list[dict]
    instructions: list[dict]
    events: list[dict]
    #: PostgreSQL: ``(statement, parameters)`` of the one statement.
    at_once: tuple[str, dict] | None


def rows(
    certificates: list[dict],
    blocks: list[dict],
    instructions: list[dict],
    events: list[dict],
    *,
    after: tuple[str, int, int, int] | None = None,
) -> Rows:
    """The ``certificates`` (rows by column, without id), their ``blocks`` and registry
    ``instructions`` (rows naming their certificate by ``certificate_number`` instead of its
    id) and the audit ``events``, made ready to ``write`` (nothing is read or written).

    ``after`` (PostgreSQL): ``(movement id, batch id, first serial, last serial)`` of the one
    range a movement not yet made is expected to take. The statement then writes nothing
    unless the transaction's journal holds exactly that entry of that movement, so that it can
    be sent with the movement's own statement (``ledger.retire``'s ``along``) before anyone
    knows whether the movement took what was expected."""
    certificates = [{**_FRESH, **c} for c in certificates]
    at_once = None
    if is_postgresql():
        params = {
            name: json.dumps(given, ensure_ascii=False, separators=(",", ":"), default=_json)
            for name, given in (("c", certificates), ("b", blocks), ("i", instructions), ("a", events))
        }
        if after is not None:
            params["m"], params["mb"], params["ms"], params["me"] = after
        # The columns the rows give (every row of a table gives the same), in their order.
        statement = _statement(
            tuple(certificates[0]), tuple(instructions[0]), tuple(events[0]), after is not None
        )
        at_once = statement, params
    return Rows(certificates, blocks, instructions, events, at_once)


def write(given: Rows, written: list[tuple] | None = None) -> tuple[list[Certificate], dict[str, list[int]]]:
    """Write ``given`` in the caller's transaction, in its order; return the certificates, in
    the session, and the ids given to each one's instructions (by number, in the instructions'
    order). ``written``: the rows of ``given.at_once`` already sent (with a movement), which
    wrote them; then nothing is sent."""
    if written:
        ids, instruction_ids = _ids(written)
    elif given.at_once is not None:
        ids, instruction_ids = _write_at_once(*given.at_once)
    else:
        ids, instruction_ids = _write_table_by_table(
            given.certificates, given.blocks, given.instructions, given.events
        )
    written = []
    for row in given.certificates:
        row["id"] = ids[row["number"]]
        written.append(attached(Certificate, {key: row[name] for key, name in _COLUMNS}))
    return written, instruction_ids


_COLUMNS = plain_columns(Certificate)


def _write_at_once(statement: str, params: dict):
    if db.session.new:
        db.session.flush()  # what the statement refers to may be pending (a newly published key)
    written = session_rows(statement, params)
    if not written:  # an ``after`` that does not hold: the caller compared the ranges first
        raise RuntimeError("the certificates' movement is not the one they were made for")
    return _ids(written)


def _ids(written: list[tuple]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """The certificates' ids and their instructions' ids, by number, from the statement's rows."""
    return {number: id_ for id_, number, _ in written}, {number: list(given) for _, number, given in written}


def _json(value):
    if isinstance(value, datetime):
        return value.isoformat()  # aware: the offset is kept
    raise TypeError(f"{type(value).__name__} in a certificate's rows")


#: A block's row names its certificate by number, which ``certificate_blocks`` does not keep.
_BLOCK = {"certificate_number": Certificate.__table__.c.number.type} | {
    c.name: c.type for c in CertificateBlock.__table__.columns if c.name not in ("id", "certificate_id")
}


#: The condition of a statement made with ``after``: the movement's one journal entry is there.
_AFTER = (
    " WHERE EXISTS (SELECT FROM ledger_entries e WHERE e.movement_id = %(m)s AND e.batch_id = %(mb)s"
    " AND e.serial_start = %(ms)s AND e.serial_end = %(me)s)"
    " AND (SELECT count(*) FROM ledger_entries e WHERE e.movement_id = %(m)s) = 1"
)


@functools.cache
def _statement(c: tuple[str, ...], i: tuple[str, ...], a: tuple[str, ...], after: bool = False) -> str:
    """The one statement, for rows giving the columns ``c`` (certificates), ``i`` (registry
    instructions, ``certificate_number`` among them) and ``a`` (audit events); built once. Each
    table's rows are a JSON array read as rows of the table's own type
    (``json_populate_recordset``), in their order. ``after``: the certificates and audit events
    are written only on ``_AFTER``'s condition (blocks and instructions follow their
    certificates)."""
    condition = _AFTER if after else ""

    def given(name, table):
        return f"json_populate_recordset(NULL::{table}, %({name})s::json) WITH ORDINALITY AS {name}"

    def listed(name, columns):
        return ", ".join(f"{name}.{c}" for c in columns)

    typed = ", ".join(f"{c} {t.compile(dialect=postgresql.dialect())}" for c, t in _BLOCK.items())
    blocks = (
        f"ROWS FROM (json_to_recordset(%(b)s::json) AS ({typed}))"
        f" WITH ORDINALITY AS b({', '.join(_BLOCK)}, ordinality)"
    )
    block_columns = [c for c in _BLOCK if c != "certificate_number"]
    return (
        f"WITH written AS (INSERT INTO certificates ({', '.join(c)})"
        f" SELECT {listed('c', c)} FROM {given('c', 'certificates')}{condition} ORDER BY c.ordinality"
        " RETURNING id, number),"
        f" blocks AS (INSERT INTO certificate_blocks (certificate_id, {', '.join(block_columns)})"
        f" SELECT written.id, {listed('b', block_columns)} FROM {blocks}"
        " JOIN written ON written.number = b.certificate_number ORDER BY b.ordinality),"
        f" instructions AS (INSERT INTO registry_instructions (certificate_id, {', '.join(i)})"
        f" SELECT written.id, {listed('i', i)} FROM {given('i', 'registry_instructions')}"
        " JOIN written ON written.number = i.certificate_number ORDER BY i.ordinality"
        " RETURNING id, certificate_id),"
        f" events AS (INSERT INTO audit_events ({', '.join(a)})"
        f" SELECT {listed('a', a)} FROM {given('a', 'audit_events')}{condition} ORDER BY a.ordinality)"
        " SELECT id, number, ARRAY(SELECT instructions.id FROM instructions"
        " WHERE instructions.certificate_id = written.id ORDER BY instructions.id) FROM written"
    )


def _write_table_by_table(certificates, blocks, instructions, events):
    returning_id = insert(Certificate.__table__).returning(Certificate.__table__.c.id)
    ids = {row["number"]: db.session.execute(returning_id, row).scalar_one() for row in certificates}
    if blocks:
        table = CertificateBlock.__table__
        db.session.execute(insert(table), [_of_certificate(row, ids, table) for row in blocks])
    instruction_ids = {number: [] for number in ids}
    if instructions:
        table = RegistryInstruction.__table__
        given = db.session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [_of_certificate(row, ids, table) for row in instructions],
        )
        for row, id_ in zip(instructions, given, strict=True):
            instruction_ids[row["certificate_number"]].append(id_)
    if events:
        db.session.execute(insert(AuditEvent.__table__), events)
    return ids, instruction_ids


def _of_certificate(row: dict, ids: dict[str, int], table) -> dict:
    """A block's or an instruction's row with its certificate's id (blocks do not keep the
    number)."""
    named = {k: v for k, v in row.items() if k in table.c}
    return named | {"certificate_id": ids[row["certificate_number"]]}
