"""The unified social credit code (统一社会信用代码) of GB 32100-2015.

18 characters: registration authority (1), organisation kind (1), administrative division (6
digits), organisation code (9, the last its own check character in GB 11714), and a check
character over the first 17 computed modulo 31.
"""

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """None when ``code`` is a valid USCC, else a short machine reason."""
    if len(code) != 18:
        return "length"
    if any(c not in ALPHABET for c in code):
        return "characters"
    if not code[2:8].isdigit():
        return "division"
    if check_character(code[:17]) != code[17]:
        return "check"
    return None


def normalise(code: str) -> str:
    return code.strip().upper()
