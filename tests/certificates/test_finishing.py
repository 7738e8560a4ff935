"""A retirement through the API committed in its movement's round trip (PostgreSQL): the
movement, its certificate, the certificate's log leaf, a check that all of them or none were
written, and ``COMMIT``, sent together (``issuing.retire_into_certificates``' ``finish``). Each
test here would fail if that commit could keep part of a retirement, or keep anything sent
after it."""

import pytest
from sqlalchemy import func, select, text

from portal.buyers import services as buyers
from portal.buyers.models import Organisation
from portal.certificates import issuing
from portal.certificates.models import Certificate
from portal.core.driver import session_rows_together
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import LedgerEntry
from portal.ledger.verify import verify_ledger
from portal.timeutil import utcnow
from portal.transparency.check import verify_log
from portal.transparency.models import LogEntry
from tests import factories
from tests.certificates.helpers import retire
from tests.sql import checked_out_round_trips

BODY = {"quantity": 1, "beneficiary": "x", "purpose": "voluntary"}


@pytest.fixture
def holder(pg_app):
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="CCER-A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 50)
    db.session.commit()
    key = factories.api_key(pg_app, "--org", factories.STEEL_USCC)
    db.session.remove()
    client = pg_app.test_client()
    # The first makes the log's state row, the second finds it on its connection: from the
    # third on, a retirement commits with its movement.
    for _ in range(2):
        assert retire(client, key, BODY).status_code == 201
    db.session.remove()
    return client, key


def held() -> int:
    """The steel works' holding, read afresh."""
    db.session.remove()
    steel = db.session.scalars(select(Organisation).where(Organisation.uscc == factories.STEEL_USCC)).one()
    return ledger.balance(buyers.holding_account(steel))


def written():
    """(certificates, journal entries, log entries), read afresh."""
    db.session.remove()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Certificate, LedgerEntry, LogEntry)
    )


def test_a_retirement_committed_with_its_movement_is_whole(holder):
    client, key = holder
    answers = []
    assert checked_out_round_trips(lambda: answers.append(retire(client, key, BODY))) == 2
    answer = answers[0]
    assert answer.status_code == 201, answer.get_json()
    certificate = answer.get_json()["certificate"]
    (entry,) = certificate["transparency_log"]["entries"]
    db.session.remove()
    row = db.session.scalars(select(Certificate).where(Certificate.number == certificate["number"])).one()
    logged = db.session.scalars(select(LogEntry).where(LogEntry.certificate_number == row.number)).one()
    assert logged.leaf_index == entry["leaf_index"] and logged.kind == "issuance"
    journal = db.session.scalars(select(LedgerEntry).where(LedgerEntry.movement_id == row.movement_id)).one()
    assert (journal.serial_start, journal.serial_end) == (
        row.blocks[0].serial_start,
        row.blocks[0].serial_end,
    )
    assert held() == 47
    assert verify_ledger().ok and verify_log().ok


def test_a_range_taken_meanwhile_commits_nothing_and_the_retirement_is_made_again(holder, monkeypatch):
    client, key = holder
    real = issuing._numbers_and_forecast

    def stale(year, count, forecast):
        numbers_, likely = real(year, count, forecast)
        (first,) = likely  # as read before another movement took the holding's first serial
        return numbers_, [
            ledger.MovedRange(first.batch_id, first.batch_code, first.serial_start + 1, first.serial_end + 1)
        ]

    monkeypatch.setattr(issuing, "_numbers_and_forecast", stale)
    before = written()
    answer = retire(client, key, BODY)
    assert answer.status_code == 201, answer.get_json()
    # One certificate, one journal entry, one leaf: the round trip that committed wrote nothing.
    assert written() == (before[0] + 1, before[1] + 1, before[2] + 1)
    number = answer.get_json()["certificate"]["number"]
    row = db.session.scalars(select(Certificate).where(Certificate.number == number)).one()
    assert answer.get_json()["certificate"]["transparency_log"]["entries"][0]["leaf_index"] == before[2]
    assert row.blocks[0].serial_start != 0 and held() == 47
    assert verify_ledger().ok and verify_log().ok


@pytest.fixture
def failing_leaf(holder):
    """Every log leaf refused by the server, as a fault in the round trip's last statements."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION test_refuse_leaf() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'leaf refused'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER test_refuse_leaf BEFORE INSERT ON log_entries"
                " FOR EACH ROW EXECUTE FUNCTION test_refuse_leaf()"
            )
        )
    try:
        yield holder
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_refuse_leaf ON log_entries"))
            conn.execute(text("DROP FUNCTION test_refuse_leaf()"))


def test_a_fault_in_the_last_statements_commits_nothing(failing_leaf):
    client, key = failing_leaf
    before = written()
    answer = retire(client, key, BODY)
    assert answer.status_code == 500
    assert written() == before and held() == 48
    assert verify_ledger().ok


def test_a_certificate_whose_leaf_was_not_written_is_not_committed(holder):
    """The log's state row gone (as it never is): the leaf's statement writes nothing, and the
    check sent after it refuses to let the movement and the certificate be committed alone."""
    client, key = holder
    with db.engine.begin() as conn:
        state = conn.execute(text("SELECT tree_size, frontier, updated_at FROM log_state")).one()
        conn.execute(text("DELETE FROM log_state"))
    try:
        before = written()
        answer = retire(client, key, BODY)
        assert answer.status_code == 500
        assert written() == before and held() == 48
    finally:
        with db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO log_state (id, tree_size, frontier, updated_at) VALUES (1, :s, :f, :u)"),
                {"s": state.tree_size, "f": state.frontier, "u": state.updated_at},
            )
    assert retire(client, key, BODY).status_code == 201
    assert verify_ledger().ok and verify_log().ok


def test_nothing_is_committed_after_a_transaction_committed_with_its_last_statement(pg_app):
    """Whatever is sent after the early ``COMMIT`` would be a transaction of its own: the
    session's commit refuses it, and it is rolled back."""
    session_rows_together([("SELECT 1", {})], commit=True)
    db.session.execute(
        text("INSERT INTO log_state (id, tree_size, frontier, updated_at) VALUES (1, 0, '', now())")
    )
    with pytest.raises(RuntimeError, match="after the transaction was committed"):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(text("SELECT count(*) FROM log_state")) == 0
    # With nothing after it, the session's commit sends nothing and ends the transaction.
    session_rows_together([("SELECT 1", {})], commit=True)
    assert checked_out_round_trips(db.session.commit) == 0


def test_an_idempotent_or_webhooked_retirement_is_committed_as_usual(holder):
    """A retirement with an idempotency key (its savepoint stays open to the end) and one of an
    organisation that has had webhook endpoints (an event may be written after the movement)
    take the usual way: their commit is a round trip of its own, after the log's leaf."""
    client, key = holder
    answers = []
    keyed = {"Idempotency-Key": "finish-1"}
    assert checked_out_round_trips(lambda: answers.append(retire(client, key, BODY, **keyed))) > 2
    steel = db.session.scalars(select(Organisation).where(Organisation.uscc == factories.STEEL_USCC)).one()
    steel.webhooks_since = utcnow()  # as its first endpoint set it (its events are then read for)
    db.session.commit()
    db.session.remove()
    assert checked_out_round_trips(lambda: answers.append(retire(client, key, BODY))) > 2
    assert [a.status_code for a in answers] == [201, 201]
    assert held() == 46 and verify_ledger().ok and verify_log().ok
