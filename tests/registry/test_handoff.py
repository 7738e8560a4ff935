"""Every retirement writes its registry instructions; staff confirm or reject them; every surface
shows the outcome; the confirmation is a signed record of its own."""

import base64
import csv
import io
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openpyxl import load_workbook
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.certificates.models import Certificate, Source
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from portal.registry import overdue
from portal.registry.models import RegistryConfirmation, RegistryInstruction
from portal.timeutil import beijing_today, utcnow
from tests import factories
from tests.registry.conftest import VERRA_SERIAL


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def retire(steel, quantity, batch, purpose="voluntary", **extra):
    certificate, _created = certificates.retire_from_holding(
        steel,
        quantity,
        beneficiary="测试钢铁 2026 年度",
        purpose=purpose,
        batch_code=batch,
        actor="t",
        **extra,
    )
    db.session.commit()
    return certificate


def instruction_of(certificate) -> RegistryInstruction:
    (found,) = db.session.scalars(
        select(RegistryInstruction).where(RegistryInstruction.certificate_id == certificate.id)
    )
    return found


def confirm(client, key, instruction, **changes):
    body = {
        "reference": "ZX-2026-000123",
        "date": beijing_today().isoformat(),
        "serial_start": "CN-CCER-14-2024001-2021-000001001",
        "serial_end": "CN-CCER-14-2024001-2021-000001040",
        **changes,
    }
    return client.post(
        f"/api/v1/registry/instructions/{instruction.id}/confirmation", json=body, headers=bearer(key)
    )


def test_each_retirement_instructs_its_registry_in_the_same_transaction(market):
    steel = market["steel"]
    voluntary = retire(steel, 40, "CCER-A-2021")
    compliance = retire(steel, 10, "CCER-A-2021", purpose="compliance", compliance_year=2026)
    verra = retire(steel, 25, "VCS-B-2022", purpose="event", purpose_detail="2026 年会")
    national = instruction_of(voluntary)
    assert (national.registry_name, national.kind, national.quantity) == ("ccer", "cancellation", 40)
    assert national.serial_ranges == [(1, 40)] and national.status == "pending"
    assert (
        instruction_of(compliance).kind == "ets_offset" and instruction_of(compliance).compliance_year == 2026
    )
    vcs = instruction_of(verra)
    assert (vcs.registry_name, vcs.kind, vcs.beneficiary) == ("verra", "retirement", "测试钢铁 2026 年度")
    from portal.registry import instructions

    assert instructions.registry_serials(national) == [
        "CN-CCER-14-2024001-2021-000001001–CN-CCER-14-2024001-2021-000001040"
    ]
    assert instructions.registry_serials(vcs) == [
        "19309-936487628-936487652-VCS-VCU-1491-VER-CN-14-4150-01012022-31122022-0"
    ]


def test_an_order_or_a_contract_retirement_is_instructed_too(market):
    """Every flow retires through the one issuing function: a hold retired as an order's."""
    steel = market["steel"]
    hold = ledger.open_account(AccountKind.HOLD, "order:test", capacity=5)
    ledger.transfer(5, source=ledger.system_account(AccountKind.INVENTORY), destination=hold)
    certificate = certificates.retire_into_certificate(
        hold,
        steel,
        5,
        beneficiary="活动",
        purpose="event",
        source=Source.ORDER,
        source_ref="1",
        actor="stripe",
    )
    assert instruction_of(certificate).quantity == 5


def test_a_failed_retirement_leaves_no_instruction(market):
    with pytest.raises(certificates.RetirementError):
        retire(market["steel"], 10_000, "CCER-A-2021")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RegistryInstruction)) == 0


def test_retirement_to_confirmation_shows_confirmed_everywhere(client, market):
    certificate = retire(market["steel"], 40, "CCER-A-2021")
    payload_before = certificate.payload
    number = certificate.number
    before = client.get(f"/api/v1/certificates/{number}").get_json()
    assert before["registry"] == {"status": "pending", "reference": None, "confirmed_at": None, "url": None}
    assert "Awaiting the registry" in client.get(f"/certificates/{number}?lang=en").get_data(as_text=True)

    response = confirm(client, market["operator"], instruction_of(certificate))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["instruction"]["status"] == "confirmed"

    after = client.get(f"/api/v1/certificates/{number}").get_json()
    today = beijing_today().isoformat()
    assert after["registry"]["status"] == "confirmed"
    assert after["registry"]["reference"] == "ZX-2026-000123" and after["registry"]["confirmed_at"] == today
    assert after["registry"]["url"].endswith(f"/api/v1/certificates/{number}/registry")
    assert after["payload"] == payload_before and after["signature_valid"]  # the signed payload never changes
    db.session.expire_all()
    assert db.session.get(Certificate, certificate.id).payload == payload_before

    page = client.get(f"/certificates/{number}?lang=en").get_data(as_text=True)
    assert "Confirmed by the registry" in page and "ZX-2026-000123" in page
    register = client.get(f"/register?lang=en&q={number}").get_data(as_text=True)
    assert "Confirmed by the registry" in register and "ZX-2026-000123" in register
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/register.csv?q={number}").get_data(as_text=True).lstrip("\ufeff"))
        )
    )
    assert {(r["registry_status"], r["registry_reference"], r["registry_confirmed_at"]) for r in rows} == {
        ("confirmed", "ZX-2026-000123", today)
    }

    record = client.get(f"/api/v1/certificates/{number}/registry").get_json()
    assert record["registry"]["status"] == "confirmed"
    (item,) = record["instructions"]
    signed = item["confirmation"]
    assert signed["signature_valid"]
    document = json.loads(signed["payload"])
    assert document["certificate"] == number and document["registry_reference"] == "ZX-2026-000123"
    assert document["portal_serials"] == [[1, 40]] and document["type"] == "registry_confirmation"
    # Anyone checks it with the published key, as a certificate is checked.
    keys = {k["key_id"]: k["public_key"] for k in client.get("/api/v1/signing-keys").get_json()["keys"]}
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[signed["signature"]["key_id"]]))
    public.verify(base64.b64decode(signed["signature"]["value"]), signed["payload"].encode())
    assert db.session.scalar(select(func.count()).select_from(RegistryConfirmation)) == 1
    assert "registry.confirm" in db.session.scalars(select(AuditEvent.action)).all()
    # The confirmation is public and append-only like the certificate: a leaf of the log, its
    # statement the signed record itself, checked by the log's own verification.
    from portal.transparency import services as transparency

    entries = client.get("/api/v1/log/entries?start=0").get_json()["entries"]
    assert [(e["kind"], e["certificate"]) for e in entries] == [
        ("issuance", number),
        ("registry_confirmation", number),
    ]
    assert json.loads(base64.b64decode(entries[1]["leaf_input"]))["statement"] == signed["payload"]
    assert transparency.verify_log().ok


def test_a_certificate_spanning_two_batches_is_confirmed_when_both_are(client, market):
    steel = market["steel"]
    certificates.retire_from_holding(
        steel, 95, beneficiary="甲", purpose="voluntary", batch_code="CCER-A-2021", actor="t"
    )
    both = retire(steel, 10, None)  # 5 t of the CCER batch, then 5 t of the VCS batch
    national, verra = sorted(
        db.session.scalars(select(RegistryInstruction).where(RegistryInstruction.certificate_id == both.id)),
        key=lambda i: i.registry_name,
    )
    assert (
        confirm(
            client,
            market["operator"],
            national,
            serial_start="CN-CCER-14-2024001-2021-000001096",
            serial_end="CN-CCER-14-2024001-2021-000001100",
        ).status_code
        == 200
    )
    assert client.get(f"/api/v1/certificates/{both.number}").get_json()["registry"]["status"] == "pending"
    block = "19309-936487628-936487632-VCS-VCU-1491-VER-CN-14-4150-01012022-31122022-0"
    assert (
        confirm(
            client, market["operator"], verra, reference="VCU-RET-77", serial_start=block, serial_end=""
        ).status_code
        == 200
    )
    registry = client.get(f"/api/v1/certificates/{both.number}").get_json()["registry"]
    assert registry["status"] == "confirmed" and registry["reference"] == "ZX-2026-000123; VCU-RET-77"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"serial_end": "CN-CCER-14-2024001-2021-000001041"}, 409, "serials_differ"),
        ({"serial_start": "CN-CCER-14-2024001-2021-000001002"}, 409, "serials_differ"),
        (
            {"serial_start": "CN-CCER-99-2021-000001001", "serial_end": "CN-CCER-99-2021-000001040"},
            409,
            "serials_differ",
        ),
        ({"serial_start": "not a serial"}, 400, "invalid_serials"),
        ({"date": "2099-01-01"}, 400, "invalid_date"),
        ({"date": "2020-01-01"}, 400, "invalid_date"),
        ({"date": "yesterday"}, 400, "invalid_date"),
        # Today as an ISO week date: a date, but not written as the API takes dates.
        ({"date": beijing_today().strftime("%G-W%V-%u")}, 400, "invalid_date"),
        ({"reference": ""}, 400, "invalid_reference"),
        ({"reference": ["x"]}, 400, "invalid_reference"),
        ({"reference": "x" * 121}, 400, "invalid_reference"),
        ({"reference": "A\u202eB"}, 400, "invalid_reference"),
    ],
)
def test_a_wrong_confirmation_is_refused_and_changes_nothing(client, market, changes, status, code):
    instruction = instruction_of(retire(market["steel"], 40, "CCER-A-2021"))
    response = confirm(client, market["operator"], instruction, **changes)
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    db.session.expire_all()
    assert db.session.get(RegistryInstruction, instruction.id).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(RegistryConfirmation)) == 0


def test_decisions_are_recorded_once_and_repeats_are_answered(client, market):
    instruction = instruction_of(retire(market["steel"], 40, "CCER-A-2021"))
    key = market["operator"]
    assert confirm(client, key, instruction).status_code == 200
    again = confirm(client, key, instruction)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = confirm(client, key, instruction, reference="ZX-OTHER")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "already_decided"
    rejected = client.post(
        f"/api/v1/registry/instructions/{instruction.id}/rejection", json={"reason": "x"}, headers=bearer(key)
    )
    assert rejected.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(RegistryConfirmation)) == 1


def test_a_rejection_shows_rejected(client, market):
    certificate = retire(market["steel"], 40, "CCER-A-2021")
    instruction = instruction_of(certificate)
    empty = client.post(
        f"/api/v1/registry/instructions/{instruction.id}/rejection",
        json={"reason": " "},
        headers=bearer(market["operator"]),
    )
    assert empty.status_code == 400
    response = client.post(
        f"/api/v1/registry/instructions/{instruction.id}/rejection",
        json={"reason": "序号已在登记系统中注销"},
        headers=bearer(market["operator"]),
    )
    assert (
        response.status_code == 200
        and response.get_json()["instruction"]["rejection"]["reason"] == "序号已在登记系统中注销"
    )
    assert (
        client.get(f"/api/v1/certificates/{certificate.number}").get_json()["registry"]["status"]
        == "rejected"
    )
    page = client.get(f"/certificates/{certificate.number}?lang=en").get_data(as_text=True)
    assert "Rejected by the registry" in page


def test_the_instruction_list_for_scripts(client, market):
    retire(market["steel"], 40, "CCER-A-2021")
    retire(market["steel"], 25, "VCS-B-2022")
    listing = client.get(
        "/api/v1/registry/instructions?status=pending", headers=bearer(market["auditor"])
    ).get_json()
    assert [i["registry"] for i in listing["items"]] == ["ccer", "verra"] and listing["next_after"] is None
    first = listing["items"][0]
    assert first["certificate_number"] and first["batch"]["code"] == "CCER-A-2021"
    assert first["serial_ranges"] == [{"serial_start": 1, "serial_end": 40, "quantity": 40}]
    paged = client.get("/api/v1/registry/instructions?limit=1", headers=bearer(market["auditor"])).get_json()
    assert len(paged["items"]) == 1 and paged["next_after"] == paged["items"][0]["id"]
    assert (
        client.get("/api/v1/registry/instructions?status=done", headers=bearer(market["auditor"])).status_code
        == 400
    )
    assert client.get("/api/v1/registry/instructions", headers=bearer(market["buyer"])).status_code == 403
    auditor_confirms = confirm(client, market["auditor"], db.session.scalar(select(RegistryInstruction)))
    assert auditor_confirms.status_code == 403


def test_the_queue_and_its_exports(client, market):
    retire(market["steel"], 40, "CCER-A-2021")
    retire(market["steel"], 25, "VCS-B-2022")
    client.post("/login", data={"email": "auditor@portal.cn", "password": factories.PASSWORD})
    page = client.get("/staff/registry/?lang=en").get_data(as_text=True)
    assert "National CCER registry" in page and "Verra registry" in page
    assert "CN-CCER-14-2024001-2021-000001001–CN-CCER-14-2024001-2021-000001040" in page
    assert "Record the confirmation" not in client.get(
        f"/staff/registry/instructions/{db.session.scalar(select(RegistryInstruction.id))}?lang=en"
    ).get_data(as_text=True)  # the auditor reads, changes nothing
    rows = list(
        csv.reader(
            io.StringIO(
                client.get("/staff/registry/export.csv?registry=ccer").get_data(as_text=True).lstrip("\ufeff")
            )
        )
    )
    header, (row,) = rows[0], rows[1:]
    values = dict(zip(header, row, strict=True))
    assert values["registry_serial_start"] == "CN-CCER-14-2024001-2021-000001001"
    assert values["registry_serial_end"] == "CN-CCER-14-2024001-2021-000001040"
    assert values["action"] == "cancellation" and values["quantity"] == "40"
    book = load_workbook(io.BytesIO(client.get("/staff/registry/export.xlsx?registry=verra").data))
    sheet = list(book.active.values)
    assert sheet[1][sheet[0].index("registry_serials")] == VERRA_SERIAL.replace("936488627", "936487652")
    assert (
        client.post(
            f"/staff/registry/instructions/{db.session.scalar(select(RegistryInstruction.id))}/rejection",
            data={"reason": "x"},
        ).status_code
        == 403
    )


def test_an_operator_confirms_on_the_page(client, market):
    instruction = instruction_of(retire(market["steel"], 40, "CCER-A-2021"))
    client.post("/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD})
    url = f"/staff/registry/instructions/{instruction.id}/confirmation?lang=en"
    bad = client.post(
        url,
        data={
            "reference": "ZX-1",
            "date": beijing_today().isoformat(),
            "serial_start": "CN-CCER-14-2024001-2021-000001001",
            "serial_end": "CN-CCER-14-2024001-2021-000001039",
        },
    )
    assert bad.status_code == 409 and "the instruction is for 1001–1040" in bad.get_data(as_text=True)
    good = client.post(
        url,
        data={
            "reference": "ZX-1",
            "date": beijing_today().isoformat(),
            "serial_start": "CN-CCER-14-2024001-2021-000001001",
            "serial_end": "CN-CCER-14-2024001-2021-000001040",
        },
    )
    assert good.status_code == 303
    assert db.session.get(RegistryInstruction, instruction.id).status == "confirmed"


def test_overdue_instructions_are_flagged_and_mailed_once(client, market, app):
    fresh = instruction_of(retire(market["steel"], 10, "CCER-A-2021"))
    old = instruction_of(retire(market["steel"], 10, "CCER-A-2021"))
    old.created_at = utcnow() - timedelta(days=9)  # more than 5 working days whatever today is
    db.session.commit()
    assert overdue.is_overdue(old) and not overdue.is_overdue(fresh)
    client.post("/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD})
    dashboard = client.get("/staff/dashboard?lang=en").get_data(as_text=True)
    assert "Registry instructions pending" in dashboard and "1 overdue" in dashboard
    result = app.test_cli_runner().invoke(args=["registry", "overdue"])
    assert result.exit_code == 0 and "1 instruction(s) reported" in result.output
    mails = db.session.scalars(select(OutboxMessage).where(OutboxMessage.to == "operator@portal.cn")).all()
    assert len(mails) == 1 and old.certificate_number in mails[0].body
    again = app.test_cli_runner().invoke(args=["registry", "overdue"])
    assert "0 instruction(s) reported" in again.output


@pytest.mark.postgres
def test_overdue_instructions_are_reported_on_postgresql(pg_app):
    """The report locks the instructions it flags; with their batch joined eagerly, PostgreSQL
    refused the lock (FOR UPDATE on the nullable side of an outer join), so the daily job failed."""
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=100, code="CCER-PG-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 20, batch_codes=["CCER-PG-2021"])
    old = instruction_of(retire(steel, 10, "CCER-PG-2021"))
    old.created_at = utcnow() - timedelta(days=9)
    db.session.commit()
    assert overdue.report_overdue() == 1
    db.session.commit()
    assert overdue.report_overdue() == 0


def test_working_days_skip_weekends():
    from datetime import date

    friday = date(2026, 12, 4)
    assert overdue.add_working_days(friday, 1) == date(2026, 12, 7)
    assert overdue.add_working_days(friday, 5) == date(2026, 12, 11)
    # On Monday 14 December, what was retired on Friday 4 December (due the 11th) is overdue;
    # what was retired on Monday 7 December (due Monday the 14th) is not yet.
    since = overdue.overdue_since(date(2026, 12, 14), 5)
    assert since.date() == date(2026, 12, 7)


def test_the_cli_exports_and_confirms(app, market, tmp_path):
    instruction = instruction_of(retire(market["steel"], 40, "CCER-A-2021"))
    runner = app.test_cli_runner()
    out = tmp_path / "ccer.csv"
    assert (
        runner.invoke(args=["registry", "export", "--registry", "ccer", "--output", str(out)]).exit_code == 0
    )
    assert "CN-CCER-14-2024001-2021-000001040" in out.read_text(encoding="utf-8-sig")
    refused = runner.invoke(
        args=[
            "registry",
            "confirm",
            str(instruction.id),
            "--reference",
            "ZX",
            "--date",
            "2099-01-01",
            "--serial-start",
            "x",
        ]
    )
    assert refused.exit_code != 0
    done = runner.invoke(
        args=[
            "registry",
            "confirm",
            str(instruction.id),
            "--reference",
            "ZX-9",
            "--date",
            beijing_today().isoformat(),
            "--serial-start",
            "CN-CCER-14-2024001-2021-000001001",
            "--serial-end",
            "CN-CCER-14-2024001-2021-000001040",
        ]
    )
    assert done.exit_code == 0, done.output
    db.session.expire_all()
    assert db.session.get(RegistryInstruction, instruction.id).registry_reference == "ZX-9"
