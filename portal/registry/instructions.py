"""Registry instructions: written with every certificate, decided once by staff.

``instruction_rows`` are written by the certificates' one issuing function with the certificate,
in the transaction that retires the credits: one instruction per certificate and batch, in the batch's registry (CCER
→ 注销 in the national registry, marked for the ETS offset procedure when the retirement is a
compliance offset; VCS → a retirement in Verra's registry naming the beneficiary). Staff record
the registry's confirmation (its reference, date and serial range), which is signed as a record
of its own, or a rejection with its reason. ``certificate_registry`` is what every surface
shows of a certificate: ``{status, reference, confirmed_at, url}``.
"""

import hashlib
import json
from collections import defaultdict
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.certificates import signing
from portal.certificates.models import Certificate
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url
from portal.core.text import clean_text
from portal.extensions import db
from portal.ledger import serials
from portal.ledger.models import Batch
from portal.registry.models import (
    InstructionKind,
    InstructionStatus,
    Registry,
    RegistryConfirmation,
    RegistryInstruction,
)
from portal.timeutil import BEIJING, beijing_today, iso_date, utcnow
from portal.transparency import services as transparency
from portal.webhooks import events as webhook_events

REFERENCE_MAX = 120
REASON_MAX = 500


class RegistryError(ServiceError):
    """A registry hand-off step refused; nothing was changed."""


def kind_of(registry: str, purpose: str) -> InstructionKind:
    if registry == Registry.VERRA:
        return InstructionKind.RETIREMENT
    return InstructionKind.ETS_OFFSET if purpose == "compliance" else InstructionKind.CANCELLATION


def instruction_rows(certificate: dict, ranges, batches: dict[int, Batch]) -> list[dict]:
    """The ``registry_instructions`` rows for the retired ``ranges`` (the ledger's moved ranges:
    ``batch_id``, ``serial_start``, ``serial_end``) of a new certificate (its row, by column),
    one per batch, naming the certificate by number (the certificates' writer gives its id:
    ``certificates.writing``)."""
    by_batch: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for r in ranges:
        by_batch[r.batch_id].append((r.serial_start, r.serial_end))
    rows = []
    for batch_id, pieces in by_batch.items():
        registry = serials.registry_of(batches[batch_id].project.standard)
        pieces.sort()
        rows.append(
            {
                "certificate_number": certificate["number"],
                "batch_id": batch_id,
                "registry": registry,
                "kind": kind_of(registry, certificate["purpose"]),
                "beneficiary": certificate["beneficiary"],
                "purpose": certificate["purpose"],
                "compliance_year": certificate["compliance_year"],
                "quantity": sum(e - s + 1 for s, e in pieces),
                "ranges": ",".join(f"{s}-{e}" for s, e in pieces),
                "status": InstructionStatus.PENDING,
                "created_at": certificate["retired_at"],
            }
        )
    return rows


# --- what the registry is asked for, in its own notation -------------------------------------


def registry_units(instruction: RegistryInstruction) -> list[tuple[int, int]] | None:
    """The instructed serials as registry unit numbers, where the batch's numbering is known."""
    batch = instruction.batch
    if batch.registry_unit_offset is None:
        return None
    return [(batch.registry_unit(s), batch.registry_unit(e)) for s, e in instruction.serial_ranges]


def registry_serials(instruction: RegistryInstruction) -> list[str]:
    """The instructed serial ranges as the registry writes them (portal serials where the
    batch's registry numbering is unknown)."""
    batch = instruction.batch
    units = registry_units(instruction)
    if units is None:
        return [batch.block_label(s, e) for s, e in instruction.serial_ranges]
    return [
        serials.range_serial(
            batch.project.standard, batch.registry_series, a, b, template=batch.registry_serial_start
        )
        for a, b in units
    ]


# --- deciding --------------------------------------------------------------------------------


def find(instruction_id) -> RegistryInstruction | None:
    if not isinstance(instruction_id, int) or not 0 < instruction_id < 2**31:
        return None
    return db.session.get(RegistryInstruction, instruction_id)


def _locked(instruction: RegistryInstruction) -> RegistryInstruction:
    db.session.execute(
        select(RegistryInstruction.id).where(RegistryInstruction.id == instruction.id).with_for_update()
    )
    db.session.refresh(instruction)
    return instruction


def _digest(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def _already(instruction: RegistryInstruction, digest: str) -> RegistryInstruction:
    """A decided instruction: the same decision again is answered with it; another is refused."""
    if instruction.decision_digest == digest:
        return instruction
    raise RegistryError(
        "already_decided",
        _(
            "Instruction %(id)s was already %(status)s; a decision is recorded once.",
            id=instruction.id,
            status=_status_word(instruction.status),
        ),
        status=409,
    )


def _status_word(status: str) -> str:
    return {
        InstructionStatus.PENDING: _("pending"),
        InstructionStatus.CONFIRMED: _("confirmed"),
        InstructionStatus.REJECTED: _("rejected"),
    }.get(status, status)


def parse_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    day = iso_date(value)
    if day is not None:
        return day
    raise RegistryError(
        "invalid_date", _("The registry's date must be a date such as 2026-12-01."), field="date"
    )


def confirm(
    instruction: RegistryInstruction,
    *,
    reference,
    registry_date,
    serial_start,
    serial_end="",
    actor: str,
) -> RegistryInstruction:
    """Record the registry's confirmation: checked, signed as a record of its own, audited."""
    reference = clean_text(
        reference,
        field="reference",
        label=_("Registry reference"),
        max_length=REFERENCE_MAX,
        required=True,
        error=RegistryError,
    )
    when = parse_date(registry_date)
    first = clean_text(
        serial_start,
        field="serials",
        label=_("Registry serials"),
        max_length=120,
        required=True,
        error=RegistryError,
    )
    last = clean_text(
        serial_end,
        field="serials",
        label=_("Registry serials"),
        max_length=120,
        required=False,
        error=RegistryError,
    )
    digest = _digest({"confirm": [reference, when.isoformat(), first, last]})
    instruction = _locked(instruction)
    if instruction.status != InstructionStatus.PENDING:
        return _already(instruction, digest)
    if when > beijing_today() or when < instruction.created_at.astimezone(BEIJING).date():
        raise RegistryError(
            "invalid_date",
            _("The registry's date must lie between the retirement and today."),
            field="date",
        )
    stated = _check_serials(instruction, first, last)
    instruction.status = InstructionStatus.CONFIRMED
    instruction.registry_reference = reference
    instruction.registry_date = when
    instruction.registry_serials = stated
    instruction.decided_at = utcnow()
    instruction.decided_by = actor[:120]
    instruction.decision_digest = digest
    document = {
        "v": 1,
        "type": "registry_confirmation",
        "certificate": instruction.certificate_number,
        "registry": instruction.registry_name,
        "kind": instruction.kind,
        "batch_code": instruction.batch.code,
        "portal_serials": [list(r) for r in instruction.serial_ranges],
        "quantity": instruction.quantity,
        "beneficiary": instruction.beneficiary,
        "registry_reference": reference,
        "registry_date": when.isoformat(),
        "registry_serials": stated,
        "recorded_at": instruction.decided_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    text = signing.canonical(document)
    key = signing.signer()
    signature = key.sign(text)
    db.session.add(
        RegistryConfirmation(
            instruction_id=instruction.id,
            certificate_id=instruction.certificate_id,
            payload=text,
            signature=signature,
            key_id=key.key_id,
        )
    )
    db.session.flush()
    # Public and append-only, like the certificate it confirms; and told to the buyer's systems.
    transparency.record(
        "registry_confirmation", text, instruction.certificate_number, signature=signature, key_id=key.key_id
    )
    webhook_events.registry_confirmed(instruction, db.session.get(Certificate, instruction.certificate_id))
    audit.record(
        actor,
        "registry.confirm",
        "registry_instruction",
        instruction.id,
        before={"status": InstructionStatus.PENDING},
        after={
            "status": instruction.status,
            "certificate": instruction.certificate_number,
            "reference": reference,
            "date": when.isoformat(),
            "serials": stated,
        },
    )
    return instruction


def _check_serials(instruction: RegistryInstruction, first: str, last: str) -> str:
    """The serial range the registry states, read in its format and compared with the
    instruction's; the text kept as stated."""
    batch = instruction.batch
    try:
        stated = serials.parse_range(batch.project.standard, first, last)
    except serials.SerialError:
        raise RegistryError(
            "invalid_serials",
            _("The registry serials are not in the registry's format (see the batch's serials)."),
            field="serials",
        ) from None
    units = registry_units(instruction)
    if units is not None and (
        stated.series != batch.registry_series
        or stated.first != units[0][0]
        or stated.last != units[-1][1]
        or stated.count < instruction.quantity
    ):
        raise RegistryError(
            "serials_differ",
            _(
                "The registry retired units %(first)s to %(last)s; the instruction is for %(expected)s. "
                "Check the registry's record before confirming.",
                first=stated.first,
                last=stated.last,
                expected=", ".join(f"{a}–{b}" for a, b in units),
            ),
            status=409,
            field="serials",
        )
    return first if not last or last == first else f"{first} – {last}"


def reject(instruction: RegistryInstruction, *, reason, actor: str) -> RegistryInstruction:
    """Record the registry's rejection with its reason, audited."""
    reason = clean_text(
        reason, field="reason", label=_("Reason"), max_length=REASON_MAX, required=True, error=RegistryError
    )
    digest = _digest({"reject": reason})
    instruction = _locked(instruction)
    if instruction.status != InstructionStatus.PENDING:
        return _already(instruction, digest)
    instruction.status = InstructionStatus.REJECTED
    instruction.rejection_reason = reason
    instruction.decided_at = utcnow()
    instruction.decided_by = actor[:120]
    instruction.decision_digest = digest
    db.session.flush()
    audit.record(
        actor,
        "registry.reject",
        "registry_instruction",
        instruction.id,
        before={"status": InstructionStatus.PENDING},
        after={"status": instruction.status, "certificate": instruction.certificate_number, "reason": reason},
    )
    return instruction


# --- what a certificate shows ------------------------------------------------------------------


def registry_summaries(certificate_ids) -> dict[int, dict]:
    """Registry status per certificate for lists (the register and its CSV), in one query:
    ``{id: {"status", "reference", "confirmed_at"}}`` as ``certificate_registry`` reads them."""
    ids = list(certificate_ids)
    rows: dict[int, list] = defaultdict(list)
    if ids:
        for row in db.session.execute(
            select(
                RegistryInstruction.certificate_id,
                RegistryInstruction.status,
                RegistryInstruction.registry_reference,
                RegistryInstruction.registry_date,
            )
            .where(RegistryInstruction.certificate_id.in_(ids))
            .order_by(RegistryInstruction.id)
        ):
            rows[row.certificate_id].append(row)
    return {i: summary_of(rows.get(i, [])) for i in ids}


def summary_of(found) -> dict:
    """``{"status", "reference", "confirmed_at"}`` of one certificate from its instructions'
    rows (each with ``status``, ``registry_reference`` and ``registry_date``), in id order."""
    statuses = {r.status for r in found}
    if InstructionStatus.REJECTED in statuses:
        status = InstructionStatus.REJECTED
    elif found and statuses == {InstructionStatus.CONFIRMED}:
        status = InstructionStatus.CONFIRMED
    else:
        status = InstructionStatus.PENDING
    confirmed = status == InstructionStatus.CONFIRMED
    return {
        "status": str(status),
        "reference": "; ".join(dict.fromkeys(r.registry_reference for r in found)) if confirmed else None,
        "confirmed_at": max(r.registry_date for r in found).isoformat() if confirmed else None,
    }


def certificate_registry(certificate_id: int, number: str, rows=None) -> dict:
    """A certificate's registry status: ``pending`` until every batch it retired is confirmed
    by its registry (``confirmed``), ``rejected`` when a registry refused; ``reference`` the
    registry's reference(s), ``confirmed_at`` the registry's (latest) date, ``url`` the signed
    confirmation record. ``rows``: its instructions' rows if already read (``summary_of``)."""
    summary = registry_summaries([certificate_id])[certificate_id] if rows is None else summary_of(rows)
    confirmed = summary["status"] == InstructionStatus.CONFIRMED
    return {**summary, "url": absolute_url("api.certificate_registry", number=number) if confirmed else None}


def confirmations_of(certificate_id: int) -> list[RegistryConfirmation]:
    return list(
        db.session.scalars(
            select(RegistryConfirmation)
            .where(RegistryConfirmation.certificate_id == certificate_id)
            .order_by(RegistryConfirmation.id)
        )
    )


def confirmation_valid(confirmation: RegistryConfirmation) -> bool:
    return signing.signature_valid(confirmation.payload, confirmation.signature, confirmation.key_id)


def instruction_json(instruction: RegistryInstruction) -> dict:
    batch = instruction.batch
    return {
        "id": instruction.id,
        "certificate_number": instruction.certificate_number,
        "registry": instruction.registry_name,
        "kind": instruction.kind,
        "batch": {
            "code": batch.code,
            "project_code": batch.project.code,
            "registry_reference": batch.registry_reference,
        },
        "beneficiary": instruction.beneficiary,
        "purpose": instruction.purpose,
        "compliance_year": instruction.compliance_year,
        "quantity": instruction.quantity,
        "serial_ranges": [
            {"serial_start": s, "serial_end": e, "quantity": e - s + 1} for s, e in instruction.serial_ranges
        ],
        "registry_serials": registry_serials(instruction),
        "status": instruction.status,
        "created_at": instruction.created_at.isoformat(),
        "confirmation": None
        if instruction.status != InstructionStatus.CONFIRMED
        else {
            "reference": instruction.registry_reference,
            "date": instruction.registry_date.isoformat(),
            "registry_serials": instruction.registry_serials,
            "recorded_at": instruction.decided_at.isoformat(),
        },
        "rejection": None
        if instruction.status != InstructionStatus.REJECTED
        else {"reason": instruction.rejection_reason, "recorded_at": instruction.decided_at.isoformat()},
    }


def confirmation_json(confirmation: RegistryConfirmation) -> dict:
    return {
        "payload": confirmation.payload,
        "signature": {"alg": signing.ALG, "key_id": confirmation.key_id, "value": confirmation.signature},
        "signature_valid": confirmation_valid(confirmation),
    }


def pending_count() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RegistryInstruction)
        .where(RegistryInstruction.status == InstructionStatus.PENDING)
    )
