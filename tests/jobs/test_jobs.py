"""Background jobs: each (job, slot) runs once however many workers schedule it, a failure is
kept for staff and does not stop the worker, work asked for is queued only once its transaction
commits, and a real worker process picks queued work up."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from huey import MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey
from sqlalchemy import select

from portal.core import tasks
from portal.extensions import db
from portal.jobs import engine
from portal.jobs.models import JobRun
from portal.jobs.work import JOBS, Job
from tests import factories
from tests.webhooks.receiver import serve


def test_a_job_runs_once_per_slot(app):
    first = engine.run(app, "orders.expire", slot="2026-12-03T08:00")
    assert first.status == "done" and first.outcome == "released 0 expired hold(s)"
    assert engine.run(app, "orders.expire", slot="2026-12-03T08:00") is None
    assert engine.run(app, "orders.expire", slot="2026-12-03T08:01").status == "done"
    assert len(db.session.scalars(select(JobRun)).all()) == 2


def test_a_run_without_a_slot_is_this_minutes(app):
    """What the periodic schedule calls: no slot given, the current minute's (UTC)."""
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    ran = engine.run(app, "orders.expire")
    after = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    assert ran.status == "done" and ran.slot in {before, after}
    assert engine.run(app, "orders.expire", slot=ran.slot) is None  # that minute is taken


def test_a_failing_job_is_recorded_with_its_error(app, monkeypatch):
    def broken():
        raise RuntimeError("the registry's server is down")

    monkeypatch.setitem(JOBS, "broken", Job(broken, 1))
    run = engine.run(app, "broken", slot="s1")
    assert run.status == "failed" and "registry's server is down" in run.outcome
    assert run.finished_at is not None and run.duration_ms is not None
    assert engine.run(app, "orders.expire", slot="s1").status == "done"  # the worker carries on


def test_work_is_queued_only_when_the_transaction_commits(app):
    huey = engine.huey_of(app)
    assert isinstance(huey, MemoryHuey)
    before = huey.pending_count()
    tasks.soon("webhooks.deliver")
    tasks.soon("webhooks.deliver")
    db.session.rollback()
    assert huey.pending_count() == before
    tasks.soon("webhooks.deliver")
    tasks.soon("webhooks.deliver")
    db.session.commit()
    assert huey.pending_count() == before + 1


def test_work_asked_for_at_every_commit_is_queued_at_most_twice_per_window(app, monkeypatch):
    """Every retirement asks for a signed tree head: the first is queued at once, the rest of
    the window share one run due at its end (after each of their commits), and the next window
    starts afresh."""
    huey = engine.huey_of(app)
    moment = [1000.0]
    monkeypatch.setattr(engine, "clock", lambda: moment[0])

    def queued():
        return [(task.name, task.eta is not None) for task in huey.pending()]

    for step in range(5):  # five commits in 0.4 s
        moment[0] = 1000.0 + step * 0.1
        tasks.soon("log.sign")
        db.session.commit()
    # the first at once; the four others share one run due at the window's end
    assert queued() == [("soon:log.sign", False), ("soon:log.sign", True)]
    moment[0] = 1000.5  # the window is over: at once again, and the next window opens
    tasks.soon("log.sign")
    db.session.commit()
    tasks.soon("webhooks.deliver")  # each job has its own window
    db.session.commit()
    assert queued()[2:] == [("soon:log.sign", False), ("soon:webhooks.deliver", False)]


def test_the_queue_needs_no_service_the_portal_does_not_already_use(app):
    app.config["JOBS_URL"] = ""
    chosen = engine.storage_for(app)
    assert chosen["class"] is SqliteHuey and chosen["filename"].endswith("jobs.db")
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://portal:pw@db.internal:5432/portal"
    chosen = engine.storage_for(app)
    assert chosen == {"class": PostgresHuey, "dsn": "postgresql://portal:pw@db.internal:5432/portal"}
    app.config["JOBS_URL"] = "redis://127.0.0.1:6379/3"
    assert engine.storage_for(app) == {"class": RedisHuey, "url": "redis://127.0.0.1:6379/3"}


def test_every_job_has_a_period_the_scheduler_understands(app):
    app.config["JOBS_URL"] = "memory:"
    huey = engine.make_huey(app)
    periodic = {task.name for task in huey._registry.periodic_tasks}
    assert periodic == {f"periodic:{name}" for name, job in JOBS.items() if job.every_minutes}


@pytest.mark.postgres
def test_two_workers_scheduling_the_same_minute_run_it_once(pg_app):
    from tests.concurrency import race

    outcomes = race(pg_app, 4, lambda _i: engine.run(pg_app, "orders.expire", slot="2026-12-03T09:00"))
    assert sum(run is not None for run in outcomes) == 1
    assert db.session.scalar(select(JobRun.status).filter_by(slot="2026-12-03T09:00")) == "done"


def test_a_real_worker_delivers_a_webhook_soon_after_the_retirement(tmp_path):
    """``flask jobs worker`` on the embedded SQLite queue: a retirement's webhook is delivered
    without waiting for the minute's periodic run."""
    from portal.buyers import services as buyers
    from portal.certificates import services as certificates
    from portal.webhooks import services as webhooks
    from tests.conftest import make_app

    server, receiver = serve()
    database, queue = tmp_path / "portal.db", tmp_path / "jobs.db"
    env = {
        **os.environ,
        "FLASK_APP": "portal",
        "PORTAL_DATABASE_URL": f"sqlite:///{database}",
        "PORTAL_JOBS_URL": f"sqlite:///{queue}",
        "PORTAL_SECRET_KEY": "test",
        "PORTAL_LOG_LEVEL": "WARNING",
    }
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, capture_output=True)
    worker = subprocess.Popen(
        [*flask, "jobs", "worker", "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app = make_app(f"sqlite:///{database}", JOBS_URL=f"sqlite:///{queue}", WEBHOOKS_ALLOW_PRIVATE=True)
        with app.app_context():
            steel, _cement = factories.steel_and_cement()
            factories.batch(quantity=50, code="B-2022", vintage=2022)
            buyers.deliver_from_inventory(steel, 10)
            webhooks.create_endpoint(steel, receiver.url, ["certificate.issued"], actor="t")
            db.session.commit()
            certificate, _ = certificates.retire_from_holding(
                steel, 3, beneficiary="测试钢铁", purpose="voluntary", actor="t"
            )
            db.session.commit()
            deadline = time.monotonic() + 45
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
            assert receiver.received, "the worker delivered nothing"
            body = json.loads(receiver.received[0][2])
            assert body["data"]["certificate"]["number"] == certificate.number
            # The run that delivered it is marked done once its send has returned: the receiver
            # may have the request a moment before.
            deadline = time.monotonic() + 15
            while True:
                runs = db.session.scalars(select(JobRun).filter_by(name="webhooks.deliver")).all()
                soon = [run.status for run in runs if run.slot.startswith("soon ")]
                if "done" in soon or time.monotonic() > deadline:
                    break
                db.session.rollback()
                time.sleep(0.1)
            assert "done" in soon, [(run.slot, run.status) for run in runs]
            db.session.remove()
    finally:
        worker.send_signal(2)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        server.shutdown()
        server.server_close()


@pytest.mark.postgres
def test_work_asked_for_runs_on_postgresql(pg_app):
    """The slot of queued work fits ``job_runs.slot`` (PostgreSQL enforces the length)."""
    huey = engine.huey_of(pg_app)
    tasks.soon("orders.expire")
    db.session.commit()
    huey.execute(huey.dequeue())
    run = db.session.scalar(select(JobRun).where(JobRun.slot.startswith("soon ")))
    assert run is not None and run.status == "done", run and run.outcome
