"""Background work that failed, for staff: job runs that failed or whose worker died mid-run,
and webhook deliveries given up or still being retried; and running a job again.

A failed job is not retried in a loop: its run stays in ``job_runs`` with its error (kept 30
days), the job runs afresh at its next period, and staff may run it again by hand here.
"""

from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from portal.audit import services as audit
from portal.core import tasks
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.jobs.models import JobRun, RunStatus
from portal.jobs.work import JOBS
from portal.timeutil import utcnow
from portal.webhooks.models import DeliveryStatus, OutgoingEvent, WebhookDelivery

#: A run still "running" after this long lost its worker (no job takes nearly as long).
STUCK_AFTER = timedelta(minutes=30)
SHOWN = 50


class OperationsError(ServiceError):
    pass


@dataclass(frozen=True)
class FailedRun:
    run: JobRun
    stuck: bool  #: its worker died mid-run (never finished)
    latest: JobRun | None  #: the job's latest run, to see whether it has recovered since


def failed_runs(limit: int = SHOWN) -> list[FailedRun]:
    """Failed runs and runs whose worker died, newest first, each with its job's latest run."""
    stuck_before = utcnow() - STUCK_AFTER
    runs = list(
        db.session.scalars(
            select(JobRun)
            .where(
                or_(
                    JobRun.status == RunStatus.FAILED,
                    (JobRun.status == RunStatus.RUNNING) & (JobRun.started_at < stuck_before),
                )
            )
            .order_by(JobRun.started_at.desc(), JobRun.id.desc())
            .limit(limit)
        )
    )
    latest_ids = (
        dict(
            db.session.execute(
                select(JobRun.name, func.max(JobRun.id))
                .where(JobRun.name.in_({r.name for r in runs}))
                .group_by(JobRun.name)
            ).all()
        )
        if runs
        else {}
    )
    latest = (
        {
            run.name: run
            for run in db.session.scalars(select(JobRun).where(JobRun.id.in_(latest_ids.values())))
        }
        if latest_ids
        else {}
    )
    return [FailedRun(run, run.status == RunStatus.RUNNING, latest.get(run.name)) for run in runs]


def troubled_deliveries(limit: int = SHOWN) -> list[WebhookDelivery]:
    """Deliveries given up, and those still pending after a failed attempt, newest first."""
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .join(OutgoingEvent, WebhookDelivery.event_id == OutgoingEvent.id)
            .where(
                or_(
                    WebhookDelivery.status == DeliveryStatus.FAILED,
                    (WebhookDelivery.status == DeliveryStatus.PENDING) & (WebhookDelivery.attempts > 0),
                )
            )
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def rerun(run_id, *, actor: str) -> str:
    """Queue the job of a failed (or stuck) run to run again now; returns the job's name."""
    run = db.session.get(JobRun, run_id) if isinstance(run_id, int) and 0 < run_id < 2**31 else None
    if run is None or run.name not in JOBS:
        raise OperationsError("unknown_run", _("There is no such job run."), 404)
    stuck = run.status == RunStatus.RUNNING and run.started_at < utcnow() - STUCK_AFTER
    if run.status != RunStatus.FAILED and not stuck:
        raise OperationsError(
            "run_not_failed", _("This run did not fail: there is nothing to run again."), 409
        )
    tasks.soon(run.name)
    audit.record(actor, "job.rerun", "job_run", run.id, after={"job": run.name, "slot": run.slot})
    return run.name
