"""Events are written with the change they report and delivered, signed, at least once: never
for a change that rolled back, retried with backoff for three days, taken over after a worker
dies mid-send, and never sent twice by two workers at once."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.buyers import services as buyers
from portal.buyers.models import Organisation
from portal.certificates import services as certificates
from portal.extensions import db
from portal.timeutil import utcnow
from portal.webhooks import services as webhooks
from portal.webhooks.models import (
    DeliveryStatus,
    OutgoingEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests import factories
from tests.webhooks.receiver import serve

ALL = ["certificate.issued", "certificate.revoked", "order.fulfilled"]


@pytest.fixture
def receiver():
    server, state = serve()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def steel(any_app):
    any_app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=500, code="B-2022", vintage=2022)
    buyers.deliver_from_inventory(steel, 100)
    db.session.commit()
    return steel


def _retire(organisation, quantity=5):
    certificate, _created = certificates.retire_from_holding(
        organisation, quantity, beneficiary="测试钢铁", purpose="voluntary", actor="t"
    )
    return certificate


def _verify(secret: str, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


def test_a_retirement_is_delivered_signed(steel, receiver):
    _endpoint, secret = webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    certificate = _retire(steel)
    db.session.commit()
    assert webhooks.deliver_due() == {"delivered": 1, "failed_attempts": 0}
    ((path, headers, body),) = receiver.received
    assert _verify(secret, headers["Portal-Signature"], body)
    assert not _verify("whsec_other", headers["Portal-Signature"], body)
    document = json.loads(body)
    assert document["type"] == "certificate.issued" and document["id"].startswith("evt_")
    assert headers["Portal-Event-Id"] == document["id"]
    assert document["data"]["certificate"]["number"] == certificate.number
    assert document["data"]["certificate"]["quantity"] == 5
    delivery = db.session.scalar(select(WebhookDelivery))
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert db.session.scalar(select(func.count(WebhookAttempt.id))) == 1
    assert webhooks.deliver_due() == {"delivered": 0, "failed_attempts": 0}  # once is enough


def test_a_change_that_rolled_back_sends_nothing(steel, receiver):
    webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    db.session.commit()
    _retire(steel)
    db.session.rollback()
    assert db.session.scalar(select(func.count(OutgoingEvent.id))) == 0
    webhooks.deliver_due()
    assert receiver.received == []


def test_nothing_is_stored_for_an_event_no_endpoint_wants(steel, receiver):
    webhooks.create_endpoint(steel, receiver.url, ["invoice.paid"], actor="t")
    _retire(steel)
    db.session.commit()
    assert db.session.scalar(select(func.count(OutgoingEvent.id))) == 0


def test_each_endpoint_gets_only_its_own_organisations_events(steel, receiver):
    from portal.buyers.models import Organisation

    cement = db.session.scalar(select(Organisation).filter_by(uscc=factories.CEMENT_USCC))
    webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    buyers.deliver_from_inventory(cement, 10)
    _retire(cement)
    _retire(steel)
    db.session.commit()
    webhooks.deliver_due()
    assert len(receiver.received) == 1


def test_a_revocation_is_an_event_too(steel, receiver):
    webhooks.create_endpoint(steel, receiver.url, ["certificate.revoked"], actor="t")
    certificate = _retire(steel)
    certificates.revoke(certificate, "registry reversal of the batch", actor="operator")
    db.session.commit()
    webhooks.deliver_due()
    ((_path, _headers, body),) = receiver.received
    data = json.loads(body)["data"]["certificate"]
    assert (data["number"], data["reason"]) == (certificate.number, "registry reversal of the batch")


def test_failures_are_retried_with_backoff_then_given_up_after_three_days(steel, receiver):
    receiver.status = 500
    webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    _retire(steel)
    db.session.commit()
    start = utcnow()
    assert webhooks.deliver_due(now=start) == {"delivered": 0, "failed_attempts": 1}
    delivery = db.session.scalar(select(WebhookDelivery))
    first_wait = delivery.next_attempt_at - utcnow()
    assert timedelta(seconds=50) < first_wait <= timedelta(minutes=1)
    assert webhooks.deliver_due(now=start + timedelta(seconds=30))["failed_attempts"] == 0  # not due
    webhooks.deliver_due(now=delivery.next_attempt_at)
    db.session.refresh(delivery)
    assert delivery.attempts == 2 and delivery.next_attempt_at - utcnow() > timedelta(minutes=1, seconds=50)
    assert [webhooks.backoff(n) for n in (1, 2, 3, 10, 30)] == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(hours=6),
        timedelta(hours=6),
    ]
    # Three days on, the next failure gives it up; "send again" starts a new round.
    delivery.first_due_at = utcnow() - timedelta(days=3, seconds=1)
    delivery.next_attempt_at = utcnow()
    db.session.commit()
    webhooks.deliver_due()
    db.session.refresh(delivery)
    assert (delivery.status, delivery.next_attempt_at, delivery.last_error) == ("failed", None, "HTTP 500")
    receiver.status = 200
    webhooks.redeliver(steel, delivery.id, actor="t")
    db.session.commit()
    assert webhooks.deliver_due()["delivered"] == 1
    db.session.refresh(delivery)
    assert delivery.status == DeliveryStatus.DELIVERED
    event_ids = {json.loads(body)["id"] for _p, _h, body in receiver.received}
    assert len(event_ids) == 1 and len(receiver.received) == 4


def test_a_delivery_a_worker_took_and_never_finished_is_sent_again_after_the_lease(steel, receiver):
    from portal.core.database import unit_of_work
    from portal.webhooks import delivery as delivering

    webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    _retire(steel)
    db.session.commit()
    now = utcnow()
    with unit_of_work():
        assert len(delivering._claim(10, now)) == 1  # the worker dies here, before recording
    assert webhooks.deliver_due(now=now + timedelta(minutes=1))["delivered"] == 0  # still held
    assert webhooks.deliver_due(now=now + timedelta(minutes=3))["delivered"] == 1
    assert len(receiver.received) == 1


def test_a_removed_endpoint_gets_nothing_more(steel, receiver):
    endpoint, _secret = webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    _retire(steel)
    webhooks.delete_endpoint(steel, endpoint.public_id, actor="t")
    db.session.commit()
    webhooks.deliver_due()
    assert receiver.received == []
    delivery = db.session.scalar(select(WebhookDelivery))
    assert delivery.status == "failed" and delivery.last_error == "endpoint removed"
    with pytest.raises(webhooks.WebhookError) as refused:
        webhooks.redeliver(steel, delivery.id, actor="t")
    assert refused.value.code == "endpoint_removed"


def test_endpoints_read_once_per_transaction_still_see_every_change(steel):
    """The endpoints are read once per transaction (a fulfilment emits two events): one added
    or removed in the same transaction, or in another one since, is seen at the next event."""
    assert _retire(steel) and db.session.scalar(select(func.count()).select_from(OutgoingEvent)) == 0
    endpoint, _secret = webhooks.create_endpoint(steel, "http://127.0.0.1:9/hook", ALL, actor="t")
    _retire(steel)  # same transaction, after an event was emitted with no endpoint
    assert db.session.scalar(select(func.count()).select_from(OutgoingEvent)) == 1
    webhooks.delete_endpoint(steel, endpoint.public_id, actor="t")
    _retire(steel)
    assert db.session.scalar(select(func.count()).select_from(OutgoingEvent)) == 1
    db.session.commit()
    webhooks.create_endpoint(steel, "http://127.0.0.1:9/other", ALL, actor="t")
    db.session.commit()
    _retire(steel)  # a new transaction
    assert db.session.scalar(select(func.count()).select_from(OutgoingEvent)) == 2


@pytest.mark.postgres
def test_two_workers_at_once_deliver_each_event_once(pg_app, receiver):
    from tests.concurrency import race

    pg_app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=500, code="B-2022", vintage=2022)
    buyers.deliver_from_inventory(steel, 100)
    webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
    for _ in range(30):
        _retire(steel, 1)
    db.session.commit()
    receiver.delay = 0.01

    def work(_i):
        total = 0
        for _ in range(5):
            total += webhooks.deliver_due(limit=4)["delivered"]
        return total

    results = race(pg_app, 2, work)
    ids = [json.loads(body)["id"] for _p, _h, body in receiver.received]
    assert len(ids) == len(set(ids)) == 30 and sum(results) == 30


def test_killing_the_sender_mid_send_delivers_the_event_once_more(tmp_path, receiver):
    """A real process sending, killed while the endpoint holds the request; started again after
    the lease, it delivers the same event (never zero times)."""
    database = tmp_path / "portal.db"
    env = {
        **os.environ,
        "FLASK_APP": "portal",
        "PORTAL_DATABASE_URL": f"sqlite:///{database}",
        "PORTAL_SECRET_KEY": "test",
        "PORTAL_WEBHOOKS_LEASE_SECONDS": "1",
        "PORTAL_LOG_LEVEL": "WARNING",
    }
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, capture_output=True)
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{database}", WEBHOOKS_ALLOW_PRIVATE=True)
    with app.app_context():
        steel, _cement = factories.steel_and_cement()
        factories.batch(quantity=50, code="B-2022", vintage=2022)
        buyers.deliver_from_inventory(steel, 10)
        webhooks.create_endpoint(steel, receiver.url, ALL, actor="t")
        _retire(steel, 2)
        db.session.commit()
        db.session.remove()
    receiver.gate = threading.Event()
    sender = subprocess.Popen(
        [*flask, "webhooks", "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.received, "the sender never reached the endpoint"
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait(10)
    receiver.gate = None
    time.sleep(1.2)  # the lease runs out
    again = subprocess.run(
        [*flask, "webhooks", "deliver"], env=env, capture_output=True, text=True, timeout=120
    )
    assert "1 delivered" in again.stdout, again.stderr
    ids = [json.loads(body)["id"] for _p, _h, body in receiver.received]
    assert len(ids) == 2 and len(set(ids)) == 1


def test_the_endpoints_an_event_goes_to_are_those_of_its_own_transaction(steel):
    """Endpoints are read in the event's transaction (on PostgreSQL through the driver's SQL, as
    the ORM would read them: what the transaction has pending is flushed first): one added in it
    gets the event, one deleted in it does not, another organisation's never does."""
    kept, _ = webhooks.create_endpoint(steel, "http://127.0.0.1:9/kept", ALL, actor="t")
    gone, _ = webhooks.create_endpoint(steel, "http://127.0.0.1:9/gone", ALL, actor="t")
    cement = db.session.scalars(select(Organisation).where(Organisation.uscc == factories.CEMENT_USCC)).one()
    webhooks.create_endpoint(cement, "http://127.0.0.1:9/other", ALL, actor="t")
    db.session.commit()
    # Changes not flushed yet: the event's read must see them.
    added = WebhookEndpoint(
        public_id="we_added",
        organisation_id=steel.id,
        url="http://127.0.0.1:9/added",
        events=" ".join(ALL),
        secret="s",
    )
    db.session.add(added)
    gone.deleted_at = utcnow()
    webhooks.emit(steel.id, "certificate.issued", {"certificate": {"number": "x"}})
    db.session.commit()
    reached = db.session.scalars(
        select(WebhookDelivery.endpoint_id)
        .join(OutgoingEvent, WebhookDelivery.event_id == OutgoingEvent.id)
        .where(OutgoingEvent.type == "certificate.issued")
    ).all()
    assert sorted(reached) == sorted([kept.id, added.id])
