"""Whole numbers typed into forms or sent in JSON."""


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
