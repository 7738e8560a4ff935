"""Certificate numbers: ``CFC-2026-7K3Q-9XHD``.

Seven random Crockford base-32 characters (35 bits: nothing about sales can be read from a number
and guessing one is hopeless) and a check character computed with the Luhn mod 32 algorithm over
the year and the random part, which catches every single mistyped character and every swap of
two neighbours. Typing is forgiving: case, spaces, and the look-alikes O/I/L are normalised.
"""

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
PATTERN = re.compile(r"^CFC-(\d{4})-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{4})$")


def check_character(text: str) -> str:
    """Luhn mod N (N = 32) over ``text`` (characters of the alphabet)."""
    factor, total = 2, 0
    for char in reversed(text):
        addend = factor * _VALUE[char]
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def new_number(year: int) -> str:
    bits = secrets.randbits(35)  # seven characters of five bits, drawn at once
    body = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(30, -1, -5))
    check = check_character(f"{year:04d}{body}")
    full = body + check
    return f"CFC-{year:04d}-{full[:4]}-{full[4:]}"


def normalise(text: str) -> str | None:
    """The canonical form of a typed number, or None if it cannot be one (wrong shape or check)."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    compact = "".join(text.split()).upper().replace("-", "")
    if not compact.isascii() or len(compact) != 15 or not compact.startswith("CFC"):
        return None
    tail = compact[3:].translate(_LOOKALIKES)
    year, rest = tail[:4], tail[4:]
    if not year.isdigit() or any(c not in _VALUE for c in rest):
        return None
    if check_character(year + rest[:7]) != rest[7]:
        return None
    return f"CFC-{year}-{rest[:4]}-{rest[4:]}"
