"""Numbers typed into forms or sent in JSON: whole numbers and amounts of money.

One rule each, for every form and API field: ASCII digits only. Python's int() and Decimal()
would also take "١٢" (Arabic-Indic), "１２" (full width), "1_2", " 1 " and, for Decimal, "1E+2",
"NaN" and "Infinity"; none of them is a number anyone means to pay.
"""

import re
from decimal import Decimal

CENT = Decimal("0.01")

#: Yuan: ASCII digits (or thousands grouped by commas, as people write them: "12,345"), then at
#: most one point and two decimals. No sign, exponent, space, underscore or other digit.
_AMOUNT = re.compile(r"(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]{1,2})?")
_AMOUNT_MAX_LENGTH = 40


def whole(value, low: int, high: int) -> int | None:
    """``value`` as an int from ``low`` to ``high``, or None if it is not one.

    Accepts an int (not a bool) or a string of ASCII digits: "12", not "12.0", "1e3", "١٢",
    "²" or True; str.isdigit() alone would let Unicode digits through, which int() refuses."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            return None
        value = int(text)
    if type(value) is not int or not low <= value <= high:
        return None
    return value


def money(value, low: Decimal, high: Decimal) -> Decimal | None:
    """``value`` as an amount with two decimals from ``low`` to ``high``, or None if it is not one.

    Accepts a string as :data:`_AMOUNT` reads it ("68", "68.5", "68.50", "12,345.00"; spaces
    around it are ignored), an int (not a bool), a Decimal with at most two decimals, or a float
    (a JSON number) whose shortest form is such a string: 68.5, not 0.1 + 0.2 (0.30000000000000004)
    nor 1e+16. Refuses "٣", "３", "1E+2", "1e2", "NaN", "Infinity", "1_000", "1 000", "+5", "-5",
    ".5", "5." and "68.505". The same format serves other two-decimal figures (percentages)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, float):
        value = repr(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > 20:
            return None
        value = format(value, "f")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > _AMOUNT_MAX_LENGTH or not _AMOUNT.fullmatch(text):
        return None
    amount = Decimal(text.replace(",", ""))
    if not low <= amount <= high:
        return None
    return amount.quantize(CENT)
