"""The task queue: Huey, with its storage chosen to need no service the portal does not already
use, and every job run recorded (and claimed) in ``job_runs``.

Why Huey: it is small and kept, runs periodic and queued tasks in one consumer, and its storage
is pluggable — SQLite (a file in the instance folder: the embedded default, nothing more to
run), PostgreSQL (the production database itself: tables ``huey_*``, LISTEN/NOTIFY to wake
workers, each queued task taken by one worker) or Redis. Any number of workers on any number of
machines may run; each schedules the periodic jobs, and the claim in ``job_runs`` makes each
(job, minute) run once. A job that fails is recorded with its error for staff and is not retried
in a loop: the next minute's run starts afresh, and one-off work retries a few times, then stops.

``PORTAL_JOBS_URL`` chooses: unset → SQLite beside the SQLite database, or PostgreSQL when the
portal's database is PostgreSQL; ``redis://…`` → Redis; ``memory:`` → in-process (tests).
"""

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from huey import MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey, crontab
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from portal.config import url_is_sqlite
from portal.core import tasks as core_tasks
from portal.core.database import unit_of_work
from portal.extensions import db
from portal.jobs.models import JobRun, RunStatus
from portal.jobs.work import JOBS
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

#: Work asked for again within this many seconds of queuing it (every retirement asks for a
#: signed tree head, every webhook event for a delivery run) is not queued once per commit:
#: the first is queued at once, the rest of the window shares one run scheduled for its end,
#: which comes after every commit that asked. Each queued task is a transaction of its own on
#: the PostgreSQL queue; this keeps them to two per job per window and process.
COALESCE_SECONDS = 0.5
#: The clock the windows are measured on (a test may replace it).
clock = time.monotonic

#: How many times queued work is tried again after an error, and how long apart.
RETRIES = 3
RETRY_DELAY = 10


def storage_for(app) -> dict:
    """Which Huey class and storage settings ``app``'s configuration asks for."""
    url = app.config.get("JOBS_URL") or ""
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("memory:"):
        return {"class": MemoryHuey}
    if url.startswith(("redis://", "rediss://")):
        return {"class": RedisHuey, "url": url}
    if url.startswith("sqlite:///"):
        return {"class": SqliteHuey, "filename": url.removeprefix("sqlite:///")}
    if url.startswith("postgresql"):
        database = url
    if url_is_sqlite(database):
        return {"class": SqliteHuey, "filename": str(Path(app.instance_path) / "jobs.db")}
    dsn = make_url(database).set(drivername="postgresql").render_as_string(hide_password=False)
    return {"class": PostgresHuey, "dsn": dsn}


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _slot(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Ran:
    """What a run did (its ``job_runs`` row, as it was when the run ended)."""

    name: str
    slot: str
    status: str
    outcome: str
    finished_at: datetime
    duration_ms: int


def run(app, name: str, slot: str | None = None) -> Ran | None:
    """Runs job ``name`` for ``slot`` (this minute by default) unless some worker already has:
    returns its run, or None when it was not this worker's to run."""
    slot = slot or _slot(utcnow())
    with app.app_context():
        try:
            with unit_of_work():
                claim = JobRun(name=name, slot=slot, status=RunStatus.RUNNING, worker=_worker_name())
                db.session.add(claim)
        except IntegrityError:
            return None  # another worker has this (job, slot)
        run_id = claim.id
        started = time.monotonic()
        try:
            outcome = JOBS[name].run()
            status = RunStatus.DONE
        except Exception as exc:  # recorded for staff; the worker carries on
            db.session.rollback()
            log.exception("job %s failed", name)
            outcome = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            status = RunStatus.FAILED
        with unit_of_work():
            done = db.session.get(JobRun, run_id)
            done.status = status
            done.outcome = outcome
            done.finished_at = utcnow()
            done.duration_ms = int((time.monotonic() - started) * 1000)
            result = Ran(name, slot, status, outcome, done.finished_at, done.duration_ms)
        db.session.remove()
        return result


def make_huey(app):
    """The app's queue, with every job registered on it: periodic ones on their schedule, and
    each also as queued work for ``core.tasks.soon``."""
    settings = dict(storage_for(app))
    cls = settings.pop("class")
    huey = cls("portal", utc=True, results=False, **settings)
    queued = {}
    for name, job in JOBS.items():
        if job.every_minutes:

            def periodic(name=name):
                run(app, name)

            minutes = job.every_minutes
            schedule = crontab(minute="*" if minutes == 1 else "0" if minutes == 60 else f"*/{minutes}")
            huey.periodic_task(schedule, name=f"periodic:{name}")(periodic)

        def now(slot, name=name):
            run(app, name, slot)

        queued[name] = huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, name=f"soon:{name}")(now)
    huey.portal_queued = queued
    huey.portal_coalescing = {}  #: job name → (end of its window, a run scheduled for that end)
    huey.portal_coalescing_lock = threading.Lock()
    return huey


def huey_of(app):
    """The app's queue, made on first use (a web process that never queues anything never
    opens it)."""
    if "huey" not in app.extensions:
        app.extensions["huey"] = make_huey(app)
    return app.extensions["huey"]


def close(app) -> None:
    """Close the app's queue connection, if it opened one (a test's app, a process ending)."""
    huey = app.extensions.pop("huey", None)
    close_storage = getattr(getattr(huey, "storage", None), "close", None)
    if close_storage is not None:
        close_storage()


def _soon_slot() -> str:
    """A queued run's slot (``job_runs.slot`` holds 40 characters): unique per request for work."""
    return f"soon {datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f} {secrets.token_hex(3)}"


def plug() -> None:
    """Let features ask for work (``core.tasks.soon``) through the current app's queue. Queuing
    never fails a request: if the queue cannot be reached, the periodic run does the work a
    minute later."""

    def enqueue(name: str) -> None:
        if current_app.config.get("JOBS_QUEUE") is False:
            return  # this process only runs periodic work (or a test that drives jobs itself)
        huey = huey_of(current_app._get_current_object())
        task = huey.portal_queued.get(name)
        if task is None:
            return
        try:
            with huey.portal_coalescing_lock:
                windows = huey.portal_coalescing
                now = clock()
                ends, trailing = windows.get(name, (0.0, False))
                if now >= ends:
                    task(_soon_slot())
                    windows[name] = (now + COALESCE_SECONDS, False)
                elif not trailing:
                    task.schedule(args=(_soon_slot(),), delay=ends - now)
                    windows[name] = (ends, True)
                # else (most calls under load): the run already scheduled for the window's end
                # comes after this commit
        except Exception:
            log.warning("could not queue %s; the periodic run will do it", name, exc_info=True)

    core_tasks.plug(enqueue)
