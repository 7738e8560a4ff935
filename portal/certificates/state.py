"""A certificate as its public page and JSON show it, read in one round trip, and the validator
(ETag) of what they show.

What a certificate says (number, quantities, serials, the buyer's name as issued, the signature)
never changes after issue. What can change: its revocation (``status``, ``revoked_at``, the
reason), its registry instructions' decisions (status, reference, date) and its entries in the
transparency log (appended with an issuance, a revocation, a registry confirmation, or by a
back-fill). ``read`` fetches the certificate's row with those in one statement (outer joins:
one row per instruction and log entry, a few at most); ``CertificateState.version`` is exactly
the changeable part, so a page or JSON cached under it, or a client's copy validated by the
ETag made from it, is never stale.

The read can bring one of the certificate's renditions too (``certificates.renditions``: its
page in a language, or its JSON, as last drawn), so that an answer whose rendition is current
costs this one statement and no drawing.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

from sqlalchemy import bindparam, select
from sqlalchemy.orm import configure_mappers

from portal.certificates import numbers
from portal.certificates.lookup import Verification, count_failure, verify
from portal.certificates.models import Certificate, Rendition
from portal.core.database import autocommit_reader, raw_rows, transaction_cache
from portal.extensions import db
from portal.registry.models import RegistryInstruction
from portal.transparency.models import LogEntry


@dataclass(frozen=True)
class InstructionRow:
    """What a certificate's page shows of one of its registry instructions."""

    id: int
    status: str
    registry_reference: str | None
    registry_date: date | None


@dataclass(frozen=True)
class LogRow:
    """One of the certificate's entries in the transparency log."""

    leaf_index: int
    kind: str
    logged_at: datetime


@dataclass(frozen=True)
class Kept:
    """A rendition as stored: what it was drawn from (``stamp``) and its bytes as served."""

    stamp: str
    body: bytes


@dataclass(frozen=True)
class CertificateState:
    certificate: Certificate  #: not in any session
    instructions: tuple[InstructionRow, ...]  #: in id order
    log_entries: tuple[LogRow, ...]  #: in leaf order
    kept: Kept | None = None  #: the rendition asked for, if one is stored (current or not)

    @property
    def version(self) -> tuple:
        """Everything about the certificate that can change after issue."""
        c = self.certificate
        return (
            c.id,
            c.number,
            c.status,
            c.revoked_at.isoformat() if c.revoked_at else None,
            c.revoked_reason,
            tuple((r.id, r.status, r.registry_reference, str(r.registry_date)) for r in self.instructions),
            tuple(e.leaf_index for e in self.log_entries),
        )

    def etag(self, *context) -> str:
        """A strong validator of a rendering of this state in ``context`` (the language, the
        template set …): equal exactly when the rendering is."""
        text = repr((self.version, context)).encode()
        return hashlib.sha256(text).hexdigest()[:32]

    @cached_property
    def check(self) -> Verification:
        return verify(self.certificate)


_C = Certificate.__table__
_I = RegistryInstruction.__table__
_L = LogEntry.__table__
_R = Rendition.__table__
_COLUMNS = tuple(column.key for column in _C.columns)
#: What an answer kept drawn is checked with: the certificate's changeable state (``version``)
#: and what it was signed with (``renditions.stamp``). A read for a kept answer brings only
#: these; the rest never changes after issue and is read only to draw the answer again
#: (``complete``).
_KEPT_COLUMNS = (
    "id",
    "number",
    "status",
    "revoked_at",
    "revoked_reason",
    "revoked_by",
    "payload",
    "signature",
    "key_id",
)
_REST_COLUMNS = tuple(column for column in _COLUMNS if column not in _KEPT_COLUMNS)


def _query(columns: tuple[str, ...]):
    """The read, with the certificate's ``columns``: then the instruction's, the log entry's
    and the rendition's."""
    return select(
        *(_C.c[column] for column in columns),
        _I.c.id.label("i_id"),
        _I.c.status.label("i_status"),
        _I.c.registry_reference.label("i_reference"),
        _I.c.registry_date.label("i_date"),
        _L.c.leaf_index.label("l_index"),
        _L.c.kind.label("l_kind"),
        _L.c.logged_at.label("l_at"),
        _R.c.stamp.label("r_stamp"),
        _R.c.body.label("r_body"),
    ).select_from(
        _C.outerjoin(_I, _I.c.certificate_id == _C.c.id)
        .outerjoin(_L, _L.c.certificate_number == _C.c.number)
        .outerjoin(_R, (_R.c.certificate_id == _C.c.id) & (_R.c.kind == bindparam("kind")))
    )


def _raw_query(columns: tuple[str, ...]) -> str:
    """``_query`` on PostgreSQL as the driver's own SQL (``core.database.raw_rows``), the columns
    in the same order. Neither sorts: ``read`` orders the few rows itself, and a sort on the
    server (of rows that carry the rendition's body) cost more than the joins."""
    return (
        "SELECT "
        + ", ".join(f"c.{_C.c[column].name}" for column in columns)
        + ", i.id, i.status, i.registry_reference, i.registry_date, l.leaf_index, l.kind, l.logged_at"
        ", r.stamp, r.body"
        " FROM certificates c"
        " LEFT OUTER JOIN registry_instructions i ON i.certificate_id = c.id"
        " LEFT OUTER JOIN log_entries l ON l.certificate_number = c.number"
        " LEFT OUTER JOIN certificate_renditions r ON r.certificate_id = c.id AND r.kind = %(kind)s"
        " WHERE c.number = %(number)s"
    )


_QUERY, _KEPT_QUERY = _query(_COLUMNS), _query(_KEPT_COLUMNS)
_RAW_QUERY, _RAW_KEPT_QUERY = _raw_query(_COLUMNS), _raw_query(_KEPT_COLUMNS)
_RAW_REST = (
    "SELECT "
    + ", ".join(_C.c[column].name for column in _REST_COLUMNS)
    + " FROM certificates WHERE id = %(id)s"
)
_REST = select(*(_C.c[column] for column in _REST_COLUMNS)).where(_C.c.id == bindparam("id"))


def _rows(number: str, kind: str) -> list[tuple]:
    """The rows of the certificate numbered ``number`` (one statement, one snapshot, no
    transaction needed): on PostgreSQL one round trip on the certificates' autocommit reader,
    else in the session. With a rendition ``kind``, only the certificate's ``_KEPT_COLUMNS``."""
    if db.engine.dialect.name == "postgresql":
        return raw_rows(reader(), _RAW_KEPT_QUERY if kind else _RAW_QUERY, {"number": number, "kind": kind})
    query = _KEPT_QUERY if kind else _QUERY
    return [tuple(row) for row in db.session.execute(query.where(_C.c.number == number), {"kind": kind})]


def reader():
    """Every query on it is a look-up by a unique key: each is planned once per connection."""
    return autocommit_reader("certificates.reader", generic_plans=True)


def read(number: str, kind: str = "") -> CertificateState | None:
    """The certificate numbered exactly ``number`` with its changeable state and its rendition
    ``kind`` if one is stored, in one statement; None if there is no such certificate. The rows
    come in no order (one per instruction and log entry, each with the certificate's columns):
    instructions are put in id order and entries in leaf order here."""
    rows = _rows(number, kind)
    if not rows:
        return None
    columns = _KEPT_COLUMNS if kind else _COLUMNS
    width = len(columns)
    certificate = _detached(dict(zip(columns, rows[0][:width], strict=True)))
    stamp, body = rows[0][-2:]
    instructions, entries = {}, {}
    for row in rows:
        i_id, i_status, i_reference, i_date, l_index, l_kind, l_at = row[width:-2]
        if i_id is not None:
            instructions[i_id] = InstructionRow(i_id, i_status, i_reference, i_date)
        if l_index is not None:
            entries[l_index] = LogRow(l_index, l_kind, l_at)
    return CertificateState(
        certificate,
        tuple(instructions[k] for k in sorted(instructions)),
        tuple(entries[k] for k in sorted(entries)),
        Kept(stamp, bytes(body)) if stamp is not None else None,
    )


@dataclass(frozen=True)
class Issued:
    """A certificate as the transaction that issued it wrote it: its columns, its registry
    instructions' rows (with the ids they were given) and its issuance's leaf in the
    transparency log (numbered when the transaction commits)."""

    values: dict
    instructions: tuple[InstructionRow, ...]
    leaf: object  #: ``transparency.PendingLeaf``

    def state(self) -> CertificateState | None:
        """Once the transaction has committed: the certificate's state as ``read`` would find
        it then, without reading it (None if the leaf was not numbered: read it instead)."""
        leaf = self.leaf
        if leaf.leaf_index is None:
            return None
        certificate = _detached(dict(self.values))
        state = CertificateState(
            certificate, self.instructions, (LogRow(leaf.leaf_index, leaf.kind, leaf.logged_at),)
        )
        # Its payload was signed in this transaction, by the portal's current (published) key:
        # the signature is not verified again (about a twentieth of an API retirement's CPU).
        # A read of the certificate verifies it, as every later answer does.
        state.__dict__["check"] = Verification(certificate, json.loads(certificate.payload), True)
        return state


_ISSUED = "certificates.issued"


def keep_issued(certificate: Certificate, instructions: list[dict], instruction_ids: list[int], leaf) -> None:
    """Remember, for this transaction, what issuing ``certificate`` wrote (``instructions``:
    its instructions' rows as written, ``instruction_ids`` the ids they were given, in order),
    so that the answer to the retirement need not read it back (``issued``)."""
    rows = tuple(
        InstructionRow(id_, str(row["status"]), row.get("registry_reference"), row.get("registry_date"))
        for id_, row in zip(instruction_ids, instructions, strict=True)
    )
    values = {column: certificate.__dict__[column] for column in _COLUMNS}
    transaction_cache(_ISSUED)[certificate.number] = Issued(values, rows, leaf)


def issued(number: str) -> Issued | None:
    """What this transaction wrote of the certificate ``number`` it issued, if it did: taken
    before the commit, its ``state()`` after it."""
    return transaction_cache(_ISSUED).get(number)


def complete(certificate: Certificate) -> Certificate:
    """``certificate`` with every column, read with only ``_KEPT_COLUMNS`` for a kept answer
    that turned out stale: the rest, which never changes after issue, read by id (one more
    statement, only when an answer is drawn). It is then the certificate as the first read saw
    it."""
    if certificate.__dict__.keys() >= set(_REST_COLUMNS):
        return certificate
    if db.engine.dialect.name == "postgresql":
        (row,) = raw_rows(reader(), _RAW_REST, {"id": certificate.id})
    else:
        row = db.session.execute(_REST, {"id": certificate.id}).one()
    certificate.__dict__.update(zip(_REST_COLUMNS, row, strict=True))
    return certificate


def _detached(values: dict) -> Certificate:
    """A certificate made from its row's values, in no session: as the ORM's own loading makes
    one (a new instance, its attributes' values set in its dictionary), without the attribute
    events of ``Certificate(**values)``, which cost more than the read itself."""
    if not _MANAGER.mapper.configured:  # as the ORM's first use of the class would
        configure_mappers()
    certificate = _MANAGER.new_instance()
    certificate.__dict__.update(values)
    return certificate


_MANAGER = Certificate._sa_class_manager


def look_up(number_text, address: str, kind: str = "") -> CertificateState | None:
    """``lookup.look_up``, answering with the whole state (and the rendition ``kind``, see
    ``read``): None if there is no such number (the failure counted against ``address``),
    LookupRefused once the address failed too often."""
    number = numbers.normalise(number_text)
    found = read(number, kind) if number is not None else None
    if found is None:
        count_failure(address)
    return found
