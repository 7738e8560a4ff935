"""Webhooks to buyers, the interface: an organisation's endpoints (made, listed, removed, their
secret rotated), the events domains report with :func:`emit`, and the deliveries' log.

Where each rule lives:
- which URLs an endpoint may have, and how one is called safely: ``transport``;
- when a delivery is due, how it is signed, retried and given up: ``delivery``;
- who may manage an organisation's endpoints: ``portal.access`` (``webhooks.manage``).
"""

import json
import secrets
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm.util import identity_key

from portal.audit import services as audit
from portal.core import tasks
from portal.core.database import is_postgresql, read_attached, transaction_cache
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.timeutil import utcnow
from portal.webhooks import transport
from portal.webhooks.delivery import allow_private, backoff, body_of, deliver_due, signature_header
from portal.webhooks.models import (
    DeliveryStatus,
    EventType,
    OutgoingEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "WebhookError",
    "allow_private",
    "backoff",
    "body_of",
    "create_endpoint",
    "delete_endpoint",
    "deliver_due",
    "deliveries_of",
    "emit",
    "endpoint_json",
    "endpoints_of",
    "redeliver",
    "redeliver_any",
    "rotate_secret",
    "signature_header",
]

#: Endpoints one organisation may have at once.
MAX_ENDPOINTS = 10
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class WebhookError(ServiceError):
    pass


def _public_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(20))


def _new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


_REFUSALS = {
    "empty": lambda: _("Enter the endpoint's URL."),
    "too_long": lambda: _("The URL is longer than %(n)s characters.", n=transport.MAX_URL),
    "malformed": lambda: _("This is not a URL."),
    "scheme": lambda: _("The URL must start with https:// (or http://)."),
    "credentials": lambda: _("The URL may not contain a user name or password."),
    "unresolvable": lambda: _("The URL's host name cannot be found."),
    "forbidden_address": lambda: _(
        "The URL leads to a private, local or reserved network address; webhooks go to public addresses only."
    ),
}


def check_url(url) -> str:
    """``url`` as stored, or :class:`WebhookError` naming why it cannot be an endpoint."""
    url = url.strip() if isinstance(url, str) else ""
    try:
        target = transport.parse(url)
        transport.resolve(target, allow_private=allow_private())
    except transport.Refused as exc:
        raise WebhookError(f"invalid_url_{exc.reason}", _REFUSALS[exc.reason](), 400, "url") from None
    return url


def check_events(events) -> list[str]:
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list | tuple) or not events or len(events) > len(EventType):
        raise WebhookError("invalid_events", _("Choose at least one event."), 400, "events")
    known = {e.value for e in EventType}
    unknown = [e for e in events if not isinstance(e, str) or e not in known]
    if unknown:
        raise WebhookError(
            "invalid_events",
            _(
                "Unknown event %(event)s; the events are: %(known)s.",
                event=str(unknown[0])[:60],
                known=", ".join(known),
            ),
            400,
            "events",
        )
    return [e.value for e in EventType if e.value in events]


def endpoints_of(organisation) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .filter_by(organisation_id=organisation.id, deleted_at=None)
            .order_by(WebhookEndpoint.id)
        )
    )


def endpoint_of(organisation, public_id) -> WebhookEndpoint:
    """The organisation's live endpoint ``public_id``; 404 for any other (another's is unknown)."""
    endpoint = (
        db.session.scalar(
            select(WebhookEndpoint).filter_by(
                public_id=public_id, organisation_id=organisation.id, deleted_at=None
            )
        )
        if isinstance(public_id, str) and len(public_id) <= 32
        else None
    )
    if endpoint is None:
        raise WebhookError("unknown_endpoint", _("There is no such webhook endpoint."), 404)
    return endpoint


def create_endpoint(organisation, url, events, *, actor: str) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown to the caller once)."""
    url = check_url(url)
    events = check_events(events)
    if len(endpoints_of(organisation)) >= MAX_ENDPOINTS:
        raise WebhookError(
            "too_many_endpoints",
            _("An organisation may have at most %(n)s webhook endpoints.", n=MAX_ENDPOINTS),
            409,
        )
    secret = _new_secret()
    if organisation.webhooks_since is None:
        organisation.webhooks_since = utcnow()
    endpoint = WebhookEndpoint(
        public_id=_public_id("we_"),
        organisation_id=organisation.id,
        url=url,
        events=" ".join(events),
        secret=secret,
    )
    db.session.add(endpoint)
    db.session.flush()
    transaction_cache(_ENDPOINTS).clear()
    audit.record(actor, "webhook.create", "webhook", endpoint.public_id, after={"url": url, "events": events})
    return endpoint, secret


def rotate_secret(organisation, public_id, *, actor: str) -> tuple[WebhookEndpoint, str]:
    """A new secret for the endpoint; deliveries from now on are signed with it."""
    endpoint = endpoint_of(organisation, public_id)
    endpoint.secret = _new_secret()
    audit.record(actor, "webhook.rotate_secret", "webhook", endpoint.public_id)
    return endpoint, endpoint.secret


def delete_endpoint(organisation, public_id, *, actor: str) -> WebhookEndpoint:
    """Removes the endpoint; what was still to be delivered to it is given up. Its log stays."""
    endpoint = endpoint_of(organisation, public_id)
    endpoint.deleted_at = utcnow()
    transaction_cache(_ENDPOINTS).clear()
    pending = db.session.scalars(
        select(WebhookDelivery).filter_by(endpoint_id=endpoint.id, status=DeliveryStatus.PENDING)
    )
    for delivery in pending:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = "endpoint removed"
    audit.record(actor, "webhook.delete", "webhook", endpoint.public_id, before={"url": endpoint.url})
    return endpoint


def endpoint_json(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    data = {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "events": endpoint.event_types,
        "created": endpoint.created_at.isoformat().replace("+00:00", "Z"),
    }
    if secret is not None:
        data["secret"] = secret
    return data


#: The organisations' live endpoints, read once per transaction (a fulfilment emits two events);
#: on PostgreSQL through the driver's SQL (``core.database.read_attached``): most organisations
#: have none, and every certificate and order asks.
_ENDPOINTS = "webhooks.endpoints"
_LIVE_ENDPOINTS = select(WebhookEndpoint).where(
    WebhookEndpoint.organisation_id == bindparam("organisation"), WebhookEndpoint.deleted_at.is_(None)
)
_LIVE_WHERE = "organisation_id = %(organisation)s AND deleted_at IS NULL"


def _live_endpoints(organisation_id: int) -> list[WebhookEndpoint]:
    if is_postgresql():
        return read_attached(WebhookEndpoint, _LIVE_WHERE, {"organisation": organisation_id})
    return list(db.session.scalars(_LIVE_ENDPOINTS, {"organisation": organisation_id}))


def _never_had_endpoints(organisation_id: int) -> bool:
    """Whether the organisation, as this transaction has it loaded, never registered an endpoint
    (``Organisation.webhooks_since`` unset; set with its first, never unset): then there is
    none to read. Only a loaded organisation is looked at (an API call's, an order's); nothing
    is read for this. An endpoint registered by another transaction after it was loaded is as
    one registered after this transaction's read of the endpoints would be: not told of this
    event."""
    model = WebhookEndpoint.organisation.property.mapper.class_  # (buyers' model: not imported here)
    organisation = db.session.identity_map.get(identity_key(model, organisation_id))
    return organisation is not None and organisation.__dict__.get("webhooks_since", False) is None


def emit(organisation_id: int | None, event_type: EventType, data, *, at: datetime | None = None):
    """Report ``event_type`` to the organisation's endpoints that want it, in the caller's
    transaction: the event is delivered only if that transaction commits, and then for certain.
    ``data`` is the event's data object, or a function making it (called only when an endpoint
    wants the event). Returns the event, or None when no endpoint wants it (nothing is stored)."""
    if organisation_id is None:
        return None
    event_type = EventType(event_type)
    known = transaction_cache(_ENDPOINTS)
    if organisation_id not in known:
        known[organisation_id] = (
            [] if _never_had_endpoints(organisation_id) else _live_endpoints(organisation_id)
        )
    wanting = [endpoint for endpoint in known[organisation_id] if endpoint.wants(event_type)]
    if not wanting:
        return None
    now = at or utcnow()
    if callable(data):
        data = data()
    event = OutgoingEvent(
        public_id=_public_id("evt_"),
        organisation_id=organisation_id,
        type=event_type,
        created_at=now,
        data=json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str),
    )
    db.session.add(event)
    db.session.flush()
    for endpoint in wanting:
        db.session.add(
            WebhookDelivery(
                event_id=event.id,
                endpoint_id=endpoint.id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                first_due_at=now,
                next_attempt_at=now,
            )
        )
    return event


def deliveries_of(organisation, limit: int = 50) -> list[tuple[WebhookDelivery, WebhookAttempt | None]]:
    """The organisation's latest deliveries, newest first, each with its latest attempt."""
    deliveries = list(
        db.session.scalars(
            select(WebhookDelivery)
            .join(OutgoingEvent, WebhookDelivery.event_id == OutgoingEvent.id)
            .where(OutgoingEvent.organisation_id == organisation.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
    latest = {}
    if deliveries:
        for attempt in db.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.id)
        ):
            latest[attempt.delivery_id] = attempt
    return [(d, latest.get(d.id)) for d in deliveries]


def redeliver(organisation, delivery_id, *, actor: str) -> WebhookDelivery:
    """Sends a delivery again (delivered or given up), as soon as a worker is free. Its endpoint
    must still exist."""
    delivery = (
        db.session.get(WebhookDelivery, delivery_id)
        if isinstance(delivery_id, int) and 0 < delivery_id < 2**31
        else None
    )
    if delivery is None or delivery.event.organisation_id != organisation.id:
        raise WebhookError("unknown_delivery", _("There is no such delivery."), 404)
    return _send_again(delivery, actor)


def redeliver_any(delivery_id, *, actor: str) -> WebhookDelivery:
    """Staff send any organisation's delivery again (from the page of failed background work)."""
    delivery = (
        db.session.get(WebhookDelivery, delivery_id)
        if isinstance(delivery_id, int) and 0 < delivery_id < 2**31
        else None
    )
    if delivery is None:
        raise WebhookError("unknown_delivery", _("There is no such delivery."), 404)
    delivery = _send_again(delivery, actor)
    tasks.soon("webhooks.deliver")
    return delivery


def _send_again(delivery: WebhookDelivery, actor: str) -> WebhookDelivery:
    if delivery.endpoint.deleted_at is not None:
        raise WebhookError(
            "endpoint_removed", _("Its endpoint was removed; the delivery cannot be sent again."), 409
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.first_due_at = delivery.next_attempt_at = utcnow()
    delivery.delivered_at = None
    audit.record(
        actor,
        "webhook.redeliver",
        "webhook",
        delivery.endpoint.public_id,
        after={"event": delivery.event.public_id},
    )
    return delivery
