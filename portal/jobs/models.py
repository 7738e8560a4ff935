"""What the workers did: one row per run of a job in its time slot. The row is also the claim:
a run's (job, slot) is unique, so when several workers (on several machines) each schedule the
same periodic job, the first to write the row runs it and the others skip it."""

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  #: kept for staff with its error; the next slot runs the job afresh


RUN_STATUS_LABELS = labels_for(
    RunStatus, {"running": _l("Running"), "done": _l("Done"), "failed": _l("Failed")}
)


class JobRun(db.Model):
    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("name", "slot"),
        CheckConstraint(one_of("status", RunStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    #: The run's time slot: the minute a periodic job was due, or when queued work was asked for.
    slot: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: What it did (``released 2 expired hold(s)``), or the error that ended it.
    outcome: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(80), default="")
    duration_ms: Mapped[int | None] = mapped_column(Integer)
