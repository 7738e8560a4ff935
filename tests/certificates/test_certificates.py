"""Retiring from a holding into a signed certificate; verification, revocation, the register."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.certificates import compliance, numbers, services
from portal.certificates.models import Certificate, CertificateBlock
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import LedgerEntry
from portal.ledger.verify import verify_ledger
from tests import factories
from tests.certificates.helpers import counts, retire
from tests.concurrency import race

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC


bearer, _key = factories.bearer, factories.api_key


# --- retiring ---------------------------------------------------------------------------------


def test_retiring_from_the_holding_issues_a_signed_certificate(held, app, client):
    steel, _ = held
    key = _key(app, "--org", STEEL)
    response = retire(
        client,
        key,
        {
            "quantity": 150,
            "beneficiary": "2026 赤峰马拉松",
            "purpose": "event",
            "purpose_detail": "抵消2026赤峰马拉松（6月1日–2日）的碳排放",
        },
    )
    assert response.status_code == 201, response.get_json()
    cert = response.get_json()["certificate"]
    assert numbers.normalise(cert["number"]) == cert["number"]
    assert cert["status"] == "valid" and cert["quantity"] == 150
    # Oldest vintage first: all 100 t of 2021, then 50 t of 2022.
    assert cert["blocks"] == [
        {"batch_code": "CCER-A-2021", "serial_start": 1, "serial_end": 100, "quantity": 100},
        {"batch_code": "VCS-B-2022", "serial_start": 1, "serial_end": 50, "quantity": 50},
    ]
    assert cert["url"].endswith(f"/certificates/{cert['number']}")
    assert len(cert["projects"]) == 2 and cert["project"]["code"] in {p["code"] for p in cert["projects"]}
    db.session.expire_all()
    assert ledger.balance(buyers.holding_account(steel)) == 150
    assert verify_ledger().ok
    # The journal names the certificate; the audit log records its issue.
    refs = set(db.session.scalars(select(LedgerEntry.reference).where(LedgerEntry.kind == "retire")))
    assert refs == {f"certificate:{cert['number']}"}
    assert (
        db.session.scalar(select(AuditEvent).filter_by(action="certificate.issue")).subject_id
        == cert["number"]
    )

    # Anyone can check the signature with nothing but the published public key.
    keys = client.get("/api/v1/signing-keys").get_json()["keys"]
    public = {k["key_id"]: k["public_key"] for k in keys}[cert["signature"]["key_id"]]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(
        base64.b64decode(cert["signature"]["value"]), cert["payload"].encode("utf-8")
    )
    document = json.loads(cert["payload"])
    assert cert["payload"] == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["number"] == cert["number"] and document["beneficiary"] == "2026 赤峰马拉松"
    assert [(b["batch_code"], b["serial_start"], b["serial_end"]) for b in document["blocks"]] == [
        ("CCER-A-2021", 1, 100),
        ("VCS-B-2022", 1, 50),
    ]

    looked_up = client.get(f"/api/v1/certificates/{cert['number']}").get_json()
    assert looked_up["payload"] == cert["payload"] and looked_up["signature_valid"] is True


def test_a_tampered_certificate_fails_its_signature_check(held, app):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 5, beneficiary="X", purpose="voluntary", actor="test")
    assert services.verify(cert).signature_ok
    document = json.loads(cert.payload)
    document["quantity"] = 5000
    forged = services.check_document(json.dumps(document), cert.signature, cert.key_id)
    assert not forged.signature_ok
    genuine = services.check_document(cert.payload, cert.signature, cert.key_id)
    assert genuine.signature_ok and genuine.matches_record


def test_the_same_idempotency_key_retires_once(held, app, client):
    key = _key(app, "--org", STEEL)
    body = {"quantity": 10, "beneficiary": "测试钢铁", "purpose": "voluntary"}
    first = retire(client, key, body, **{"Idempotency-Key": "k-1"})
    again = retire(client, key, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["certificate"]["number"] == again.get_json()["certificate"]["number"]
    assert counts()[0] == 1
    other = retire(client, key, {**body, "quantity": 11}, **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert counts()[0] == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"quantity": 0}, 400, "invalid_quantity"),
        ({"quantity": -5}, 400, "invalid_quantity"),
        ({"quantity": 1.5}, 400, "invalid_quantity"),
        ({"quantity": "ten"}, 400, "invalid_quantity"),
        ({"quantity": True}, 400, "invalid_quantity"),
        ({"quantity": 2**40}, 400, "invalid_quantity"),
        ({"quantity": 301}, 409, "insufficient_holding"),
        ({"beneficiary": ""}, 400, "invalid_beneficiary"),
        ({"beneficiary": "   "}, 400, "invalid_beneficiary"),
        ({"beneficiary": "x" * 201}, 400, "invalid_beneficiary"),
        ({"beneficiary": "evil\u202egnp.exe"}, 400, "invalid_beneficiary"),
        ({"beneficiary": "bell\x07"}, 400, "invalid_beneficiary"),
        ({"beneficiary": 42}, 400, "invalid_beneficiary"),
        ({"purpose_detail": "y" * 301}, 400, "invalid_purpose_detail"),
        ({"purpose": "greenwash"}, 400, "invalid_purpose"),
        ({"purpose": None}, 400, "invalid_purpose"),
        ({"batch_code": "NOPE"}, 404, "unknown_batch"),
        ({"batch_code": ["CCER-A-2021"]}, 404, "unknown_batch"),
        ({"purpose": "compliance", "batch_code": "VCS-B-2022"}, 400, "compliance_needs_ccer"),
        ({"purpose": "compliance", "quantity": 101, "compliance_year": 2026}, 409, "insufficient_holding"),
        ({"purpose": "compliance"}, 400, "invalid_compliance_year"),
        ({"purpose": "compliance", "compliance_year": "2026.0"}, 400, "invalid_compliance_year"),
        ({"purpose": "compliance", "compliance_year": 2027}, 409, "no_allowances_declared"),
    ],
)
def test_bad_retirements_are_refused_and_change_nothing(held, app, client, change, status, code):
    key = _key(app, "--org", STEEL)
    before = counts()
    body = {"quantity": 10, "beneficiary": "测试钢铁", "purpose": "voluntary", **change}
    response = retire(client, key, body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    db.session.expire_all()
    assert counts() == before


def test_not_json_no_key_and_staff_keys_are_refused(held, app, client):
    assert client.post("/api/v1/retirements", json={"quantity": 1}).status_code == 401
    key = _key(app, "--org", STEEL)
    response = client.post("/api/v1/retirements", data="quantity=1", headers=bearer(key))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_json"
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    staff = _key(app, "--user", "ops@example.com")
    assert (
        retire(client, staff, {"quantity": 1, "beneficiary": "x", "purpose": "voluntary"}).status_code == 403
    )


def test_a_suspended_organisation_cannotretire(held, app, client):
    steel, _ = held
    key = _key(app, "--org", STEEL)
    buyers.change_status(steel, "suspended", reason="审计中", actor="test")
    db.session.commit()
    response = retire(client, key, {"quantity": 1, "beneficiary": "x", "purpose": "voluntary"})
    assert response.status_code in (401, 403)
    with pytest.raises(services.RetirementError) as refused:
        services.retire_from_holding(steel, 1, beneficiary="x", purpose="voluntary", actor="test")
    assert refused.value.status == 403


def test_compliance_retirements_take_ccer_only(held, app):
    steel, _ = held
    cert, _ = services.retire_from_holding(
        steel, 60, beneficiary="测试钢铁", purpose="compliance", compliance_year=2026, actor="t"
    )
    assert {b.batch.code for b in cert.blocks} == {"CCER-A-2021"}
    assert cert.compliance_year == 2026 and json.loads(cert.payload)["compliance_year"] == 2026


def test_certificates_cannot_be_altered_or_deleted_in_the_database(held, app):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 5, beneficiary="X", purpose="voluntary", actor="test")
    db.session.commit()
    for statement in (
        "UPDATE certificates SET payload = 'x'",
        "UPDATE certificates SET quantity = 6",
        "DELETE FROM certificates",
        "UPDATE certificate_blocks SET serial_end = 99",
        "DELETE FROM certificate_blocks",
    ):
        with pytest.raises((IntegrityError, DBAPIError)):
            db.session.execute(text(statement))
        db.session.rollback()
    services.revoke(db.session.get(Certificate, cert.id), "registry reversal", actor="test")
    db.session.commit()
    with pytest.raises((IntegrityError, DBAPIError)):
        db.session.execute(text("UPDATE certificates SET status = 'valid', revoked_at = NULL"))
    db.session.rollback()


# --- numbers ------------------------------------------------------------------------------------


def test_numbers_carry_a_check_character_and_forgive_typing():
    number = numbers.new_number(2026)
    assert numbers.PATTERN.match(number)
    assert numbers.normalise(number.lower()) == number
    assert numbers.normalise(" " + number.replace("-", " ") + " ") == number
    body = number[9:]
    for i, char in enumerate(body.replace("-", "")):
        for other in numbers.ALPHABET:
            if other != char:
                typo = body.replace("-", "")
                typo = typo[:i] + other + typo[i + 1 :]
                assert numbers.normalise(f"CFC-2026-{typo}") is None
    assert numbers.normalise("CFC-2026-<scr-ipt>") is None
    assert numbers.normalise("x" * 10_000) is None
    drawn = [numbers.new_number(2026) for _ in range(2000)]
    assert len(set(drawn)) == 2000
    # Each of the seven random characters takes every value of the alphabet (35 random bits).
    bodies = [n[9:].replace("-", "")[:7] for n in drawn]
    assert all({b[i] for b in bodies} == set(numbers.ALPHABET) for i in range(7))


# --- verification pages -------------------------------------------------------------------------


def test_the_verification_page_shows_everything_escaped(held, app, client):
    steel, _ = held
    cert, _ = services.retire_from_holding(
        steel,
        7,
        beneficiary="<script>alert(1)</script> مؤسسة",
        purpose="event",
        purpose_detail='"><img src=x onerror=alert(2)>',
        actor="test",
    )
    db.session.commit()
    page = client.get(f"/certificates/{cert.number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "CCER-A-2021" in html and "1–7" in html and cert.key_id in html
    assert client.get(f"/certificates/{cert.number}?lang=en").status_code == 200
    # Typed in lower case, or through the form: sent to the canonical address.
    assert client.get(f"/certificates/{cert.number.lower()}").headers["Location"].endswith(cert.number)
    assert client.get(f"/verify?number={cert.number.lower()}").status_code == 301


def test_unknown_numbers_get_a_friendly_404_and_guessing_is_throttled(held, app, client):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="test")
    db.session.commit()
    unknown = numbers.new_number(2026)
    page = client.get(f"/certificates/{unknown}")
    assert page.status_code == 404 and "CFC" in page.get_data(as_text=True)
    assert client.get("/certificates/not-a-number").status_code == 404
    assert client.get(f"/api/v1/certificates/{unknown}").status_code == 404
    for _ in range(services.LOOKUP_FAILURE_LIMIT):
        client.get(f"/certificates/{numbers.new_number(2026)}")
    assert client.get(f"/certificates/{numbers.new_number(2026)}").status_code == 429
    assert client.get(f"/api/v1/certificates/{numbers.new_number(2026)}").status_code == 429
    # A real number is never throttled.
    for _ in range(5):
        assert client.get(f"/certificates/{cert.number}").status_code == 200
        assert client.get(f"/api/v1/certificates/{cert.number}").status_code == 200
    # Another address is not affected.
    other = client.get(f"/certificates/{unknown}", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 404


def test_operators_revoke_with_a_reason_and_the_credits_stay_retired(held, app, client):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 9, beneficiary="X", purpose="voluntary", actor="test")
    factories.user("ops@example.com", role="operator")
    factories.user("audit@example.com", role="auditor")
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    retired_before = counts()[1]
    assert "Valid" in client.get(f"/certificates/{cert.number}?lang=en").get_data(as_text=True)  # now cached

    def sign_in(email):
        client.post("/logout")
        client.post("/login", data={"email": email, "password": factories.PASSWORD})

    for email in ("audit@example.com", "buyer@example.com"):
        sign_in(email)
        assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "x"}).status_code == 403
    sign_in("ops@example.com")
    assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "  "}).status_code == 400
    response = client.post(
        f"/certificates/{cert.number}/revoke", data={"reason": "核证机构撤销了该批次", "confirm": "yes"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    found = db.session.scalar(select(Certificate).filter_by(number=cert.number))
    assert found.status == "revoked" and found.revoked_reason == "核证机构撤销了该批次"
    assert counts()[1] == retired_before  # nothing moved: the credits do not return to sale
    assert verify_ledger().ok
    html = client.get(f"/certificates/{cert.number}?lang=zh").get_data(as_text=True)
    # The reason after the date as Chinese writes a label's value: a full-width colon.
    assert "：<bdi>核证机构撤销了该批次</bdi>" in html
    client.post("/logout")  # an anonymous visitor's cached page changes with the status
    anonymous = client.get(f"/certificates/{cert.number}?lang=en").get_data(as_text=True)
    assert "Revoked" in anonymous and ": <bdi>核证机构撤销了该批次</bdi>" in anonymous
    client.post("/login", data={"email": "ops@example.com", "password": factories.PASSWORD})
    data = client.get(f"/api/v1/certificates/{cert.number}").get_json()
    assert data["status"] == "revoked" and data["revoked"]["reason"] == "核证机构撤销了该批次"
    assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "again"}).status_code == 409
    assert db.session.scalar(select(AuditEvent).filter_by(action="certificate.revoke")).actor.startswith(
        "user:"
    )


@pytest.mark.parametrize("rotate", ["configure another file", "replace the file"])
def test_a_rotated_key_signs_at_once_and_old_certificates_still_verify(held, app, client, tmp_path, rotate):
    """README: replace the key file (or configure another) to rotate. A running worker signs with
    the new key at its next signature, and both public keys stay published."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    steel, _ = held
    path = tmp_path / "key.pem"
    app.config["SIGNING_KEY_FILE"] = str(path)
    old, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    if rotate == "replace the file":
        replacement = tmp_path / "replacement.pem"
        replacement.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        replacement.replace(path)  # as an operator would: an atomic rename over the old file
    else:
        app.config["SIGNING_KEY_FILE"] = str(tmp_path / "other.pem")
    new, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    assert old.key_id != new.key_id
    keys = {k["key_id"] for k in client.get("/api/v1/signing-keys").get_json()["keys"]}
    assert {old.key_id, new.key_id} <= keys
    for cert in (old, new):
        assert client.get(f"/api/v1/certificates/{cert.number}").get_json()["signature_valid"] is True


def test_workers_starting_together_share_one_whole_key(tmp_path):
    """Two gunicorn workers signing their first certificate at once: one generates the key, and
    neither reads a half-written file (a benchmark once got 'MalformedFraming' here)."""
    import threading

    from cryptography.hazmat.primitives import serialization

    from portal.certificates import signing

    def raw(key):
        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def start(path, barrier, keys, errors):
        barrier.wait()
        try:
            if not path.exists():
                signing._create(path)
            keys.append(raw(signing._load(path)))
        except Exception as exc:  # noqa: BLE001 -- any failure is the defect
            errors.append(exc)

    for round_ in range(20):
        path = tmp_path / f"round-{round_}" / "signing-key.pem"
        barrier = threading.Barrier(8)
        keys, errors = [], []
        threads = [threading.Thread(target=start, args=(path, barrier, keys, errors)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and len(set(keys)) == 1
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"]  # nothing left aside


# --- the web form -----------------------------------------------------------------------------


def test_a_buyer_retires_from_the_web_form(held, app, client):
    steel, _ = held
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    client.post("/login", data={"email": "buyer@example.com", "password": factories.PASSWORD})
    form = client.get("/account/retire").get_data(as_text=True)
    assert "测试钢铁" in form and "VCS-B-2022" in form
    bad = client.post("/account/retire", data={"quantity": "1.5", "beneficiary": "x", "purpose": "voluntary"})
    assert bad.status_code == 400 and counts()[0] == 0
    response = client.post(
        "/account/retire",
        data={
            "quantity": "20",
            "beneficiary": "测试钢铁",
            "purpose": "voluntary",
            "purpose_detail": "2025年度",
            "batch_code": "VCS-B-2022",
            "confirm": "yes",
        },
    )
    assert response.status_code == 302
    cert = db.session.scalar(select(Certificate))
    assert response.headers["Location"].endswith(cert.number)
    assert {b.batch.code for b in cert.blocks} == {"VCS-B-2022"}
    assert cert.number in client.get("/account/certificates").get_data(as_text=True)
    # Staff have no holding to retire from; anonymous visitors are sent to sign in.
    client.post("/logout")
    assert client.get("/account/retire").status_code == 302


# --- the register ------------------------------------------------------------------------------


def test_the_register_searches_and_exports(held, app, client):
    steel, _ = held
    a, _ = services.retire_from_holding(steel, 30, beneficiary="赤峰马拉松组委会", purpose="event", actor="t")
    b, _ = services.retire_from_holding(
        steel, 100, beneficiary="=HYPERLINK(1)", purpose="voluntary", actor="t"
    )
    services.revoke(b, "test", actor="t")
    db.session.commit()
    page = client.get("/register").get_data(as_text=True)
    assert a.number in page and b.number in page
    assert a.number in client.get("/register?q=马拉松").get_data(as_text=True)
    assert b.number not in client.get("/register?q=马拉松").get_data(as_text=True)
    # Which certificate retired serial 50 of the 2021 batch? The second (30 t took 1–30).
    found = client.get("/register?batch=CCER-A-2021&serial=50").get_data(as_text=True)
    assert b.number in found and a.number not in found
    found = client.get("/register?batch=CCER-A-2021&serial=5").get_data(as_text=True)
    assert a.number in found and b.number not in found
    assert client.get("/register?year=abc").status_code == 400
    assert client.get("/register?serial=5").status_code == 400
    assert client.get("/register?year=1999").status_code == 400
    csv_text = client.get("/register.csv?q=HYPERLINK").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in csv_text and a.number not in csv_text
    # Totals count valid certificates only (b is revoked).
    by_project, by_county = __import__("portal.certificates.register", fromlist=["totals"]).totals()
    assert sum(t.tonnes for t in by_project) == sum(t.tonnes for t in by_county) == 30


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_fifty_concurrent_retirements_never_overretire(pg_app):
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="RACE-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 100)
    db.session.commit()
    org_id = steel.id

    def retire(i):
        org = db.session.get(type(steel), org_id)
        services.retire_from_holding(org, 3, beneficiary=f"B{i}", purpose="voluntary", actor=f"w{i}")
        db.session.commit()
        return "ok"

    outcomes = race(pg_app, 50, retire, refused=services.RetirementError)
    assert outcomes.count("ok") == 33  # 33 × 3 t = 99 t; the 34th would need 102 t
    assert set(outcomes) == {"ok", "insufficient_holding"}
    db.session.expire_all()
    assert ledger.balance(buyers.holding_account(steel)) == 1
    serials = sorted(
        n
        for b in db.session.scalars(select(CertificateBlock))
        for n in range(b.serial_start, b.serial_end + 1)
    )
    assert serials == list(range(1, 100))  # each retired once, by exactly one certificate
    assert verify_ledger().ok


# --- the PDF and its upload ---------------------------------------------------------------------


def test_the_pdf_carries_the_signed_payload_and_the_upload_check_says_so(held, app, client):
    from portal.certificates import pdf

    if pdf.font_path() is None:
        pytest.skip("no CJK font installed (scripts/ensure-chromium installs fonts-wqy-microhei)")
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 4, beneficiary="赤峰学院", purpose="voluntary", actor="t")
    db.session.commit()
    response = client.get(f"/certificates/{cert.number}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    data = response.get_data()
    assert pdf.extract(data).payload == cert.payload

    def upload(body, name="c.pdf"):
        import io

        return client.post(
            "/verify?lang=en", data={"pdf": (io.BytesIO(body), name)}, content_type="multipart/form-data"
        )

    genuine = upload(data)
    assert genuine.status_code == 200 and "Genuine and valid" in genuine.get_data(as_text=True)
    # A PDF whose embedded data was altered (the quantity) no longer verifies.
    forged_payload = cert.payload.replace('"quantity":4', '"quantity":400')
    forged = pdf.render(payload=forged_payload, signature=cert.signature, key_id=cert.key_id, verify_url="x")
    checked = upload(forged).get_data(as_text=True)
    assert 'data-result="modified"' in checked and "Genuine and valid" not in checked
    assert upload(b"not a pdf at all").status_code == 400
    assert client.post("/verify", data={}, content_type="multipart/form-data").status_code == 400
    services.revoke(db.session.get(Certificate, cert.id), "registry reversal", actor="t")
    db.session.commit()
    assert "revoked" in upload(data).get_data(as_text=True)
    assert client.get(f"/certificates/{cert.number.lower()}.pdf").status_code == 301


def test_hostile_uploads_are_refused_within_limits(held, app, client):
    import io

    def upload(body):
        return client.post(
            "/verify", data={"pdf": (io.BytesIO(body), "x.pdf")}, content_type="multipart/form-data"
        )

    assert upload(b"%PDF-1.4\n" + b"[" * 200_000).status_code == 400
    # Over 5 MB (checked on the bytes: the test client leaks its own spooled file for big bodies).
    from portal.certificates import pdf, verification

    with pytest.raises(pdf.PdfError) as refused:
        verification.check_upload(b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024))
    assert refused.value.code == "too_large"
    for _ in range(services.UPLOAD_LIMIT - 1):
        upload(b"%PDF-1.4 nothing")
    assert upload(b"%PDF-1.4 nothing").status_code == 429


# --- compliance offsets ---------------------------------------------------------------------------


def test_compliance_retirements_stop_at_five_percent_of_allowances(held, app, client):
    steel, cement = held
    key = _key(app, "--org", STEEL)
    body = {"beneficiary": "测试钢铁", "purpose": "compliance", "compliance_year": 2026}
    assert retire(client, key, {**body, "quantity": 90}).status_code == 201
    refused = retire(client, key, {**body, "quantity": 11})  # cap 200 t of CCER; 100 t held, 90 used
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "insufficient_holding"
    buyers.deliver_from_inventory(steel, 500, batch_codes=["CCER-A-2021"])
    db.session.commit()
    assert retire(client, key, {**body, "quantity": 110}).status_code == 201  # exactly the cap
    over = retire(client, key, {**body, "quantity": 1})
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "compliance_cap"
    assert "200" in over.get_json()["error"]["message"]
    # A revoked compliance certificate gives its room back; voluntary retirements never use it.
    first = db.session.scalar(select(Certificate).filter_by(quantity=90))
    services.revoke(first, "registry reversal", actor="t")
    db.session.commit()
    assert retire(client, key, {**body, "quantity": 90}).status_code == 201
    (position,) = compliance.positions(steel)
    assert (position.cap_t, position.used_t, position.remaining_t) == (200, 200, 0)
    # Not an ETS entity: no compliance retirements at all.
    other = _key(app, "--org", CEMENT)
    assert retire(client, other, {**body, "quantity": 1}).get_json()["error"]["code"] == "not_an_ets_entity"


@pytest.mark.parametrize(
    ("year", "allowances", "code"),
    [
        ("2019", "100", "invalid_compliance_year"),
        ("2026", "-5", "invalid_allowances_t"),
        ("2026", "1e6", "invalid_allowances_t"),
        ("abcd", "100", "invalid_compliance_year"),
    ],
)
def test_bad_declarations_change_nothing(held, year, allowances, code):
    steel, _ = held
    with pytest.raises(compliance.ComplianceError) as refused:
        compliance.declare(steel, year, allowances, actor="t")
    assert refused.value.code == code
    assert [p.allowances_t for p in compliance.positions(steel)] == [4000]


def test_the_compliance_page(held, app, client):
    steel, _ = held
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    client.post("/login", data={"email": "buyer@example.com", "password": factories.PASSWORD})
    page = client.get("/account/compliance?lang=en").get_data(as_text=True)
    assert "4,000" in page and "200" in page
    assert client.post("/account/compliance", data={"year": "2027", "allowances_t": "-1"}).status_code == 400
    assert (
        client.post("/account/compliance", data={"year": "2027", "allowances_t": "60000"}).status_code == 302
    )
    assert [p.cap_t for p in compliance.positions(steel)] == [3000, 200]


@pytest.mark.parametrize(
    ("quantity", "shown"),
    [
        (None, "(got null)"),
        (True, "(got true)"),
        ({"a": 1}, '(got {"a": 1})'),
        ([1, 2], "(got [1, 2])"),
        (1.5, "(got 1.5)"),
        ("ten", "(got ten)"),
        (0, "(got 0)"),
        (10**30, "too large: at most 2,147,483,647 t"),
        ("9" * 40, "too large: at most 2,147,483,647 t"),
        (2**31, "too large: at most 2,147,483,647 t"),
    ],
)
def test_a_refused_quantity_is_quoted_as_it_was_sent(held, app, client, quantity, shown):
    """The message quotes a JSON value in JSON's spelling, not Python's (``None``, ``True``,
    ``{'a': 1}``), and says a too large number is too large rather than not above zero."""
    key = _key(app, "--org", STEEL)
    body = {"quantity": quantity, "beneficiary": "测试钢铁", "purpose": "voluntary"}
    response = retire(client, key, body, **{"Accept-Language": "en"})
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_quantity"
    assert shown in error["message"], error["message"]
    assert "None" not in error["message"] and "True" not in error["message"]
