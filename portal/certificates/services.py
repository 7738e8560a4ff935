"""Retiring credits into a signed certificate; finding, verifying and revoking certificates.

Every retirement goes through ``retire_into_certificate``: the ledger retires the blocks and, in
the same transaction, the certificate records exactly the serial ranges the ledger moved, signed
with the portal's key. Certificates know nothing of money.
"""

import hashlib
import json
import logging
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers import services as buyers
from portal.certificates import numbers, signing
from portal.certificates.models import (
    Certificate,
    CertificateBlock,
    CertificateStatus,
    Purpose,
    Source,
)
from portal.core import throttle
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url
from portal.core.text import has_hidden_characters
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, LedgerError
from portal.ledger.models import Account, Batch
from portal.ledger.services import MovedRange
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

BENEFICIARY_MAX = 200
DETAIL_MAX = 300
REASON_MAX = 500
IDEMPOTENCY_KEY_MAX = 200
#: Failed look-ups allowed per client address in the window; found numbers are never counted.
LOOKUP_FAILURE_LIMIT = 30
LOOKUP_WINDOW = timedelta(minutes=10)
LOOKUP_FAILURES = throttle.Rule("certificates.lookup", LOOKUP_FAILURE_LIMIT, LOOKUP_WINDOW)
BEIJING = ZoneInfo("Asia/Shanghai")


class RetirementError(ServiceError):
    """A refused retirement or certificate action: nothing changed."""


def clean_text(value, *, field: str, label: str, max_length: int, required: bool) -> str:
    """``value`` as stored text (NFC, trimmed), or a RetirementError naming ``label``."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RetirementError("invalid_" + field, _("%(field)s must be text.", field=label), field=field)
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise RetirementError("invalid_" + field, _("%(field)s is required.", field=label), field=field)
    if len(text) > max_length:
        raise RetirementError(
            "invalid_" + field,
            _("%(field)s may be at most %(n)s characters.", field=label, n=max_length),
            field=field,
        )
    if has_hidden_characters(text):
        raise RetirementError(
            "invalid_" + field,
            _("%(field)s contains control or direction-override characters.", field=label),
            field=field,
        )
    return text


def parse_purpose(value) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        raise RetirementError(
            "invalid_purpose",
            _("The purpose must be one of: voluntary, event, compliance."),
            field="purpose",
        ) from None


def request_digest(document) -> str:
    # surrogatepass: a digest never fails on text it is only asked to compare
    return hashlib.sha256(signing.canonical(document).encode("utf-8", "surrogatepass")).hexdigest()


# --- retiring -----------------------------------------------------------------------------


def retire_from_holding(
    organisation,
    quantity,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    batch_code: str | None = None,
    compliance_year=None,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
) -> tuple[Certificate, bool]:
    """Retire ``quantity`` t from the organisation's holding; (certificate, created).

    With an ``idempotency_key``, a repeat of the same request returns the first certificate
    (created False) and a different request under the same key is refused.
    """
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
            raise RetirementError(
                "invalid_idempotency_key",
                _("Idempotency-Key must be 1 to %(n)s characters.", n=IDEMPOTENCY_KEY_MAX),
            )
        earlier = _by_idempotency_key(organisation, idempotency_key, digest)
        if earlier is not None:
            return earlier, False

    refusal = policy.retirement_refusal(organisation)
    if refusal:
        raise RetirementError("organisation_not_allowed", refusal, status=403)
    purpose = parse_purpose(purpose)
    batch_codes = _batch_choice(organisation, purpose, batch_code)
    year = None
    if purpose == Purpose.COMPLIANCE:
        from portal.certificates import compliance

        try:
            quantity = ledger.parse_quantity(quantity)
            year = compliance.check_room(organisation, compliance_year, quantity)
        except compliance.ComplianceError as exc:
            raise RetirementError(exc.code, exc.message, exc.status, exc.field) from None
        except LedgerError as exc:
            raise RetirementError(exc.code, exc.message, status=exc.http_status, field="quantity") from None
    try:
        with db.session.begin_nested():
            certificate = retire_into_certificate(
                buyers.holding_account(organisation),
                organisation,
                quantity,
                beneficiary=beneficiary,
                purpose=purpose,
                purpose_detail=purpose_detail,
                batch_codes=batch_codes,
                source=Source.HOLDING,
                compliance_year=year,
                actor=actor,
                idempotency_key=idempotency_key,
                digest=digest,
            )
    except (IntegrityError, InsufficientCredits) as exc:
        # The same key, sent twice at once: the other request retired first.
        if idempotency_key is not None:
            earlier = _by_idempotency_key(organisation, idempotency_key, digest)
            if earlier is not None:
                return earlier, False
        if isinstance(exc, InsufficientCredits):
            raise RetirementError(
                "insufficient_holding",
                _(
                    "Your holding has %(available)s t that can be retired this way; %(requested)s t were requested.",
                    available=exc.params.get("available"),
                    requested=exc.params.get("requested"),
                ),
                status=409,
                field="quantity",
            ) from None
        raise
    except LedgerError as exc:
        raise RetirementError(exc.code, exc.message, status=exc.http_status, field="quantity") from None
    return certificate, True


@dataclass(frozen=True)
class RetirementPlan:
    """What a retirement from the holding will do, as the confirmation shows it."""

    quantity: int
    beneficiary: str
    purpose: Purpose
    purpose_detail: str
    #: The batches it may draw from (None: any, oldest vintage first).
    batch_codes: list[str] | None
    compliance_year: int | None


def check_retirement(
    organisation,
    quantity,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    batch_code: str | None = None,
    compliance_year=None,
) -> RetirementPlan:
    """What ``retire_from_holding`` would do, refused by the same rules, changing nothing (the
    retirement form asks for confirmation with it; the retirement checks again as it happens)."""
    refusal = policy.retirement_refusal(organisation)
    if refusal:
        raise RetirementError("organisation_not_allowed", refusal, status=403)
    purpose = parse_purpose(purpose)
    batch_codes = _batch_choice(organisation, purpose, batch_code)
    try:
        quantity = ledger.parse_quantity(quantity)
    except LedgerError as exc:
        raise RetirementError(exc.code, exc.message, status=exc.http_status, field="quantity") from None
    year = None
    if purpose == Purpose.COMPLIANCE:
        from portal.certificates import compliance

        try:
            year = compliance.check_room(organisation, compliance_year, quantity)
        except compliance.ComplianceError as exc:
            raise RetirementError(exc.code, exc.message, exc.status, exc.field) from None
    beneficiary = clean_text(
        beneficiary, field="beneficiary", label=_("Beneficiary"), max_length=BENEFICIARY_MAX, required=True
    )
    purpose_detail = clean_text(
        purpose_detail,
        field="purpose_detail",
        label=_("Purpose details"),
        max_length=DETAIL_MAX,
        required=False,
    )
    available = sum(
        b.quantity
        for b in buyers.holding_blocks(organisation)
        if batch_codes is None or b.batch.code in batch_codes
    )
    if quantity > available:
        raise RetirementError(
            "insufficient_holding",
            _(
                "Your holding has %(available)s t that can be retired this way; %(requested)s t were requested.",
                available=available,
                requested=quantity,
            ),
            status=409,
            field="quantity",
        )
    return RetirementPlan(quantity, beneficiary, purpose, purpose_detail, batch_codes, year)


def _by_idempotency_key(organisation, key: str, digest: str | None) -> Certificate | None:
    earlier = db.session.scalar(
        select(Certificate).filter_by(organisation_id=organisation.id, idempotency_key=key)
    )
    if earlier is not None and digest is not None and earlier.request_digest != digest:
        raise RetirementError(
            "idempotency_key_reused",
            _("This Idempotency-Key was already used for a different request."),
            status=422,
        )
    return earlier


def _batch_choice(organisation, purpose: Purpose, batch_code) -> list[str] | None:
    """The batches a retirement may draw from: the chosen one, and for compliance CCER only."""
    if batch_code is not None and batch_code != "":
        if not isinstance(batch_code, str) or len(batch_code) > 80:
            raise RetirementError(
                "unknown_batch", _("There is no such batch."), status=404, field="batch_code"
            )
        batch = db.session.scalar(select(Batch).filter_by(code=batch_code))
        if batch is None:
            raise RetirementError(
                "unknown_batch",
                _("There is no batch %(batch)s.", batch=batch_code),
                status=404,
                field="batch_code",
            )
        if purpose == Purpose.COMPLIANCE and batch.project.standard != "CCER":
            raise RetirementError(
                "compliance_needs_ccer",
                _(
                    "Only CCER credits can be used for national-ETS compliance; %(batch)s is %(standard)s.",
                    batch=batch.code,
                    standard=batch.project.standard,
                ),
                field="batch_code",
            )
        return [batch.code]
    if purpose == Purpose.COMPLIANCE:
        held = {
            b.batch.code for b in buyers.holding_blocks(organisation) if b.batch.project.standard == "CCER"
        }
        return sorted(held)
    return None


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
) -> Certificate:
    """Retire ``quantity`` t from ``source_account`` and sign the certificate for it.

    Used by every flow that retires: the holding, a paid order's hold, a contract delivery.
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
) -> list[Certificate]:
    """One retirement split into several certificates (e.g. one per attendee of an event): a
    single ledger movement, whose serial ranges are dealt to the parts in order."""
    checked = []
    for part in parts:
        checked.append(
            Part(
                ledger.parse_quantity(part.quantity),
                clean_text(
                    part.beneficiary,
                    field="beneficiary",
                    label=_("Beneficiary"),
                    max_length=BENEFICIARY_MAX,
                    required=True,
                ),
                parse_purpose(part.purpose),
                clean_text(
                    part.purpose_detail,
                    field="purpose_detail",
                    label=_("Purpose details"),
                    max_length=DETAIL_MAX,
                    required=False,
                ),
            )
        )
    if not checked:
        raise ValueError("a retirement needs at least one part")
    retired_at = utcnow().replace(microsecond=0)
    numbers_ = _unused_numbers(retired_at.astimezone(BEIJING).year, len(checked))
    reference = f"certificate:{numbers_[0]}" + (f"+{len(numbers_) - 1}" if len(numbers_) > 1 else "")
    movement = ledger.retire(
        sum(p.quantity for p in checked),
        source=source_account,
        batch_codes=batch_codes,
        reference=reference,
        actor=actor,
    )
    batches = {
        b.id: b
        for b in db.session.scalars(select(Batch).where(Batch.id.in_({r.batch_id for r in movement.ranges})))
    }
    key = signing.signer()
    dealt = _deal(movement.ranges, [p.quantity for p in checked])
    certificates = []
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
        certificates.append(
            Certificate(
                number=number,
                organisation_id=organisation.id,
                quantity=part.quantity,
                beneficiary=part.beneficiary,
                purpose=part.purpose,
                purpose_detail=part.purpose_detail,
                source=source,
                source_ref=source_ref,
                movement_id=movement.id,
                retired_at=retired_at,
                actor=actor,
                payload=text,
                signature=key.sign(text),
                key_id=key.key_id,
                compliance_year=compliance_year if part.purpose == Purpose.COMPLIANCE else None,
                idempotency_key=idempotency_key,
                request_digest=digest,
            )
        )
    db.session.add_all(certificates)
    db.session.flush()
    db.session.execute(
        CertificateBlock.__table__.insert(),
        [
            {
                "certificate_id": c.id,
                "batch_id": r.batch_id,
                "serial_start": r.serial_start,
                "serial_end": r.serial_end,
            }
            for c, ranges in zip(certificates, dealt, strict=True)
            for r in ranges
        ],
    )
    for c in certificates:
        audit.record(
            actor,
            "certificate.issue",
            "certificate",
            c.number,
            after={
                "quantity": c.quantity,
                "source": str(source),
                "source_ref": source_ref,
                "movement": movement.id,
            },
        )
    log.info(
        "%s certificate(s) %s: %s t retired for %s by %s",
        len(certificates),
        reference,
        movement.quantity,
        organisation.uscc,
        actor,
    )
    return certificates


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


def _unused_numbers(year: int, count: int) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < count:
        candidates = {numbers.new_number(year) for _ in range(count - len(chosen))} - set(chosen)
        taken = set(db.session.scalars(select(Certificate.number).where(Certificate.number.in_(candidates))))
        chosen += sorted(candidates - taken)
    return chosen


def payload(number, organisation, ranges, batches, beneficiary, purpose, detail, retired_at) -> dict:
    """The signed content of a certificate (schema v1; see the PDF and API docs)."""
    projects: dict[str, dict] = {}
    blocks = []
    for r in ranges:
        batch = batches[r.batch_id]
        project = batch.project
        if project.code not in projects:
            projects[project.code] = {
                "code": project.code,
                "name_zh": project.name_zh,
                "name_en": project.name_en,
                "type": project.type,
                "standard": project.standard,
                "methodology": project.methodology,
                "county_zh": project.region.name_zh,
                "county_en": project.region.name_en,
                "registry_id": project.registry_id,
            }
        blocks.append(
            {
                "batch_code": batch.code,
                "project_code": project.code,
                "vintage_start": batch.vintage_start.isoformat(),
                "vintage_end": batch.vintage_end.isoformat(),
                "serial_start": r.serial_start,
                "serial_end": r.serial_end,
                "quantity": r.quantity,
                "label": batch.block_label(r.serial_start, r.serial_end),
                "registry_serial_start": _registry_serial(batch, r.serial_start),
                "registry_serial_end": _registry_serial(batch, r.serial_end),
            }
        )
    return {
        "v": 1,
        "number": number,
        "portal": current_app.config["BASE_URL"].rstrip("/"),
        "issuer": {"zh": "赤峰市碳汇交易平台", "en": "Chifeng Carbon Sink Marketplace"},
        "beneficiary": beneficiary,
        "purpose": str(purpose),
        "purpose_detail": detail,
        "quantity": sum(r.quantity for r in ranges),
        "unit": "tCO2e",
        "retired_at": retired_at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retired_by": {"name": organisation.name_zh, "uscc": organisation.uscc},
        "projects": list(projects.values()),
        "blocks": blocks,
    }


def _registry_serial(batch: Batch, serial: int) -> str:
    unit = batch.registry_unit(serial)
    return "" if unit is None else str(unit)


# --- finding and verifying -----------------------------------------------------------------


class LookupRefused(Exception):
    """Too many failed look-ups from this address: 429."""


@dataclass(frozen=True)
class Found:
    """A certificate's identity and status: all a cached page needs to know is current."""

    id: int
    number: str
    status: str


def _first_row(query):
    """The first row of a read-only ``query``: on PostgreSQL on its own autocommit connection
    (one round trip, and a page drawn from it opens no transaction)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return connection.execute(query).first()
    return db.session.execute(query).first()


def _find_light(number: str) -> Found | None:
    row = _first_row(
        select(Certificate.id, Certificate.number, Certificate.status).where(Certificate.number == number)
    )
    return None if row is None else Found(*row)


def row_of(certificate_id: int) -> Certificate:
    """The certificate's own row, for its page, JSON and PDF, which are all drawn from the signed
    payload: neither the organisation nor the blocks are read, and the object is not in the
    session (one round trip instead of three queries in a transaction)."""
    row = _first_row(select(Certificate.__table__).where(Certificate.id == certificate_id))
    if row is None:
        raise LookupError(certificate_id)
    return Certificate(**row._mapping)


def find(number_text) -> Certificate | None:
    number = numbers.normalise(number_text)
    if number is None:
        return None
    return db.session.scalar(select(Certificate).filter_by(number=number))


def look_up(number_text, address: str) -> Found | None:
    """The certificate for a typed or scanned number; None if there is none (the failure is
    counted against ``address``), LookupRefused once the address has failed too often.

    Found numbers are never throttled: verifiers and QR scans at an event hit real numbers hard,
    while guessing is all failures, so counting failures alone stops enumeration.
    """
    number = numbers.normalise(number_text)
    found = _find_light(number) if number is not None else None
    if found is not None:
        return found
    if throttle.take((LOOKUP_FAILURES, address[:64])) is not None:
        raise LookupRefused()
    return None


#: PDF uploads checked per client address in the look-up window (each may cost a few seconds).
UPLOAD_LIMIT = 20
UPLOADS = throttle.Rule("certificates.upload", UPLOAD_LIMIT, LOOKUP_WINDOW)


def upload_allowed(address: str) -> bool:
    """Count a PDF upload against ``address``; False once it has sent too many recently."""
    return throttle.take((UPLOADS, address[:64])) is None


def public_document(document: dict, source: str | None = None) -> dict:
    """What pages, the PDF and the public JSON show of a certificate's signed ``document``.

    A contract delivery's certificate says it came from an offtake contract, not which: older
    ones signed the contract's number, tranche and title as their purpose details, and those
    stay out of sight (the signed payload itself cannot change without breaking its
    signature). ``source`` is the certificate's recorded source, when the portal knows it."""
    if source != Source.CONTRACT and document.get("source") != Source.CONTRACT:
        return document
    return {**document, "purpose_detail": "", "source": str(Source.CONTRACT)}


def public_purpose_detail(certificate: Certificate) -> str:
    """The purpose details a certificate shows in public (see ``public_document``)."""
    return "" if certificate.source == Source.CONTRACT else certificate.purpose_detail


@dataclass(frozen=True)
class Verification:
    certificate: Certificate
    document: dict
    signature_ok: bool

    @property
    def valid(self) -> bool:
        return self.signature_ok and self.certificate.is_valid

    @property
    def shown(self) -> dict:
        """The document as pages show it (``public_document``)."""
        return public_document(self.document, self.certificate.source)


def verify(certificate: Certificate) -> Verification:
    """The certificate's signed content and whether its signature checks with the published key
    (and the stored columns agree with what was signed)."""
    ok = signing.signature_valid(certificate.payload, certificate.signature, certificate.key_id)
    document = json.loads(certificate.payload)
    ok = (
        ok
        and document.get("number") == certificate.number
        and document.get("quantity") == certificate.quantity
    )
    return Verification(certificate, document, ok)


@dataclass(frozen=True)
class DocumentCheck:
    """The result of checking a payload and signature someone brought (e.g. from a PDF)."""

    signature_ok: bool
    document: dict | None
    certificate: Certificate | None  #: the portal's record of that number, if any
    matches_record: bool  #: the brought payload is exactly the one the portal signed

    @property
    def shown(self) -> dict | None:
        """The document as the check page shows it (``public_document``)."""
        if self.document is None:
            return None
        return public_document(self.document, self.certificate.source if self.matches_record else None)


def check_document(payload: str, signature: str, key_id: str) -> DocumentCheck:
    ok = signing.signature_valid(payload, signature, key_id)
    document = None
    if ok:
        try:
            document = json.loads(payload)
        except ValueError:
            ok = False
    certificate = find(document.get("number", "")) if isinstance(document, dict) else None
    matches = (
        certificate is not None and certificate.payload == payload and certificate.signature == signature
    )
    return DocumentCheck(ok, document if isinstance(document, dict) else None, certificate, matches)


def certificate_url(certificate: Certificate) -> str:
    return absolute_url("certificates.show", number=certificate.number)


# --- revocation ----------------------------------------------------------------------------


def check_revocation(certificate: Certificate, reason) -> str:
    """The reason as it will be kept, if ``certificate`` may be revoked; RetirementError
    otherwise. Changes nothing (the certificate page asks for confirmation next)."""
    reason = clean_text(reason, field="reason", label=_("Reason"), max_length=REASON_MAX, required=True)
    if not certificate.is_valid:
        raise RetirementError("already_revoked", _("This certificate is already revoked."), status=409)
    return reason


def revoke(certificate: Certificate, reason, *, actor: str) -> Certificate:
    """Mark a certificate revoked (e.g. the registry reversed the credits). The credits stay
    retired: they never return to sale."""
    reason = check_revocation(certificate, reason)
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at = utcnow()
    certificate.revoked_reason = reason
    certificate.revoked_by = actor
    from portal.catalog import cache

    cache.bump_revision(db.session.connection())  # the register's cached totals change
    audit.record(
        actor,
        "certificate.revoke",
        "certificate",
        certificate.number,
        before={"status": "valid"},
        after={"status": "revoked", "reason": reason},
    )
    db.session.flush()
    return certificate


# --- the organisation's own ------------------------------------------------------------------


def certificates_of(organisation, limit: int = 200) -> list[Certificate]:
    return list(
        db.session.scalars(
            select(Certificate)
            .filter_by(organisation_id=organisation.id)
            .order_by(Certificate.retired_at.desc(), Certificate.id.desc())
            .limit(limit)
        )
    )
