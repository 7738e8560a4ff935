"""``/readyz``, ``/metrics`` and the back office's page of failed background work."""

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import page
from portal.core.guard import public
from portal.jobs.models import RUN_STATUS_LABELS
from portal.ops import metrics, readiness, services
from portal.webhooks import services as webhooks
from portal.webhooks.models import DELIVERY_STATUS_LABELS, EVENT_TYPE_LABELS

bp = Blueprint("ops", __name__, template_folder="templates")


@bp.get("/readyz")
@public
def readyz():
    """200 when every check passes; else 503 naming the checks that failed and why."""
    checks = readiness.check()
    failed = sorted(name for name, result in checks.items() if result != "ok")
    body = {"status": "ready" if not failed else "not_ready", "checks": checks}
    if failed:
        body["failed"] = failed
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@public  # guarded by address or token (metrics.may_read); a stranger finds nothing here
def prometheus_metrics():
    if not metrics.may_read():
        abort(404)
    data, content_type = metrics.exposition()
    return data, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}


def _actor() -> str:
    return f"user:{current_user.id}"


@bp.get("/staff/failures")
@page("operations.read")
def failures():
    return render_template(
        "ops/failures.html",
        runs=services.failed_runs(),
        deliveries=services.troubled_deliveries(),
        run_labels=RUN_STATUS_LABELS,
        delivery_labels=DELIVERY_STATUS_LABELS,
        event_labels=EVENT_TYPE_LABELS,
    )


@bp.post("/staff/failures/runs/<int:run_id>/rerun")
@page("operations.retry")
def rerun(run_id):
    name = services.rerun(run_id, actor=_actor())
    flash(_("The job %(job)s will run again in a moment.", job=name), "info")
    return redirect(url_for("ops.failures")), 303


@bp.post("/staff/failures/deliveries/<int:delivery_id>/redeliver")
@page("operations.retry")
def redeliver(delivery_id):
    webhooks.redeliver_any(delivery_id, actor=_actor())
    flash(_("The delivery will be sent again in a moment."), "info")
    return redirect(url_for("ops.failures")), 303
