"""What a retirement request may say: the limits of its text, its purpose, and the digest that
recognises the same request sent again. Refusals are RetirementError."""

import hashlib
import unicodedata

from flask_babel import gettext as _

from portal.certificates import signing
from portal.certificates.models import Purpose
from portal.core.errors import ServiceError
from portal.core.text import has_hidden_characters

BENEFICIARY_MAX = 200
DETAIL_MAX = 300
REASON_MAX = 500
IDEMPOTENCY_KEY_MAX = 200


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
