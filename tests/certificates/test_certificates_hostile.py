"""A hostile pass over retirement certificates, verification and the public register (issue #6).

Every test asserts the behaviour the issue asks for: a failing test shows a defect.
"""

import base64
import csv
import io
import json
import unicodedata

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.certificates import issuing, numbers, services
from portal.certificates.models import Certificate
from portal.core.idempotency import request_digest
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.verify import verify_ledger
from tests import factories
from tests.certificates.helpers import counts, retire

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC
bearer, _key = factories.bearer, factories.api_key


@pytest.fixture
def held(held):
    """As the package's: steel holds 100 t CCER (2021) and 200 t VCS (2022); cement 50 t CCER."""
    steel, cement = held
    buyers.deliver_from_inventory(cement, 50, batch_codes=["CCER-A-2021"])
    db.session.commit()
    return steel, cement


def _sign_in(client, email):
    client.post("/logout")
    client.post("/login", data={"email": email, "password": factories.PASSWORD})


def _upload(client, body, name="c.pdf", lang="en"):
    return client.post(
        f"/verify?lang={lang}", data={"pdf": (io.BytesIO(body), name)}, content_type="multipart/form-data"
    )


def _need_font():
    from portal.certificates import pdf

    if pdf.font_path() is None:
        pytest.skip("no CJK font installed")


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


# --- signatures ---------------------------------------------------------------------------------


def test_signature_checks_with_only_the_published_key_and_the_payload_bytes(held, app, client):
    key = _key(app, "--org", STEEL)
    created = retire(client, key, {"quantity": 3, "purpose": "voluntary"})
    assert created.status_code == 201, created.get_json()
    number = created.get_json()["certificate"]["number"]
    cert = client.get(f"/api/v1/certificates/{number}").get_json()
    # beneficiary defaults to the organisation's name
    assert cert["beneficiary"] == "测试钢铁"
    keys = client.get("/api/v1/signing-keys").get_json()["keys"]
    match = [k for k in keys if k["key_id"] == cert["signature"]["key_id"]]
    assert len(match) == 1 and match[0]["alg"] == "Ed25519"
    raw = base64.b64decode(match[0]["public_key"])
    assert len(raw) == 32
    Ed25519PublicKey.from_public_bytes(raw).verify(
        base64.b64decode(cert["signature"]["value"]), cert["payload"].encode("utf-8")
    )
    doc = json.loads(cert["payload"])
    assert doc == json.loads(json.dumps(doc, sort_keys=True))
    assert cert["payload"] == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for field in (
        "number",
        "beneficiary",
        "purpose",
        "quantity",
        "projects",
        "blocks",
        "retired_at",
        "portal",
    ):
        assert field in doc
    p = doc["projects"][0]
    assert {"county_zh", "standard", "methodology"} <= set(p)
    b = doc["blocks"][0]
    assert {"batch_code", "serial_start", "serial_end", "registry_serial_start", "vintage_start"} <= set(b)


def test_a_one_character_typo_is_not_a_server_error(held, app, client):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    last = cert.number[-1]
    typo = cert.number[:-1] + ("0" if last != "0" else "1")
    assert numbers.normalise(typo) is None
    assert client.get(f"/certificates/{typo}").status_code == 404
    api = client.get(f"/api/v1/certificates/{typo}")
    assert api.status_code == 404 and api.get_json()["error"]["code"]
    for odd in ("CFC-2026-%00", "CFC-٢٠٢٦-AAAA-AAAA", "ＣＦＣ-2026-AAAA-AAAA", "x" * 5000, "<script>"):
        assert client.get("/verify", query_string={"number": odd}).status_code in (400, 404)
        assert client.get(f"/api/v1/certificates/{odd[:200]}").status_code in (400, 404)


# --- idempotency --------------------------------------------------------------------------------


def test_the_same_idempotency_key_in_two_organisations_is_two_retirements(held, app, client):
    steel_key, cement_key = _key(app, "--org", STEEL), _key(app, "--org", CEMENT)
    body = {"quantity": 5, "beneficiary": "Same", "purpose": "voluntary"}
    a = retire(client, steel_key, body, **{"Idempotency-Key": "shared"})
    b = retire(client, cement_key, body, **{"Idempotency-Key": "shared"})
    assert a.status_code == 201 and b.status_code == 201, (a.get_json(), b.get_json())
    assert a.get_json()["certificate"]["number"] != b.get_json()["certificate"]["number"]
    assert "Idempotent-Replayed" not in b.headers
    assert json.loads(b.get_json()["certificate"]["payload"])["retired_by"]["uscc"] == CEMENT


def test_idempotency_key_reused_with_another_beneficiary_is_refused(held, app, client):
    key = _key(app, "--org", STEEL)
    body = {"quantity": 5, "beneficiary": "A", "purpose": "voluntary"}
    assert retire(client, key, body, **{"Idempotency-Key": "k"}).status_code == 201
    before = counts()
    for change in ({"beneficiary": "B"}, {"purpose": "event"}, {"batch_code": "VCS-B-2022"}):
        again = retire(client, key, {**body, **change}, **{"Idempotency-Key": "k"})
        assert again.status_code == 422, again.get_json()
    assert counts() == before
    too_long = retire(client, key, body, **{"Idempotency-Key": "k" * 201})
    assert too_long.status_code == 400
    assert counts() == before


def test_insufficient_holding_changes_nothing_and_other_holdings_are_untouchable(held, app, client):
    steel, cement = held
    cement_key = _key(app, "--org", CEMENT)
    before = counts()
    # cement holds 50 t; steel's VCS batch is not cement's to retire
    r = retire(
        client,
        cement_key,
        {"quantity": 1, "beneficiary": "x", "purpose": "voluntary", "batch_code": "VCS-B-2022"},
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "insufficient_holding"
    r = retire(client, cement_key, {"quantity": 51, "beneficiary": "x", "purpose": "voluntary"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "insufficient_holding"
    assert counts() == before
    assert ledger.balance(buyers.holding_account(steel)) == 300
    assert ledger.balance(buyers.holding_account(cement)) == 50


def test_compliance_retirement_with_only_vcs_left_is_refused(held, app, client):
    steel, _ = held
    key = _key(app, "--org", STEEL)
    # use up the CCER first
    assert (
        retire(
            client,
            key,
            {"quantity": 100, "beneficiary": "x", "purpose": "voluntary", "batch_code": "CCER-A-2021"},
        ).status_code
        == 201
    )
    before = counts()
    r = retire(
        client, key, {"quantity": 10, "beneficiary": "x", "purpose": "compliance", "compliance_year": 2026}
    )
    assert r.status_code in (400, 409), r.get_json()
    assert counts() == before


# --- the web form -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "status"),
    [
        ("abc", 400),
        ("0", 400),
        ("-1", 400),
        ("1e3", 400),
        ("١٢", 400),
        ("99999999999999999999999", 400),
        ("301", 409),
    ],
)
def test_web_retire_quantity_errors_are_shown_and_change_nothing(held, app, client, quantity, status):
    steel, _ = held
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    _sign_in(client, "buyer@example.com")
    before = counts()
    r = client.post(
        "/account/retire?lang=en",
        data={"quantity": quantity, "beneficiary": "x", "purpose": "voluntary"},
    )
    assert r.status_code == status
    assert "<form" in r.get_data(as_text=True)  # the form again, with its message
    assert counts() == before


def test_web_retire_with_hostile_beneficiary_is_escaped_on_every_page(held, app, client):
    steel, _ = held
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    _sign_in(client, "buyer@example.com")
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)> שלום مرحبا'
    data = {"quantity": "2", "beneficiary": evil, "purpose": "event", "purpose_detail": "<b>x</b>"}
    asked = client.post("/account/retire", data=data)  # the confirmation repeats what was typed
    assert asked.status_code == 200 and "<script>alert(1)" not in asked.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)" in asked.get_data(as_text=True)
    r = client.post("/account/retire", data={**data, "confirm": "yes"})
    assert r.status_code == 302
    number = db.session.scalar(select(Certificate.number))
    pages = [
        client.get(f"/certificates/{number}"),
        client.get("/account/certificates"),
        client.get("/register"),
        client.get("/register?q=script"),
    ]
    client.post("/logout")
    pages.append(client.get(f"/certificates/{number}?lang=en"))
    for page in pages:
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>x</b>" not in html
        assert "&lt;script&gt;" in html
    # control / direction characters refused from the web form as from the API, nothing changed
    before = counts()
    _sign_in(client, "buyer@example.com")
    for bad in ("a\u202eb", "a\x1bb", "x" * 201):
        r = client.post("/account/retire", data={"quantity": "1", "beneficiary": bad, "purpose": "voluntary"})
        assert r.status_code == 400
    assert counts() == before


# --- the register -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"serial": str(2**31), "batch": "CCER-A-2021"},
        {"serial": str(2**63), "batch": "CCER-A-2021"},
        {"serial": "-1", "batch": "CCER-A-2021"},
        {"serial": "١٢", "batch": "CCER-A-2021"},
        {"serial": "1.0", "batch": "CCER-A-2021"},
        {"year": "２０２６"},
        {"year": "99999999999999999999999"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "10000"},
        {"page": "99999999999999999999"},
        {"q": "x" * 10_000},
        {"q": "' OR 1=1 --"},
        {"county": "<script>"},
        {"batch": "%"},
    ],
)
def test_register_odd_inputs_never_fail(held, app, client, args):
    steel, _ = held
    services.retire_from_holding(steel, 1, beneficiary="Z", purpose="voluntary", actor="t")
    db.session.commit()
    for path in ("/register", "/register.csv"):
        r = client.get(path, query_string=args)
        assert r.status_code in (200, 400), (path, args, r.status_code)
        r.get_data()


def test_register_serial_search_across_many_certificates_and_pages(held, app, client):
    steel, _ = held
    made = []
    for i in range(55):
        c, _ = services.retire_from_holding(
            steel, 1, beneficiary=f"B{i}", purpose="voluntary", batch_code="CCER-A-2021", actor="t"
        )
        made.append(c.number)
    db.session.commit()
    # serial 1 of CCER-A-2021 went to the first certificate (oldest), on page 2 of an unfiltered list
    found = client.get("/register?batch=CCER-A-2021&serial=1").get_data(as_text=True)
    assert made[0] in found and made[1] not in found
    page1 = client.get("/register").get_data(as_text=True)
    page2 = client.get("/register?page=2").get_data(as_text=True)
    assert made[-1] in page1 and made[0] in page2 and made[0] not in page1
    assert client.get("/register?page=3").status_code == 200


def test_register_csv_cannot_inject_formulas(held, app, client):
    steel, _ = held
    hostile = ['=HYPERLINK("http://x","y")', "+1+1", "-1+1", "@SUM(A1)", "＝1+1"]
    for h in hostile:
        services.retire_from_holding(steel, 1, beneficiary=h, purpose="event", purpose_detail=h, actor="t")
    db.session.commit()
    text = client.get("/register.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(hostile)
    for row in rows:
        for column in ("beneficiary", "purpose_detail"):
            assert row[column][:1] not in ("=", "+", "-", "@", "\t", "\r"), row[column]


def test_register_csv_keeps_its_codes_and_names_them_in_the_requests_language(held, app, client):
    steel, _ = held
    number = services.retire_from_holding(steel, 2, beneficiary="某公司", purpose="event", actor="t")[
        0
    ].number
    db.session.commit()
    named = {}
    for lang in ("en", "zh"):
        text = client.get(f"/register.csv?lang={lang}").get_data(as_text=True).lstrip("\ufeff")
        (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["number"] == number]
        assert row["status"] == "valid" and row["purpose"] == "event" and row["registry_status"] == "pending"
        named[lang] = (
            row["status_name"],
            row["purpose_name"],
            row["registry_status_name"],
            row["project_name"],
        )
    assert named["en"][:3] == ("Valid", "Event neutralisation", "Awaiting the registry")
    assert all(zh and zh != en for zh, en in zip(named["zh"], named["en"], strict=True)), named


# --- throttling ---------------------------------------------------------------------------------


def test_lookup_throttle_is_not_bypassed_by_forwarded_for(held, app, client):
    for i in range(services.LOOKUP_FAILURE_LIMIT):
        client.get(f"/certificates/{numbers.new_number(2026)}", headers={"X-Forwarded-For": f"10.1.{i}.1"})
    r = client.get(
        f"/api/v1/certificates/{numbers.new_number(2026)}", headers={"X-Forwarded-For": "10.9.9.9"}
    )
    assert r.status_code == 429


def test_a_burst_of_unknown_numbers_gets_no_more_answers_than_the_limit(pg_app):
    """Every look-up of the burst fails at the same moment: exactly the limit are answered
    "not found", the rest are refused (each failure is counted before the next one is judged)."""
    from tests.concurrency import race

    extra = 8

    def guess(i):
        try:
            found = services.look_up(numbers.new_number(2026), "198.51.100.23")
        except services.LookupRefused:
            outcome = "refused"
        else:
            outcome = "not found" if found is None else "found"
        db.session.commit()  # as the views do: the failure is counted
        return outcome

    outcomes = race(pg_app, services.LOOKUP_FAILURE_LIMIT + extra, guess)
    assert outcomes.count("not found") == services.LOOKUP_FAILURE_LIMIT, outcomes
    assert outcomes.count("refused") == extra


def test_a_throttled_client_still_gets_real_numbers_including_the_pdf(held, app, client):
    _need_font()
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    for _ in range(services.LOOKUP_FAILURE_LIMIT + 3):
        client.get(f"/api/v1/certificates/{numbers.new_number(2026)}")
    assert client.get(f"/api/v1/certificates/{numbers.new_number(2026)}").status_code == 429
    assert client.get(f"/certificates/{cert.number}").status_code == 200
    assert client.get(f"/certificates/{cert.number}.pdf").status_code == 200
    assert client.get(f"/verify?number={cert.number}").status_code in (200, 301)
    assert client.get(f"/api/v1/certificates/{cert.number.lower()}").status_code == 200


# --- revocation ---------------------------------------------------------------------------------


def test_revocation_needs_an_operator_and_a_csrf_token(held, app):
    from tests.conftest import Client

    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 2, beneficiary="X", purpose="voluntary", actor="t")
    factories.user("ops@example.com", role="operator")
    factories.user("sales@example.com", role="sales")
    factories.user("audit@example.com", role="auditor")
    factories.user("buyer@example.com", organisation=steel)
    db.session.commit()
    app.config["WTF_CSRF_ENABLED"] = True
    app.test_client_class = Client
    client = app.test_client()

    def login(email):
        client.post("/logout")
        page = client.get("/login").get_data(as_text=True)
        token = __import__("re").findall(r'name="csrf_token"[^>]*value="([^"]+)"', page)[0]
        client.post("/login", data={"email": email, "password": factories.PASSWORD, "csrf_token": token})

    assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "x"}).status_code in (
        302,
        400,
        401,
        403,
    )
    for email in ("sales@example.com", "audit@example.com", "buyer@example.com"):
        login(email)
        assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "x"}).status_code in (
            400,
            403,
        )
    login("ops@example.com")
    # no CSRF token: refused
    assert client.post(f"/certificates/{cert.number}/revoke", data={"reason": "x"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(Certificate, cert.id).status == "valid"
    page = client.get(f"/certificates/{cert.number}").get_data(as_text=True)
    import re

    token = re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', page)[-1]
    r = client.post(
        f"/certificates/{cert.number}/revoke",
        data={"reason": "registry", "csrf_token": token, "confirm": "yes"},
    )
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Certificate, cert.id).status == "revoked"


@pytest.mark.parametrize("reason", ["a\u202eb", "a\x07b", "x" * 501, ""])
def test_bad_revocation_reasons_are_refused_without_a_server_error(held, app, client, reason):
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 2, beneficiary="X", purpose="voluntary", actor="t")
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    _sign_in(client, "ops@example.com")
    r = client.post(f"/certificates/{cert.number}/revoke?lang=en", data={"reason": reason})
    assert r.status_code == 400
    db.session.expire_all()
    assert db.session.get(Certificate, cert.id).status == "valid"


def test_a_revoked_certificate_is_revoked_everywhere(held, app, client):
    _need_font()
    from portal.certificates import pdf

    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 12, beneficiary="Revokee", purpose="voluntary", actor="t")
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    number = cert.number
    genuine_pdf = client.get(f"/certificates/{number}.pdf").get_data()
    # warm every cache first
    client.get(f"/certificates/{number}?lang=en")
    client.get(f"/api/v1/certificates/{number}")
    client.get("/register")
    _sign_in(client, "ops@example.com")
    reason = '<script>alert("r")</script>登记簿撤销'
    assert (
        client.post(f"/certificates/{number}/revoke", data={"reason": reason, "confirm": "yes"}).status_code
        == 302
    )
    client.post("/logout")
    before = ledger.balance(buyers.holding_account(steel))
    html = client.get(f"/certificates/{number}?lang=en").get_data(as_text=True)
    assert "Revoked" in html and "登记簿撤销" in html and '<script>alert("r")' not in html
    data = client.get(f"/api/v1/certificates/{number}").get_json()
    assert data["status"] == "revoked" and data["revoked"]["reason"] == reason and data["revoked"]["at"]
    assert data["signature_valid"] is True  # still genuinely signed
    reg = client.get("/register?lang=en").get_data(as_text=True)
    assert number in reg and "Revoked" in reg
    csv_text = client.get("/register.csv").get_data(as_text=True)
    assert "revoked" in csv_text
    fresh = client.get(f"/certificates/{number}.pdf").get_data()
    assert pdf.extract(fresh).payload == cert.payload
    text = _pdf_text(fresh)
    assert "REVOKED" in text.upper() or "撤销" in text
    checked = _upload(client, genuine_pdf).get_data(as_text=True)
    assert "Revoked" in checked and "Genuine and valid" not in checked and '<script>alert("r")' not in checked
    from portal.certificates import register

    by_project, _ = register.totals()
    assert sum(t.tonnes for t in by_project) == 0
    assert ledger.balance(buyers.holding_account(steel)) == before == 288
    assert verify_ledger().ok


# --- PDFs ---------------------------------------------------------------------------------------


def test_uploads_of_junk_are_friendly_400s(held, app, client):
    _need_font()
    from reportlab.pdfgen.canvas import Canvas

    plain = io.BytesIO()
    c = Canvas(plain)
    c.drawString(100, 700, "CFC-2026-AAAA-AAAA")
    c.save()
    for body in (b"", b"GIF89a....", b"%PDF-1.7\n%%EOF", plain.getvalue(), b"%PDF-" + b"\x00" * 1000):
        r = _upload(client, body)
        assert r.status_code == 400, (body[:20], r.status_code)
        assert "<form" in r.get_data(as_text=True)


def test_tampered_embedded_payload_in_a_real_pdf_is_not_genuine(held, app, client):
    _need_font()
    import pypdf
    from pypdf.generic import NameObject

    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 4, beneficiary="赤峰学院", purpose="voluntary", actor="t")
    db.session.commit()
    data = client.get(f"/certificates/{cert.number}.pdf").get_data()
    reader = pypdf.PdfReader(io.BytesIO(data))
    writer = pypdf.PdfWriter(clone_from=reader)
    # replace the embedded attachment with a version whose quantity was changed
    from portal.certificates import pdf

    embedded = pdf.extract(data)
    forged = {
        "payload": embedded.payload.replace('"quantity":4', '"quantity":4000'),
        "signature": embedded.signature,
        "key_id": embedded.key_id,
        "alg": "Ed25519",
    }
    assert forged["payload"] != embedded.payload
    root = writer._root_object
    del root[NameObject("/Names")]
    writer.add_attachment("certificate.json", json.dumps(forged).encode())
    out = io.BytesIO()
    writer.write(out)
    r = _upload(client, out.getvalue())
    html = r.get_data(as_text=True)
    assert 'data-result="modified"' in html and "Genuine and valid" not in html
    # a validly signed payload of another certificate, pasted into this PDF, names that other number
    other, _ = services.retire_from_holding(steel, 1, beneficiary="Other", purpose="voluntary", actor="t")
    db.session.commit()
    swapped = {
        "payload": other.payload,
        "signature": other.signature,
        "key_id": other.key_id,
        "alg": "Ed25519",
    }
    writer2 = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    del writer2._root_object[NameObject("/Names")]
    writer2.add_attachment("certificate.json", json.dumps(swapped).encode())
    out2 = io.BytesIO()
    writer2.write(out2)
    html2 = _upload(client, out2.getvalue()).get_data(as_text=True)
    assert other.number in html2  # the check shows what was actually signed


def test_a_certificate_of_many_blocks_prints_and_its_pdf_verifies(held, app, client):
    _need_font()
    from portal.certificates import pdf

    steel, cement = held
    frag = factories.batch(quantity=2000, code="FRAG-2020", vintage=2020)
    for _ in range(1000):  # alternate 1 t deliveries: steel holds 1,000 separate one-tonne blocks
        buyers.deliver_from_inventory(steel, 1, batch_codes=[frag.code])
        buyers.deliver_from_inventory(cement, 1, batch_codes=[frag.code])
    db.session.commit()
    cert, _ = services.retire_from_holding(
        steel, 1000, beneficiary="Many blocks", purpose="voluntary", batch_code=frag.code, actor="t"
    )
    db.session.commit()
    assert len(json.loads(cert.payload)["blocks"]) == 1000
    r = client.get(f"/certificates/{cert.number}.pdf")
    assert r.status_code == 200
    data = r.get_data()
    assert pdf.extract(data).payload == cert.payload  # the PDF alone can be verified ...
    checked = _upload(client, data)
    assert checked.status_code == 200 and "Genuine and valid" in checked.get_data(
        as_text=True
    )  # ... by /verify


def test_a_long_rtl_beneficiary_prints_and_verifies(held, app, client):
    _need_font()
    from portal.certificates import pdf

    steel, _ = held
    name = ("مؤسسة الكربون الخضراء " * 10)[:200]
    key = _key(app, "--org", STEEL)
    r = retire(
        client, key, {"quantity": 2, "beneficiary": name, "purpose": "event", "purpose_detail": "שלום " * 60}
    )
    assert r.status_code == 201, r.get_json()
    number = r.get_json()["certificate"]["number"]
    data = client.get(f"/certificates/{number}.pdf").get_data()
    assert pdf.extract(data).payload == r.get_json()["certificate"]["payload"]
    assert "Genuine and valid" in _upload(client, data).get_data(as_text=True)


def _need_fallback_font():
    from pathlib import Path

    from portal.pdf import fonts

    if not any(Path(p).is_file() for p in fonts.FALLBACK_CANDIDATES):
        pytest.skip("fonts-dejavu-core is not installed: run scripts/ensure-chromium as root")


def test_rtl_beneficiary_is_legible_in_the_pdf(held, app, client):
    """The beneficiary is the point of a certificate: a name in Arabic must not print as U+FFFD."""
    _need_font()
    _need_fallback_font()
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 1, beneficiary="مرحبا", purpose="voluntary", actor="t")
    db.session.commit()
    text = _pdf_text(client.get(f"/certificates/{cert.number}.pdf").get_data())
    assert "\ufffd" not in text
    # Drawn joined (Arabic presentation forms), which read back as the letters typed.
    assert "مرحبا" in unicodedata.normalize("NFKC", text)


@pytest.mark.parametrize("name", ["שלום עולם", "Ёлка Ltd", "赤峰 مرحبا 2026"])
def test_other_scripts_print_in_the_fallback_font(held, app, client, name):
    _need_font()
    _need_fallback_font()
    steel, _ = held
    cert, _ = services.retire_from_holding(steel, 1, beneficiary=name, purpose="voluntary", actor="t")
    db.session.commit()
    text = unicodedata.normalize("NFKC", _pdf_text(client.get(f"/certificates/{cert.number}.pdf").get_data()))
    assert "\ufffd" not in text
    for word in name.split():
        assert word in text or word[::-1] in text  # poppler may give a right-to-left word reversed


def test_an_old_pdf_still_verifies_after_key_rotation(held, app, client, tmp_path):
    _need_font()
    steel, _ = held
    app.config["SIGNING_KEY_FILE"] = str(tmp_path / "old.pem")
    old, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    data = client.get(f"/certificates/{old.number}.pdf").get_data()
    app.config["SIGNING_KEY_FILE"] = str(tmp_path / "new.pem")
    new, _ = services.retire_from_holding(steel, 1, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    assert new.key_id != old.key_id
    assert "Genuine and valid" in _upload(client, data).get_data(as_text=True)


# --- both databases -------------------------------------------------------------------------------


@pytest.fixture
def held_any(any_app):
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=1000, code="CCER-A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 100)
    db.session.commit()
    any_app.test_client_class = __import__("tests.conftest", fromlist=["Client"]).Client
    return steel, any_app.test_client()


@pytest.mark.parametrize(
    "change",
    [
        {"beneficiary": "a\u0000b"},
        {"beneficiary": "\ud800"},
        {"beneficiary": {"x": 1}},
        {"beneficiary": None},
        {"purpose": "\u0000"},
        {"purpose": ["voluntary"]},
        {"purpose": {"a": 1}},
        {"batch_code": "\u0000"},
        {"batch_code": {"a": 1}},
        {"batch_code": 12},
        {"purpose_detail": ["x"]},
        {"quantity": {"a": 1}},
        {"quantity": "1" * 30},
        {"quantity": "١٢"},
        {"purpose": "compliance", "compliance_year": [2026]},
        {"purpose": "compliance", "compliance_year": 2**70},
    ],
)
def test_api_hostile_retirement_bodies_are_4xx_on_both_databases(held_any, change):
    steel, client = held_any
    key = _key(__import__("flask").current_app, "--org", STEEL)
    before = counts()
    body = {"quantity": 1, "beneficiary": "x", "purpose": "voluntary", **change}
    raw = json.dumps(body)
    r = client.post(
        "/api/v1/retirements",
        data=raw,
        content_type="application/json",
        headers={**bearer(key), "Idempotency-Key": "hostile"},
    )
    assert 400 <= r.status_code < 500, (change, r.status_code, r.get_data(as_text=True)[:300])
    assert counts() == before


def test_register_and_lookups_with_odd_text_on_both_databases(held_any):
    steel, client = held_any
    a, _ = services.retire_from_holding(steel, 1, beneficiary="Plain", purpose="voluntary", actor="t")
    b, _ = services.retire_from_holding(steel, 1, beneficiary="50%_off\\co", purpose="voluntary", actor="t")
    db.session.commit()
    for q, has_a, has_b in (
        ("%", False, True),
        ("_", False, True),
        ("\\", False, True),
        ("%%", False, False),
        ("PLAIN", True, False),
    ):
        html = client.get("/register", query_string={"q": q}).get_data(as_text=True)
        assert (a.number in html) == has_a and (b.number in html) == has_b, q
        csv_text = client.get("/register.csv", query_string={"q": q}).get_data(as_text=True)
        assert (a.number in csv_text) == has_a and (b.number in csv_text) == has_b, q
    for args in (
        "q=%ED%A0%80",
        "batch=" + "%C3%A9" * 80 + "&serial=2147483647",
        "county=%E2%80%AE",
        "q=a%00",
        "q=%FF%FE",
    ):
        assert client.get("/register?" + args).status_code in (200, 400), args
        assert client.get("/register.csv?" + args).status_code in (200, 400), args
    for odd in ("%00", "%ED%A0%80", "CFC-2026-%25%25%25%25-AAAA", "%C0%AF"):
        assert client.get(f"/certificates/{odd}").status_code in (400, 404)
        assert client.get(f"/api/v1/certificates/{odd}").status_code in (400, 404)


@pytest.mark.postgres
def test_one_idempotency_key_sent_ten_times_at_once_retires_once(pg_app):
    from tests.concurrency import race

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="IDEM-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 100)
    db.session.commit()
    org_id = steel.id
    digest = request_digest({"quantity": 7, "beneficiary": "B", "purpose": "voluntary"})

    def retire(i):
        org = db.session.get(type(steel), org_id)
        cert, _ = services.retire_from_holding(
            org, 7, beneficiary="B", purpose="voluntary", actor=f"w{i}", idempotency_key="same", digest=digest
        )
        number = cert.number
        db.session.commit()
        return number

    outcomes = race(pg_app, 10, retire, refused=services.RetirementError)
    assert len(set(outcomes)) == 1 and outcomes[0].startswith("CFC-"), outcomes
    db.session.expire_all()
    assert ledger.balance(buyers.holding_account(steel)) == 93
    assert verify_ledger().ok


def test_register_year_is_the_beijing_year(held_any, monkeypatch):
    from datetime import UTC, datetime

    steel, client = held_any
    # 2025-12-31 17:30 UTC is 2026-01-01 01:30 in Beijing
    monkeypatch.setattr(issuing, "utcnow", lambda: datetime(2025, 12, 31, 17, 30, tzinfo=UTC))
    cert, _ = services.retire_from_holding(steel, 1, beneficiary="NewYear", purpose="event", actor="t")
    db.session.commit()
    assert cert.number.startswith("CFC-2026-")
    assert cert.number in client.get("/register?year=2026").get_data(as_text=True)
    assert cert.number not in client.get("/register?year=2025").get_data(as_text=True)


def test_a_long_unbroken_beneficiary_is_printed_whole(held, app, client):
    _need_font()
    steel, _ = held
    name = "赤峰" * 60 + "W" * 80  # 200 characters, no spaces
    cert, _ = services.retire_from_holding(steel, 1, beneficiary=name, purpose="voluntary", actor="t")
    db.session.commit()
    text = "".join(_pdf_text(client.get(f"/certificates/{cert.number}.pdf").get_data()).split())
    assert "赤峰" * 60 in text and "W" * 80 in text
