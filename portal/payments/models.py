"""Stripe events received, so that a webhook delivered twice is handled once, and an event that
arrived before what it is about (a refund before its payment) is kept until it can be applied."""

from datetime import datetime

from sqlalchemy import String, Text
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
    #: The PaymentIntent behind the object (a charge's ``payment_intent``; an intent's own id):
    #: how a deferred event is found again when its payment arrives.
    intent_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What the handler did: ``fulfilled``, ``released``, ``refunded``, ``ignored`` …
    outcome: Mapped[str] = mapped_column(String(64), default="")
    #: The event's object (JSON) while the event waits to be applied (``outcome`` is
    #: ``deferred``); emptied once it has been.
    pending_object: Mapped[str | None] = mapped_column(Text)
    #: When staff were told that the event still waits (once).
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
