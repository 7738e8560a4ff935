"""How many SQL statements a retirement through the API sends, on SQLite and PostgreSQL, on every
connection the portal keeps (the request's, the rate limit's, the certificates' reader): counted
here so that its round trips cannot creep back up."""

import pytest

from portal.buyers import apikeys
from portal.buyers import services as buyers
from portal.certificates import state as certificate_state
from portal.certificates.models import Certificate
from portal.core import throttle
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from tests import factories
from tests.certificates.helpers import retire
from tests.sql import checked_out_round_trips, statements_of

#: ``POST /api/v1/retirements`` of 1 t, without an idempotency key: the key with its organisation
#: and the call's count (on PostgreSQL one statement through the driver's cursor, committed at
#: once on a connection of its own; on SQLite the key, then the count in the session, committed,
#: then the organisation read again); on SQLite the holding account; the certificate number's uniqueness; on
#: SQLite the retired account (a PostgreSQL worker remembers the system accounts and holdings it
#: has seen committed); on PostgreSQL the holding's blocks the movement will most likely take,
#: with their batches, projects and regions (the certificate is made and signed from them before
#: the batch is locked: ``certificates.issuing``); the movement (lock and choose the batch, then on
#: PostgreSQL one statement that reads and writes, on SQLite the blocks' read and four writes); on
#: SQLite the certificate's batch with its project and region; the certificate with its blocks,
#: registry instruction and audit event (on PostgreSQL one statement, on SQLite one per table); no
#: webhook endpoints (the organisation never had one: ``webhooks.services.emit``); the
#: transparency log's leaf (on PostgreSQL one statement, on SQLite the state's read and three
#: writes). The answer is made from what the transaction wrote, not read after the commit
#: (``certificates.state.issued``). On SQLite the signing key's publication is looked up at every
#: signature; a PostgreSQL worker remembers it. (On PostgreSQL the number check, the holding's
#: read and the batch's lock are read through the driver's cursor in the transaction,
#: ``core.driver.session_rows``, which tells the engine's listeners: they are counted here.)
RETIRING = {"postgresql": 7, "sqlite": 22}


@pytest.fixture
def holder(any_app):
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="CCER-A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 50)
    db.session.commit()
    key = factories.api_key(any_app, "--org", factories.STEEL_USCC)
    db.session.remove()
    return any_app.test_client(), key


@pytest.fixture
def driver_reads(monkeypatch):
    """The statements sent through the driver's own cursor (``core.database.raw_rows``, which
    SQLAlchemy's events do not see), by the modules of this path that use it."""
    seen = []
    for module in (apikeys, throttle, certificate_state):
        real = module.raw_rows

        def counted(engine, sql, params, real=real):
            seen.append(sql)
            return real(engine, sql, params)

        monkeypatch.setattr(module, "raw_rows", counted)
    return seen


def test_a_retirement_through_the_api_sends_a_fixed_number_of_statements(holder, driver_reads):
    client, key = holder
    body = {"quantity": 1, "beneficiary": "x", "purpose": "voluntary"}
    assert retire(client, key, body).status_code == 201  # creates the retired account, publishes the key
    answers = []
    driver_reads.clear()
    sent = statements_of(lambda: answers.append(retire(client, key, body))) + driver_reads
    assert answers[0].status_code == 201, answers[0].get_json()
    assert len(sent) == RETIRING[db.engine.dialect.name], [" ".join(s.split())[:70] for s in sent]
    certificate = answers[0].get_json()["certificate"]
    # The answer is the certificate as committed: its log entry (given at commit) included.
    assert certificate["signature_valid"] is True
    assert [e["kind"] for e in certificate["transparency_log"]["entries"]] == ["issuance"]
    assert certificate["registry"]["status"]
    assert db.session.get(Certificate, 2) is not None and verify_ledger().ok
    db.session.remove()
    if db.engine.dialect.name == "postgresql":
        # The request's waits on the server (besides the key's with its count, on a reader's
        # connection): the number check and the forecast, with the transaction's BEGIN; the
        # lock, the movement and the certificate; the log's leaf; COMMIT.
        assert checked_out_round_trips(lambda: answers.append(retire(client, key, body))) == 4
        assert answers[-1].status_code == 201
