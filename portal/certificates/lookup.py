"""Finding certificates (by number, throttled against guessing), verifying their signatures and
documents brought back to the portal, and listing an organisation's own."""

import json
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from portal.certificates import numbers, signing
from portal.certificates.models import Certificate
from portal.certificates.payload import public_document
from portal.core import throttle
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url
from portal.extensions import db

#: Failed look-ups allowed per client address in the window; found numbers are never counted.
LOOKUP_FAILURE_LIMIT = 30
LOOKUP_WINDOW = timedelta(minutes=10)
LOOKUP_FAILURES = throttle.Rule("certificates.lookup", LOOKUP_FAILURE_LIMIT, LOOKUP_WINDOW)


class LookupRefused(ServiceError):
    """Too many failed look-ups from this address: 429."""

    def __init__(self):
        super().__init__(
            "too_many_lookups", _("Too many requests. Please wait a moment and try again."), status=429
        )


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
    if found is None:
        count_failure(address)
    return found


def count_failure(address: str) -> None:
    """Count a look-up of a number that does not exist against ``address``; LookupRefused once
    it has failed too often."""
    if throttle.take((LOOKUP_FAILURES, address[:64])) is not None:
        raise LookupRefused()


#: PDF uploads checked per client address in the look-up window (each may cost a few seconds).
UPLOAD_LIMIT = 20
UPLOADS = throttle.Rule("certificates.upload", UPLOAD_LIMIT, LOOKUP_WINDOW)


def upload_allowed(address: str) -> bool:
    """Count a PDF upload against ``address``; False once it has sent too many recently
    (``VERIFY_UPLOAD_LIMIT`` in the window, default UPLOAD_LIMIT)."""
    from flask import current_app

    limit = int(current_app.config.get("VERIFY_UPLOAD_LIMIT", UPLOAD_LIMIT))
    rule = UPLOADS if limit == UPLOAD_LIMIT else throttle.Rule(UPLOADS.name, limit, LOOKUP_WINDOW)
    return throttle.announce(rule, address[:64]).allowed  # the answer carries RateLimit-* headers


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


def certificates_of(organisation, limit: int = 200) -> list[Certificate]:
    return list(
        db.session.scalars(
            select(Certificate)
            .filter_by(organisation_id=organisation.id)
            .order_by(Certificate.retired_at.desc(), Certificate.id.desc())
            .limit(limit)
        )
    )
