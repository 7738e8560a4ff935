"""Recording audit events, in the same transaction as the change they describe."""

import json
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import insert

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.timeutil import utcnow


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


#: Built once: most state changes append an event.
_APPEND = insert(AuditEvent.__table__)


def row(
    actor: str,
    action: str,
    subject_type: str,
    subject_id,
    before: dict | None = None,
    after: dict | None = None,
) -> dict:
    """The ``audit_events`` row of an event (for a writer that appends it with other rows in one
    statement, as a certificate's issue does; everything else calls ``record``)."""
    return {
        "at": utcnow(),
        "actor": actor[:120],
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "before": None
        if before is None
        else json.dumps(before, ensure_ascii=False, sort_keys=True, default=_plain),
        "after": None
        if after is None
        else json.dumps(after, ensure_ascii=False, sort_keys=True, default=_plain),
    }


def record(
    actor: str,
    action: str,
    subject_type: str,
    subject_id,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    """Write the event at once, in the caller's transaction (a row, not an object to flush:
    the log is only appended to, and a rolled-back transaction takes its events with it)."""
    db.session.execute(_APPEND, row(actor, action, subject_type, subject_id, before, after))
