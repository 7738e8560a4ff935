"""Certificate PDFs: the signed data survives the round trip byte for byte, hostile text is drawn
safely, Chinese really renders (checked with poppler), and reading refuses what is not ours."""

import base64
import io
import json
import random
import shutil
import subprocess
import zlib

import pytest
from pypdf import PdfReader, PdfWriter

from portal.certificates import pdf
from portal.pdf import fonts

PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")
NO_POPPLER = "poppler-utils (pdftoppm/pdftotext) is not installed: run scripts/ensure-chromium as root"

SIGNATURE = base64.b64encode(bytes(range(64))).decode()
VERIFY_URL = "http://127.0.0.1:8000/certificates/CFC-2026-7K3Q-9XHD"
HOSTILE = (
    "<script>alert('x')</script>&amp; <b>bold</b> \u202eevil\u202c \u2066iso\u2069 שלום عربي 😀🎉👨‍👩‍👧"
    "\x00\x07\x1b[31m\r\n\t\ufeff\u200b" + "W" * 300 + " 内蒙古某钢铁有限公司"
)


def make_payload(blocks=2, beneficiary="内蒙古某钢铁有限公司", detail="抵消2025年度运营碳排放", **extra):
    rows, serial = [], 1
    for i in range(blocks):
        quantity = 1000 if i == 0 else 200
        rows.append(
            {
                "batch_code": f"CCER-AH-FOR-01-{2019 + i % 3}",
                "project_code": "CCER-AH-FOR-01",
                "vintage_start": f"{2019 + i % 3}-01-01",
                "vintage_end": f"{2019 + i % 3}-12-31",
                "serial_start": serial,
                "serial_end": serial + quantity - 1,
                "quantity": quantity,
                "label": f"CFC-CCER-AH-FOR-01-{2019 + i % 3}-{serial}-{serial + quantity - 1}",
                "registry_serial_start": "" if i % 2 else f"CN-CCER-1401-{serial:09d}",
                "registry_serial_end": "" if i % 2 else f"CN-CCER-1401-{serial + quantity - 1:09d}",
            }
        )
        serial += quantity
    data = {
        "v": 1,
        "number": "CFC-2026-7K3Q-9XHD",
        "portal": "http://127.0.0.1:8000",
        "issuer": {"zh": "赤峰市碳汇交易平台", "en": "Chifeng Carbon Sink Marketplace"},
        "beneficiary": beneficiary,
        "purpose": "voluntary",
        "purpose_detail": detail,
        "quantity": sum(row["quantity"] for row in rows),
        "unit": "tCO2e",
        "retired_at": "2026-11-24T06:01:02Z",
        "retired_by": {"name": "内蒙古某钢铁有限公司", "uscc": "91150400MA0N123456"},
        "projects": [
            {
                "code": "CCER-AH-FOR-01",
                "name_zh": "敖汉旗造林碳汇项目",
                "name_en": "Aohan Banner Afforestation Carbon Sink Project",
                "type": "forestry",
                "standard": "CCER",
                "methodology": "CCER-14-001-V01",
                "county_zh": "敖汉旗",
                "county_en": "Aohan Banner",
                "registry_id": "CCER-1401-2021-0012",
            }
        ],
        "blocks": rows,
        **extra,
    }
    # Canonical, as signed: keys sorted, no insignificant white space, UTF-8.
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@pytest.fixture
def font(app):
    if pdf.font_path() is None:
        pytest.skip(
            "no CJK font: install fonts-wqy-microhei (scripts/ensure-chromium) or set PORTAL_PDF_FONT"
        )
    return pdf.font_path()


def render(payload=None, **kwargs):
    kwargs.setdefault("signature", SIGNATURE)
    kwargs.setdefault("key_id", "k-2026-01")
    kwargs.setdefault("verify_url", VERIFY_URL)
    return pdf.render(payload=payload or make_payload(), **kwargs)


def text_of(data: bytes, tmp_path) -> str:
    path = tmp_path / "c.pdf"
    path.write_bytes(data)
    return subprocess.run(
        [PDFTOTEXT, "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=60
    ).stdout.decode()


def page_image(data: bytes, tmp_path, name: str, page: int = 1) -> tuple[int, int, bytes]:
    """Page ``page`` as an 8-bit grey image: (width, height, pixels)."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    subprocess.run(
        [PDFTOPPM, "-r", "60", "-gray", "-f", str(page), "-l", str(page), str(path), str(tmp_path / name)],
        check=True,
        timeout=60,
    )
    (image,) = tmp_path.glob(f"{name}-*.pgm")
    raw = image.read_bytes()
    magic, size, maxval, pixels = raw.split(b"\n", 3)
    assert magic == b"P5" and maxval == b"255"
    width, height = map(int, size.split())
    return width, height, pixels[: width * height]


def dark_pixels(image, top: float, bottom: float) -> int:
    width, height, pixels = image
    region = pixels[int(height * top) * width : int(height * bottom) * width]
    return sum(1 for value in region if value < 128)


# --- the round trip ------------------------------------------------------------------------------


def test_the_signed_data_comes_back_byte_for_byte(font):
    payload = make_payload(beneficiary='内蒙古某钢铁有限公司 "Ltd" \\ 😀 \u202e', detail="抵消\n2025")
    data = render(payload)

    assert data.startswith(b"%PDF-")
    embedded = pdf.extract(data)
    assert embedded == pdf.Embedded(payload=payload, signature=SIGNATURE, key_id="k-2026-01", alg="Ed25519")
    assert embedded.payload.encode("utf-8") == payload.encode("utf-8")


def test_the_same_certificate_gives_the_same_bytes(font):
    assert render() == render()


def test_the_signed_data_survives_a_resave_by_pypdf(font):
    data = render()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    out = io.BytesIO()
    writer.write(out)

    assert out.getvalue() != data
    assert pdf.extract(out.getvalue()).payload == make_payload()


def test_the_data_is_a_visible_attachment_named_certificate_json(font):
    attachments = PdfReader(io.BytesIO(render())).attachments

    assert list(attachments) == ["certificate.json"]
    obj = json.loads(attachments["certificate.json"][0])
    assert obj == {"payload": make_payload(), "signature": SIGNATURE, "key_id": "k-2026-01", "alg": "Ed25519"}


# --- reading what is not ours --------------------------------------------------------------------


def _pdf_with_attachment(content: bytes, filter_name: str | None = "/FlateDecode") -> bytes:
    """A minimal PDF, written by hand, whose attachment certificate.json holds ``content``."""
    stream_dict = f"<< /Type /EmbeddedFile /Length {len(content)}"
    stream_dict += f" /Filter {filter_name} >>" if filter_name else " >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(certificate.json) 3 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        b"<< /Type /Filespec /F (certificate.json) /EF << /F 4 0 R >> >>",
        stream_dict.encode() + b"\nstream\n" + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_a_hand_made_pdf_with_our_attachment_is_read(app):
    content = json.dumps({"payload": "{}", "signature": "c2ln", "key_id": "k", "alg": "Ed25519"}).encode()

    assert pdf.extract(_pdf_with_attachment(zlib.compress(content))).payload == "{}"
    assert pdf.extract(_pdf_with_attachment(content, None)).key_id == "k"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        b"%PDF-1.7\n",
        b"%PDF-1.7\ngarbage garbage\n%%EOF",
        bytes(range(256)) * 40,
        b"<html><script>alert(1)</script></html>",
    ],
    ids=["empty", "text", "png", "header-only", "garbage", "binary", "html"],
)
def test_what_is_not_a_pdf_is_refused(app, data):
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(data)
    assert caught.value.code == "not_a_pdf"
    assert caught.value.message


def test_a_truncated_certificate_is_refused(font):
    data = render()
    # Cut inside the PDF as drawn (the whole-file signature is appended after it: a file cut
    # there still holds the drawn document, and only the signature check tells it was cut).
    drawn = data.index(b"%%EOF")
    for cut in (len(data) // 3, len(data) // 2, drawn - 100):
        with pytest.raises(pdf.PdfError) as caught:
            pdf.extract(data[:cut])
        assert caught.value.code in ("not_a_pdf", "no_certificate")


def test_a_pdf_without_our_data_is_refused(app):
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(out.getvalue())
    assert caught.value.code == "no_certificate"

    writer.add_attachment("other.json", b"{}")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(out.getvalue())
    assert caught.value.code == "no_certificate"


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe bad utf-8",
        b"[1, 2]",
        json.dumps({"payload": "{}", "signature": "c2ln", "key_id": "k"}).encode(),  # no alg
        json.dumps({"payload": 1, "signature": "c2ln", "key_id": "k", "alg": "Ed25519"}).encode(),
    ],
)
def test_an_attachment_of_the_wrong_shape_is_refused(app, content):
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(_pdf_with_attachment(zlib.compress(content)))
    assert caught.value.code == "no_certificate"


def test_a_decompression_bomb_is_refused_without_inflating_it(app):
    bomb = zlib.compress(b" " * (200 * 1024 * 1024), 9)  # 200 MB of spaces in about 200 kB
    assert len(bomb) < 1024 * 1024

    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(_pdf_with_attachment(bomb))
    assert caught.value.code == "no_certificate"


def test_an_unknown_filter_is_refused(app):
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(_pdf_with_attachment(b"abc", "/LZWDecode"))
    assert caught.value.code == "no_certificate"


def test_a_file_over_the_limit_is_refused_before_parsing(font):
    data = render()
    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(data, max_bytes=len(data) - 1)
    assert caught.value.code == "too_large"
    assert "KB" in caught.value.message

    with pytest.raises(pdf.PdfError) as caught:
        pdf.extract(b"%PDF-1.7\n" + bytes(6 * 1024 * 1024))
    assert caught.value.code == "too_large"
    assert "5 MB" in caught.value.message


def test_damaged_certificates_give_pdf_errors_and_nothing_else(font):
    data = render()
    rng = random.Random(20261124)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 40)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            embedded = pdf.extract(bytes(damaged))
        except pdf.PdfError as exc:
            assert exc.code in ("not_a_pdf", "no_certificate")
        else:
            assert isinstance(embedded, pdf.Embedded)


# --- drawing -------------------------------------------------------------------------------------


def test_hostile_text_is_drawn_safely(font, tmp_path):
    payload = make_payload(beneficiary=HOSTILE, detail=HOSTILE * 3)
    data = render(payload, key_id="\u202e<k>", revoked_reason=HOSTILE, status="revoked")

    assert pdf.extract(data).payload == payload  # what was signed is untouched
    if not PDFTOTEXT:
        pytest.skip(NO_POPPLER)
    text = text_of(data, tmp_path)
    assert "<script>alert('x')</script>" in text
    assert "&amp; <b>bold</b>" in text
    assert "WWWWWWWWWWWWWWWWWWWW" in text
    assert "evil" in text
    # pdftotext wraps right-to-left text it finds (the Hebrew and Arabic, now drawn in the
    # fallback font) in its own embedding marks, U+202B … U+202C: those are not in the PDF.
    assert text.count("\u202b") == text.count("\u202c") >= 1
    text = text.replace("\u202b", "").replace("\u202c", "")
    for char in "\u202e\u202c\u2066\u2069\x00\x07\x1b\ufeff":
        assert char not in text


def test_drawable_text_is_one_clean_line(font):
    _, glyphs = fonts.load()

    cleaned = fonts.drawable("a\u202eb\x00c\r\nd\u200be 😀😀 f" + "x" * 500, glyphs, 40)

    # Bidi controls and U+200B are dropped, controls become one space, the two emoji one U+FFFD.
    assert cleaned.startswith("ab c de \ufffd f")
    assert len(cleaned) == 40 and cleaned.endswith("…")
    assert fonts.drawable(None, glyphs) == ""


def test_payloads_of_odd_shapes_still_draw(font):
    odd = {
        "number": ["x"],
        "issuer": "not a dict",
        "quantity": {"a": 1},
        "purpose": ["voluntary"],
        "projects": 7,
        "blocks": [None, "x", {"quantity": True, "batch_code": "B" * 500}],
        "retired_at": "yesterday",
        "retired_by": None,
    }
    assert pdf.extract(render(json.dumps(odd))).payload == json.dumps(odd)
    assert pdf.extract(render("{}", verify_url="")).payload == "{}"


def test_chinese_really_renders(font, tmp_path):
    if not PDFTOPPM:
        pytest.skip(NO_POPPLER)
    first = render(make_payload(beneficiary="内蒙古某钢铁有限公司"))
    second = render(make_payload(beneficiary="赤峰市某某能源集团公"))  # as many characters
    assert b"/FontFile2" in first  # the TrueType font is embedded

    one, two = page_image(first, tmp_path, "one"), page_image(second, tmp_path, "two")

    # The title (碳汇注销证明) is ink, not empty space...
    assert dark_pixels(one, 0.08, 0.18) > 500
    # ...and two different Chinese names draw differently: missing glyphs would all be the same box.
    assert one[2] != two[2]


def test_a_revoked_certificate_says_so(font, tmp_path):
    data = render(
        status="revoked",
        revoked_reason="重复注销 Duplicate retirement",
        revoked_at="2026-11-25T03:04:05+00:00",
    )

    if not PDFTOTEXT:
        pytest.skip(NO_POPPLER)
    text = text_of(data, tmp_path)
    assert "已撤销" in text and "REVOKED" in text
    assert "重复注销 Duplicate retirement" in text
    assert "2026年11月25日 11:04（北京时间）" in text and "25 Nov 2026, 11:04 (Beijing time)" in text


def test_a_typical_certificate_is_one_page_with_everything_on_it(font, tmp_path):
    data = render()

    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    if not PDFTOTEXT:
        pytest.skip(NO_POPPLER)
    text = text_of(data, tmp_path)
    for expected in (
        "碳汇注销证明",
        "CARBON CREDIT RETIREMENT CERTIFICATE",
        "CFC-2026-7K3Q-9XHD",
        "内蒙古某钢铁有限公司",
        "1,200",
        "自愿抵销",
        "Voluntary offset",
        "抵消2025年度运营碳排放",
        "2026年11月24日 14:01（北京时间）",  # 06:01:02Z, in Beijing time
        "24 Nov 2026, 14:01 (Beijing time)",
        "91150400MA0N123456",
        "敖汉旗造林碳汇项目",
        "Aohan Banner Afforestation Carbon Sink Project",
        "CCER-14-001-V01",
        "CCER-1401-2021-0012",
        "CCER-AH-FOR-01-2019",
        "1 – 1,000",
        "CN-CCER-1401-000000001",
        VERIFY_URL,
        "k-2026-01",
        SIGNATURE,
        "the signed data is embedded in this PDF",
        "Page 1 of 1",
    ):
        assert expected in text, expected


def test_the_registry_serials_are_as_legible_as_the_portals(font):
    """An auditor matches the registry's serials in the registry: they are drawn in the table's
    size and ink, not in a smaller grey."""
    drawn = []

    def seen(text, _cm, _tm, _font, size):
        if text.strip():
            drawn.append((text.strip(), size))

    PdfReader(io.BytesIO(render())).pages[0].extract_text(visitor_text=seen)
    (portal,) = {size for text, size in drawn if text == "1 – 1,000"}
    registry = {size for text, size in drawn if "CN-CCER-1401-000000001" in text}
    assert registry == {portal}


def test_many_blocks_continue_on_numbered_pages(font, tmp_path):
    data = render(make_payload(blocks=40))

    pages = len(PdfReader(io.BytesIO(data)).pages)
    assert pages >= 2
    if not PDFTOTEXT:
        pytest.skip(NO_POPPLER)
    text = text_of(data, tmp_path)
    per_page = text.split("\f")
    for number in range(1, pages + 1):
        page = per_page[number - 1]
        assert f"Page {number} of {pages}" in page
        assert f"第{number}页/共{pages}页" in page.replace(" ", "")
        assert "CFC-2026-7K3Q-9XHD" in page
    assert text.count("CCER-AH-FOR-01-20") >= 40


def test_without_a_font_rendering_says_what_to_install(app, tmp_path):
    app.config["PDF_FONT"] = str(tmp_path / "missing.ttf")
    assert pdf.font_path() is None
    with pytest.raises(pdf.PdfError) as caught:
        render()
    assert caught.value.code == "no_font"
    assert "fonts-wqy-microhei" in caught.value.message and "PORTAL_PDF_FONT" in caught.value.message

    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font" * 100)
    app.config["PDF_FONT"] = str(junk)
    assert pdf.font_path() == junk
    with pytest.raises(pdf.PdfError) as caught:
        render()
    assert caught.value.code == "no_font"


def test_the_configured_font_wins(font, app):
    app.config["PDF_FONT"] = str(font)
    assert pdf.font_path() == font
    assert pdf.extract(render()).key_id == "k-2026-01"
