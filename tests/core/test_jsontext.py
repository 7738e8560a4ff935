"""The one reader of outside JSON: size and nesting bounded before json.loads recurses."""

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.core import jsontext


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ('"[[[{{{"', 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["]", "\\"[", [[]]]', 3),
        ("[[[]]][[]]", 3),
    ],
)
def test_depth_counts_brackets_outside_strings(text, expected):
    assert jsontext.depth(text) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u4e2d', max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=12,
    )
)
def test_depth_agrees_with_the_parsed_document(document):
    def nesting(value):
        if isinstance(value, list):
            return 1 + max(map(nesting, value), default=0)
        if isinstance(value, dict):
            return 1 + max(map(nesting, value.values()), default=0)
        return 0

    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        assert jsontext.depth(text) == nesting(document)
        assert jsontext.loads(text, max_depth=max(nesting(document), 1)) == document


@pytest.mark.parametrize("levels", [33, 900, sys.getrecursionlimit() * 10, 60_000])
@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deep_nesting_is_refused_before_parsing_never_a_recursion_error(levels, opening):
    closing = "]" if opening == "[" else "}"
    text = opening * levels + "1" + closing * levels
    with pytest.raises(jsontext.JsonRefused) as refused:
        jsontext.loads(text, max_bytes=10**6)
    assert refused.value.code == "too_deep" and refused.value.status == 400
    assert "at most 32 levels" in refused.value.message
    with pytest.raises(jsontext.JsonRefused):
        jsontext.loads(text.encode(), max_bytes=10**6)


def test_unclosed_nesting_is_refused_too():
    with pytest.raises(jsontext.JsonRefused) as refused:
        jsontext.loads("[" * 100_000, max_bytes=10**6)
    assert refused.value.code == "too_deep"


def test_the_limits_are_the_callers():
    assert jsontext.loads("[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(jsontext.JsonRefused):
        jsontext.loads("[[[1]]]", max_depth=2)
    with pytest.raises(jsontext.JsonRefused) as refused:
        jsontext.loads('"' + "x" * 100 + '"', max_bytes=100)
    assert refused.value.code == "too_large" and refused.value.status == 413
    # Bytes are counted as UTF-8: 40 characters of Chinese are 120 bytes.
    with pytest.raises(jsontext.JsonRefused):
        jsontext.loads('"' + "中" * 40 + '"', max_bytes=100)
    with pytest.raises(jsontext.JsonRefused):
        jsontext.loads(b" " * 101, max_bytes=100)


@pytest.mark.parametrize("data", ["", "{", "[1,]", "{'a': 1}", b"\xff\xfe\x00{", b"\x80abc"])
def test_what_is_not_json_is_invalid(data):
    with pytest.raises(jsontext.JsonRefused) as refused:
        jsontext.loads(data)
    assert refused.value.code == "invalid" and refused.value.status == 400


def test_options_reach_json_loads():
    from decimal import Decimal

    assert jsontext.loads('{"a": 0.1}', parse_float=Decimal) == {"a": Decimal("0.1")}
