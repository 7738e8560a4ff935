"""More than one machine: two app instances (gunicorn processes on their own ports) and two jobs
workers on one PostgreSQL database. Orders paid through localstripe (whose signed events reach
both instances) and retirements from the holding are driven through both at once; the ledger
verifies, every periodic job ran once per minute, and every webhook reached a receiver that
checks each Portal-Signature exactly once per event and endpoint. Then a worker is killed while
it is sending: after a restart the event is delivered once more, never zero times."""

import contextlib
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
import stripe
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.extensions import db
from portal.jobs import engine
from portal.jobs.models import JobRun
from portal.ledger.verify import verify_ledger
from portal.offsets.models import Order
from portal.webhooks import services as webhooks
from portal.webhooks.models import OutgoingEvent, WebhookDelivery
from tests import factories
from tests.payments import free_port, localstripe, stop  # noqa: F401

BIN = os.path.dirname(sys.executable)
WEBHOOK_SECRET = "whsec_two_instances"
LEASE_SECONDS = 6


class Receiver:
    """Records every delivery and whether its Portal-Signature checks under its endpoint's secret."""

    def __init__(self):
        self.secrets = {}  #: path → the endpoint's secret
        self.received = []  #: (path, event id, signature valid)
        self.gate = None  #: when set, a request waits for it before answering
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fields = dict(
                    part.split("=", 1) for part in self.headers.get("Portal-Signature", "").split(",")
                )
                secret = receiver.secrets.get(self.path, "")
                expected = hmac.new(
                    secret.encode(), f"{fields.get('t')}.".encode() + body, hashlib.sha256
                ).hexdigest()
                valid = bool(secret) and hmac.compare_digest(expected, fields.get("v1", ""))
                fresh = abs(time.time() - int(fields.get("t", 0))) < 300
                with receiver.lock:
                    receiver.received.append((self.path, json.loads(body)["id"], valid and fresh))
                gate = receiver.gate
                if gate is not None:
                    gate.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):  # the worker may have been killed meanwhile
                    self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        value = predicate()
        db.session.commit()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _call(base, method, path, key, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


@pytest.mark.postgres
def test_two_instances_and_two_workers_on_one_database(pg_app, postgres_url, localstripe, tmp_path):  # noqa: F811
    app = pg_app
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    receiver = Receiver()
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=300, code="B-TWO", vintage=2023)
    buyers.deliver_from_inventory(cement, 40)
    for path, org, events in (
        ("/steel-all", steel, ["order.fulfilled", "certificate.issued"]),
        ("/steel-certificates", steel, ["certificate.issued"]),
        ("/cement", cement, ["certificate.issued"]),
    ):
        _endpoint, secret = webhooks.create_endpoint(org, receiver.base + path, events, actor="t")
        receiver.secrets[path] = secret
    db.session.commit()
    steel_key = factories.api_key(app, "--org", factories.STEEL_USCC)
    cement_key = factories.api_key(app, "--org", factories.CEMENT_USCC)
    # The queue lives in the same database (huey_* tables): empty it of earlier tests' work.
    app.config["JOBS_URL"] = ""
    queue = engine.make_huey(app)
    queue.flush()
    queue.storage.close()  # its own connection, not the pool's

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "STRIPE_", "PROMETHEUS_"))},
        "FLASK_APP": "portal",
        "PORTAL_DATABASE_URL": postgres_url,
        "PORTAL_INSTANCE_PATH": str(tmp_path),  # the signing keys, as every machine is given them
        "PORTAL_SECRET_KEY": "two-instances",
        "PORTAL_LOG_LEVEL": "WARNING",
        "PORTAL_WEBHOOKS_ALLOW_PRIVATE": "true",
        "PORTAL_WEBHOOKS_TIMEOUT": "20",
        "PORTAL_WEBHOOKS_LEASE_SECONDS": str(LEASE_SECONDS),
        "PORTAL_API_RATE_LIMIT": "10000",
        "STRIPE_API_BASE": localstripe,
        "STRIPE_SECRET_KEY": "sk_test_two",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_two",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    processes = []

    def start(*command):
        log = open(tmp_path / f"process-{len(processes)}.log", "w")  # noqa: SIM115  (closed with the test's tmp)
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        processes.append(process)
        return process

    instances = []
    for _ in range(2):
        port = free_port()
        start(
            f"{BIN}/gunicorn",
            "--workers",
            "1",
            "--threads",
            "4",
            "--graceful-timeout",
            "5",
            "--bind",
            f"127.0.0.1:{port}",
            "portal:create_app()",
        )
        instances.append(f"http://127.0.0.1:{port}")
    workers = [start(f"{BIN}/flask", "jobs", "worker", "--threads", "2") for _ in range(2)]
    started = datetime.now().astimezone()
    try:
        for base in instances:
            _ready(base)
            data = urllib.parse.urlencode(
                {"url": f"{base}/stripe/webhook", "secret": WEBHOOK_SECRET}
            ).encode()
            name = "two-" + base.rsplit(":", 1)[1]
            urllib.request.urlopen(f"{localstripe}/_config/webhooks/{name}", data=data, timeout=5).read()
        client = stripe.StripeClient("sk_test_two", base_addresses={"api": localstripe})

        def order(i):
            status, body = _call(
                instances[i % 2],
                "POST",
                "/api/v1/orders",
                steel_key,
                {"quantity": 2, "beneficiary": f"买方{i}", "purpose": "voluntary"},
            )
            assert status == 201, body
            intent = body["order"]["payment"]["payment_intent"]
            client.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
            client.v1.payment_intents.confirm(intent)
            return body["order"]["id"]

        def retirement(i):
            status, body = _call(
                instances[(i + 1) % 2],
                "POST",
                "/api/v1/retirements",
                cement_key,
                {"quantity": 1, "beneficiary": f"水泥{i}", "purpose": "voluntary"},
            )
            assert status == 201, body
            return body["certificate"]["number"]

        with ThreadPoolExecutor(6) as pool:
            orders = [pool.submit(order, i) for i in range(6)]
            retirements = [pool.submit(retirement, i) for i in range(6)]
            order_ids = [f.result() for f in orders]
            numbers = [f.result() for f in retirements]
        assert len(set(numbers)) == 6

        _wait(
            lambda: db.session.scalars(select(Order.status)).all() == ["fulfilled"] * 6,
            120,
            "the orders to be paid",
        )
        expected = 6 * 3 + 6  # steel: order and certificate to one, certificate to the other; cement
        _wait(
            lambda: db.session.query(WebhookDelivery).filter_by(status="delivered").count() == expected,
            120,
            "every webhook to be delivered",
        )
        assert len(order_ids) == 6
        assert verify_ledger().ok
        deliveries = db.session.scalars(select(WebhookDelivery)).all()
        assert len(deliveries) == expected and {d.attempts for d in deliveries} == {1}
        received = Counter((path, event) for path, event, _valid in receiver.received)
        assert all(valid for _path, _event, valid in receiver.received)
        wanted = {(d.endpoint.url.removeprefix(receiver.base), d.event.public_id) for d in deliveries}
        assert set(received) == wanted and set(received.values()) == {1}  # once per event and endpoint
        _every_periodic_job_ran_once_a_minute(started)

        # A worker killed while sending: the event is delivered once more after a restart.
        receiver.gate = threading.Event()
        before = len(receiver.received)
        _call(
            instances[1], "POST", "/api/v1/retirements", cement_key, {"quantity": 1, "purpose": "voluntary"}
        )
        _wait(lambda: len(receiver.received) > before, 60, "the delivery to start")
        event_id = receiver.received[before][1]
        sending = _wait(
            lambda: db.session.scalar(
                select(JobRun).filter_by(name="webhooks.deliver", status="running").order_by(JobRun.id.desc())
            ),
            10,
            "the sending worker's run",
        )
        pid = int(sending.worker.rsplit(":", 1)[1])
        killed = next(w for w in workers if w.pid == pid)
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        receiver.gate.set()
        receiver.gate = None
        workers.append(start(f"{BIN}/flask", "jobs", "worker", "--threads", "2"))
        time.sleep(LEASE_SECONDS + 1)
        queue.portal_queued["webhooks.deliver"]("soon after the lease")
        event = db.session.scalar(select(OutgoingEvent).filter_by(public_id=event_id))
        done = _wait(
            lambda: db.session.scalar(
                select(WebhookDelivery).filter_by(event_id=event.id, status="delivered")
            ),
            60,
            "the event to be delivered again",
        )
        assert done.attempts == 2
        assert [e for _p, e, _v in receiver.received].count(event_id) == 2  # once cut off, once answered
        assert verify_ledger().ok
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)
        receiver.close()
        app.config["JOBS_URL"] = "memory:"


def _ready(base):
    deadline = time.monotonic() + 180  # a loaded machine takes its time to import the app
    answer = None
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=30) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            answer = exc.read()
            exc.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{base} never became ready: {answer}")
        time.sleep(0.2)


def _every_periodic_job_ran_once_a_minute(started):
    """Each worker schedules every periodic job each minute; between the first and last minute
    either worker ran, each minute-job has exactly one run, and none was left unfinished."""
    _wait(
        lambda: not db.session.scalars(select(JobRun).filter_by(status="running")).all(), 60, "runs under way"
    )
    runs = db.session.scalars(select(JobRun).where(~JobRun.slot.startswith("soon"))).all()
    assert runs, "no periodic run at all"
    assert all(run.status == "done" for run in runs), [
        (r.name, r.slot, r.outcome) for r in runs if r.status != "done"
    ]
    per_job = Counter((run.name, run.slot) for run in runs)
    assert set(per_job.values()) == {1}
    minutes = sorted({run.slot for run in runs if run.name == "orders.expire"})
    first = datetime.fromisoformat(minutes[0])
    assert minutes == [(first + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M") for i in range(len(minutes))]
    queued = db.session.scalars(select(JobRun).where(JobRun.slot.startswith("soon"))).all()
    assert queued and all(run.status == "done" for run in queued)
