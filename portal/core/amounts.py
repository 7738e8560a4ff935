"""Amounts as the operator's documents print them: ``¥12,345.00``, and in Chinese capital
numerals (大写金额) as bills and invoices write them. Exact: money is never a float."""

from decimal import Decimal

from portal.core.numbers import CENT

DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")
#: Chinese numbers group by 10^4: 万, 亿 (10^8), 万亿 (10^12).
GROUPS = ("", "万", "亿", "万亿")


def _exact(amount) -> Decimal:
    """``amount`` as a Decimal of whole fen; a float or anything finer than a fen is refused."""
    if isinstance(amount, float | bool):
        raise TypeError("money is a Decimal, an int or a string, never a float")
    value = Decimal(amount)
    if not value.is_finite() or value != value.quantize(CENT):
        raise ValueError(f"not an amount in whole fen: {amount!r}")
    return value.quantize(CENT)


def yuan(amount) -> str:
    """``¥12,345.00``: exact, two decimals, thousands separated."""
    value = _exact(amount)
    return f"-¥{-value:,.2f}" if value < 0 else f"¥{value:,.2f}"


def amount_in_words(amount) -> str:
    """The amount in Chinese capital numerals (大写金额), as bills and invoices write it.

    ``12345`` → 壹万贰仟叁佰肆拾伍元整, ``100001.10`` → 壹拾万零壹元壹角整, ``0.05`` → 伍分,
    ``16409.02`` → 壹万陆仟肆佰零玖元零贰分. A run of zeros inside the number is one 零; a
    leading ten is 壹拾; 整 ends an amount without fen.
    """
    value = _exact(amount)
    if value < 0:
        raise ValueError("a negative amount has no capital form")
    fen_total = int(value * 100)
    whole, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    if whole >= 10 ** (4 * len(GROUPS)):
        raise ValueError("amount too large")
    words = _integer_words(whole)
    if whole:
        words += "元"
    if jiao:
        words += DIGITS[jiao] + "角"
    elif fen and whole:
        words += "零"  # 元 is followed by a zero 角: ¥16,409.02 is …元零贰分
    if fen:
        return words + DIGITS[fen] + "分"
    return (words or "零元") + "整"


def _integer_words(number: int) -> str:
    groups = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    words = ""
    skipped = False  # a group of four zeros since the last digit written
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            skipped = True
            continue
        if words and (skipped or group < 1000):
            words += "零"
        words += _group_words(group) + GROUPS[index]
        skipped = False
    return words


def _group_words(group: int) -> str:
    """1 to 9999 without its group's unit: 1004 → 壹仟零肆, 10 → 壹拾, 1040 → 壹仟零肆拾."""
    words = ""
    zero = False
    for place in (3, 2, 1, 0):
        digit = group // 10**place % 10
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words += "零"
            zero = False
        words += DIGITS[digit] + PLACES[place]
    return words
