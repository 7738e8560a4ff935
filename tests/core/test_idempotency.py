"""Idempotency keys: one length rule, one digest, one refusal for a key reused differently."""

import hashlib
from types import SimpleNamespace

import pytest

from portal.certificates import signing
from portal.core.errors import ServiceError
from portal.core.idempotency import KEY_MAX, check_key, replay, request_digest


def test_a_key_is_one_to_two_hundred_characters(app):
    assert check_key(None) is None
    assert check_key("k") == "k" and check_key("k" * KEY_MAX) == "k" * KEY_MAX
    for bad in ("", "k" * (KEY_MAX + 1), 12, ["k"]):
        with pytest.raises(ServiceError) as refused:
            check_key(bad)
        assert refused.value.code == "invalid_idempotency_key" and refused.value.status == 400


def test_the_digest_is_of_canonical_json_whatever_the_key_order():
    one = request_digest({"quantity": 5, "beneficiary": "赤峰"})
    assert one == request_digest({"beneficiary": "赤峰", "quantity": 5})
    assert one != request_digest({"beneficiary": "赤峰", "quantity": 6})
    assert len(one) == 64
    # The same text the certificate payload is signed over, so digests already stored still match.
    document = {"b": [1, "二"], "a": None}
    assert request_digest(document) == hashlib.sha256(signing.canonical(document).encode()).hexdigest()
    assert request_digest({"x": "\ud800"})  # a lone surrogate is compared, never an error


def test_a_repeat_is_answered_with_the_first_result_and_a_different_request_is_refused(app):
    first = SimpleNamespace(request_digest=request_digest({"q": 1}))
    assert replay(None, request_digest({"q": 1})) is None
    assert replay(first, request_digest({"q": 1})) is first
    assert replay(first, None) is first
    with pytest.raises(ServiceError) as refused:
        replay(first, request_digest({"q": 2}))
    assert refused.value.code == "idempotency_key_reused" and refused.value.status == 422
