"""Payments under faults: events in every order, a process killed mid-checkout, connections the
database drops. Whatever happens, the revenue lines equal the money kept, a held order can be paid,
and the ledger verifies."""

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, event, func, select, text

from portal.buyers import services as buyers
from portal.core.idempotency import request_digest
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.payments import services as payments
from portal.payments.models import WebhookEvent
from portal.revenue.models import RevenueLine
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.offsets.helpers import inventory
from tests.payments import charge_refunded, free_port, intent_event, localstripe, post_event, wait_for  # noqa: F401

STEEL = factories.STEEL_USCC
pg = pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)


def _order(quantity=10, intent_id="pi_faults"):
    steel = buyers.find_by_uscc(STEEL)
    order, _ = orders.create_order(steel, quantity, beneficiary="x", purpose="voluntary", actor="t")
    order.payment_intent_id = intent_id
    db.session.commit()
    return order


def _revenue(order) -> int:
    db.session.expire_all()
    return sum(db.session.scalars(select(RevenueLine.amount_fen).filter_by(sale_ref=order.public_id)))


def _succeeded(intent_id, fen):
    return intent_event({"id": intent_id, "amount": fen, "currency": "cny", "metadata": {}})


# --- 1. refunds before payments -------------------------------------------------------------------


def test_a_partial_refund_seen_before_the_payment_is_applied_when_the_payment_arrives(stock, app, client):
    """It was answered ``partly_refunded`` and forgotten: fulfilment then recorded revenue for the
    whole amount (76,000 fen recorded, 75,700 kept)."""
    order = _order()
    fen = payments.to_fen(order.amount)
    refund = post_event(client, app, charge_refunded("pi_faults", 300))
    assert refund.get_json()["outcome"] == "deferred"
    assert post_event(client, app, _succeeded("pi_faults", fen)).get_json()["outcome"] == "fulfilled"
    assert _revenue(order) == fen - 300
    kept = db.session.scalar(select(WebhookEvent).filter_by(type="charge.refunded"))
    assert kept.outcome == "revenue_reversed" and kept.pending_object is None
    assert verify_ledger().ok


EVENTS = ("succeeded", "refund_100", "refund_450", "refund_all")


@pytest.mark.parametrize("sequence", list(itertools.permutations(EVENTS)), ids="-".join)
def test_revenue_equals_the_money_kept_whatever_order_the_events_come_in(stock, app, client, sequence):
    order = _order()
    fen = payments.to_fen(order.amount)
    made = {
        "succeeded": _succeeded("pi_faults", fen),
        "refund_100": charge_refunded("pi_faults", 100),
        "refund_450": charge_refunded("pi_faults", 450),
        "refund_all": charge_refunded("pi_faults", fen),
    }
    for name in sequence:
        assert post_event(client, app, made[name]).status_code == 200
        assert post_event(client, app, made[name]).get_json()["outcome"] == "duplicate"
    assert _revenue(order) == 0  # everything was refunded in the end
    assert db.session.scalar(select(func.count()).where(WebhookEvent.pending_object.is_not(None))) == 0
    assert verify_ledger().ok


@pytest.mark.parametrize("first", ["refund", "payment"])
def test_a_partial_refund_leaves_the_rest_as_revenue_in_either_order(stock, app, client, first):
    order = _order()
    fen = payments.to_fen(order.amount)
    events = [charge_refunded("pi_faults", 1234), _succeeded("pi_faults", fen)]
    for e in events if first == "refund" else events[::-1]:
        assert post_event(client, app, e).status_code == 200
    assert _revenue(order) == fen - 1234
    assert db.session.get(Order, order.id).status == "fulfilled"


def test_a_refund_of_an_unknown_payment_waits_and_reaches_staff_after_an_hour(stock, app, client):
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    response = post_event(client, app, charge_refunded("pi_nobody", 100))
    assert response.status_code == 200 and response.get_json()["outcome"] == "deferred"
    assert payments.apply_deferred() == {"applied": 0, "waiting": 1, "reported": 0}
    later = utcnow() + timedelta(hours=1, minutes=1)
    assert payments.apply_deferred(later) == {"applied": 0, "waiting": 1, "reported": 1}
    assert payments.apply_deferred(later) == {"applied": 0, "waiting": 1, "reported": 0}  # told once
    told = db.session.scalars(select(OutboxMessage).filter_by(to="ops@example.com")).all()
    assert len(told) == 1 and "pi_nobody" in told[0].body


def test_a_deferred_refund_missed_by_its_payment_is_applied_by_the_retry(stock, app, client):
    """A payment handled at the same moment as its refund arrived may not see it (neither was
    committed): the minute's retry applies it."""
    order = _order()
    fen = payments.to_fen(order.amount)
    assert post_event(client, app, charge_refunded("pi_faults", 500)).get_json()["outcome"] == "deferred"
    # The payment's handler ran without seeing the refund (as if it committed first).
    record = db.session.scalar(select(WebhookEvent))
    pending, record.pending_object = record.pending_object, None
    db.session.commit()
    assert post_event(client, app, _succeeded("pi_faults", fen)).get_json()["outcome"] == "fulfilled"
    record = db.session.get(WebhookEvent, record.id)
    record.pending_object = pending
    db.session.commit()
    assert _revenue(order) == fen
    assert payments.apply_deferred() == {"applied": 1, "waiting": 0, "reported": 0}
    assert _revenue(order) == fen - 500


# --- 2. a checkout killed after its hold ---------------------------------------------------------


class _BlackHole:
    """A 'Stripe' that accepts connections and never answers: a checkout calling it hangs after
    its hold is committed, where the process is then killed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def _serve(database_url, stripe_base, port, instance):
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": "test-secret",
        "PORTAL_INSTANCE_PATH": str(instance),
        "PORTAL_LOG_LEVEL": "WARNING",
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_SECRET_KEY": "sk_test_portal",
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    return subprocess.Popen(
        [
            gunicorn,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "120",
            "portal:create_app()",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _post_order_in_background(port, key, idem):
    import urllib.request

    body = json.dumps({"quantity": 10, "beneficiary": "x"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/orders",
        data=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": idem,
        },
    )

    def send():
        with contextlib.suppress(OSError):  # the server is killed under it
            urllib.request.urlopen(request, timeout=60).read()

    threading.Thread(target=send, daemon=True).start()


@pg
def test_a_replayed_order_whose_process_died_before_its_payment_intent_gets_one(
    pg_app,
    tmp_path,
    localstripe,  # noqa: F811
):
    """Killed (SIGKILL) after the hold was committed, before Stripe answered: the retry with the
    same Idempotency-Key answered 201 replayed with ``payment_intent: null``, the credits held for
    30 minutes. It must finish the work: create (or find) the PaymentIntent."""
    app = pg_app
    factories.steel_and_cement()
    factories.batch(quantity=200, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    key = factories.api_key(app, "--org", STEEL)
    hole, port = _BlackHole(), free_port()
    server = _serve(app.config["SQLALCHEMY_DATABASE_URI"], hole.url, port, tmp_path / "instance")
    try:
        _wait_until(lambda: _port_open(port))
        _post_order_in_background(port, key, "order-crash-1")

        def held():
            return db.session.scalar(select(Order).filter_by(idempotency_key="order-crash-1"))

        wait_for(lambda: held() is not None and hole.conns, timeout=60)  # committed, waiting on Stripe
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        hole.close()
    db.session.rollback()
    order = held()
    assert order.status == "awaiting_payment" and order.payment_intent_id is None
    assert inventory() == 190

    app.config.update(STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-crash-1"}
    replay = client.post("/api/v1/orders", json={"quantity": 10, "beneficiary": "x"}, headers=headers)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    body = replay.get_json()["order"]
    assert body["id"] == order.public_id and body["payment"]["payment_intent"].startswith("pi_")
    again = client.post("/api/v1/orders", json={"quantity": 10, "beneficiary": "x"}, headers=headers)
    assert again.get_json()["order"]["payment"] == body["payment"]  # the same intent, not a second
    db.session.expire_all()
    assert db.session.get(Order, order.id).payment_intent_id == body["payment"]["payment_intent"]
    assert inventory() == 190 and verify_ledger().ok


def _port_open(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_a_replay_while_stripe_is_down_keeps_the_hold_and_says_so(stock, app):
    steel = buyers.find_by_uscc(STEEL)
    key = factories.api_key(app, "--org", STEEL)
    body = {"quantity": 10, "beneficiary": "x"}
    order, _ = orders.create_order(
        steel,
        10,
        beneficiary="x",
        purpose="voluntary",
        actor="t",
        idempotency_key="k1",
        digest=request_digest(body),
    )
    db.session.commit()
    app.config.update(STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}", STRIPE_SECRET_KEY="sk_test_portal")
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k1"}
    replay = app.test_client().post(
        "/api/v1/orders", json={"quantity": 10, "beneficiary": "x"}, headers=headers
    )
    assert replay.status_code == 503 and replay.get_json()["error"]["code"] == "payment_unavailable"
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "awaiting_payment" and inventory() == 190


# --- 3. connections the database drops ------------------------------------------------------------


def _terminate_others():
    """Terminate every other connection to the test database, as an administrator would."""
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    engine.dispose()
    return killed


@pg
def test_connections_dropped_while_idle_cost_no_failed_request(pg_app):
    """Terminating the portal's connections gave one 500 per pooled connection."""
    factories.steel_and_cement()
    db.session.commit()
    key = factories.api_key(pg_app, "--org", STEEL)
    db.session.remove()
    held = [db.engine.connect() for _ in range(5)]  # five pooled connections
    for conn in held:
        conn.execute(text("SELECT 1"))
        conn.close()
    assert _terminate_others() >= 5
    client = pg_app.test_client()
    statuses = [
        client.get("/api/v1/holdings", headers={"Authorization": f"Bearer {key}"}).status_code
        for _ in range(8)
    ]
    assert statuses == [200] * 8


@pg
def test_a_connection_lost_mid_request_is_a_503_that_saved_nothing(pg_app):
    factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    key = factories.api_key(pg_app, "--org", STEEL)
    db.session.remove()

    dropped = []

    def drop_on_hold(conn, cursor, statement, parameters, context, executemany):
        # once; not removed here: SQLAlchemy is iterating over its listeners
        # the journal's insert (on PostgreSQL inside the movement's one write statement)
        if not dropped and "INSERT INTO LEDGER_ENTRIES" in statement.upper():
            dropped.append(True)
            _terminate_pid(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(db.engine, "before_cursor_execute", drop_on_hold)
    try:
        response = pg_app.test_client().post(
            "/api/v1/orders",
            json={"quantity": 10, "beneficiary": "x"},
            headers={"Authorization": f"Bearer {key}"},
        )
    finally:
        event.remove(db.engine, "before_cursor_execute", drop_on_hold)
    assert dropped
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert inventory() == 100 and verify_ledger().ok


def _terminate_pid(pid):
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    engine.dispose()


@pg
def test_a_connection_lost_while_committing_says_the_outcome_is_unknown(pg_app):
    """Whether the database committed before the connection broke cannot be known: the answer
    says so (and the Idempotency-Key makes the retry safe), instead of a 500 or a guess."""
    factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    key = factories.api_key(pg_app, "--org", STEEL)
    db.session.remove()

    dropped, held = [], []

    def see_hold(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO LEDGER_ENTRIES" in statement.upper():  # the hold's movement
            held.append(True)

    def drop_at_commit(conn):
        if held and not dropped:  # the commit of the order's hold (not the API call's count before it)
            dropped.append(conn.connection.dbapi_connection.info.backend_pid)
            _terminate_pid(dropped[0])

    event.listen(db.engine, "before_cursor_execute", see_hold)
    event.listen(db.engine, "commit", drop_at_commit)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "lost-commit"}
    body = {"quantity": 10, "beneficiary": "x"}
    try:
        response = pg_app.test_client().post("/api/v1/orders", json=body, headers=headers)
    finally:
        event.remove(db.engine, "commit", drop_at_commit)
        event.remove(db.engine, "before_cursor_execute", see_hold)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "outcome_unknown"
    assert "Idempotency-Key" in response.get_json()["error"]["message"]
    assert verify_ledger().ok
    # The retry is safe: it makes the order now (here the commit had not happened).
    pg_app.config.update(
        STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}", STRIPE_SECRET_KEY="sk_test_portal"
    )
    retry = pg_app.test_client().post("/api/v1/orders", json=body, headers=headers)
    assert retry.status_code in (201, 503)
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert verify_ledger().ok
