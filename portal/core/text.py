"""What free text the portal stores and prints: one rule for every form and API field."""

import unicodedata

#: Embeddings, overrides and isolates: they can make printed text read other than it is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset(("Cc", "Cs", "Co", "Cn"))


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds control, surrogate, private-use or unassigned characters, or
    direction controls: none belongs in a name, a beneficiary or a purpose on a certificate."""
    return any(unicodedata.category(c) in _REFUSED_CATEGORIES or c in BIDI_CONTROLS for c in text)
