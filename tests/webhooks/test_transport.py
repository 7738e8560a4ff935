"""Calling an endpoint cannot be turned against the portal's own network, and an endpoint that
misbehaves (slow, redirecting, huge answers) cannot hold a worker."""

import time

import pytest

from portal.webhooks import transport
from tests.webhooks.receiver import serve


@pytest.fixture
def receiver():
    server, state = serve()
    yield state
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://" + "a" * 2050 + ".com/", "too_long"),
        ("https://exa mple.com/", "malformed"),
        ("https://example.com:99999/", "malformed"),
        ("https:///nohost", "malformed"),
        ("", "empty"),
    ],
)
def test_urls_that_are_not_endpoints_are_refused(url, reason):
    with pytest.raises(transport.Refused) as refused:
        transport.parse(url)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # a cloud's metadata service
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_every_non_global_address_is_forbidden(address):
    assert transport.forbidden(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert not transport.forbidden(address)


def test_a_name_resolving_to_a_local_address_is_refused_unless_allowed():
    target = transport.parse("http://localhost:8000/hook")
    with pytest.raises(transport.Refused) as refused:
        transport.resolve(target, allow_private=False)
    assert refused.value.reason == "forbidden_address"
    assert transport.forbidden(transport.resolve(target, allow_private=True))


def test_a_refused_url_is_never_called(receiver):
    answer = transport.post(receiver.url, b"{}", {}, allow_private=False)
    assert not answer.ok and answer.error.startswith("refused: forbidden_address")
    assert receiver.received == []


def test_a_2xx_answer_is_a_delivery(receiver):
    answer = transport.post(receiver.url, b'{"a":1}', {"X-Test": "1"}, allow_private=True)
    assert answer.ok and answer.status_code == 200
    path, headers, body = receiver.received[0]
    assert (path, body, headers["X-Test"]) == ("/hook", b'{"a":1}', "1")


def test_a_redirect_is_not_followed(receiver):
    receiver.status, receiver.location = 302, "http://169.254.169.254/latest/meta-data/"
    answer = transport.post(receiver.url, b"{}", {}, allow_private=True)
    assert (answer.ok, answer.status_code, answer.error) == (False, 302, "redirect not followed")
    assert len(receiver.received) == 1


def test_an_error_status_is_a_failed_attempt(receiver):
    receiver.status = 503
    answer = transport.post(receiver.url, b"{}", {}, allow_private=True)
    assert (answer.ok, answer.status_code, answer.error) == (False, 503, "HTTP 503")


def test_a_slow_endpoint_is_given_up_at_the_deadline(receiver):
    receiver.delay = 3
    started = time.monotonic()
    answer = transport.post(receiver.url, b"{}", {}, allow_private=True, timeout=0.5)
    assert not answer.ok and "timed out" in answer.error.lower()
    assert time.monotonic() - started < 2.5


def test_a_huge_answer_is_not_read_whole(receiver):
    receiver.body = b"x" * (5 * 1024 * 1024)
    answer = transport.post(receiver.url, b"{}", {}, allow_private=True)
    assert answer.ok and answer.status_code == 200


def test_nothing_listening_is_a_failed_attempt():
    answer = transport.post("http://127.0.0.1:9/hook", b"{}", {}, allow_private=True, timeout=1)
    assert not answer.ok and answer.status_code is None and "Connection" in answer.error
