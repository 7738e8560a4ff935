"""``/api/v1`` endpoints for retirements, certificates and the signing keys (on the API blueprint)."""

from datetime import UTC

from flask import Response, current_app, g, request, url_for

from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object
from portal.certificates import renditions, services, signing, verification
from portal.certificates import state as certificate_state
from portal.certificates.models import Certificate
from portal.core import validators
from portal.core.database import commit_keeping_loaded
from portal.core.guard import public
from portal.core.i18n import absolute_url
from portal.core.idempotency import request_digest
from portal.core.limits import before_body, body_limit
from portal.extensions import db
from portal.registry import instructions as registry
from portal.transparency import services as transparency


def certificate_json(
    certificate: Certificate, state: certificate_state.CertificateState | None = None
) -> dict:
    """The certificate as the API shows it; ``state``: its state already read (``certificates.state``),
    else its registry status and log entries are read here."""
    check = state.check if state is not None else services.verify(certificate)
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
        else {"at": certificate.revoked_at.astimezone(UTC).isoformat(), "reason": certificate.revoked_reason},
        "payload": certificate.payload,
        "signature": {"alg": signing.ALG, "key_id": certificate.key_id, "value": certificate.signature},
        "signature_valid": check.signature_ok,
        "transparency_log": log_json(certificate.number, state.log_entries if state is not None else None),
        # The official registry's side, a record apart: the signed payload never changes.
        "registry": registry.certificate_registry(
            certificate.id, certificate.number, state.instructions if state is not None else None
        ),
    }


def log_json(number: str, entries=None) -> dict:
    """Where the certificate's events are in the public transparency log (``entries`` if already
    read), and the proof."""
    if entries is None:
        entries = transparency.entries_of(number)
    return {
        "entries": [
            # In UTC, whatever time zone the database's connection reports it in.
            {"kind": e.kind, "leaf_index": e.leaf_index, "logged_at": e.logged_at.astimezone(UTC).isoformat()}
            for e in entries
        ],
        # On PORTAL_BASE_URL, never the request's Host: the answer is cached and served to all.
        "proof_url": absolute_url("api.log_inclusion_proof", certificate=number),
    }


@bp.get("/signing-keys")
@public
def signing_keys():
    from portal.pdf import authority

    signing.signer()  # the current key is published before anyone asks for it
    current = authority.current_authority()
    return {
        "document_signing": {
            "alg": _key_alg(current.cert),
            "subject": current.cert.subject.rfc4514_string(),
            "not_after": current.cert.not_valid_after_utc.isoformat(),
            "chain_pem": current.chain_pem(),
            "chain_url": absolute_url("api.signing_chain"),
        },
        "keys": [
            {
                "key_id": k.key_id,
                "alg": signing.ALG,
                "public_key": k.public_key,
                "created_at": k.created_at.isoformat(),
            }
            for k in signing.published_keys()
        ],
    }


def _key_alg(cert) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA-{key.curve.name}"
    return type(key).__name__


@bp.get("/signing-chain.pem")
@public
def signing_chain():
    """The document-signing certificate and its chain (PEM, root last): what PDF readers trust."""
    from portal.pdf import authority

    return Response(
        authority.current_authority().chain_pem(),
        mimetype="application/x-pem-file",
        headers={"Content-Disposition": 'inline; filename="chifeng-carbon-document-signing.pem"'},
    )


def _sandbox_slot():
    """Before the upload is read: a sandbox slot for it (released when the request ends), or
    503 at once."""
    if verification.take_slot():
        return None
    response, status = api_error(503, "busy", verification.PdfError("busy").message)
    response.headers["Retry-After"] = "2"
    return response, status


@bp.post("/verify")
@public
@body_limit(verification.MAX_UPLOAD + 64 * 1024)
@before_body(_sandbox_slot)
def verify_pdf():
    """Check an uploaded PDF (multipart field ``file``): one of verification.RESULTS."""
    from flask_babel import gettext as _

    if not services.upload_allowed(request.remote_addr or "unknown"):
        db.session.commit()
        return api_error(
            429, "too_many_uploads", _("Too many PDFs checked from your address. Please wait a few minutes.")
        )
    db.session.commit()
    upload = request.files.get("file")
    if upload is None:
        return api_error(400, "no_file", _('Send the PDF as the multipart form field "file".'))
    try:
        data = upload.stream.read(verification.MAX_UPLOAD + 1)
    finally:
        upload.close()
    try:
        check = verification.check_upload(data)
    except verification.PdfError as exc:
        if exc.code == "too_large":  # one code for a body too large, whichever check refused it
            return api_error(413, "request_too_large", exc.message)
        return api_error(exc.status, exc.code, exc.message)
    return check.as_json()


@bp.get("/certificates/<number>")
@public
def certificate(number):
    """The certificate in one statement (``certificates.state``), with an ETag: 304 when the
    client's copy is current, else kept drawn (``certificates.renditions``; a worker's cache
    when asked with a query). The same in every language."""
    from flask_babel import gettext as _

    kind = renditions.kind_for("json", "")
    try:
        state = certificate_state.look_up(number, request.remote_addr or "unknown", kind)
    except services.LookupRefused:
        db.session.commit()
        return api_error(
            429, "too_many_lookups", _("Too many look-ups of unknown numbers. Please wait a few minutes.")
        )
    if state is None:
        db.session.commit()
        return api_error(404, "unknown_certificate", _("No certificate has this number."))
    from portal.certificates.views import page_cache

    etag = state.etag("json", validators.release())

    def draw() -> bytes:
        return current_app.json.response(certificate_json(state.certificate, state)).get_data()

    if kind:
        return validators.revalidated(
            etag, lambda: renditions.answer(state, kind, etag, draw), mimetype="application/json"
        )
    return validators.revalidated(etag, draw, mimetype="application/json", cache=page_cache())


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
    number = found.number
    # Committed before answering: the certificate's place in the transparency log is given at
    # commit, and the answer shows it. The answer is the certificate as committed: as this
    # transaction wrote it (``certificates.state.issued``: its row, its instructions, the leaf
    # the commit numbered), or, for a repeat, read in one statement as its public JSON reads it.
    written = certificate_state.issued(number) if created else None
    commit_keeping_loaded()
    state = (written.state() if written is not None else None) or certificate_state.read(number)
    # A repeat gets the first answer again, marked as such (as Stripe does).
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return {"certificate": certificate_json(state.certificate, state)}, 201, headers
