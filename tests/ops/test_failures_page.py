"""The back office's page of failed background work: failed and stuck job runs, deliveries given
up or still failing; running a job again and sending a delivery again, audited; a job that
always fails is kept with its error and never retried in a loop."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from portal.jobs import engine
from portal.jobs.models import JobRun
from portal.jobs.work import JOBS, Job
from portal.timeutil import utcnow
from portal.webhooks import services as webhooks
from portal.webhooks.models import DeliveryStatus, WebhookDelivery
from tests import factories


@pytest.fixture
def troubles(app, monkeypatch):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    steel, _cement = factories.steel_and_cement()
    for role in ("auditor", "operator", "sales"):
        factories.user(f"{role}@example.cn", role=role)

    def broken():
        raise RuntimeError("the registry's server is down")

    monkeypatch.setitem(JOBS, "registry.overdue", Job(broken, 60))
    endpoint, _secret = webhooks.create_endpoint(
        steel, "http://127.0.0.1:9/hook", ["order.fulfilled"], actor="t"
    )
    event = webhooks.emit(steel.id, "order.fulfilled", {"order": {"id": "ord_x"}})
    db.session.flush()
    delivery = db.session.scalar(select(WebhookDelivery).filter_by(event_id=event.id))
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.FAILED, 9, None
    delivery.last_status_code, delivery.last_error = 500, "server error"
    stuck = JobRun(
        name="mail.send", slot="2026-12-01T08:00", worker="web1:42", started_at=utcnow() - timedelta(hours=2)
    )
    db.session.add(stuck)
    db.session.commit()
    failed = engine.run(app, "registry.overdue", slot="2026-12-03T08:00")
    assert failed.status == "failed"
    return delivery.id, stuck.id


def _sign_in(client, role):
    assert (
        client.post(
            "/login", data={"email": f"{role}@example.cn", "password": factories.PASSWORD}
        ).status_code
        == 302
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_staff_see_failed_runs_and_deliveries_with_their_errors(troubles, client, lang):
    _sign_in(client, "auditor")
    page = client.get(f"/staff/failures?lang={lang}").get_data(as_text=True)
    assert "registry&#39;s server is down" in page and "registry.overdue" in page
    assert "mail.send" in page  # its worker died mid-run
    assert "HTTP 500 server error" in page
    assert ("Its worker stopped mid-run" if lang == "en" else "执行进程在运行中途停止") in page
    assert ("Failed background work" if lang == "en" else "失败的后台工作") in page
    assert "/rerun" not in page and "/redeliver" not in page  # the auditor reads only


def test_who_may_see_and_act(troubles, client):
    delivery_id, stuck_id = troubles
    assert client.get("/staff/failures").status_code == 302  # anonymous: sign in
    _sign_in(client, "sales")
    assert client.get("/staff/failures").status_code == 403
    client.post("/logout")
    _sign_in(client, "auditor")
    assert client.post(f"/staff/failures/runs/{stuck_id}/rerun").status_code == 403
    assert client.post(f"/staff/failures/deliveries/{delivery_id}/redeliver").status_code == 403
    assert (
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(["job.rerun", "webhook.redeliver"]))
        ).all()
        == []
    )


def test_the_operator_runs_a_job_again_and_sends_a_delivery_again(troubles, client, app):
    delivery_id, stuck_id = troubles
    huey = engine.huey_of(app)
    before = huey.pending_count()
    _sign_in(client, "operator")
    failed = db.session.scalar(select(JobRun).filter_by(name="registry.overdue"))
    response = client.post(f"/staff/failures/runs/{failed.id}/rerun?lang=en", follow_redirects=True)
    assert "The job registry.overdue will run again in a moment." in response.get_data(as_text=True)
    assert client.post(f"/staff/failures/runs/{stuck_id}/rerun").status_code == 303
    response = client.post(f"/staff/failures/deliveries/{delivery_id}/redeliver")
    assert response.status_code == 303
    assert huey.pending_count() == before + 3  # registry.overdue, mail.send, webhooks.deliver
    db.session.expire_all()
    delivery = db.session.get(WebhookDelivery, delivery_id)
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    operator = buyers.find_user("operator@example.cn")
    reruns = [e for e in events if e.action == "job.rerun"]
    assert [e.subject_id for e in reruns] == [str(failed.id), str(stuck_id)]
    assert all(e.actor == f"user:{operator.id}" for e in reruns)
    assert any(e.action == "webhook.redeliver" for e in events)


def test_bad_requests_change_nothing(troubles, client):
    _sign_in(client, "operator")
    done = engine.run(client.application, "orders.expire", slot="s-done")
    done_id = db.session.scalar(select(JobRun.id).filter_by(slot=done.slot))
    response = client.post(f"/staff/failures/runs/{done_id}/rerun?lang=en")
    assert response.status_code == 409 and "nothing to run again" in response.get_data(as_text=True)
    assert client.post("/staff/failures/runs/999999/rerun").status_code == 404
    assert client.post("/staff/failures/runs/99999999999999/rerun").status_code == 404
    assert client.post("/staff/failures/deliveries/424242/redeliver").status_code == 404
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "job.rerun")).all() == []


def test_a_job_that_always_fails_is_kept_and_not_retried_forever(app, monkeypatch):
    """Queued work that fails is recorded once with its error; the queue does not try it again
    and again (the next period runs the job afresh)."""
    calls = []

    def always_failing():
        calls.append(1)
        raise ValueError("the statement file is corrupt")

    monkeypatch.setitem(JOBS, "broken", Job(always_failing, None))
    app.config["JOBS_URL"] = "memory:"
    huey = engine.make_huey(app)
    huey.immediate = False
    huey.portal_queued["broken"]("soon 1")
    for _ in range(10):  # a worker taking whatever is queued, ten times over
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
    assert calls == [1]
    assert huey.pending_count() == 0 and huey.scheduled_count() == 0
    run = db.session.scalar(select(JobRun).filter_by(name="broken"))
    assert run.status == "failed" and "the statement file is corrupt" in run.outcome


def test_the_operator_sees_the_actions(troubles, client):
    _sign_in(client, "operator")
    page = client.get("/staff/failures?lang=en").get_data(as_text=True)
    assert page.count("/rerun") == 2 and page.count("/redeliver") == 1
    assert "Run again" in page and "Send again" in page
