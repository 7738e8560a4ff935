"""Retiring credits from an organisation's own holding: checked first for the confirmation page,
then done, with an idempotency key for the API."""

import contextlib
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.buyers import policy
from portal.buyers import services as buyers
from portal.certificates.checks import (
    BENEFICIARY_MAX,
    DETAIL_MAX,
    RetirementError,
    clean_text,
    parse_purpose,
)
from portal.certificates.issuing import retire_into_certificate
from portal.certificates.models import Certificate, Purpose, Source
from portal.core import idempotency
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, LedgerError
from portal.ledger.models import Batch


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
    if idempotency.check_key(idempotency_key, RetirementError) is not None:
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
    # A savepoint only where a failure is answered from what is already there: a request whose
    # idempotency key another, simultaneous request used first. Otherwise a refusal has written
    # nothing (the ledger refuses before it writes) and any other failure ends the transaction.
    try:
        with db.session.begin_nested() if idempotency_key is not None else contextlib.nullcontext():
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
    return idempotency.replay(earlier, digest, RetirementError)


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
