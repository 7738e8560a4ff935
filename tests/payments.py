"""The embedded payment backend for tests: one localstripe per test session, and the portal
served on a real socket so that localstripe's signed webhooks reach it."""

import json
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    process.terminate()
    process.wait(timeout=10)


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
