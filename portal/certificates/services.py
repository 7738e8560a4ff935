"""Certificates: the public interface of the package.

Views, the API, the PDF, other packages and tests import from here; each rule lives in its own
module:

* ``checks``: what a retirement request may say (text limits, purpose, request digest) and
  RetirementError;
* ``retiring``: retiring from an organisation's holding, and checking it first;
* ``issuing``: retiring into signed certificates (every flow that retires goes through it) and
  their numbers;
* ``payload``: a certificate's signed content and what of it is shown in public;
* ``lookup``: finding certificates (throttled), verifying them and documents brought back, and
  an organisation's own;
* ``revocation``: revoking a certificate.

A test that replaces something a rule calls (the clock) patches the module the rule lives in,
not this one.
"""

from portal.certificates.checks import (
    BENEFICIARY_MAX,
    DETAIL_MAX,
    REASON_MAX,
    RetirementError,
    clean_text,
    parse_purpose,
)
from portal.certificates.issuing import Part, retire_into_certificate, retire_into_certificates, retiring
from portal.certificates.lookup import (
    LOOKUP_FAILURE_LIMIT,
    UPLOAD_LIMIT,
    LookupRefused,
    certificate_url,
    certificates_of,
    check_document,
    find,
    look_up,
    row_of,
    upload_allowed,
    verify,
)
from portal.certificates.payload import payload, public_document, public_purpose_detail
from portal.certificates.retiring import RetirementPlan, check_retirement, retire_from_holding
from portal.certificates.revocation import check_revocation, revoke

__all__ = [
    "BENEFICIARY_MAX",
    "DETAIL_MAX",
    "LOOKUP_FAILURE_LIMIT",
    "REASON_MAX",
    "UPLOAD_LIMIT",
    "LookupRefused",
    "Part",
    "RetirementError",
    "RetirementPlan",
    "certificate_url",
    "certificates_of",
    "check_document",
    "check_retirement",
    "check_revocation",
    "clean_text",
    "find",
    "look_up",
    "parse_purpose",
    "payload",
    "public_document",
    "public_purpose_detail",
    "retire_from_holding",
    "retire_into_certificate",
    "retire_into_certificates",
    "retiring",
    "revoke",
    "row_of",
    "upload_allowed",
    "verify",
]
