"""Instructions the registry has not confirmed in time: flagged on the staff dashboard, and
mailed to the operators once (``flask registry overdue``, every minute under ``make run``).

"In time" is ``REGISTRY_OVERDUE_WORKING_DAYS`` working days (Monday to Friday, counted in
Beijing dates from the day after the retirement). Public holidays are not known to the portal.
"""

from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.core.i18n import absolute_url
from portal.extensions import db
from portal.registry.models import InstructionStatus, RegistryInstruction
from portal.timeutil import BEIJING, beijing_today, utcnow


def working_days() -> int:
    return int(current_app.config.get("REGISTRY_OVERDUE_WORKING_DAYS", 5))


def add_working_days(day: date, n: int) -> date:
    """The date ``n`` working days after ``day``."""
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def overdue_since(today: date, n: int) -> datetime:
    """Instructions created before this moment are overdue on ``today``: the start of the
    earliest Beijing day whose deadline (``n`` working days later) is still today or later."""
    day = today
    while add_working_days(day - timedelta(days=1), n) >= today:
        day -= timedelta(days=1)
    return datetime.combine(day, time(), BEIJING)


def _overdue_condition(today: date):
    return (
        RegistryInstruction.status == InstructionStatus.PENDING,
        RegistryInstruction.created_at < overdue_since(today, working_days()),
    )


def overdue_count(today: date | None = None) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RegistryInstruction)
        .where(*_overdue_condition(today or beijing_today()))
    )


def is_overdue(instruction: RegistryInstruction, today: date | None = None) -> bool:
    return instruction.status == InstructionStatus.PENDING and instruction.created_at < overdue_since(
        today or beijing_today(), working_days()
    )


def report_overdue(today: date | None = None) -> int:
    """Tell the operators, once, about each instruction that became overdue: one message for
    all of them. Returns how many were reported."""
    from portal.payments.services import tell_staff

    today = today or beijing_today()
    found = list(
        db.session.scalars(
            select(RegistryInstruction)
            .where(*_overdue_condition(today), RegistryInstruction.overdue_reported_at.is_(None))
            .order_by(RegistryInstruction.id)
            .limit(1000)
            # OF registry_instructions: the eagerly joined batch is the nullable side of an outer
            # join, which PostgreSQL refuses to lock (and it needs no lock).
            .with_for_update(skip_locked=True, of=RegistryInstruction)
        )
    )
    if not found:
        return 0
    now = utcnow()
    for instruction in found:
        instruction.overdue_reported_at = now
    lines = [
        f"#{i.id} {i.certificate_number} {i.batch.code} {i.quantity} t ({i.registry_name})" for i in found
    ]
    tell_staff(
        _("Registry instructions overdue"),
        _(
            "%(n)s registry instruction(s) have waited more than %(days)s working days for the registry's "
            "confirmation:\n%(lines)s\n\nThe queue: %(url)s",
            n=len(found),
            days=working_days(),
            lines="\n".join(lines),
            url=absolute_url("registry.queue"),
        ),
        action="registry.overdue",
        subject_type="registry_instruction",
        subject_id=",".join(str(i.id) for i in found)[:100],
    )
    return len(found)
