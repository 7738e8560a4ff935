"""``/api/v1`` endpoints for retirements, certificates and the signing keys (on the API blueprint)."""

from flask import g, request, url_for

from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object
from portal.certificates import services, signing
from portal.certificates.models import Certificate
from portal.core.guard import public
from portal.core.idempotency import request_digest
from portal.extensions import db
from portal.registry import instructions as registry


def certificate_json(certificate: Certificate) -> dict:
    check = services.verify(certificate)
    doc = check.document
    projects = doc.get("projects", [])
    return {
        "number": certificate.number,
        "status": certificate.status,
        "url": services.certificate_url(certificate),
        "pdf_url": url_for("certificates.certificate_pdf", number=certificate.number, _external=False),
        "quantity": certificate.quantity,
        "beneficiary": certificate.beneficiary,
        "purpose": certificate.purpose,
        "purpose_detail": services.public_purpose_detail(certificate),
        "retired_at": doc.get("retired_at"),
        "retired_by": doc.get("retired_by"),
        # The project of most tonnes; a retirement spanning several lists them all in "projects".
        "project": max(
            projects,
            key=lambda p: sum(b["quantity"] for b in doc["blocks"] if b["project_code"] == p["code"]),
            default=None,
        ),
        "projects": projects,
        "blocks": [
            {k: b[k] for k in ("batch_code", "serial_start", "serial_end", "quantity")}
            for b in doc.get("blocks", [])
        ],
        "revoked": None
        if certificate.is_valid
        else {"at": certificate.revoked_at.isoformat(), "reason": certificate.revoked_reason},
        "payload": certificate.payload,
        "signature": {"alg": signing.ALG, "key_id": certificate.key_id, "value": certificate.signature},
        "signature_valid": check.signature_ok,
        # The official registry's side, a record apart: the signed payload never changes.
        "registry": registry.certificate_registry(certificate.id, certificate.number),
    }


@bp.get("/signing-keys")
@public
def signing_keys():
    signing.signer()  # the current key is published before anyone asks for it
    return {
        "keys": [
            {
                "key_id": k.key_id,
                "alg": signing.ALG,
                "public_key": k.public_key,
                "created_at": k.created_at.isoformat(),
            }
            for k in signing.published_keys()
        ]
    }


@bp.get("/certificates/<number>")
@public
def certificate(number):
    from flask_babel import gettext as _

    try:
        found = services.look_up(number, request.remote_addr or "unknown")
    except services.LookupRefused:
        db.session.commit()
        return api_error(
            429, "too_many_lookups", _("Too many look-ups of unknown numbers. Please wait a few minutes.")
        )
    if found is None:
        db.session.commit()
        return api_error(404, "unknown_certificate", _("No certificate has this number."))
    from portal.certificates.views import page_cache

    return page_cache().get_or_build(
        ("json", found.number, found.status, registry.registry_version(found.id)),
        lambda: certificate_json(services.row_of(found.id)),
    )


@bp.post("/retirements")
@require_key("holdings.retire")
def retirements():

    body = json_object()
    key = request.headers.get("Idempotency-Key")
    try:
        found, created = services.retire_from_holding(
            g.principal.organisation,
            body.get("quantity"),
            beneficiary=body.get("beneficiary", g.principal.organisation.name_zh),
            purpose=body.get("purpose"),
            purpose_detail=body.get("purpose_detail", ""),
            batch_code=body.get("batch_code"),
            compliance_year=body.get("compliance_year"),
            actor=g.principal.actor,
            idempotency_key=key,
            digest=request_digest(body) if key is not None else None,
        )
    except services.RetirementError as exc:
        db.session.rollback()
        return api_error(exc.status, exc.code, exc.message)
    # A repeat gets the first answer again, marked as such (as Stripe does).
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return {"certificate": certificate_json(found)}, 201, headers
