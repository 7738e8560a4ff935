"""Prometheus metrics at ``/metrics``: requests and their latency per endpoint, and the business
figures (orders, retirements, ledger movements, webhook deliveries, the jobs queue, registry
instructions pending).

Correct with several gunicorn workers: the request counters live in each worker's memory-mapped
files when ``PROMETHEUS_MULTIPROC_DIR`` is set (``scripts/serve`` sets it up, and the gunicorn
configuration ``portal.ops.gunicorn_conf`` tells the library when a worker exits), and a scrape
sums every worker's, whichever worker answers it. The business figures are read from the
database at each scrape, so they are the same from every worker and every machine.

Who may read it: addresses in ``METRICS_ALLOW`` (networks, comma-separated; this machine by
default) or whoever presents ``METRICS_TOKEN`` as a bearer token (compared in constant time).
Anyone else gets a 404, as if there were nothing here. Behind a reverse proxy the client's
address is only known when ``PROXY_FIX_X_FOR`` is set; a forwarded request without it is judged
by its token alone.
"""

import hmac
import ipaddress
import logging
import os
import time
from datetime import timedelta

from flask import current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from portal.extensions import db

log = logging.getLogger(__name__)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

#: Not registered on the library's global registry: a scrape builds its own (below).
REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests answered, by endpoint (the URL rule), method and status.",
    ["endpoint", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer a request, by endpoint (the URL rule) and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def _started() -> None:
    g._metrics_started = time.perf_counter()


def _answered(response):
    started = g.pop("_metrics_started", None)
    if started is None:
        return response
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    method = request.method if request.method in METHODS else "OTHER"
    REQUESTS.labels(rule, method, str(response.status_code)).inc()
    LATENCY.labels(rule, method).observe(time.perf_counter() - started)
    return response


def register(app) -> None:
    # First of all, so that the time includes every other hook.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request(_answered)


# Who may read ---------------------------------------------------------------------------------


def _networks(text: str) -> tuple:
    cache = current_app.extensions.setdefault("portal.metrics_networks", {})
    if text not in cache:
        found = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                found.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                log.warning("METRICS_ALLOW: %r is not an address or network; ignored", part)
        cache[text] = tuple(found)
    return cache[text]


def may_read() -> bool:
    """Whether this request may read the metrics: the configured token, or an allowed address."""
    config = current_app.config
    token = str(config.get("METRICS_TOKEN") or "")
    if token:
        scheme, _sep, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    if "X-Forwarded-For" in request.headers and not config.get("PROXY_FIX_X_FOR"):
        return False  # came through a proxy the portal was not told about: the address is the proxy's
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(str(config.get("METRICS_ALLOW") or "")))


# What is read ---------------------------------------------------------------------------------


class _Requests:
    """This process's request metrics (when there is no multiprocess folder)."""

    def collect(self):
        yield from REQUESTS.collect()
        yield from LATENCY.collect()


class BusinessFigures:
    """The figures read from the database at each scrape (the same whichever worker answers)."""

    def collect(self):
        from portal.certificates.models import Certificate
        from portal.jobs.models import JobRun, RunStatus
        from portal.ledger.models import LedgerEntry
        from portal.offsets.models import Order, OrderStatus
        from portal.registry.models import InstructionStatus, RegistryInstruction
        from portal.timeutil import utcnow
        from portal.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

        session = db.session
        orders = GaugeMetricFamily("portal_orders", "Orders by status.", labels=["status"])
        counts = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
        for status in OrderStatus:
            orders.add_metric([status.value], counts.get(status.value, 0))
        yield orders

        retired, tonnes = session.execute(
            select(func.count(), func.coalesce(func.sum(Certificate.quantity), 0))
        ).one()
        yield CounterMetricFamily("portal_retirements", "Retirements (certificates issued).", value=retired)
        yield CounterMetricFamily("portal_retired_tonnes", "Tonnes retired.", value=int(tonnes))

        movements = CounterMetricFamily(
            "portal_ledger_movements", "Ledger movements, by kind of entry.", labels=["kind"]
        )
        for kind, count in session.execute(
            select(LedgerEntry.kind, func.count(func.distinct(LedgerEntry.movement_id))).group_by(
                LedgerEntry.kind
            )
        ):
            movements.add_metric([kind], count)
        yield movements

        deliveries = GaugeMetricFamily(
            "portal_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
        )
        counts = dict(
            session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            ).all()
        )
        for status in DeliveryStatus:
            deliveries.add_metric([status.value], counts.get(status.value, 0))
        yield deliveries
        failed_attempts = session.scalar(
            select(func.count()).where(
                (WebhookAttempt.status_code.is_(None))
                | (WebhookAttempt.status_code < 200)
                | (WebhookAttempt.status_code >= 300)
            )
        )
        yield CounterMetricFamily(
            "portal_webhook_failed_attempts", "Webhook delivery attempts that failed.", value=failed_attempts
        )

        yield GaugeMetricFamily(
            "portal_jobs_queue_depth", "Queued jobs waiting for a worker.", value=_queue_depth()
        )
        failed_runs = session.scalar(
            select(func.count()).where(
                JobRun.status == RunStatus.FAILED, JobRun.started_at >= utcnow() - timedelta(days=1)
            )
        )
        yield GaugeMetricFamily(
            "portal_job_runs_failed_24h", "Job runs that failed in the last 24 hours.", value=failed_runs
        )

        pending = session.scalar(
            select(func.count()).where(RegistryInstruction.status == InstructionStatus.PENDING)
        )
        yield GaugeMetricFamily(
            "portal_registry_instructions_pending",
            "Registry instructions awaiting the registry.",
            value=pending,
        )


def _queue_depth() -> float:
    from portal.jobs import engine

    try:
        return float(engine.huey_of(current_app._get_current_object()).storage.queue_size())
    except Exception:
        log.warning("metrics: the jobs queue could not be read", exc_info=True)
        return float("nan")


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    folder = multiprocess_dir()
    if folder:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=folder)
    else:
        registry.register(_Requests())
    registry.register(BusinessFigures())
    return generate_latest(registry), CONTENT_TYPE_LATEST
