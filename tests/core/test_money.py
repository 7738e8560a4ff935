"""Money's building blocks: fen and yuan, and sharing to the fen."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.money import apportion, fen, yuan_of


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("68.50"), 6850),
        (Decimal("0.01"), 1),
        (7, 700),
        ("1234.5", 123450),
        (Decimal("-820.2"), -82020),
    ],
)
def test_yuan_become_fen_exactly(amount, expected):
    assert fen(amount) == expected


@pytest.mark.parametrize("amount", [Decimal("0.001"), Decimal("68.505"), Decimal("NaN"), Decimal("Infinity")])
def test_an_amount_finer_than_a_fen_is_refused(amount):
    with pytest.raises(ValueError):
        fen(amount)


def test_fen_become_yuan_with_two_decimals():
    assert str(yuan_of(-82020)) == "-820.20"
    assert str(yuan_of(5)) == "0.05"
    assert yuan_of(6850) == Decimal("68.50")


def test_shares_go_to_the_largest_remainders_and_ties_to_the_earlier_part():
    assert apportion(100, [1, 1, 1]) == [34, 33, 33]
    assert apportion(10, [5, 3, 2]) == [5, 3, 2]
    assert apportion(7, [2, 5]) == [2, 5]
    assert apportion(5, [3, 3, 4]) == [2, 1, 2]  # remainders 0.5, 0.5, 0: the earlier 0.5 wins
    assert apportion(0, [3, 4]) == [0, 0]
    assert apportion(5, [0, 0]) == [0, 0]


def test_negative_amounts_are_refused():
    with pytest.raises(ValueError):
        apportion(-1, [1])
    with pytest.raises(ValueError):
        apportion(1, [1, -1])


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30), st.data())
def test_the_parts_add_up_and_none_exceeds_its_weight(weights, data):
    total = data.draw(st.integers(0, sum(weights)))
    parts = apportion(total, weights)
    assert len(parts) == len(weights)
    if sum(weights):
        assert sum(parts) == total
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))
    # Each part is within one fen of its exact proportional share.
    whole = sum(weights) or 1
    assert all(abs(p * whole - total * w) < whole for p, w in zip(parts, weights, strict=True))
