"""Contract PDFs: a signed contract's parties, terms, price rules, tranches, deliveries and
versions in both languages; the contract data signed and embedded as certificates carry theirs;
long contracts continue cleanly over pages; only the buyer's users and staff get one."""

import io
import json
import os
import shutil
import subprocess
from datetime import UTC, timedelta

import pytest
from pypdf import PdfReader

from portal.buyers import services as buyers
from portal.certificates import pdf as certificate_pdf
from portal.certificates import signing
from portal.contracts import pdf, services
from portal.core.i18n import date_text
from portal.extensions import db
from portal.pdf import fonts
from tests import factories
from tests.contracts.helpers import TODAY, day
from tests.contracts.test_contract_views import EMAILS, sign_in

PDFTOPPM = shutil.which("pdftoppm")
#: Set to a directory to keep the PDFs and their pages as PNG files, to look at them.
KEEP_PNG = os.environ.get("PORTAL_TEST_CONTRACT_PNG")
SALES = "sales@portal.cn"


@pytest.fixture
def market(app):
    if fonts.font_path() is None:
        pytest.skip("no CJK font: install fonts-wqy-microhei or set PORTAL_PDF_FONT")
    steel = buyers.create_organisation(
        name_zh="内蒙古<某>钢铁有限公司",
        name_en="Inner Mongolia <Steel> & Co.",
        uscc=factories.STEEL_USCC,
        sector="steel",
        approve=True,
    )
    sales = factories.user(SALES, role="sales")
    aohan = factories.region("aohan")
    forest = factories.project(region_=aohan)
    factories.batch(quantity=5000, code="CCER-AH-FOR-01-2022", vintage=2022, project_=forest)
    return steel, sales, aohan


def _contract(market, **change):
    steel, sales, aohan = market
    data = {
        "title": "钢铁 <offtake> & 2026–2028 碳汇承购",
        "start": day(-10),
        "end": day(800),
        "price_per_t": "70.00",
        "escalation_pct_per_year": "2.5",
        "year_prices": {str(TODAY.year + 2): "88.00"},
        "standard": "CCER",
        "project_types": ["forestry"],
        "counties": [aohan.code],
        "vintage_from": 2021,
        "vintage_to": 2025,
        "payment_days": 45,
        "tranches": [
            {"due": day(5), "quantity": 100},
            {"due": day(400), "quantity": 80},
            {"due": day(760), "quantity": 60},
        ],
        "delivery": "holding",
    }
    data.update(change)
    contract, created = services.create_draft(steel, data, owner=sales, actor=SALES)
    assert created
    services.sign(contract, actor=SALES)
    db.session.flush()
    return contract


def _amend(contract, reason, **change):
    data = services.terms_of(contract).as_json()
    del data["total_quantity"]  # a cross-check the forms ask for, not a term
    data.update(change)
    services.amend(contract, data, reason, actor=SALES)
    db.session.commit()


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _flat(text: str) -> str:
    return "".join(text.split())


def _keep(data: bytes, name: str) -> None:
    """With PORTAL_TEST_CONTRACT_PNG set, write the PDF and its pages as PNG there."""
    if not KEEP_PNG or not PDFTOPPM:
        return
    os.makedirs(KEEP_PNG, exist_ok=True)
    path = os.path.join(KEEP_PNG, f"{name}.pdf")
    with open(path, "wb") as out:
        out.write(data)
    subprocess.run([PDFTOPPM, "-png", "-r", "60", path, path[:-4]], check=True, timeout=120)


def test_terms_tranches_deliveries_and_versions_in_both_languages(market):
    contract = _contract(market)
    delivery, _ = services.deliver(contract, 1, 40, actor=SALES)
    db.session.commit()
    _amend(
        contract,
        "买方扩产 Buyer expands",
        tranches=[
            {"due": day(5), "quantity": 100},
            {"due": day(400), "quantity": 120},
            {"due": day(760), "quantity": 60},
        ],
    )
    _amend(contract, "价格调整 <re-priced> & agreed", price_per_t="72.50")

    data = pdf.render_contract(contract)
    _keep(data, "contract")
    assert data.startswith(b"%PDF-")
    text = _text(data)
    flat = _flat(text)
    # The document and its parties.
    assert "碳汇承购合同" in flat and "CARBONCREDITOFFTAKECONTRACT" in flat
    assert contract.number in text and _flat("钢铁 <offtake> & 2026–2028 碳汇承购") in flat
    assert "赤峰市农投集团" in text and "Chifeng Agricultural Investment Group" in text
    assert _flat("内蒙古<某>钢铁有限公司") in flat and "Inner Mongolia <Steel> & Co." in text
    assert factories.STEEL_USCC in text
    assert "执行中" in text and "Active" in text
    # The terms and the price rules, in both languages.
    for words in ("合同条款", "Terms", "交付标的", "Credits", "付款条件", "45 天", "45 days"):
        assert _flat(words) in flat, words
    assert "林业（造林）" in text and "Forestry (afforestation)" in text and "CCER" in text
    assert "测试旗" in text and "2021–2025" in text
    for words in ("价格规则", "Price rules", "¥72.50", "2.5 %", "复利", "compounding", "¥88.00"):
        assert _flat(words) in flat, words
    assert _flat("rounded half to even to the fen") in flat and _flat("四舍六入五成双") in flat
    # The schedule: each tranche's due date, quantity, what was delivered and its price.
    assert "交付计划" in text and "Delivery schedule" in text
    for tranche in contract.tranches:
        assert date_text(tranche.due, "zh") in text and date_text(tranche.due, "en") in text
        assert f"¥{services.price_for(contract, tranche.due):,.2f}" in text
    assert "已交付" in text and "Delivered (t)" in flat or "Delivered(t)" in flat
    assert "280" in text and "240" in text  # contracted after the amendment; still to deliver
    # The delivery, with its invoice.
    assert "交付记录" in text and "Deliveries" in text and delivery.invoice.number in text
    assert "转入买方持有账户" in text and "Moved to the buyer's holding" in text
    # Every version: signed, then two amendments with their dates, reasons and changes.
    assert "合同版本" in text and "Versions" in text
    for n in (1, 2, 3):
        assert f"第 {n} 版" in text and f"v{n}" in text
    assert "签署" in text and "Signed" in text and "修订" in text and "Amendment" in text
    assert _flat("买方扩产 Buyer expands") in flat
    assert _flat("价格调整 <re-priced> & agreed") in flat  # typed text is drawn literally
    assert _flat("3 → 3 批") in flat and _flat(f"{day(400)} 80 → 120 吨") in flat
    assert _flat("¥70.00 → ¥72.50") in flat
    for version in services.versions(contract):
        assert _beijing(version.created_at) in text
    # How to check it.
    assert "Verification" in text and _flat(pdf.contract_url(contract)) in flat
    assert "Ed25519" in text


def _beijing(moment) -> str:
    """The day a moment is in Beijing, as the PDF prints it."""
    return date_text(moment, "zh")


def test_the_contract_data_is_signed_and_embedded_like_a_certificate(market):
    contract = _contract(market)
    data = pdf.render_contract(contract)
    embedded = certificate_pdf.extract(data, name=pdf.CONTRACT_ATTACHMENT)
    assert embedded.alg == "Ed25519"
    assert signing.signature_valid(embedded.payload, embedded.signature, embedded.key_id)
    assert embedded.key_id in {key.key_id for key in signing.published_keys()}
    document = json.loads(embedded.payload)
    assert embedded.payload == signing.canonical(document)
    assert document["number"] == contract.number and document["status"] == "active"
    assert [t["quantity"] for t in document["tranches"]] == [100, 80, 60]
    assert [v["version"] for v in document["versions"]] == [1]
    assert document["terms"]["price_per_t"] == "70.00"
    assert document["url"] == pdf.contract_url(contract)
    # The signature covers the content: a changed figure no longer checks.
    forged = embedded.payload.replace('"quantity":100', '"quantity":10')
    assert forged != embedded.payload
    assert not signing.signature_valid(forged, embedded.signature, embedded.key_id)
    # It is not mistaken for a certificate.
    with pytest.raises(certificate_pdf.PdfError, match="no_certificate"):
        certificate_pdf.extract(data)


def test_the_same_contract_gives_the_same_bytes_until_something_happens(market):
    contract = _contract(market)
    first = pdf.render_contract(contract)
    assert pdf.render_contract(contract) == first
    services.deliver(contract, 1, 10, actor=SALES)
    db.session.commit()
    after = pdf.render_contract(contract)
    assert after != first
    document = json.loads(certificate_pdf.extract(after, name=pdf.CONTRACT_ATTACHMENT).payload)
    assert document["tranches"][0]["delivered"] == 10 and len(document["deliveries"]) == 1


def test_a_terminated_contract_says_so_and_why(market):
    contract = _contract(market)
    services.terminate(contract, "买方停产 <plant closed>", actor=SALES)
    db.session.commit()
    data = pdf.render_contract(contract)
    _keep(data, "terminated")
    flat = _flat(_text(data))
    assert "已终止" in flat and "TERMINATED" in flat
    assert _flat("买方停产 <plant closed>") in flat


def test_a_retiring_contract_names_its_beneficiary(market):
    contract = _contract(market, delivery="retire", beneficiary="2026 赤峰马拉松 <Marathon>")
    delivery, _ = services.deliver(contract, 1, 20, actor=SALES)
    db.session.commit()
    flat = _flat(_text(pdf.render_contract(contract)))
    assert _flat("2026 赤峰马拉松 <Marathon>") in flat and "代为注销" in flat
    assert delivery.certificate.number in flat


def test_a_draft_has_no_document(market):
    steel, sales, _ = market
    draft, _ = services.create_draft(
        steel,
        {
            "title": "草稿",
            "start": day(0),
            "end": day(100),
            "price_per_t": "70",
            "tranches": [{"due": day(50), "quantity": 10}],
        },
        owner=sales,
        actor=SALES,
    )
    with pytest.raises(ValueError):
        pdf.render_contract(draft)


def test_a_long_contract_continues_cleanly_over_pages(market):
    steel, sales, aohan = market
    tranches = [
        {"due": (TODAY + timedelta(days=2 + n if n < 3 else 30 * n)).isoformat(), "quantity": 10 + n}
        for n in range(120)
    ]
    contract = _contract(
        market,
        title="大宗碳汇承购合同 Bulk offtake " * 6,
        end=(TODAY + timedelta(days=3700)).isoformat(),
        year_prices={str(TODAY.year + n): f"{70 + n}.00" for n in range(2, 9)},
        tranches=tranches,
    )
    for seq in range(1, 4):
        for _part in range(3):
            services.deliver(contract, seq, 3, actor=SALES)
    db.session.commit()
    for n in range(5):
        changed = [dict(t) for t in tranches[: 3 + n]] + [
            {**t, "quantity": t["quantity"] + n + 1} for t in tranches[3 + n :]
        ]
        _amend(contract, f"第 {n + 1} 次修订：{'数量调整 quantities adjusted ' * 12}", tranches=changed)

    data = pdf.render_contract(contract)
    _keep(data, "long")
    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 4
    for n, page in enumerate(pages, 1):
        assert f"Page {n} of {len(pages)}" in page  # every page numbered
        if n > 1:
            assert "续页" in page and contract.number in page  # and says what it continues
    flat = _flat("\n".join(pages))
    for tranche in contract.tranches:  # every tranche is there
        assert _flat(date_text(tranche.due, "zh")) in flat
    for n in range(1, 7):
        assert f"第{n}版" in flat
    assert "另" in flat and "more" in flat  # a long list of changes is cut short, and says so
    assert "Verification" in pages[-1]


# --- who gets one -----------------------------------------------------------------------------------


@pytest.fixture
def desk(app):
    if fonts.font_path() is None:
        pytest.skip("no CJK font: install fonts-wqy-microhei or set PORTAL_PDF_FONT")
    from tests.contracts.test_contract_views import Desk

    return Desk()


@pytest.mark.parametrize("role", ["buyer", "sales", "operator", "auditor"])
def test_the_buyer_and_staff_download_it_from_the_contract_page(desk, client, role):
    sign_in(client, role)
    page = "/account/contracts/" if role == "buyer" else "/staff/contracts/"
    html = client.get(f"{page}{desk.active.number}?lang=en").get_data(as_text=True)
    link = f"/contracts/{desk.active.number}.pdf"
    assert f'href="{link}"' in html and "Download the contract (PDF)" in html
    response = client.get(link)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert desk.active.number in _text(response.data)
    # The address printed on it leads to the page this user may see.
    response = client.get(f"/contracts/{desk.active.number}")
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"{page}{desk.active.number}"
    )


def test_another_organisation_gets_nothing(desk, client):
    sign_in(client, "other_buyer")
    for path in (f"/contracts/{desk.active.number}.pdf", f"/contracts/{desk.active.number}"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/contracts/{desk.theirs.number}.pdf").status_code == 200  # its own


def test_no_one_gets_a_draft_or_an_unknown_contract(desk, client):
    sign_in(client, "buyer")
    assert client.get(f"/contracts/{desk.draft.number}.pdf").status_code == 404
    client.post("/logout")
    sign_in(client, "sales")
    html = client.get(f"/staff/contracts/{desk.draft.number}?lang=en").get_data(as_text=True)
    assert f"/contracts/{desk.draft.number}.pdf" not in html and "A draft has no PDF" in html
    for path in (f"/contracts/{desk.draft.number}.pdf", "/contracts/OC-1999-0001.pdf", "/contracts/x.pdf"):
        assert client.get(path).status_code == 404, path


def test_signing_in_comes_first(desk, client):
    response = client.get(f"/contracts/{desk.active.number}.pdf")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert EMAILS["buyer"]  # the desk's buyer, who may see it once signed in


def test_a_date_in_a_table_is_never_broken_in_two(app):
    """Dates in the documents' narrow columns (due, delivered, version, received) are one line in
    Chinese and one in English, for every day of a year; the widest (``2026年10月10日``) fits the
    columns at full size and a narrower column draws it smaller rather than wrapping it."""
    from datetime import date, datetime

    from reportlab.lib.units import mm

    from portal.contracts.letterhead import Letterhead

    font, glyphs = fonts.load()
    letterhead = Letterhead(font=font, glyphs=glyphs)
    first = date(2026, 1, 1)
    for width in (27 * mm, 18 * mm):
        for offset in range(365):
            cell = letterhead.day(first + timedelta(days=offset), width)
            cell.wrap(width - 8, 1000)  # the cells' padding
            assert len(cell.blPara.lines) == 2, (width, first + timedelta(days=offset))
    widest = letterhead.day(date(2026, 10, 10), 27 * mm)
    assert "font size=8.50" in widest.text and "2026年10月10日" in widest.text
    assert "font size=8.50" not in letterhead.day(date(2026, 10, 10), 18 * mm).text
    instant = letterhead.day(datetime(2026, 12, 31, 17, 0, tzinfo=UTC).isoformat(), 27 * mm)
    assert "2027年1月1日" in instant.text  # an instant is shown as its day in Beijing
    assert letterhead.day(None, 27 * mm).text == "—"
