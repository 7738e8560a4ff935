"""``/api/v1/registry/…`` for operators' scripts, and a certificate's registry record (public),
on the API blueprint."""

from flask import g, request
from flask_babel import gettext as _
from sqlalchemy import select

from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object
from portal.certificates import services as certificates
from portal.core.guard import public
from portal.extensions import db
from portal.registry import instructions
from portal.registry.models import InstructionStatus, Registry, RegistryInstruction

#: The most instructions one answer lists; ``after`` (the last id seen) pages on.
PAGE_MAX = 1000


@bp.get("/registry/instructions")
@require_key("registry.read")
def registry_instructions():
    status = request.args.get("status") or None
    registry = request.args.get("registry") or None
    if status is not None and status not in set(InstructionStatus):
        return api_error(400, "invalid_status", _("status is one of pending, confirmed, rejected."))
    if registry is not None and registry not in set(Registry):
        return api_error(400, "invalid_registry", _("registry is one of ccer, verra."))
    after = request.args.get("after", "0")
    limit = request.args.get("limit", str(PAGE_MAX))
    if not (after.isascii() and after.isdigit() and len(after) < 10) or not (
        limit.isascii() and limit.isdigit() and 0 < int(limit) <= PAGE_MAX
    ):
        return api_error(
            400, "invalid_page", _("after is an instruction id; limit from 1 to %(n)s.", n=PAGE_MAX)
        )
    query = (
        select(RegistryInstruction)
        .where(RegistryInstruction.id > int(after))
        .order_by(RegistryInstruction.id)
        .limit(int(limit) + 1)
    )
    if status:
        query = query.where(RegistryInstruction.status == status)
    if registry:
        query = query.where(RegistryInstruction.registry_name == registry)
    found = list(db.session.scalars(query))
    more = len(found) > int(limit)
    found = found[: int(limit)]
    return {
        "items": [instructions.instruction_json(i) for i in found],
        "next_after": found[-1].id if more else None,
    }


def _decide(instruction_id: int, decide):
    instruction = instructions.find(instruction_id)
    if instruction is None:
        return api_error(
            404, "unknown_instruction", _("There is no registry instruction %(id)s.", id=instruction_id)
        )
    body = json_object()
    before = instruction.status
    try:
        decided = decide(instruction, body)
    except instructions.RegistryError as exc:
        db.session.rollback()
        return api_error(exc.status, exc.code, exc.message)
    headers = {"Idempotent-Replayed": "true"} if before != InstructionStatus.PENDING else {}
    return {"instruction": instructions.instruction_json(decided)}, 200, headers


@bp.post("/registry/instructions/<int:n>/confirmation")
@require_key("registry.change")
def confirm_instruction(n):
    return _decide(
        n,
        lambda instruction, body: instructions.confirm(
            instruction,
            reference=body.get("reference"),
            registry_date=body.get("date"),
            serial_start=body.get("serial_start"),
            serial_end=body.get("serial_end", ""),
            actor=g.principal.actor,
        ),
    )


@bp.post("/registry/instructions/<int:n>/rejection")
@require_key("registry.change")
def reject_instruction(n):
    return _decide(
        n,
        lambda instruction, body: instructions.reject(
            instruction, reason=body.get("reason"), actor=g.principal.actor
        ),
    )


@bp.get("/certificates/<number>/registry")
@public
def certificate_registry(number):
    """The official registry's side of a certificate: each instruction's outcome and the
    portal's signed records of the registry's confirmations."""
    try:
        found = certificates.look_up(number, request.remote_addr or "unknown")
    except certificates.LookupRefused:
        db.session.commit()
        return api_error(
            429, "too_many_lookups", _("Too many look-ups of unknown numbers. Please wait a few minutes.")
        )
    if found is None:
        db.session.commit()
        return api_error(404, "unknown_certificate", _("No certificate has this number."))
    rows = db.session.scalars(
        select(RegistryInstruction)
        .where(RegistryInstruction.certificate_id == found.id)
        .order_by(RegistryInstruction.id)
    )
    return {
        "certificate": found.number,
        "registry": instructions.certificate_registry(found.id, found.number),
        "instructions": [
            {
                "registry": i.registry_name,
                "kind": i.kind,
                "batch_code": i.batch.code,
                "quantity": i.quantity,
                "registry_serials": instructions.registry_serials(i),
                "status": i.status,
                "reference": i.registry_reference,
                "date": i.registry_date.isoformat() if i.registry_date else None,
                "confirmation": instructions.confirmation_json(i.confirmation) if i.confirmation else None,
            }
            for i in rows
        ],
    }
