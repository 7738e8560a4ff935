"""Stripe events received, so that a webhook delivered twice is handled once."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class WebhookEvent(db.Model):
    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stripe's event id (``evt_…``): unique, so a second delivery is recognised.
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(80))
    #: The PaymentIntent (or other object) the event is about.
    object_id: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What the handler did: ``fulfilled``, ``released``, ``refunded``, ``ignored`` …
    outcome: Mapped[str] = mapped_column(String(64), default="")
