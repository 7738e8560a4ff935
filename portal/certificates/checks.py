"""What a retirement request may say: the limits of its text, its purpose, and the digest that
recognises the same request sent again. Refusals are RetirementError."""

from flask_babel import gettext as _

from portal.certificates.models import Purpose
from portal.core import text as text_rules
from portal.core.errors import ServiceError

BENEFICIARY_MAX = 200
DETAIL_MAX = 300
REASON_MAX = 500


class RetirementError(ServiceError):
    """A refused retirement or certificate action: nothing changed."""


def clean_text(value, *, field: str, label: str, max_length: int, required: bool) -> str:
    """``value`` as stored text (``core.text.clean_text``), or a RetirementError naming ``label``."""
    return text_rules.clean_text(
        value, field=field, label=label, max_length=max_length, required=required, error=RetirementError
    )


def parse_purpose(value) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        raise RetirementError(
            "invalid_purpose",
            _("The purpose must be one of: voluntary, event, compliance."),
            field="purpose",
        ) from None
