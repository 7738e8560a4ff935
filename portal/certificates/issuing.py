"""Retiring into signed certificates.

Every retirement goes through ``retire_into_certificate`` (or ``retire_into_certificates``):
the ledger retires the blocks and, in the same transaction, each certificate records exactly the
serial ranges the ledger moved, numbered for the Beijing year and signed with the portal's key,
and the registry instructions for it are written (``portal.registry.instructions``): the
retirement is final only once the official registry has done it. Certificates know nothing of
money.
"""

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import ARRAY, Integer, any_, bindparam, inspect, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.util import identity_key

from portal.audit import services as audit
from portal.certificates import numbers, signing, writing
from portal.certificates import state as certificate_state
from portal.certificates.checks import BENEFICIARY_MAX, DETAIL_MAX, clean_text, parse_purpose
from portal.certificates.models import Certificate, Purpose, Source
from portal.certificates.payload import payload
from portal.core.database import is_postgresql
from portal.core.driver import for_driver, session_rows, session_rows_together
from portal.extensions import db
from portal.ledger import loading
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits
from portal.ledger.models import Account, Batch
from portal.ledger.services import MovedRange
from portal.registry import instructions as registry
from portal.timeutil import BEIJING, utcnow
from portal.transparency import services as transparency
from portal.webhooks import events as webhook_events

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One certificate's share of a retirement."""

    quantity: int
    beneficiary: str
    purpose: str
    purpose_detail: str = ""


def retire_into_certificate(
    source_account: Account,
    organisation,
    quantity,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    batch_codes=None,
    source: Source,
    source_ref: str = "",
    compliance_year: int | None = None,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
    retired_by: tuple[str, str] | None = None,
) -> Certificate:
    """Retire ``quantity`` t from ``source_account`` and sign the certificate for it.

    Used by every flow that retires: the holding, a paid order's hold, a contract delivery.
    ``retired_by`` (name, USCC or "") names who retired when it is not ``organisation`` itself
    (a guest checkout's buyer).
    """
    (certificate,) = retire_into_certificates(
        source_account,
        organisation,
        [Part(quantity, beneficiary, purpose, purpose_detail)],
        batch_codes=batch_codes,
        source=source,
        source_ref=source_ref,
        compliance_year=compliance_year,
        actor=actor,
        idempotency_key=idempotency_key,
        digest=digest,
        retired_by=retired_by,
    )
    return certificate


def retire_into_certificates(
    source_account: Account,
    organisation,
    parts,
    *,
    batch_codes=None,
    source: Source,
    source_ref: str = "",
    compliance_year: int | None = None,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
    retired_by: tuple[str, str] | None = None,
) -> list[Certificate]:
    """One retirement split into several certificates (e.g. one per attendee of an event): a
    single ledger movement, whose serial ranges are dealt to the parts in order.

    On PostgreSQL the certificates are made and signed **before** the ledger locks the batch,
    from the ranges the movement will most likely take (``ledger.forecast``: the source's
    blocks as read now); the movement then takes its locks and chooses its blocks as always,
    and if it took exactly those ranges (it does unless another movement of the same source
    came first), what was made is written; otherwise the certificates are made again from what
    it took. So a contended batch's lock is held for the movement's, the certificates' and the
    log's statements and the commit, not for the making and signing in between."""
    checked = _checked(parts)
    retired_at = utcnow().replace(microsecond=0)
    total = sum(p.quantity for p in checked)
    year = retired_at.astimezone(BEIJING).year
    if is_postgresql():
        numbers_, likely = _numbers_and_forecast(
            year, len(checked), ledger.forecast_read(total, source_account, batch_codes, load=True)
        )
    else:
        numbers_, likely = _unused_numbers(year, len(checked)), None

    def made(movement_id: str, ranges: list[MovedRange], *, guarded: bool = False) -> Made:
        return _make(
            movement_id,
            ranges,
            organisation,
            checked,
            numbers_,
            retired_at,
            source=source,
            source_ref=source_ref,
            compliance_year=compliance_year,
            actor=actor,
            idempotency_key=idempotency_key,
            digest=digest,
            retired_by=retired_by,
            guarded=guarded,
        )

    early, along = None, None
    if likely is not None and sum(r.quantity for r in likely) == total:
        one_range = len(likely) == 1
        early = made(ledger.new_movement_id(), likely, guarded=one_range)
        if one_range and not db.session.new:
            # Sent with the movement's statement, in its round trip: it writes the certificates
            # only if the movement took the one range they were made from.
            along = early.rows.at_once
    movement = ledger.retire(
        total,
        source=source_account,
        batch_codes=batch_codes,
        reference=_reference(numbers_),
        actor=actor,
        movement_id=early.movement_id if early is not None else None,
        along=along,
    )
    if early is None or early.moved != movement.ranges:
        return _written(made(movement.id, movement.ranges))
    return _written(early, movement.along)


@contextmanager
def retiring(
    source_account: Account,
    organisation,
    quantity,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    source: Source,
    source_ref: str = "",
    actor: str,
    retired_by: tuple[str, str] | None = None,
) -> Iterator[Certificate]:
    """``retire_into_certificate`` with the ledger movement made last: for a source that nobody
    but the caller can change (an order's hold, the order locked).

    The certificate is made, signed and written from the source's blocks as read
    (``ledger.forecast``); the ``with`` block gets it and writes what else goes with it; as the
    block ends, the ledger retires the blocks, refusing (``InvalidMovement``, nothing moved)
    unless they are exactly those the certificate names. A contended batch is so locked only for
    the movement and the commit, not while the certificate is signed and the rest is written.
    An exception in the block retires nothing (the caller's transaction is rolled back).
    """
    (part,) = _checked([Part(quantity, beneficiary, purpose, purpose_detail)])
    retired_at = utcnow().replace(microsecond=0)
    year = retired_at.astimezone(BEIJING).year
    if is_postgresql():
        numbers_, ranges = _numbers_and_forecast(year, 1, ledger.forecast_read(part.quantity, source_account))
    else:
        numbers_, ranges = _unused_numbers(year, 1), ledger.forecast(part.quantity, source_account)
    held = sum(r.quantity for r in ranges)
    if held < part.quantity:
        raise InsufficientCredits(account=str(source_account), available=held, requested=part.quantity)
    movement_id = ledger.new_movement_id()
    (certificate,) = _written(
        _make(
            movement_id,
            ranges,
            organisation,
            [part],
            numbers_,
            retired_at,
            source=source,
            source_ref=source_ref,
            actor=actor,
            retired_by=retired_by,
        )
    )
    yield certificate
    ledger.retire(
        part.quantity,
        source=source_account,
        reference=_reference(numbers_),
        actor=actor,
        expect=ranges,
        movement_id=movement_id,
    )


def _checked(parts) -> list[Part]:
    checked = []
    for part in parts:
        checked.append(
            Part(
                ledger.parse_quantity(part.quantity),
                clean_text(
                    part.beneficiary,
                    field="beneficiary",
                    label=_l("Beneficiary"),
                    max_length=BENEFICIARY_MAX,
                    required=True,
                ),
                parse_purpose(part.purpose),
                clean_text(
                    part.purpose_detail,
                    field="purpose_detail",
                    label=_l("Purpose details"),
                    max_length=DETAIL_MAX,
                    required=False,
                ),
            )
        )
    if not checked:
        raise ValueError("a retirement needs at least one part")
    return checked


def _reference(numbers_: list[str]) -> str:
    return f"certificate:{numbers_[0]}" + (f"+{len(numbers_) - 1}" if len(numbers_) > 1 else "")


@dataclass(frozen=True)
class Made:
    """The certificates of one retirement, made and signed, with everything written with them
    (``_make``), not yet written (``_written``)."""

    movement_id: str
    #: The ledger's ranges they certify, in the movement's order.
    moved: list[MovedRange]
    rows: writing.Rows
    #: Each certificate's transparency log leaf, by number.
    leaves: dict[str, bytes]
    #: What the log says of the retirement (``log.info``).
    summary: tuple


def _make(
    movement_id: str,
    moved: list[MovedRange],
    organisation,
    checked: list[Part],
    numbers_: list[str],
    retired_at,
    *,
    source: Source,
    source_ref: str,
    compliance_year: int | None = None,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
    retired_by: tuple[str, str] | None = None,
    guarded: bool = False,
) -> Made:
    """The certificates of one retirement of ``moved`` (ledger movement ``movement_id``),
    signed, with their blocks, registry instructions and audit events: nothing written yet.
    ``guarded`` (one range, the movement not yet made): their statement writes them only if
    the movement took exactly that range (``writing.rows``' ``after``)."""
    batches = _batches({r.batch_id for r in moved})
    key = signing.signer()
    dealt = _deal(moved, [p.quantity for p in checked])
    rows = []
    for number, part, ranges in zip(numbers_, checked, dealt, strict=True):
        document = payload(
            number,
            organisation,
            ranges,
            batches,
            part.beneficiary,
            part.purpose,
            part.purpose_detail,
            retired_at,
            retired_by=retired_by,
        )
        if part.purpose == Purpose.COMPLIANCE:
            if compliance_year is None:
                raise ValueError(
                    "a compliance retirement needs its compliance year (see compliance.check_room)"
                )
            document["compliance_year"] = compliance_year
        if source == Source.CONTRACT:
            # The kind of source only: which contract, and its terms, are the buyer's business.
            document["source"] = str(Source.CONTRACT)
        text = signing.canonical(document)
        rows.append(
            {
                "number": number,
                "organisation_id": organisation.id,
                "quantity": part.quantity,
                "beneficiary": part.beneficiary,
                "purpose": part.purpose,
                "purpose_detail": part.purpose_detail,
                "compliance_year": compliance_year if part.purpose == Purpose.COMPLIANCE else None,
                "source": source,
                "source_ref": source_ref,
                "movement_id": movement_id,
                "retired_at": retired_at,
                "actor": actor,
                "payload": text,
                "signature": key.sign(text),
                "key_id": key.key_id,
                "idempotency_key": idempotency_key,
                "request_digest": digest,
            }
        )
    blocks, instructions, events = [], [], []
    for row, ranges in zip(rows, dealt, strict=True):
        blocks += [
            {
                "certificate_number": row["number"],
                "batch_id": r.batch_id,
                "serial_start": r.serial_start,
                "serial_end": r.serial_end,
            }
            for r in ranges
        ]
        # What the operator must now do in the official registry, in this same transaction.
        instructions += registry.instruction_rows(row, ranges, batches)
        events.append(
            audit.row(
                actor,
                "certificate.issue",
                "certificate",
                row["number"],
                after={
                    "quantity": row["quantity"],
                    "source": str(source),
                    "source_ref": source_ref,
                    "movement": movement_id,
                },
            )
        )
    leaves = {
        row["number"]: transparency.issuance_leaf(
            row["number"], row["payload"], row["signature"], row["key_id"]
        )
        for row in rows
    }
    summary = (len(rows), _reference(numbers_), sum(r.quantity for r in moved), organisation.uscc, actor)
    after = None
    if guarded:
        (only,) = moved
        after = (movement_id, only.batch_id, only.serial_start, only.serial_end)
    written = writing.rows(rows, blocks, instructions, events, after=after)
    return Made(movement_id, list(moved), written, leaves, summary)


def _written(made: Made, written: list[tuple] | None = None) -> list[Certificate]:
    """Write what ``_make`` made: the certificates with their blocks, registry instructions and
    audit events, their log records and webhook events; the certificates. ``written``: the rows
    of its statement, sent already with the movement (``ledger.retire``'s ``along``)."""
    certificates, instruction_ids = writing.write(made.rows, written)
    instructions_of: dict[str, list[dict]] = {}
    for instruction in made.rows.instructions:
        instructions_of.setdefault(instruction["certificate_number"], []).append(instruction)
    for c in certificates:
        # Appended to the public log as the transaction commits.
        leaf = transparency.record_issuance(c, made.leaves[c.number])
        certificate_state.keep_issued(c, instructions_of.get(c.number, []), instruction_ids[c.number], leaf)
        webhook_events.certificate_issued(c)
    log.info("%s certificate(s) %s: %s t retired for %s by %s", *made.summary)
    return certificates


def _batches(ids: set[int]) -> dict[int, Batch]:
    """The batches ``ids``: those this transaction has loaded already as they are (a
    retirement's ``ledger.forecast`` loads them on PostgreSQL; an order's lines bring theirs),
    the rest in one statement."""
    found = {}
    for batch_id in ids:
        batch = loading.loaded(batch_id) or db.session.identity_map.get(identity_key(Batch, batch_id))
        if batch is not None and not inspect(batch).expired:
            found[batch_id] = batch
    missing = ids - found.keys()
    if missing and is_postgresql():
        found.update(_batches_read(missing))
    elif missing:
        found.update((b.id, b) for b in db.session.scalars(_batches_by_id(), {"ids": list(missing)}))
    return found


def _batches_read(ids: set[int]) -> dict[int, Batch]:
    """PostgreSQL: the batches ``ids`` with their projects and regions in one read through the
    driver's cursor in the session's transaction (``core.driver.session_rows``), put in the
    session as loaded (``ledger.loading``). The forecast has most often loaded them already
    (``_batches``)."""
    sql, own = _batches_read_sql()
    batches = (loading.attach(row) for row in session_rows(sql, own | {"ids": list(ids)}))
    return {batch.id: batch for batch in batches}


@functools.cache
def _batches_read_sql() -> tuple[str, dict]:
    ids = bindparam("ids", type_=ARRAY(Integer))
    return for_driver(loading.query().where(Batch.__table__.c.id == any_(ids)))


@functools.cache
def _batches_by_id():
    """Batches by id with their project and its region (the certificate's payload and registry
    instructions name them), without what a certificate never shows: the project's
    descriptions and boundary (a forest's boundary can be megabytes). Built once, at the first
    call (the loader options need every model mapped)."""
    from portal.catalog.models import Project

    return (
        select(Batch)
        .options(
            joinedload(Batch.project).defer(Project.boundary_geojson),
            joinedload(Batch.project).defer(Project.description_zh),
            joinedload(Batch.project).defer(Project.description_en),
        )
        .where(Batch.id.in_(bindparam("ids", expanding=True)))
    )


def _deal(ranges: list[MovedRange], quantities: list[int]) -> list[list[MovedRange]]:
    """Cut the moved ranges, in order, into consecutive pieces of the given sizes."""
    dealt: list[list[MovedRange]] = []
    queue = list(ranges)
    for wanted in quantities:
        mine = []
        while wanted:
            first = queue[0]
            take = min(wanted, first.quantity)
            mine.append(
                MovedRange(
                    first.batch_id, first.batch_code, first.serial_start, first.serial_start + take - 1
                )
            )
            if take == first.quantity:
                queue.pop(0)
            else:
                queue[0] = MovedRange(
                    first.batch_id, first.batch_code, first.serial_start + take, first.serial_end
                )
            wanted -= take
        dealt.append(mine)
    return dealt


#: Built once: which of the drawn numbers are taken (a statement on the table, not the model: the
#: session runs it without the ORM's loading; certificates are written at once, never pending).
#: On PostgreSQL as the driver's SQL with the numbers as one array (an expanding ``IN`` is
#: rendered again at every call).
_NUMBER = Certificate.__table__.c.number
_TAKEN = select(_NUMBER).where(_NUMBER.in_(bindparam("numbers", expanding=True)))
_TAKEN_PG = "SELECT number FROM certificates WHERE number = ANY(%(numbers)s::varchar[])"
#: One number (a retirement's one certificate): a plain equality, which PostgreSQL plans once per
#: connection. It never settles on one plan for ``= ANY`` of an array and plans it at every call
#: (about a tenth of a millisecond of the server's CPU).
_ONE_TAKEN_PG = "SELECT number FROM certificates WHERE number = %(number)s"


def _unused_numbers(year: int, count: int, chosen: list[str] | None = None) -> list[str]:
    """``count`` certificate numbers of ``year`` that no certificate has (``chosen`` already)."""
    chosen = list(chosen or [])
    while len(chosen) < count:
        candidates = _candidates(year, count, chosen)
        chosen += sorted(candidates - _taken(list(candidates)))
    return chosen


def _candidates(year: int, count: int, chosen: list[str]) -> set[str]:
    return {numbers.new_number(year) for _ in range(count - len(chosen))} - set(chosen)


def _numbers_and_forecast(year: int, count: int, forecast: ledger.ForecastRead):
    """PostgreSQL: ``_unused_numbers`` and the ranges of ``forecast``, read in one round trip
    where they were two (``core.driver.session_rows_together``); a number found taken (once
    in tens of thousands of retirements when the register holds a million) is replaced as
    ``_unused_numbers`` does."""
    candidates = _candidates(year, count, [])
    taken, rows = session_rows_together([_taken_read(list(candidates)), (forecast.sql, forecast.params)])
    chosen = _unused_numbers(year, count, sorted(candidates - {number for (number,) in taken}))
    return chosen, forecast.ranges(rows)


def _taken(candidates: list[str]) -> set[str]:
    if is_postgresql():
        rows = session_rows(*_taken_read(candidates))
    else:
        rows = db.session.execute(_TAKEN, {"numbers": candidates})
    return {number for (number,) in rows}


def _taken_read(candidates: list[str]) -> tuple[str, dict]:
    if len(candidates) == 1:
        return _ONE_TAKEN_PG, {"number": candidates[0]}
    return _TAKEN_PG, {"numbers": candidates}
