"""Money as the portal counts it: yuan as exact Decimals with two places, fen as integers, and
sharing an amount between parts to the fen. Never a float.

- ``fen(amount)``: yuan → integer fen, refusing an amount finer than a fen (the Stripe boundary,
  revenue lines and the exact shares all count fen).
- ``yuan_of(fen)``: integer fen → yuan with exactly two decimals (``-820.20``, not ``-820.2``).
- ``apportion(total, weights)``: ``total`` shared in proportion to ``weights`` by largest
  remainders, so the parts always add up to the total.

How money is typed in (forms and JSON) is ``core.numbers.money``; how it is printed,
``core.i18n.yuan``.
"""

from decimal import Decimal

from portal.core.numbers import CENT

__all__ = ["CENT", "MAX_PRICE_PER_T", "apportion", "fen", "yuan_of"]

#: The highest price per tonne the portal takes anywhere: a listing, a contract's price (and each
#: year's escalated or fixed price), a catalog search's price filter.
MAX_PRICE_PER_T = Decimal("100000")


def fen(amount) -> int:
    """``amount`` (yuan: a Decimal, an int, or a string of one) as a whole number of fen."""
    value = Decimal(amount) * 100
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of fen")
    return int(value)


def yuan_of(amount_fen: int) -> Decimal:
    """Yuan with exactly two decimals for ``amount_fen`` fen."""
    return Decimal(int(amount_fen)).scaleb(-2)


def apportion(total: int, weights: list[int]) -> list[int]:
    """``total`` shared in proportion to the non-negative integer ``weights``, exactly: each part
    is its proportional share rounded down, and what is left goes one by one to the parts with the
    largest remainders (ties: the earlier part). The parts add up to ``total``; when ``total`` is
    at most the sum of the weights, no part exceeds its weight. All weights zero: all parts zero."""
    if any(w < 0 for w in weights) or total < 0:
        raise ValueError("apportion takes non-negative amounts")
    whole = sum(weights)
    if not whole:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares
