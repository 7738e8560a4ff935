"""Endpoints, events and deliveries. An event is written in the transaction of the change it
reports, with one delivery per subscribed endpoint, so a rolled-back change sends nothing and a
committed one cannot be lost; workers then deliver what is due (``delivery``)."""

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class EventType(StrEnum):
    ORDER_FULFILLED = "order.fulfilled"
    CERTIFICATE_ISSUED = "certificate.issued"
    CERTIFICATE_REVOKED = "certificate.revoked"
    REGISTRY_CONFIRMED = "registry.confirmed"
    CONTRACT_DELIVERED = "contract.delivered"
    INVOICE_ISSUED = "invoice.issued"
    INVOICE_PAID = "invoice.paid"


EVENT_TYPE_LABELS = labels_for(
    EventType,
    {
        "order.fulfilled": _l("An order was paid and its credits retired"),
        "certificate.issued": _l("A certificate was issued"),
        "certificate.revoked": _l("A certificate was revoked"),
        "registry.confirmed": _l("The registry confirmed a retirement"),
        "contract.delivered": _l("A contract tranche was delivered"),
        "invoice.issued": _l("An invoice was issued"),
        "invoice.paid": _l("An invoice was paid"),
    },
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  #: due at next_attempt_at (also while a worker holds it, see delivery)
    DELIVERED = "delivered"  #: the endpoint answered 2xx
    FAILED = "failed"  #: given up after three days of retries, or its endpoint was removed


DELIVERY_STATUS_LABELS = labels_for(
    DeliveryStatus,
    {
        "pending": _l("Pending"),
        "delivered": _l("Delivered"),
        "failed": _l("Failed"),
    },
)


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What the organisation and the API see: ``we_`` and 20 random characters.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: The event types it wants, space-separated in a fixed order.
    events: Mapped[str] = mapped_column(String(400))
    #: The signing secret (``whsec_…``): shown once when made or rotated; kept to sign with.
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation = relationship("Organisation")

    @property
    def event_types(self) -> list[str]:
        return self.events.split()

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class OutgoingEvent(db.Model):
    __tablename__ = "outgoing_webhook_events"
    __table_args__ = (CheckConstraint(one_of("type", EventType), name="type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``evt_`` and 20 random characters: the ``id`` of the delivered body; receivers use it to
    #: recognise a delivery they already handled (delivery is at least once).
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The event's ``data`` object as canonical JSON text.
    data: Mapped[str] = mapped_column(Text)


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        CheckConstraint(one_of("status", DeliveryStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outgoing_webhook_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When this round of attempts began (made, or sent again by hand): retries end three days on.
    first_due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it is next due. A worker that takes it moves this forward by the lease, so a worker
    #: that dies mid-send leaves it due again once the lease is over (delivered at least once).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event = relationship("OutgoingEvent")
    endpoint = relationship("WebhookEndpoint")


class WebhookAttempt(db.Model):
    """One try of a delivery: the log the organisation reads."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
