"""The jobs: what each does (a call into its domain's services) and how often it runs.

Each job's work is idempotent and safe beside other workers (holds expire under row locks, a
reserve top-up or a webhook delivery is claimed before it is done), so a run that is repeated
or overlaps another does no harm; the claim in ``job_runs`` keeps them from repeating at all."""

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from portal.core.database import unit_of_work
from portal.extensions import db
from portal.timeutil import utcnow


@dataclass(frozen=True)
class Job:
    run: callable  #: does the work in an app context; returns what it did, in a line
    every_minutes: int | None = 1  #: its period; None for work that only runs when asked for
    description: str = ""


def _expire_orders() -> str:
    from portal.offsets import services as orders

    released = orders.expire_due()  # each committed on its own
    for order in released:
        orders.cancel_payment(order)
    return f"released {len(released)} expired hold(s)"


def _deferred_payments() -> str:
    from portal.payments import services as payments

    counts = payments.apply_deferred()
    return f"applied {counts['applied']} deferred event(s); {counts['waiting']} still waiting"


def _reserve() -> str:
    from portal.contracts import services as contracts

    got = contracts.reserve_all(actor="system:jobs")
    return f"reserved {sum(got.values())} t for {len(got)} contract(s)"


def _overdue() -> str:
    from portal.contracts import services as contracts

    with unit_of_work():
        told = contracts.notify_overdue(actor="system:jobs")
    return f"{len(told)} overdue invoice(s) notified"


def _mail() -> str:
    from portal.core import mail

    if not current_app.config.get("SMTP_HOST"):
        return "no SMTP host: messages stay in the outbox"
    return f"sent {mail.deliver_pending()} message(s)"


def _webhooks() -> str:
    from portal.webhooks import services as webhooks

    total = {"delivered": 0, "failed_attempts": 0}
    while True:  # until nothing is due (each pass takes at most 50)
        counts = webhooks.deliver_due()
        for key in total:
            total[key] += counts[key]
        if sum(counts.values()) < 50:
            break
    return f"{total['delivered']} delivered, {total['failed_attempts']} failed attempt(s)"


def _registry_overdue() -> str:
    from portal.registry import services as registry

    with unit_of_work():
        reported = registry.report_overdue()
    return f"{reported} overdue registry instruction(s) reported to operators"


def _sign_log() -> str:
    from sqlalchemy.exc import IntegrityError

    from portal.transparency import services as transparency

    try:
        with unit_of_work():
            head = transparency.sign_new_head()
    except IntegrityError:  # another worker signed the same size a moment ago
        return "signed by another worker"
    return "no new entries" if head is None else f"signed the tree head of size {head.tree_size}"


def _draw_certificates() -> str:
    from portal.certificates import renditions

    drawn, _last = renditions.draw_ahead(limit=500)
    return f"drew {drawn} certificate(s) ahead"


#: Runs older than this are removed (failures are kept as long, for staff to read).
KEEP_RUNS = timedelta(days=30)


def _prune() -> str:
    from portal.jobs.models import JobRun

    with unit_of_work():
        result = db.session.execute(delete(JobRun).where(JobRun.started_at < utcnow() - KEEP_RUNS))
    return f"removed {result.rowcount} old run record(s)"


JOBS = {
    "orders.expire": Job(_expire_orders, 1, "Release the holds of unpaid orders past their 30 minutes."),
    "payments.deferred": Job(_deferred_payments, 1, "Apply payment events that waited for their order."),
    "contracts.reserve": Job(_reserve, 5, "Top up active contracts' reserves from listed stock."),
    "contracts.overdue": Job(_overdue, 60, "Tell buyers and owners about overdue invoices, once."),
    "mail.send": Job(_mail, 1, "Send queued e-mail by SMTP."),
    "webhooks.deliver": Job(_webhooks, 1, "Deliver due webhooks (also right after an event)."),
    "registry.overdue": Job(_registry_overdue, 60, "Tell operators, once, of overdue registry instructions."),
    "log.sign": Job(_sign_log, 1, "Sign a transparency-log tree head when the log has grown."),
    "certificates.draw": Job(
        _draw_certificates, 1, "Draw new certificates' pages and JSON ahead of their visitors."
    ),
    "jobs.prune": Job(_prune, 60, "Remove job records older than 30 days."),
}
