"""How many SQL statements placing an order and fulfilling it send, on SQLite and PostgreSQL: the
paths where money moves are counted here so that their round trips cannot creep back up."""

import pytest

from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import OrderStatus
from portal.payments import services as payments
from tests import factories
from tests.sql import statements_of

#: Placing a 10 t order, with the statements it sends: the organisation's order lock; this year's
#: and today's tonnes (one statement); the order; the alliance's terms; its hold account (one
#: INSERT … RETURNING); on SQLite the inventory account (a PostgreSQL worker remembers the system
#: accounts and holdings it has seen committed); the hold's capacity (lock, balance); the movement
#: (lock and choose the batch, read its blocks, then its writes: on SQLite split, take neighbours,
#: rewrite, journal; on PostgreSQL the read and the writes in one statement); the priced line's
#: batch and the order's lines; the audit event; the order's amount and its line.
PLACING = {"postgresql": 14, "sqlite": 19}

#: Fulfilling it on Stripe's success event: the order, locked, with its lines; the hold account;
#: the certificate number's uniqueness; the hold's blocks as they are (read without locking: the
#: hold is the locked order's own); on SQLite the signing key's publication (a PostgreSQL worker
#: remembers it; the certificate's batch came with the order's lines); the certificate with its
#: blocks, the registry instruction and the audit event (on PostgreSQL one statement, on SQLite
#: one per table); no webhook endpoints (the organisation, loaded with the order, never had one:
#: ``webhooks.services.emit``); the sharing rule;
#: the audit event; the receipt's recipients and the receipt; then in one flush the revenue line
#: and the order's status, paid-at and certificate; then, last, on SQLite the retired account, and
#: the movement (lock and choose, read the blocks again under the lock, then on SQLite three
#: writes; on PostgreSQL the read and the writes are one statement); the transparency log's leaf
#: (on PostgreSQL one statement that locks the log's state, hashes and writes; on SQLite the
#: state's read and three writes).
FULFILLING = {"postgresql": 13, "sqlite": 24}


@pytest.fixture
def buyer(any_app):
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    return steel


def _place_and_fulfil(buyer, intent_id):
    placed = []

    def place():
        placed.append(orders.create_order(buyer, 10, beneficiary="x", purpose="voluntary", actor="t")[0])
        db.session.commit()

    placing = statements_of(place)
    order = placed[0]
    order.payment_intent_id = intent_id
    db.session.commit()
    fen = payments.to_fen(order.amount)

    def fulfil():
        orders.payment_succeeded({"id": intent_id, "amount": fen, "currency": "cny"})
        db.session.commit()

    fulfilling = statements_of(fulfil)
    assert order.status == OrderStatus.FULFILLED
    return placing, fulfilling


def test_placing_and_fulfilling_an_order_send_a_fixed_number_of_statements(buyer):
    _place_and_fulfil(buyer, "pi_first")  # the first creates the retired account, publishes the key
    placing, fulfilling = _place_and_fulfil(buyer, "pi_second")
    assert len(placing) == PLACING[db.engine.dialect.name], placing
    assert len(fulfilling) == FULFILLING[db.engine.dialect.name], fulfilling
    assert verify_ledger().ok


def test_fulfilment_locks_the_batch_only_after_everything_else_is_written(buyer):
    """Every order draws from the oldest batch: its lock is taken by the movement (choosing the
    batch locks it, on PostgreSQL), after the certificate, its signature, the registry
    instruction, the revenue line, the order's status and the audit events are written, so that
    it is held only for the movement, the log's leaf and the commit."""
    _place_and_fulfil(buyer, "pi_first")
    _placing, fulfilling = _place_and_fulfil(buyer, "pi_second")
    text = [" ".join(s.split()).upper() for s in fulfilling]
    # The next batch holding the source's blocks, locked (on PostgreSQL in a CTE that leaves its
    # id for the movement's statement sent with it).
    chosen = [
        i
        for i, s in enumerate(text)
        if s.startswith(("SELECT ", "WITH LOCKED AS MATERIALIZED (SELECT "))
        and " FROM BATCHES" in s
        and "EXISTS" in s
    ]
    assert len(chosen) == 1, fulfilling
    locked = chosen[0]
    if db.engine.dialect.name == "postgresql":
        assert "FOR NO KEY UPDATE" in text[locked]

    def last(prefix: str) -> int:
        # On PostgreSQL the certificate, its blocks, instruction and audit event are one statement.
        return max(i for i, s in enumerate(text) if s.startswith(prefix) or f"({prefix}" in s)

    for prefix in (
        "INSERT INTO CERTIFICATES ",
        "INSERT INTO CERTIFICATE_BLOCKS ",
        "INSERT INTO REGISTRY_INSTRUCTIONS ",
        "INSERT INTO REVENUE_LINES ",
        "INSERT INTO AUDIT_EVENTS ",
        "UPDATE ORDERS SET STATUS",
    ):
        assert last(prefix) < locked, (prefix, fulfilling)
    # After the lock: the blocks read again, the movement's writes (on PostgreSQL one statement
    # with that read), the log's leaf.
    assert len(text) - locked == {"postgresql": 3, "sqlite": 9}[db.engine.dialect.name], fulfilling[locked:]
