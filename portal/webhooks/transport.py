"""Sending one webhook: an HTTP POST that cannot be turned against the portal's own network.

Server-side request forgery is the danger of any URL a customer gives: ``http://169.254.169.254/``
(a cloud's metadata service), ``http://127.0.0.1:5432``, an intranet address, or a public name
that resolves to one of them — also after the endpoint was checked (DNS rebinding). So:

- the URL must be ``http(s)``, without user or password, at most 2,048 characters;
- the host is resolved here and **every** address it resolves to must be a global one (not
  loopback, private, link-local, shared, reserved or multicast; IPv4-mapped IPv6 is unwrapped);
- the connection goes to the address that was checked (the name is only sent as ``Host`` and,
  for HTTPS, as the TLS server name, so the certificate is still verified against it);
- redirects are not followed (a 3xx is a failed attempt), the whole exchange has a deadline
  and at most 64 KiB of the answer is read.

Only where the portal runs as the embedded default (``WEBHOOKS_ALLOW_PRIVATE``) may an endpoint
be a local address, so that a developer can receive on their own machine.
"""

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2048
#: The most of an endpoint's answer that is read (the rest is not waited for).
MAX_ANSWER = 64 * 1024
#: Seconds for the whole exchange: connecting, sending, and the answer's status and head.
TIMEOUT = 5.0


class Refused(ValueError):
    """The URL may not be called; ``reason`` is a short code (``scheme``, ``forbidden_address``…)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  #: path and query, as sent


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None  #: None when the endpoint answered 2xx

    @property
    def ok(self) -> bool:
        return self.error is None


def parse(url: str) -> Target:
    """``url`` as a target, or :class:`Refused` when it is not one an endpoint may have."""
    if not isinstance(url, str) or not url.strip():
        raise Refused("empty")
    if len(url) > MAX_URL:
        raise Refused("too_long")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise Refused("malformed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused("malformed", str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise Refused("scheme", parts.scheme)
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials")
    if not parts.hostname:
        raise Refused("malformed", "no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def forbidden(address: str) -> bool:
    """Whether ``address`` is one no webhook may reach: anything but a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(target: Target, *, allow_private: bool) -> str:
    """The address to connect to: the host's first address, once every address it resolves to
    has been checked. :class:`Refused` if it resolves to none, or to one that is forbidden."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused("unresolvable", target.host) from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused("unresolvable", target.host)
    if not allow_private:
        bad = [a for a in addresses if forbidden(a)]
        if bad:
            raise Refused("forbidden_address", bad[0])
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name would resolve to now."""

    def __init__(self, address: str, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, address: str, target: Target, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict, *, allow_private: bool, timeout: float = TIMEOUT) -> Answer:
    """POST ``body`` to ``url`` as described above; never raises for the endpoint's faults."""
    started = time.monotonic()
    try:
        target = parse(url)
        address = resolve(target, allow_private=allow_private)
    except Refused as exc:
        return Answer(None, f"refused: {exc}"[:300])
    if target.scheme == "https":
        connection = _PinnedTLS(address, target, timeout, ssl.create_default_context())
    else:
        connection = _Pinned(address, target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        _drain(response, connection, deadline=started + timeout)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        connection.close()
    if 200 <= status < 300:
        return Answer(status, None)
    if 300 <= status < 400:
        return Answer(status, "redirect not followed")
    return Answer(status, f"HTTP {status}")


def _drain(response, connection, *, deadline: float) -> None:
    """Read (and drop) at most :data:`MAX_ANSWER` bytes of the answer before ``deadline``: an
    endpoint that trickles its body cannot hold a worker longer than the exchange's deadline."""
    read = 0
    while read < MAX_ANSWER:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
        try:
            chunk = response.read1(min(16384, MAX_ANSWER - read))
        except (OSError, http.client.HTTPException):
            return  # the status has arrived; how the rest of the answer ends does not matter
        if not chunk:
            return
        read += len(chunk)
