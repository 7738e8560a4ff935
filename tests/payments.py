"""The embedded payment backend for tests: one localstripe per test session, and the portal
served on a real socket so that localstripe's signed webhooks reach it."""

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import stripe
from werkzeug.serving import make_server

from portal.extensions import db

#: Ports for the servers tests start lie below the system's ephemeral range (where bind(0) and
#: outgoing connections take theirs), from here on.
FIRST_SERVER_PORT = 10000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a server a test starts (and binds a moment later).

    Under pytest-xdist each worker draws from its own slice of the ports below the ephemeral
    range, so that two workers never pick the same port, and no connection's or ``bind(0)``'s
    port takes it meanwhile; a port is tried by binding it. Alone, pytest draws from the whole
    range.
    """
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (_ephemeral_start() - FIRST_SERVER_PORT) // workers
    if size < 100:  # an unusual ephemeral range: the system picks, as when pytest runs alone
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    first = FIRST_SERVER_PORT + worker * size
    for port in random.SystemRandom().sample(range(first, first + size), min(size, 200)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + size - 1}")


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    exe = Path(sys.executable).with_name("localstripe")
    if not exe.exists():
        pytest.skip("localstripe is not installed (pip install -e '.[dev]')")
    port = free_port()
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(exe), "--port", str(port), "--from-scratch"], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            request = urllib.request.Request(
                f"{base}/v1/customers", headers={"Authorization": "Bearer sk_test_x"}
            )
            urllib.request.urlopen(request, timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"localstripe did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    yield base
    stop(process)


def stop(process) -> None:
    """Ends a server the tests started: asked to stop, then killed if it has not within 30 s (a
    gunicorn on a loaded machine can take longer than its graceful timeout to wind down)."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


class LiveShop:
    """The test app served on a socket, localstripe's webhook pointing at it."""

    def __init__(self, app, stripe_base):
        self.app = app
        self.secret = "whsec_" + secrets.token_hex(16)
        app.config.update(
            STRIPE_API_BASE=stripe_base,
            STRIPE_SECRET_KEY="sk_test_portal",
            STRIPE_PUBLISHABLE_KEY="pk_test_portal",
            STRIPE_WEBHOOK_SECRET=self.secret,
        )
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        data = urllib.parse.urlencode({"url": f"{self.url}/stripe/webhook", "secret": self.secret}).encode()
        urllib.request.urlopen(f"{stripe_base}/_config/webhooks/portal", data=data, timeout=5).read()
        self.stripe = stripe.StripeClient("sk_test_portal", base_addresses={"api": stripe_base})

    def close(self):
        self.server.shutdown()
        self.thread.join(timeout=10)

    def sign(self, event: dict, timestamp: int | None = None) -> tuple[str, dict]:
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, self.secret, timestamp=timestamp)
        return payload, {"Stripe-Signature": header, "Content-Type": "application/json"}


def wait_for(predicate, timeout: float = 15.0):
    """Poll the database (each time in a fresh, short transaction) until ``predicate()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        value = predicate()
        # End the transaction before sleeping: on SQLite every transaction takes the write lock
        # (BEGIN IMMEDIATE), and the webhook's handler needs it.
        db.session.commit()
        if value:
            return value
        if time.monotonic() > deadline:
            from sqlalchemy import select

            from portal.payments.models import WebhookEvent

            seen = [(e.type, e.object_id, e.outcome) for e in db.session.scalars(select(WebhookEvent))]
            raise AssertionError(f"timed out waiting for the webhook's effect; events handled: {seen}")
        time.sleep(0.1)


def intent_event(intent: dict, type_: str = "payment_intent.succeeded", event_id: str | None = None) -> dict:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "data": {"object": intent},
    }


def post_event(client, app, event: dict):
    """Deliver ``event`` to the portal's webhook, signed with the app's secret (set here if none)."""
    secret = app.config.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_" + secrets.token_hex(16))
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return client.post("/stripe/webhook", data=payload, headers={"Stripe-Signature": header})


def charge_refunded(intent_id: str, fen: int, event_id: str | None = None) -> dict:
    """A ``charge.refunded`` event as Stripe sends it (``amount_refunded`` is the total so far;
    the charge's metadata may be empty)."""
    charge = {"id": "ch_" + intent_id, "object": "charge", "payment_intent": intent_id, "metadata": {}}
    return intent_event({**charge, "amount_refunded": fen}, "charge.refunded", event_id)
