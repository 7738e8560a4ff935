"""What free text the portal stores and prints: one rule for every form and API field."""

import re
import unicodedata

from flask_babel import gettext as _

from portal.core.errors import ServiceError
from portal.core.jsontext import MAX_DEPTH

#: Embeddings, overrides and isolates: they can make printed text read other than it is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset(("Cc", "Cs", "Co", "Cn"))


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds control, surrogate, private-use or unassigned characters, or
    direction controls: none belongs in a name, a beneficiary or a purpose on a certificate."""
    return any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in BIDI_CONTROLS for c in text)


#: Characters no database column stores as text: NUL, and lone UTF-16 surrogates (JSON's
#: ``"\ud800"`` escapes decode to them, and UTF-8 cannot encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable_text(value, depth: int = 0) -> bool:
    """Whether a parsed JSON body holds a NUL or a lone surrogate in any string, key or value (or
    is nested deeper than ``jsontext`` reads). API endpoints that take JSON ask this before
    reading the body."""
    if depth > MAX_DEPTH:
        return True  # not reached: jsontext.loads refuses such a body before parsing it
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(
            has_unstorable_text(k, depth + 1) or has_unstorable_text(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(has_unstorable_text(v, depth + 1) for v in value)
    return False


def clean_text(
    value,
    *,
    field: str,
    label: str,
    max_length: int,
    required: bool,
    error: type[ServiceError] = ServiceError,
) -> str:
    """``value`` as stored text (NFC, trimmed), or ``error`` (the calling package's kind of
    ``ServiceError``) naming ``label``: text, present when ``required``, at most ``max_length``
    characters, and nothing hidden (see ``has_hidden_characters``)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise error("invalid_" + field, _("%(field)s must be text.", field=label), field=field)
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise error("invalid_" + field, _("%(field)s is required.", field=label), field=field)
    if len(text) > max_length:
        raise error(
            "invalid_" + field,
            _("%(field)s may be at most %(n)s characters.", field=label, n=max_length),
            field=field,
        )
    if has_hidden_characters(text):
        raise error(
            "invalid_" + field,
            _("%(field)s contains control or direction-override characters.", field=label),
            field=field,
        )
    return text
