"""The append-only audit log (a database trigger refuses updates and deletes)."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: ``user:7``, ``apikey:3``, ``cli``, ``system``.
    actor: Mapped[str] = mapped_column(String(120))
    #: What happened, as ``<domain>.<verb>``: ``organisation.create``, ``apikey.revoke`` …
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    #: JSON of the changed fields before and after (never secrets).
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
