"""Writing a retirement's certificates with their blocks, registry instructions and audit events
(``certificates.writing``: on PostgreSQL one statement, on SQLite one per table): every row as
made, in order, each block and instruction with its own certificate, on both databases."""

import json

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.certificates import lookup
from portal.certificates.issuing import Part, retire_into_certificates
from portal.certificates.models import Certificate, CertificateBlock, Source
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from portal.registry.models import RegistryInstruction
from tests import factories
from tests.certificates.helpers import hold_ccer_and_vcs

#: Text a JSON parameter must carry exactly: quotes, a backslash, Chinese, an emoji.
AWKWARD = '鞍钢 "集团" \\ 第一分厂 🌲'


@pytest.fixture
def steel(any_app):
    """Steel holds 100 t of a CCER batch and 100 t of a VCS batch."""
    steel, _cement = factories.steel_and_cement()
    hold_ccer_and_vcs(steel, issued=100, ccer=100, vcs=100)
    db.session.commit()
    return steel


def _retire(steel, parts):
    holding = ledger.find_account(AccountKind.HOLDING, steel.uscc)
    return retire_into_certificates(holding, steel, parts, source=Source.HOLDING, actor="user:7")


def test_several_certificates_get_their_own_blocks_instructions_and_events_in_order(steel):
    parts = [Part(60, "甲", "event"), Part(80, AWKWARD, "event", "年会 2026"), Part(60, "丙", "event")]
    made = _retire(steel, parts)
    db.session.commit()
    numbers = [c.number for c in made]
    assert [c.id for c in made] == sorted(c.id for c in made)  # written in the parts' order
    db.session.expunge_all()
    stored = {
        c.number: c for c in db.session.scalars(select(Certificate).where(Certificate.number.in_(numbers)))
    }
    ranges = {}
    for number in numbers:
        blocks = db.session.scalars(
            select(CertificateBlock)
            .where(CertificateBlock.certificate_id == stored[number].id)
            .order_by(CertificateBlock.id)
        ).all()
        ranges[number] = [(b.batch.code, b.serial_start, b.serial_end) for b in blocks]
    # The ledger retires the oldest batch first; the parts are dealt its ranges in order.
    assert list(ranges.values()) == [
        [("CCER-A-2021", 1, 60)],
        [("CCER-A-2021", 61, 100), ("VCS-B-2022", 1, 40)],
        [("VCS-B-2022", 41, 100)],
    ]
    second = stored[numbers[1]]
    assert second.beneficiary == AWKWARD and second.purpose_detail == "年会 2026"
    assert json.loads(second.payload)["beneficiary"] == AWKWARD
    assert second.status == "valid" and second.revoked_at is None
    assert second.retired_at.tzinfo is not None and second.retired_at == made[1].retired_at
    assert lookup.verify(second).valid
    instructions = db.session.scalars(
        select(RegistryInstruction)
        .where(RegistryInstruction.certificate_number.in_(numbers))
        .order_by(RegistryInstruction.id)
    ).all()
    assert [(i.certificate_number, i.registry_name, i.ranges, i.quantity) for i in instructions] == [
        (numbers[0], "ccer", "1-60", 60),
        (numbers[1], "ccer", "61-100", 40),
        (numbers[1], "verra", "1-40", 40),
        (numbers[2], "verra", "41-100", 60),
    ]
    assert all(i.certificate_id == stored[i.certificate_number].id for i in instructions)
    assert {i.beneficiary for i in instructions if i.certificate_number == numbers[1]} == {AWKWARD}
    assert all(i.status == "pending" and i.created_at == second.retired_at for i in instructions)
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "certificate.issue").order_by(AuditEvent.id)
    ).all()
    assert [e.subject_id for e in events] == numbers
    assert json.loads(events[1].after) == {
        "quantity": 80,
        "source": "holding",
        "source_ref": "",
        "movement": second.movement_id,
    }
    assert events[1].before is None and events[1].actor == "user:7" and events[1].at.tzinfo is not None
    assert verify_ledger().ok


def test_the_certificates_are_in_the_session_as_loaded(steel):
    (certificate,) = _retire(steel, [Part(5, "甲", "voluntary")])
    assert db.session.get(Certificate, certificate.id) is certificate
    assert certificate not in db.session.dirty and certificate not in db.session.new
    assert [(b.serial_start, b.serial_end) for b in certificate.blocks] == [(1, 5)]
    db.session.commit()
    assert certificate.number and db.session.get(Certificate, certificate.id).quantity == 5


def test_a_refused_write_leaves_nothing(steel):
    """The same idempotency key twice for one organisation: the second write is refused by the
    database, and rolling back leaves no certificate, block, instruction or event of it."""
    holding = ledger.find_account(AccountKind.HOLDING, steel.uscc)

    def retire():
        return retire_into_certificates(
            holding,
            steel,
            [Part(1, "甲", "voluntary")],
            source=Source.HOLDING,
            actor="t",
            idempotency_key="k-1",
        )

    retire()
    db.session.commit()
    counts = [
        db.session.query(model).count()
        for model in (Certificate, CertificateBlock, RegistryInstruction, AuditEvent)
    ]
    with pytest.raises(Exception, match="(?i)unique"):
        retire()
    db.session.rollback()
    assert [
        db.session.query(model).count()
        for model in (Certificate, CertificateBlock, RegistryInstruction, AuditEvent)
    ] == counts
    assert ledger.balance(holding) == 199 and verify_ledger().ok


@pytest.mark.parametrize("count", [1, 3])
def test_a_drawn_number_already_taken_is_drawn_again(steel, monkeypatch, count):
    """Certificate numbers are drawn at random and checked against those issued: one that is
    taken is never issued twice (a single certificate's check and several's are different
    statements on PostgreSQL)."""
    from portal.certificates import numbers

    (first,) = _retire(steel, [Part(5, "甲", "voluntary")])
    db.session.commit()
    taken = first.number
    fresh = iter(f"CFC-2026-TEST-{n:04d}" for n in range(100))
    draws = []

    def draw(year):
        # The first draw gives the number already issued, the rest fresh ones.
        number = next(fresh) if draws else taken
        draws.append(number)
        return number

    monkeypatch.setattr(numbers, "new_number", draw)
    issued = _retire(steel, [Part(2, f"乙{n}", "voluntary") for n in range(count)])
    db.session.commit()

    assert draws[0] == taken and taken not in {c.number for c in issued}
    assert len(draws) == count + 1  # the taken one drawn again, once
    assert sorted(c.number for c in issued) == sorted(draws[1:])
    assert (
        db.session.scalar(select(func.count()).select_from(Certificate).where(Certificate.number == taken))
        == 1
    )
    assert verify_ledger().ok


def test_the_answer_to_a_retirement_is_the_certificate_as_its_json_then_reads(steel, any_app, monkeypatch):
    """The API's answer is made from what the retirement's transaction wrote (the certificate,
    its two registry instructions, the log leaf its commit numbered), not read back, and the
    signature it has just made is not verified again: it is exactly what the certificate's JSON
    reads (and verifies) afterwards, and what a repeat of the call reads."""
    from portal.certificates import signing
    from tests.certificates.helpers import retire
    from tests.sql import statements_of

    key = factories.api_key(any_app, "--org", steel.uscc)
    client = any_app.test_client()
    body = {"quantity": 150, "beneficiary": AWKWARD, "purpose": "voluntary"}
    answers, verified = [], []
    checked = signing.signature_valid
    monkeypatch.setattr(signing, "signature_valid", lambda *a: verified.append(a) or checked(*a))

    sent = statements_of(lambda: answers.append(retire(client, key, body, **{"Idempotency-Key": "k-1"})))

    (first,) = answers
    assert first.status_code == 201, first.get_data(as_text=True)
    assert not any("JOIN registry_instructions" in statement for statement in sent)  # no read-back
    assert verified == []
    answer = first.get_json()["certificate"]
    assert answer["signature_valid"] is True
    assert len(answer["blocks"]) == 2 and answer["transparency_log"]["entries"][0]["kind"] == "issuance"
    db.session.remove()
    assert client.get(f"/api/v1/certificates/{answer['number']}").get_json() == answer
    assert len(verified) == 1  # the read verified it
    again = retire(client, key, body, **{"Idempotency-Key": "k-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["certificate"] == answer


def test_log_and_revocation_times_are_given_in_utc_whatever_zone_the_database_reports(any_app):
    """The answer made from what was written carries times in UTC; a read carries them in the
    connection's time zone (a server set to Asia/Shanghai): the JSON is the same either way."""
    from datetime import datetime, timedelta, timezone

    from portal.certificates.api import log_json
    from portal.certificates.state import LogRow

    shanghai = timezone(timedelta(hours=8))
    with any_app.test_request_context():
        entries = log_json(
            "CFC-2026-TEST-0001", [LogRow(3, "issuance", datetime(2026, 12, 5, 9, 30, tzinfo=shanghai))]
        )
    assert entries["entries"] == [
        {"kind": "issuance", "leaf_index": 3, "logged_at": "2026-12-05T01:30:00+00:00"}
    ]
