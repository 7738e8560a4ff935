"""Delivering what is due: signed, retried with exponential backoff for three days, logged.

A worker takes a due delivery by moving its ``next_attempt_at`` forward by :data:`LEASE` with a
compare-and-set (``UPDATE … WHERE next_attempt_at = <what it read>``), commits, and only then
sends. Two workers cannot both take it; a worker that dies mid-send leaves it due again when the
lease is over, so every event is delivered at least once (receivers recognise a repeat by the
event's ``id``). The answer is recorded in a second transaction, with the attempt's log line.

The body is ``{"id", "type", "created", "data"}`` (canonical JSON, UTF-8) and the header
``Portal-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>``.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from portal.config import url_is_sqlite
from portal.core.database import unit_of_work
from portal.extensions import db
from portal.timeutil import utcnow
from portal.webhooks import transport
from portal.webhooks.models import DeliveryStatus, OutgoingEvent, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)

#: How long a worker holds a delivery it took (far longer than one exchange may last);
#: ``WEBHOOKS_LEASE_SECONDS`` changes it.
LEASE = timedelta(minutes=2)
#: After this long without success a delivery is given up (it can still be sent again by hand).
GIVE_UP_AFTER = timedelta(days=3)
#: The longest wait between two attempts.
MAX_WAIT = timedelta(hours=6)
USER_AGENT = "ChifengCarbonPortal-Webhooks/1"


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most 6 hours
    (about 16 attempts in three days)."""
    return min(timedelta(minutes=2 ** max(0, min(attempts - 1, 20))), MAX_WAIT)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def body_of(event: OutgoingEvent) -> bytes:
    document = {
        "id": event.public_id,
        "type": event.type,
        "created": _iso(event.created_at),
        "data": json.loads(event.data),
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _claim(limit: int, now: datetime) -> list[tuple[int, datetime]]:
    """Takes up to ``limit`` due deliveries: [(id, the lease's end)]."""
    due = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    lease_end = now + timedelta(seconds=current_app.config.get("WEBHOOKS_LEASE_SECONDS") or LEASE.seconds)
    taken = []
    for delivery_id, seen in due:
        result = db.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at == seen,
            )
            .values(next_attempt_at=lease_end, attempts=WebhookDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            taken.append((delivery_id, lease_end))
    return taken


def allow_private() -> bool:
    """Whether endpoints may be local addresses: only where the portal runs as the embedded
    default (SQLite), unless ``WEBHOOKS_ALLOW_PRIVATE`` says otherwise."""
    configured = current_app.config.get("WEBHOOKS_ALLOW_PRIVATE")
    if configured is not None:
        return bool(configured)
    return url_is_sqlite(current_app.config["SQLALCHEMY_DATABASE_URI"])


def _send(delivery: WebhookDelivery) -> tuple[transport.Answer, int]:
    body = body_of(delivery.event)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Portal-Signature": signature_header(delivery.endpoint.secret, int(time.time()), body),
        "Portal-Event-Id": delivery.event.public_id,
    }
    started = time.monotonic()
    answer = transport.post(
        delivery.endpoint.url,
        body,
        headers,
        allow_private=allow_private(),
        timeout=current_app.config.get("WEBHOOKS_TIMEOUT", transport.TIMEOUT),
    )
    return answer, int((time.monotonic() - started) * 1000)


def _record(delivery_id: int, lease_end: datetime, answer: transport.Answer, duration_ms: int, started):
    """The attempt's log line, and the delivery's new state if this worker still holds it."""
    now = utcnow()
    delivery = db.session.get(WebhookDelivery, delivery_id)
    db.session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            started_at=started,
            duration_ms=duration_ms,
            status_code=answer.status_code,
            error=answer.error,
        )
    )
    if delivery.status != DeliveryStatus.PENDING or delivery.next_attempt_at != lease_end:
        return  # removed, or taken over by another worker after the lease ran out
    delivery.last_status_code = answer.status_code
    delivery.last_error = answer.error
    if answer.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif now - delivery.first_due_at >= GIVE_UP_AFTER:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + backoff(delivery.attempts)


def deliver_due(limit: int = 50, now: datetime | None = None) -> dict:
    """Delivers what is due now (at most ``limit``), one delivery per transaction; returns the
    counts. Safe to run in several workers at once."""
    counts = {"delivered": 0, "failed_attempts": 0}
    with unit_of_work():
        taken = _claim(limit, now or utcnow())
    for delivery_id, lease_end in taken:
        delivery = db.session.get(WebhookDelivery, delivery_id)
        started = utcnow()
        answer, duration_ms = _send(delivery)
        with unit_of_work():
            _record(delivery_id, lease_end, answer, duration_ms, started)
        counts["delivered" if answer.ok else "failed_attempts"] += 1
        if not answer.ok:
            log.info(
                "webhook %s to %s failed: %s",
                delivery.event.public_id,
                delivery.endpoint.public_id,
                answer.error,
            )
    return counts
