"""Retiring from a holding with the certificate made before the batch is locked
(``certificates.issuing.retire_into_certificates`` on PostgreSQL): made and signed from the
holding as read, kept if the movement took exactly that, made again from what it took if not (a
retirement of the same holding came first). Either way the certificate says what moved."""

import json
import threading

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.certificates import issuing, signing
from portal.certificates import services as certificates
from portal.certificates.models import Certificate, CertificateBlock
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import LedgerEntry
from portal.ledger.verify import verify_ledger
from portal.transparency.appending import leaf_input
from portal.transparency.models import LogEntry
from tests import factories
from tests.sql import statements_of, syncs_sent


@pytest.fixture
def holder(any_app):
    steel, _cement = factories.steel_and_cement()
    old = factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    new = factories.batch(quantity=100, code="NEW-2023", vintage=2023)
    buyers.deliver_from_inventory(steel, 30)
    buyers.deliver_from_inventory(steel, 100, batch_codes=[new.code])
    db.session.commit()
    return steel, old, new


def _says_what_moved(certificate: Certificate) -> list[tuple[str, int, int]]:
    """The ranges ``certificate`` signed, checked against its blocks and its movement's journal."""
    db.session.expire_all()
    certificate = db.session.get(Certificate, certificate.id)
    document = json.loads(certificate.payload)
    signed = [(b["batch_code"], b["serial_start"], b["serial_end"]) for b in document["blocks"]]
    assert signing.signature_valid(certificate.payload, certificate.signature, certificate.key_id)
    kept = db.session.execute(
        select(CertificateBlock.batch_id, CertificateBlock.serial_start, CertificateBlock.serial_end)
        .where(CertificateBlock.certificate_id == certificate.id)
        .order_by(CertificateBlock.id)
    ).all()
    journal = db.session.execute(
        select(LedgerEntry.batch_id, LedgerEntry.serial_start, LedgerEntry.serial_end)
        .where(LedgerEntry.movement_id == certificate.movement_id)
        .order_by(LedgerEntry.id)
    ).all()
    assert [tuple(r) for r in kept] == [tuple(r) for r in journal]
    assert sum(e - s + 1 for _code, s, e in signed) == certificate.quantity == document["quantity"]
    # The log's leaf is the certificate as written (made with it before the lock, or again).
    (logged,) = db.session.scalars(
        select(LogEntry.leaf_input).filter_by(certificate_number=certificate.number)
    )
    assert bytes(logged) == leaf_input(
        "issuance", certificate.number, certificate.payload, certificate.signature, certificate.key_id
    )
    return signed


def test_the_certificate_names_what_the_movement_took(holder):
    steel, _old, _new = holder
    certificate, _ = certificates.retire_from_holding(
        steel, 40, beneficiary="鞍钢", purpose="voluntary", actor="t"
    )
    db.session.commit()
    # Oldest vintage first: the 30 t of 2021, then 10 t of 2023.
    assert _says_what_moved(certificate) == [("OLD-2021", 1, 30), ("NEW-2023", 1, 10)]
    assert ledger.balance(buyers.holding_account(steel)) == 90
    assert verify_ledger().ok


def test_a_chosen_batch_is_read_and_retired_alone(holder, monkeypatch):
    """A retirement from one named batch (or, for compliance, the CCER batches): the holding's
    blocks of those batches only are read before the lock, and the certificate made from them
    is the one written."""
    steel, _old, new = holder
    real_make, made = issuing._make, []

    def counted(*args, **kwargs):
        made.append(args[1])
        return real_make(*args, **kwargs)

    monkeypatch.setattr(issuing, "_make", counted)
    certificate, _ = certificates.retire_from_holding(
        steel, 5, beneficiary="鞍钢", purpose="voluntary", batch_code=new.code, actor="t"
    )
    db.session.commit()
    assert _says_what_moved(certificate) == [("NEW-2023", 1, 5)]
    assert len(made) == 1  # on PostgreSQL made from the guess, which was right
    assert verify_ledger().ok


@pytest.mark.postgres
def test_a_holding_changed_between_the_forecast_and_the_lock(pg_app, monkeypatch):
    """What the holding held when it was read is gone by the time the batch is locked (retired
    in this very transaction, as another retirement of the same holding committed first would
    have it): the certificate is made again from what moved."""
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 30)
    db.session.commit()
    real = issuing._numbers_and_forecast
    read = []

    def forecast_then_move(*args, **kwargs):
        numbers, ranges = real(*args, **kwargs)
        read.append(ranges)
        ledger.retire(5, source=buyers.holding_account(steel), actor="t")
        return numbers, ranges

    monkeypatch.setattr(issuing, "_numbers_and_forecast", forecast_then_move)
    certificate, _ = certificates.retire_from_holding(
        steel, 10, beneficiary="鞍钢", purpose="voluntary", actor="t"
    )
    db.session.commit()
    assert [(r.batch_code, r.serial_start, r.serial_end) for r in read[0]] == [("OLD-2021", 1, 10)]
    assert _says_what_moved(certificate) == [("OLD-2021", 6, 15)]
    # What was made from the forecast went with the movement and wrote nothing: one
    # certificate, one audit event naming the movement that happened.
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    (issued,) = db.session.scalars(select(AuditEvent).filter_by(action="certificate.issue"))
    assert issued.subject_id == certificate.number
    assert json.loads(issued.after)["movement"] == certificate.movement_id
    assert verify_ledger().ok


@pytest.fixture
def retired_once(pg_app):
    """A holding of 30 t of one batch, 1 t of it retired already: the retired account and the
    log's state exist and the signing key is published, as on any running portal."""
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 30)
    db.session.commit()
    # The first retirement creates the retired account and the log's state, publishes the key.
    certificates.retire_from_holding(steel, 1, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    return steel


@pytest.mark.postgres
def test_on_postgresql_the_certificate_is_made_before_the_lock(retired_once):
    """The holding is read first, the certificate made and signed; from the batch's lock to the
    commit only the movement, the certificate's one statement and the log's leaf are sent."""
    steel = retired_once
    real_make = issuing._make
    made = []

    def counted(*args, **kwargs):
        made.append(args[1])
        return real_make(*args, **kwargs)

    def retire():
        certificates.retire_from_holding(steel, 3, beneficiary="x", purpose="voluntary", actor="t")
        db.session.commit()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(issuing, "_make", counted)
        sent = statements_of(retire)
    flat = [" ".join(s.split()) for s in sent]
    lock = next(n for n, s in enumerate(flat) if "FOR NO KEY UPDATE" in s and "FROM batches" in s)
    forecast = next(n for n, s in enumerate(flat) if "FROM blocks JOIN batches" in s or "JOIN blocks" in s)
    assert forecast < lock
    after = flat[lock + 1 :]
    assert len(after) == 3, after
    assert "held AS" in after[0] and "INSERT INTO certificates" in after[1] and "log_state" in after[2]
    assert len(made) == 1  # made once: the movement took what was read


@pytest.mark.postgres
def test_on_postgresql_the_certificate_goes_with_the_movement(retired_once):
    """The certificate's statement is sent with the movement's, and the movement's with the lock,
    in one round trip: a retirement waits on the server three times besides its ``BEGIN`` and
    ``COMMIT`` (the number check with the forecast, the lock with the movement and the
    certificate, the log's leaf), and what it wrote is the certificate of what moved."""
    steel = retired_once
    found = []

    def retire():
        found.append(
            certificates.retire_from_holding(steel, 3, beneficiary="x", purpose="voluntary", actor="t")[0]
        )
        db.session.commit()

    assert steel.name_zh  # the organisation read again after the commit, as the API's key read has it
    assert syncs_sent(retire) == 3
    assert _says_what_moved(found[0]) == [("OLD-2021", 2, 4)]
    assert verify_ledger().ok


@pytest.mark.postgres
def test_a_retirement_of_the_same_holding_committed_meanwhile(pg_app):
    """Two retirements of one holding: the second reads the holding, then the first locks,
    retires the same serials and commits before the second locks. The second's certificate
    is made again from the serials it did take; no serial is certified twice."""
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 30)
    db.session.commit()
    org_id = steel.id
    real = issuing._numbers_and_forecast
    first_done = threading.Event()
    outcome = {}

    def first():
        with pg_app.app_context():
            try:
                org = db.session.get(type(steel), org_id)
                c, _ = certificates.retire_from_holding(
                    org, 4, beneficiary="A", purpose="voluntary", actor="a"
                )
                db.session.commit()
                outcome["first"] = c.id
            finally:
                db.session.remove()
                first_done.set()

    def forecast_then_wait(*args, **kwargs):
        numbers, ranges = real(*args, **kwargs)
        if "started" not in outcome:
            outcome["started"] = True
            worker = threading.Thread(target=first)
            worker.start()
            assert first_done.wait(30)
            worker.join()
        return numbers, ranges

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(issuing, "_numbers_and_forecast", forecast_then_wait)
        second, _ = certificates.retire_from_holding(
            steel, 4, beneficiary="B", purpose="voluntary", actor="b"
        )
        db.session.commit()
    first_certificate = db.session.get(Certificate, outcome["first"])
    assert _says_what_moved(first_certificate) == [("OLD-2021", 1, 4)]
    assert _says_what_moved(db.session.get(Certificate, second.id)) == [("OLD-2021", 5, 8)]
    assert ledger.balance(buyers.holding_account(steel)) == 22
    assert verify_ledger().ok
