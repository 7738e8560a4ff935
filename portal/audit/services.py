"""Recording audit events, in the same transaction as the change they describe."""

import json
from datetime import date, datetime
from decimal import Decimal

from portal.audit.models import AuditEvent
from portal.extensions import db


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def record(
    actor: str,
    action: str,
    subject_type: str,
    subject_id,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor[:120],
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=None
        if before is None
        else json.dumps(before, ensure_ascii=False, sort_keys=True, default=_plain),
        after=None
        if after is None
        else json.dumps(after, ensure_ascii=False, sort_keys=True, default=_plain),
    )
    db.session.add(event)
    return event
