"""Amounts of money: one strict reader (portal.core.numbers.money) for every form and API field."""

import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.core.numbers import money

ZERO, HIGH = Decimal(0), Decimal("999999999999.99")

#: Every decimal digit Unicode knows that is not 0-9: Python's Decimal() reads them all.
OTHER_DIGITS = [
    c for c in map(chr, range(0x110000)) if unicodedata.category(c) == "Nd" and not ("0" <= c <= "9")
]

plain = st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,2})?\Z")
grouped = st.from_regex(r"\A[1-9][0-9]{0,2}(,[0-9]{3}){1,3}(\.[0-9]{1,2})?\Z")
amounts = plain | grouped


@settings(max_examples=500, deadline=None)
@given(amounts, st.sampled_from(["", " ", "\t", "\n"]))
def test_an_accepted_amount_is_exactly_what_was_written(text, space):
    amount = money(space + text + space, ZERO, Decimal("1e16"))
    assert amount == Decimal(text.replace(",", ""))  # exact: no float on the way
    assert amount.as_tuple().exponent == -2
    # And it reads back as itself, written plainly or grouped.
    assert money(format(amount, "f"), ZERO, Decimal("1e16")) == amount
    assert money(f"{amount:,.2f}", ZERO, Decimal("1e16")) == amount


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_whatever_is_accepted_is_ascii_digits_and_one_point(text):
    amount = money(text, ZERO, HIGH)
    if amount is not None:
        core = text.strip().replace(",", "")
        assert core.isascii() and core.count(".") <= 1 and core.replace(".", "").isdigit()
        assert Decimal(core) == amount


@settings(max_examples=500, deadline=None)
@given(amounts, st.sampled_from(OTHER_DIGITS), st.integers(min_value=0, max_value=20))
def test_a_non_ascii_digit_anywhere_is_refused(text, digit, position):
    position %= len(text) + 1
    for changed in (
        text[:position] + digit + text[position:],
        text[:position] + digit + text[position + 1 :],
    ):
        assert money(changed, ZERO, Decimal("1e16")) is None


@settings(max_examples=500, deadline=None)
@given(
    plain,
    st.sampled_from(["e", "E"]),
    st.sampled_from(["", "+", "-"]),
    st.integers(min_value=0, max_value=99),
)
def test_an_exponent_is_refused(text, e, sign, exponent):
    assert money(f"{text}{e}{sign}{exponent}", ZERO, Decimal("1e16")) is None


@settings(max_examples=500, deadline=None)
@given(st.floats())
def test_a_json_float_is_taken_only_as_exactly_what_it_prints(number):
    amount = money(number, ZERO, HIGH)
    if amount is not None:
        assert Decimal(repr(number)) == amount


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_a_float_with_binary_noise_is_refused(a, b):
    number = a / 100 + b / 100  # 0.1 + 0.2 is 0.30000000000000004
    amount = money(number, ZERO, HIGH)
    exact = Decimal(a + b) / 100
    assert amount is None or amount == exact
    if Decimal(repr(number)) != exact:
        assert amount is None


@pytest.mark.parametrize(
    "value",
    [
        "\u0663",  # ٣: Arabic-Indic three, which Decimal() reads as 3
        "\u0661\u0662.\u0665",
        "\uff13",  # full-width three
        "\u0968",  # Devanagari two
        "1E+2",
        "1e2",
        "1e-2",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1_000",
        "1 000",
        "1\u00a0000",
        "+5",
        "-5",
        "-0",
        ".5",
        "5.",
        "68.505",
        "1,2,3",
        "12,34",
        "1,0000",
        ",100",
        "0x10",
        "",
        " ",
        "1..2",
        "²",
        True,
        False,
        None,
        [68],
        {"amount": "68"},
        0.1 + 0.2,
        1e16,
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("68.505"),
        -5,
    ],
)
def test_refused(value):
    assert money(value, ZERO, HIGH) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("68", "68.00"),
        ("68.5", "68.50"),
        ("68.50", "68.50"),
        (" 68.50 ", "68.50"),
        ("12,345.67", "12345.67"),
        ("007", "7.00"),
        (68, "68.00"),
        (68.5, "68.50"),
        (68.1, "68.10"),
        (Decimal("68.5"), "68.50"),
        (Decimal("1E+2"), "100.00"),
    ],
)
def test_accepted(value, expected):
    assert str(money(value, ZERO, HIGH)) == expected


def test_the_bounds_are_the_fields():
    assert money("0", ZERO, Decimal(100)) == 0
    assert money("0", Decimal("0.01"), Decimal(100)) is None
    assert money("100", ZERO, Decimal(100)) == 100
    assert money("100.01", ZERO, Decimal(100)) is None
    assert money("9" * 40, ZERO, HIGH) is None
