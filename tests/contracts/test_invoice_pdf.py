"""Invoice PDFs: the amounts are exact and written out in capital numerals, user text is drawn
literally, the status and payments are shown, and Chinese really renders (checked with poppler)."""

import io
import os
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from portal.buyers import services as buyers
from portal.contracts import invoices, pdf, services
from portal.core.i18n import absolute_url, date_text
from portal.extensions import db
from portal.pdf import fonts
from tests import factories
from tests.contracts.helpers import TODAY, day

PDFTOPPM = shutil.which("pdftoppm")
#: Set to a directory to keep the rendered pages as PNG files, to look at them.
KEEP_PNG = os.environ.get("PORTAL_TEST_INVOICE_PNG")
HOSTILE_NAME = "测试<b>&钢铁有限公司 </font><br/>"


# --- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, words",
    [
        ("0.05", "伍分"),
        ("0.50", "伍角整"),
        ("0.00", "零元整"),
        ("1.00", "壹元整"),
        ("10.00", "壹拾元整"),
        ("15.00", "壹拾伍元整"),
        ("110.00", "壹佰壹拾元整"),
        ("1004.00", "壹仟零肆元整"),
        ("1040.00", "壹仟零肆拾元整"),
        ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
        ("12345.00", "壹万贰仟叁佰肆拾伍元整"),
        ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
        ("100001.10", "壹拾万零壹元壹角整"),
        ("101000.00", "壹拾万壹仟元整"),
        ("1000000.00", "壹佰万元整"),
        ("1010000.00", "壹佰零壹万元整"),
        ("100000000.00", "壹亿元整"),
        ("100010000.00", "壹亿零壹万元整"),
        ("100001000.00", "壹亿零壹仟元整"),
        ("1000000005.00", "壹拾亿零伍元整"),
        ("999999999999.99", "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
        (Decimal("4200"), "肆仟贰佰元整"),
        (7, "柒元整"),
    ],
)
def test_amounts_in_capital_numerals(amount, words):
    assert pdf.amount_in_words(amount) == words


@pytest.mark.parametrize("amount", ["0.001", "-1.00", "NaN", "1e20"])
def test_what_is_not_an_amount_in_fen_has_no_capital_form(amount):
    with pytest.raises(ValueError):
        pdf.amount_in_words(amount)


def test_a_float_is_never_money():
    with pytest.raises(TypeError):
        pdf.amount_in_words(0.1)


@pytest.mark.parametrize(
    "amount, text",
    [("12345", "¥12,345.00"), ("0.05", "¥0.05"), ("1000000.1", "¥1,000,000.10"), ("-3.50", "-¥3.50")],
)
def test_yuan_are_exact_with_two_decimals_and_thousands(amount, text):
    assert pdf.yuan(amount) == text


# --- the document ----------------------------------------------------------------------------------


@pytest.fixture
def market(app):
    if fonts.font_path() is None:
        pytest.skip("no CJK font: install fonts-wqy-microhei or set PORTAL_PDF_FONT")
    steel = buyers.create_organisation(
        name_zh=HOSTILE_NAME,
        name_en="Test <Steel> & Co.",
        uscc=factories.STEEL_USCC,
        sector="steel",
        approve=True,
    )
    sales = factories.user("sales@portal.cn", role="sales")
    factories.batch(quantity=60, code="CCER-AH-FOR-01-2021", vintage=2021)
    factories.batch(quantity=200, code="CCER-AH-FOR-01-2022", vintage=2022)
    return steel, sales


def _contract(market, **change):
    steel, sales = market
    data = {
        "title": "钢铁 <offtake> & 2026–2028 — 年度碳汇采购",
        "start": day(-10),
        "end": day(800),
        "price_per_t": "123.45",
        "payment_days": 30,
        "tranches": [{"due": day(5), "quantity": 100}, {"due": day(400), "quantity": 80}],
        "delivery": "holding",
    }
    data.update(change)
    contract, created = services.create_draft(steel, data, owner=sales, actor="sales@portal.cn")
    assert created
    services.sign(contract, actor="sales@portal.cn")
    db.session.flush()
    return contract


def _text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _keep(data: bytes, name: str) -> None:
    """With PORTAL_TEST_INVOICE_PNG set, write the PDF and its pages as PNG there."""
    if not KEEP_PNG or not PDFTOPPM:
        return
    os.makedirs(KEEP_PNG, exist_ok=True)
    path = os.path.join(KEEP_PNG, f"{name}.pdf")
    with open(path, "wb") as out:
        out.write(data)
    subprocess.run([PDFTOPPM, "-png", "-r", "80", path, path[:-4]], check=True, timeout=60)


def test_an_open_invoice_shows_its_number_amounts_buyer_and_how_to_pay(market):
    contract = _contract(market)
    delivery, _ = services.deliver(contract, 1, 100, actor="sales@portal.cn")
    invoice = delivery.invoice
    assert invoice.amount == Decimal("12345.00")

    data = pdf.render_invoice(invoice)
    _keep(data, "open")

    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.1)  # A4
    text = _text(data)
    flat = _squeezed(text)
    assert invoice.number in text and contract.number in text
    assert "发票" in text and "INVOICE" in text
    assert "¥12,345.00" in text and "¥123.45" in text
    assert "壹万贰仟叁佰肆拾伍元整" in flat
    # Per batch, oldest vintage first: 60 t of 2021 and 40 t of 2022, at the same unit price.
    assert "CCER-AH-FOR-01-2021" in flat and "CCER-AH-FOR-01-2022" in flat
    assert "¥7,407.00" in text and "¥4,938.00" in text
    # What people typed is drawn literally, not taken as markup.
    assert _squeezed(HOSTILE_NAME) in flat
    assert "Test <Steel> & Co." in text
    assert _squeezed("钢铁 <offtake> & 2026–2028") in flat
    assert factories.STEEL_USCC in text
    assert "赤峰市农投集团" in text and "Chifeng Agricultural Investment Group" in text
    for when in (invoice.issued_on, invoice.due_on):
        assert date_text(when, "zh") in text and date_text(when, "en") in text
    assert invoice.issued_on.isoformat() not in text  # one way to show a date
    assert "待付款" in text and "Open" in text
    assert "¥0.00" in text
    assert _squeezed(absolute_url("contracts.buyer_invoice", number=invoice.number)) in flat
    assert "转入买方持有账户" in text
    assert _squeezed("不是增值税发票") in flat and "Not a VAT invoice" in text


def test_payments_partly_then_fully_paid(market):
    contract = _contract(market, tranches=[{"due": day(5), "quantity": 10}])
    delivery, _ = services.deliver(contract, 1, 10, actor="sales@portal.cn")
    invoice = delivery.invoice  # 10 × 123.45 = 1,234.50
    services.record_payment(invoice, "1000.00", day(0), "ICBC-20260301-0001", actor="sales@portal.cn")
    db.session.commit()  # as a request would; the invoice is read again with its payments

    partly = _text(pdf.render_invoice(invoice))
    assert "部分付款" in partly and "¥1,000.00" in partly and "¥234.50" in partly
    assert "ICBC-20260301-0001" in partly and "Bank transfer" in partly
    assert "壹仟贰佰叁拾肆元伍角整" in _squeezed(partly)

    services.record_payment(invoice, "234.50", day(0), "ICBC-20260302-0002", actor="sales@portal.cn")
    db.session.commit()
    data = pdf.render_invoice(invoice)
    _keep(data, "paid")
    paid = _text(data)
    assert "已付清" in paid and "Paid in full" in paid
    assert "ICBC-20260302-0002" in paid and "¥1,234.50" in paid
    assert "How to pay" not in paid


def test_an_overdue_invoice_says_so(market):
    contract = _contract(market, tranches=[{"due": day(5), "quantity": 10}], payment_days=0)
    delivery, _ = services.deliver(contract, 1, 10, actor="sales@portal.cn")
    assert "已逾期" in _text(pdf.render_invoice(delivery.invoice, today=TODAY + timedelta(days=1)))
    assert "已逾期" not in _text(pdf.render_invoice(delivery.invoice, today=TODAY))


def test_a_retiring_delivery_names_its_certificate(market):
    contract = _contract(market, delivery="retire", beneficiary="2026 赤峰马拉松")
    delivery, _ = services.deliver(contract, 1, 100, actor="sales@portal.cn")
    data = pdf.render_invoice(delivery.invoice)
    _keep(data, "retired")
    text = _text(data)
    assert "代为注销" in text and delivery.certificate.number in text


def test_the_same_invoice_gives_the_same_bytes(market):
    contract = _contract(market, tranches=[{"due": day(5), "quantity": 10}])
    delivery, _ = services.deliver(contract, 1, 10, actor="sales@portal.cn")
    assert pdf.render_invoice(delivery.invoice) == pdf.render_invoice(delivery.invoice)


@pytest.mark.skipif(PDFTOPPM is None, reason="poppler-utils (pdftoppm) is not installed")
def test_poppler_draws_the_chinese_title(market, tmp_path):
    contract = _contract(market, tranches=[{"due": day(5), "quantity": 10}])
    delivery, _ = services.deliver(contract, 1, 10, actor="sales@portal.cn")
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf.render_invoice(delivery.invoice))
    subprocess.run(
        [PDFTOPPM, "-r", "60", "-gray", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    (image,) = tmp_path.glob("page-*.pgm")
    magic, size, _maxval, pixels = image.read_bytes().split(b"\n", 3)
    assert magic == b"P5"
    width, height = map(int, size.split())
    # The band of the big 发票 title: a font that does not render leaves it blank.
    title = pixels[int(height * 0.075) * width : int(height * 0.11) * width]
    assert sum(1 for value in title if value < 128) > 150


def test_long_text_and_many_batches_continue_on_another_page(app):
    if fonts.font_path() is None:
        pytest.skip("no CJK font: install fonts-wqy-microhei or set PORTAL_PDF_FONT")
    name = "内蒙古" + "很长的名字" * 38 + "<&>有限公司"
    org = buyers.create_organisation(
        name_zh=name[:200], uscc=factories.CEMENT_USCC, sector="building_materials", approve=True
    )
    sales = factories.user("sales@portal.cn", role="sales")
    for n in range(40):
        factories.batch(quantity=10, code=f"VCS-HQ-GRS-{n:02d}-LONGER-CODE-2023-{n}", vintage=2021 + n % 3)
    title = ("大宗碳汇采购合同 Bulk offtake " * 10)[:199] + "&"
    contract, _ = services.create_draft(
        org,
        {
            "title": title,
            "start": day(-10),
            "end": day(800),
            "price_per_t": "99999.99",
            "tranches": [{"due": day(5), "quantity": 400}],
        },
        owner=sales,
        actor="sales@portal.cn",
    )
    services.sign(contract, actor="sales@portal.cn")
    delivery, _ = services.deliver(contract, 1, 400, actor="sales@portal.cn")
    invoice = delivery.invoice
    invoices._pay(invoice, Decimal("1000000.01"), TODAY, "pi_3PaymentIntent0001", "stripe", actor="stripe")
    db.session.commit()

    data = pdf.render_invoice(invoice)
    _keep(data, "long")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) > 1
    text = _text(data)
    flat = _squeezed(text)
    assert "¥39,999,996.00" in text and "¥38,999,995.99" in text
    assert "叁仟玖佰玖拾玖万玖仟玖佰玖拾陆元整" in flat
    assert "续页" in reader.pages[1].extract_text()
    assert "在线支付" in text and "pi_3PaymentIntent0001" in text
    assert _squeezed(name[:20]) in flat
    assert len(delivery.lines) == 40


def test_invoice_and_contract_pdfs_are_signed_over_the_whole_file(market):
    """Every portal PDF carries the portal's whole-file signature; brought to /verify, a genuine
    invoice or contract is the portal's, but not a certificate."""
    from portal.certificates import verification
    from portal.pdf import authority, sealing, upload

    contract = _contract(market, tranches=[{"due": day(5), "quantity": 10}])
    delivery, _ = services.deliver(contract, 1, 10, actor="sales@portal.cn")
    known = authority.known_certificates()
    for data in (pdf.render_invoice(delivery.invoice), pdf.render_contract(contract)):
        seal = sealing.inspect_seal(data, known)
        assert seal.signed and seal.intact and seal.whole_file and seal.trusted and seal.ours
        found = verification.judge(upload.inspect(data, known))
        assert (found.result, found.reason) == ("not_a_certificate", "portal_document")
        seal = sealing.inspect_seal(data + b"\n", known)
        assert seal.intact and not seal.whole_file
