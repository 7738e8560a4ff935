"""Verifying an uploaded certificate PDF (issue #13, parts 1 and 2): a real certificate PDF is
tampered with each way and each gets its answer; the untouched file is ``valid``, for /verify
and for pyHanko's own validation with the portal's CA as the trust root."""

import base64
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject

from portal.buyers import services as buyers
from portal.certificates import pdf, services, verification
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.pdf import authority, sealing
from tests import factories

PDFSIG = shutil.which("pdfsig")


@pytest.fixture
def genuine(held, app, client):
    """A real certificate of 700 t, and its PDF as the portal serves it."""
    if pdf.font_path() is None:
        pytest.skip("no CJK font installed (scripts/ensure-chromium installs fonts-wqy-microhei)")
    app.config["VERIFY_UPLOAD_LIMIT"] = 10_000
    steel, _ = held
    factories.batch(quantity=1000, code="CCER-T-2023", vintage=2023)
    buyers.deliver_from_inventory(steel, 700, batch_codes=["CCER-T-2023"])
    cert, _ = services.retire_from_holding(
        steel, 700, beneficiary="赤峰学院", purpose="voluntary", batch_code="CCER-T-2023", actor="t"
    )
    db.session.commit()
    response = client.get(f"/certificates/{cert.number}.pdf")
    assert response.status_code == 200
    return cert, response.get_data()


def api(client, body: bytes, name: str = "c.pdf"):
    response = client.post(
        "/api/v1/verify?lang=en", data={"file": (io.BytesIO(body), name)}, content_type="multipart/form-data"
    )
    # Werkzeug's test client spools a body over 500 kB to a temporary file that it leaves open.
    response.request.environ["wsgi.input"].close()
    return response


def answer(client, body: bytes) -> dict:
    response = api(client, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    found = response.get_json()
    assert found["result"] in verification.RESULTS and found["message"]
    return found


def page(client, body: bytes, lang: str = "en"):
    response = client.post(
        f"/verify?lang={lang}", data={"pdf": (io.BytesIO(body), "c.pdf")}, content_type="multipart/form-data"
    )
    response.request.environ["wsgi.input"].close()  # as in ``api``
    return response


def unsigned_part(data: bytes) -> bytes:
    """The PDF as drawn, before the signature was appended (its first revision)."""
    end = data.index(b"%%EOF") + len(b"%%EOF")
    return data[: end + 1] if data[end : end + 1] == b"\n" else data[:end]


def with_page_text(data: bytes, old: bytes, new: bytes) -> bytes:
    """The PDF with ``old`` replaced by ``new`` in its first page's content stream, rewritten by
    pypdf (what an editor does)."""
    reader = PdfReader(io.BytesIO(data))
    writer = PdfWriter(clone_from=reader)
    content = writer.pages[0].get_contents()
    raw = content.get_data()
    assert old in raw, "the page no longer shows the quantity as plain digits"
    content.set_data(raw.replace(old, new, 1))
    writer.pages[0][NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- the untouched file ------------------------------------------------------------------------


def test_the_untouched_certificate_is_valid_on_the_page_and_in_the_api(genuine, client):
    cert, data = genuine
    found = answer(client, data)
    assert found == {
        "result": "valid",
        "message": found["message"],
        "certificate": {
            "number": cert.number,
            "status": "valid",
            "registry": {"status": "pending", "reference": None, "confirmed_at": None, "url": None},
        },
    }
    shown = page(client, data)
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and 'data-result="valid"' in html and "verdict-good" in html
    assert "Genuine and valid" in html and "record-heading" in html and "赤峰学院" in html
    zh = page(client, data, "zh").get_data(as_text=True)
    assert "真实有效" in zh and "登记簿记录" in zh


def test_the_pdf_signature_validates_in_pyhanko_with_the_portal_ca_as_root(genuine, app):
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    _, data = genuine
    (root_der,) = authority.current_authority().roots_der()
    root = asn1_x509.Certificate.load(root_der)
    (signature,) = PdfFileReader(io.BytesIO(data)).embedded_signatures
    from portal.pdf.sealing import _outside_event_loop

    status = _outside_event_loop(
        lambda: validate_pdf_signature(signature, ValidationContext(trust_roots=[root], allow_fetching=False))
    )
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    assert "Document Signing" in status.signing_cert.subject.human_friendly
    # The Ed25519 data is still attached, byte for byte as the register holds it.
    assert pdf.extract(data).payload == genuine[0].payload


@pytest.mark.skipif(PDFSIG is None, reason="poppler-utils (pdfsig) is not installed")
def test_poppler_sees_the_whole_document_signed(genuine, tmp_path):
    _, data = genuine
    path = tmp_path / "c.pdf"
    path.write_bytes(data)
    out = subprocess.run([PDFSIG, "-nocert", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "Total document signed" in out and "Signature is Valid" in out
    path.write_bytes(data + b"\n% appended\n")
    out = subprocess.run([PDFSIG, "-nocert", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "Total document signed" not in out


def test_a_revoked_certificate_is_genuine_but_not_green(genuine, client):
    cert, data = genuine
    services.revoke(db.session.get(Certificate, cert.id), "registry reversal", actor="t")
    db.session.commit()
    found = answer(client, data)
    assert found["result"] == "valid" and found["certificate"]["status"] == "revoked"
    html = page(client, data).get_data(as_text=True)
    assert "verdict-good" not in html and "Genuine, but revoked" in html and "registry reversal" in html


# --- tampered each way -------------------------------------------------------------------------


def test_visible_text_changed_is_modified(genuine, client):
    cert, data = genuine
    # 700 t becomes 900 t on the page: the quantity's digits in the page content.
    forged = with_page_text(data, *_quantity_operands(data, b"700", b"900"))
    found = answer(client, forged)
    assert found["result"] == "modified" and found["certificate"]["number"] == cert.number
    # The same edit on a copy whose signature was first removed: the page's text no longer
    # shows what the register holds.
    stripped_and_edited = with_page_text(unsigned_part(data), *_quantity_operands(data, b"700", b"900"))
    found = answer(client, stripped_and_edited)
    assert found["result"] == "modified"
    assert "page" in found["message"] or "text" in found["message"]


def _quantity_operands(data: bytes, old: bytes, new: bytes) -> tuple[bytes, bytes]:
    """The page-content bytes that draw ``old`` tonnes and the same operator drawing ``new``.
    The quantity is drawn in the embedded font's subset codes: its digits are looked up through
    the font's own ToUnicode map."""
    reader = PdfReader(io.BytesIO(data))
    raw = reader.pages[0].get_contents().get_data()
    text = reader.pages[0].extract_text()
    assert f"{old.decode()} tCO2e" in text
    fonts = reader.pages[0]["/Resources"]["/Font"]
    for font in fonts.values():
        font = font.get_object()
        if "/ToUnicode" not in font:
            continue
        cmap = font["/ToUnicode"].get_object().get_data()
        codes = {}
        for src, dst in re.findall(rb"<([0-9a-fA-F]{2})> <([0-9a-fA-F]{4})>", cmap):
            codes[chr(int(dst, 16))] = bytes([int(src, 16)])
        if not all(chr(c) in codes for c in old + new):
            continue
        encoded_old = b"".join(codes[chr(c)] for c in old)
        encoded_new = b"".join(codes[chr(c)] for c in new)
        for literal in re.findall(rb"\((?:[^()\\]|\\.)*\)", raw):
            unescaped = re.sub(rb"\\([()\\])", rb"\1", literal[1:-1])
            if unescaped.startswith(encoded_old):
                return literal, b"(" + encoded_new + literal[1 + len(encoded_old) :]
    pytest.fail("the quantity's operator was not found in the page content")


def test_embedded_file_changed_is_modified_not_not_ours(genuine, client):
    cert, data = genuine
    # In place: one byte of the compressed attachment, inside the signed range.
    reader = PdfReader(io.BytesIO(data))
    attached = reader.attachments["certificate.json"][0]
    stream = _attachment_stream(data)
    flipped = data[: stream + 10] + bytes([data[stream + 10] ^ 0x01]) + data[stream + 11 :]
    assert answer(client, flipped)["result"] == "modified"
    # Replaced by an editor: the quantity in the embedded data changed, the file rewritten.
    writer = PdfWriter(clone_from=reader)
    forged = json.loads(attached)
    forged["payload"] = forged["payload"].replace('"quantity":700', '"quantity":900')
    writer.add_attachment("certificate.json", json.dumps(forged).encode())
    out = io.BytesIO()
    writer.write(out)
    found = answer(client, out.getvalue())
    assert found["result"] == "modified"
    # The embedded data damaged in a copy without the signature: altered, not "not ours".
    unsigned = unsigned_part(data)
    stream = _attachment_stream(unsigned)
    damaged = unsigned[: stream + 4] + b"\x00\x00\x00\x00" + unsigned[stream + 8 :]
    found = answer(client, damaged)
    assert found["result"] == "modified" and "damaged" in found["message"]


def _attachment_stream(data: bytes) -> int:
    """Where the attached file's (compressed) bytes start in ``data``."""
    at = data.index(b"/EmbeddedFile")
    return data.index(b"stream", at) + len(b"stream\n")


def test_an_incremental_update_after_the_signature_is_modified(genuine, client):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    cert, data = genuine
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    info = writer.trailer["/Info"]
    info[generic.NameObject("/Title")] = generic.TextStringObject("900 t retired")
    writer.update_container(info)
    out = io.BytesIO()
    writer.write(out)
    appended = out.getvalue()
    assert appended.startswith(data) and len(appended) > len(data)
    found = answer(client, appended)
    assert found["result"] == "modified" and found["certificate"]["number"] == cert.number
    assert "added" in found["message"]
    # A few bytes of anything after the end of the file are an addition too.
    assert answer(client, data + b"\n% a comment\n")["result"] == "modified"


def test_resigned_with_another_certificate_is_unknown_signer(genuine, client, tmp_path):
    cert, data = genuine
    authority.generate(tmp_path / "other")  # same names as the portal's, another key
    other = authority.load(
        tmp_path / "other" / authority.SIGNER_CERT,
        tmp_path / "other" / authority.SIGNER_KEY,
        tmp_path / "other" / authority.CA_CERT,
    )
    resigned = sealing.seal(unsigned_part(data), other, dt.datetime.now(dt.UTC))
    found = answer(client, resigned)
    assert found["result"] == "unknown_signer" and found["certificate"]["number"] == cert.number
    # Signed again on top of the portal's signature: the portal's no longer covers the file.
    countersigned = sealing.seal(data, other, dt.datetime.now(dt.UTC), field_name="Countersignature")
    assert answer(client, countersigned)["result"] == "modified"
    # The signature removed altogether: not signed by this portal, and said so.
    found = answer(client, unsigned_part(data))
    assert found["result"] == "unknown_signer" and "no signature" in found["message"]


def test_truncated_and_flipped_bytes(genuine, client):
    cert, data = genuine
    assert answer(client, data[: len(data) - 200])["result"] == "modified"
    assert answer(client, data[:2000])["result"] in ("unreadable", "not_a_certificate")
    middle = len(data) // 3  # inside the fonts and pages, inside the signed range
    flipped = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    assert answer(client, flipped)["result"] == "modified"
    # A flipped digit of the RSA signature value itself, the last bytes of the CMS structure
    # (the hex string is padded with zeros to the space kept for it).
    start = data.index(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    contents = start + len(data[start:end].rstrip(b"0")) - 40
    digit = b"0" if data[contents : contents + 1] != b"0" else b"1"
    broken = data[:contents] + digit + data[contents + 1 :]
    assert answer(client, broken)["result"] == "modified"


def test_other_portal_pdfs_are_not_certificates(genuine, client):
    from reportlab.pdfgen.canvas import Canvas

    plain = io.BytesIO()
    canvas = Canvas(plain)
    canvas.drawString(100, 700, genuine[0].number)
    canvas.save()
    found = answer(client, plain.getvalue())
    assert found["result"] == "not_a_certificate" and "certificate" not in found
    signed = sealing.seal(plain.getvalue(), authority.current_authority(), dt.datetime.now(dt.UTC))
    found = answer(client, signed)
    assert found["result"] == "not_a_certificate" and "not a retirement certificate" in found["message"]


# --- bad input ------------------------------------------------------------------------------------


def _timed(client, body):
    started = time.perf_counter()
    response = api(client, body)
    return response, time.perf_counter() - started


def test_hostile_pdfs_get_a_clear_answer_never_a_500(genuine, client):
    _, data = genuine
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(unsigned_part(data))))
    writer.encrypt("secret")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    bomb = zlib.compress(b"\x00" * (400 * 1024 * 1024), 9)  # 400 MB inflated, about 400 kB sent
    huge_stream = (
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R >>\nendobj\n"
        + f"4 0 obj\n<< /Length {len(bomb)} /Filter /FlateDecode >>\nstream\n".encode()
        + bomb
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    many = [b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"]
    kids = " ".join(f"{n} 0 R" for n in range(3, 20003))
    many.append(f"2 0 obj\n<< /Type /Pages /Kids [{kids}] /Count 20000 >>\nendobj\n".encode())
    for n in range(3, 20003):
        many.append(f"{n} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] >>\nendobj\n".encode())
    many.append(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    cases = {
        "not a PDF": (b"GIF89a" + b"\x00" * 100, "unreadable"),
        "empty": (b"", "unreadable"),
        "truncated header": (b"%PDF-1.7\n", "unreadable"),
        "encrypted": (encrypted.getvalue(), "unreadable"),
        "huge stream": (huge_stream, None),
        "thousands of objects": (b"".join(many), None),
        "nested arrays": (b"%PDF-1.4\n" + b"[" * 200_000, "unreadable"),
    }
    for name, (body, expected) in cases.items():
        response, took = _timed(client, body)
        assert response.status_code == 200, (name, response.status_code)
        found = response.get_json()
        assert found["result"] in ("unreadable", "not_a_certificate"), (name, found)
        assert expected is None or found["result"] == expected, (name, found)
        assert found["message"] and took < 15, (name, took)
    encrypted_answer = answer(client, encrypted.getvalue())
    assert "encrypted" in encrypted_answer["message"]
    html = page(client, encrypted.getvalue())
    assert html.status_code == 400 and "encrypted" in html.get_data(as_text=True)
    zh = page(client, b"GIF89a", "zh")
    assert zh.status_code == 400 and "PDF" in zh.get_data(as_text=True)


def test_uploads_are_bounded_in_size_and_number(genuine, app, client):
    too_big = b"%PDF-1.4\n" + b"0" * verification.MAX_UPLOAD
    response = api(client, too_big)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_too_large"
    # Just over the limit (read whole, refused by the check) and well over it (refused while the
    # body is read): one status and one code either way, on the page as in the API.
    for extra in (10, 100_000):
        body = b"%PDF-1.4\n" + b"0" * (verification.MAX_UPLOAD + extra)
        response = api(client, body)
        assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_too_large"
        assert page(client, body).status_code == 413
    missing = client.post("/api/v1/verify", data={}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.get_json()["error"]["code"] == "no_file"
    app.config["VERIFY_UPLOAD_LIMIT"] = services.UPLOAD_LIMIT
    for _ in range(services.UPLOAD_LIMIT + 1):
        last = api(client, b"%PDF-1.4 nothing")
    assert last.status_code == 429 and last.get_json()["error"]["code"] == "too_many_uploads"


def test_a_busy_sandbox_refuses_at_once_instead_of_queueing(genuine, app, client, tmp_path):
    import fcntl
    from pathlib import Path

    slots = Path(app.config["VERIFY_SLOTS_DIR"])
    slots.mkdir(parents=True, exist_ok=True)
    with open(slots / "slot-0.lock", "a") as held_slot:
        fcntl.flock(held_slot, fcntl.LOCK_EX)
        started = time.perf_counter()
        response = api(client, genuine[1])
        assert time.perf_counter() - started < 2
        fcntl.flock(held_slot, fcntl.LOCK_UN)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "busy"
    assert answer(client, genuine[1])["result"] == "valid"


def test_the_chain_is_published(genuine, client):
    from cryptography import x509

    keys = client.get("/api/v1/signing-keys").get_json()
    chain = keys["document_signing"]
    assert chain["alg"] == "RSA-3072" and chain["chain_url"].endswith("/api/v1/signing-chain.pem")
    pem = client.get("/api/v1/signing-chain.pem")
    assert pem.status_code == 200 and pem.get_data(as_text=True) == chain["chain_pem"]
    signer, root = x509.load_pem_x509_certificates(pem.get_data())
    signer.verify_directly_issued_by(root)
    assert root.subject == root.issuer
    assert keys["keys"] and keys["keys"][0]["alg"] == "Ed25519"  # the payload keys as before
    assert base64.b64decode(keys["keys"][0]["public_key"])


@pytest.fixture
def inspected(genuine):
    """judge() of bytes read in this process (the sandbox's own reading, without the child)."""
    from portal.pdf import upload

    known = authority.known_certificates()
    return lambda body: verification.judge(upload.inspect(body, known))


def _signature_hex(data: bytes) -> tuple[int, int]:
    """Where the portal signature's hexadecimal ``/Contents`` is (between ``<`` and ``>``)."""
    start = data.index(b"/Contents <") + len(b"/Contents <")
    return start, data.index(b">", start)


def test_white_space_in_the_signatures_hexadecimal_text_is_a_change(genuine, inspected):
    """A PDF reader skips white space in a hexadecimal string: a zero of the signature's padding
    turned into a tab reads as the same signature, but the file is not the one signed."""
    _, data = genuine
    start, end = _signature_hex(data)
    at = end - 10  # in the zero padding after the signature's DER
    assert data[at : at + 1] == b"0"
    for blank in (b"\t", b" ", b"\n"):
        assert inspected(data[:at] + blank + data[at + 1 :]).result == "modified", blank


def test_a_letters_case_changed_in_the_signatures_hexadecimal_text_is_a_change(genuine, inspected):
    _, data = genuine
    start, end = _signature_hex(data)
    at = next(i for i in range(start, end) if data[i : i + 1].isalpha())
    changed = data[:at] + data[at : at + 1].swapcase() + data[at + 1 :]
    assert inspected(changed).result == "modified"


def test_a_signature_written_all_in_lowercase_hexadecimal_is_still_valid(genuine, inspected):
    """Another writer's case (a whole string in one case) is not a change of the signature."""
    _, data = genuine
    start, end = _signature_hex(data)
    assert inspected(data[:start] + data[start:end].lower() + data[end:]).result == "valid"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_no_changed_byte_anywhere_leaves_the_file_valid(genuine, inspected, where, flip):
    _, data = genuine
    at = int(where * len(data))
    changed = data[:at] + bytes([data[at] ^ flip]) + data[at + 1 :]
    try:
        found = inspected(changed)
    except Exception:  # unreadable: in the sandbox, an "unreadable" answer
        return
    assert found.result != "valid", (at, flip)


def test_sandbox_slots_are_shared_by_every_process_on_the_machine(tmp_path):
    """A slot is an exclusive lock on a file: taken in one place, it is taken for every worker."""
    import subprocess
    import sys

    from portal.pdf import upload

    first, second = upload.take_slot(tmp_path, 2), upload.take_slot(tmp_path, 2)
    assert first is not None and second is not None and upload.take_slot(tmp_path, 2) is None
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from portal.pdf import upload; print(upload.take_slot(__import__('pathlib').Path({str(tmp_path)!r}), 2))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other_process.stdout.strip() == "None", other_process.stderr
    upload.release_slot(first)
    again = upload.take_slot(tmp_path, 2)
    assert again is not None
    for handle in (second, again):
        upload.release_slot(handle)
