"""Writing a retirement's certificates with what goes with them: their blocks, registry
instructions and audit events.

The rows are made by the modules whose rules they are (``issuing`` the certificates and blocks,
``registry.instructions.instruction_rows``, ``audit.row``); this module only writes them. On
PostgreSQL all of them go in **one statement** (data-modifying ``WITH`` clauses, each table's
rows passed as arrays and unnested in their order, the blocks and instructions joined to the
certificates they belong to by number): one round trip instead of four, and no unit of work.
SQLite, which has no data-modifying ``WITH``, gets the same rows in one statement per table.
Either way the certificates are then put in the session as loaded (``core.database.attached``).
"""

import functools
from enum import Enum

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql

from portal.audit.models import AuditEvent
from portal.certificates.models import Certificate, CertificateBlock, CertificateStatus
from portal.core.database import attached, is_postgresql, plain_columns
from portal.extensions import db
from portal.registry.models import RegistryInstruction

#: What a new certificate's row holds besides what the issuer gives.
_FRESH = {"status": CertificateStatus.VALID, "revoked_at": None, "revoked_reason": None, "revoked_by": None}


def write(
    certificates: list[dict], blocks: list[dict], instructions: list[dict], events: list[dict]
) -> list[Certificate]:
    """Write the ``certificates`` (rows by column, without id), their ``blocks`` and registry
    ``instructions`` (rows naming their certificate by ``certificate_number`` instead of its
    id) and the audit ``events``, in the caller's transaction, in the given order; return the
    certificates, in the session."""
    rows = [{**_FRESH, **c} for c in certificates]
    if is_postgresql():
        ids = _write_at_once(rows, blocks, instructions, events)
    else:
        ids = _write_table_by_table(rows, blocks, instructions, events)
    return [
        attached(Certificate, {key: {**row, "id": ids[row["number"]]}[name] for key, name in _COLUMNS})
        for row in rows
    ]


_COLUMNS = plain_columns(Certificate)


def _write_at_once(certificates, blocks, instructions, events) -> dict[str, int]:
    if db.session.new:
        db.session.flush()  # what the statement refers to may be pending (a newly published key)
    params = {}
    for name, rows in (("c", certificates), ("b", blocks), ("i", instructions), ("a", events)):
        for column in _SHAPES[name][1]:
            params[f"{name}_{column}"] = [_plain(row[column]) for row in rows]
    result = db.session.connection().exec_driver_sql(_statement(), params)
    return {number: id_ for id_, number in result}


def _plain(value):
    return value.value if isinstance(value, Enum) else value


#: Each table's rows: the table, the columns given, and (for rows of a certificate) the column
#: naming the certificate's number.
_SHAPES = {
    "c": (
        Certificate.__table__,
        tuple(c.name for c in Certificate.__table__.columns if c.name != "id"),
        None,
    ),
    "b": (
        CertificateBlock.__table__,
        ("certificate_number", "batch_id", "serial_start", "serial_end"),
        "certificate_number",
    ),
    "i": (
        RegistryInstruction.__table__,
        (
            "certificate_number",
            "batch_id",
            "registry",
            "kind",
            "beneficiary",
            "purpose",
            "compliance_year",
            "quantity",
            "ranges",
            "status",
            "created_at",
        ),
        "certificate_number",
    ),
    "a": (
        AuditEvent.__table__,
        ("at", "actor", "action", "subject_type", "subject_id", "before", "after"),
        None,
    ),
}


@functools.cache
def _statement() -> str:
    """The one statement (built once from the tables' columns and types)."""

    def unnested(name):
        table, columns, _number = _SHAPES[name]
        types = {c.name: c.type for c in table.columns}
        types["certificate_number"] = Certificate.__table__.c.number.type
        arrays = ", ".join(
            f"%({name}_{c})s::{types[c].compile(dialect=postgresql.dialect())}[]" for c in columns
        )
        return f"unnest({arrays}) WITH ORDINALITY AS {name}({', '.join(columns)}, n)"

    def inserted(name, into, values):
        table, columns, number = _SHAPES[name]
        join = f" JOIN c ON c.number = {name}.{number}" if number else ""
        return (
            f"INSERT INTO {table.name} ({', '.join(into)})"
            f" SELECT {', '.join(values)} FROM {unnested(name)}{join} ORDER BY {name}.n"
        )

    def own(name, skip=()):
        columns = [c for c in _SHAPES[name][1] if c not in skip]
        return columns, [f"{name}.{c}" for c in columns]

    c_into, c_values = own("c")
    b_into, b_values = own("b", skip=("certificate_number",))
    i_into, i_values = own("i")
    a_into, a_values = own("a")
    return (
        f"WITH c AS ({inserted('c', c_into, c_values)} RETURNING id, number),"
        f" b AS ({inserted('b', ['certificate_id', *b_into], ['c.id', *b_values])}),"
        f" i AS ({inserted('i', ['certificate_id', *i_into], ['c.id', *i_values])}),"
        f" a AS ({inserted('a', a_into, a_values)})"
        " SELECT id, number FROM c"
    )


def _write_table_by_table(certificates, blocks, instructions, events) -> dict[str, int]:
    returning_id = insert(Certificate.__table__).returning(Certificate.__table__.c.id)
    ids = {row["number"]: db.session.execute(returning_id, row).scalar_one() for row in certificates}
    for table, rows in ((CertificateBlock.__table__, blocks), (RegistryInstruction.__table__, instructions)):
        if rows:
            db.session.execute(insert(table), [_of_certificate(row, ids, table) for row in rows])
    if events:
        db.session.execute(insert(AuditEvent.__table__), events)
    return ids


def _of_certificate(row: dict, ids: dict[str, int], table) -> dict:
    """A block's or an instruction's row with its certificate's id (blocks do not keep the
    number)."""
    named = {k: v for k, v in row.items() if k in table.c}
    return named | {"certificate_id": ids[row["certificate_number"]]}
