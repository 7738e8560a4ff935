"""A VAT fapiao in Chromium, in both languages, at 1280 and 390 px wide: the buyer pays an
order, asks for a fapiao on the order's page (the seller's name, USCC and account shown there),
the operator finds the request in the staff list, records the fapiao number and date and
attaches the e-fapiao PDF, and the buyer downloads exactly that file."""

import hashlib
import re

import pytest

from tests.browser.conftest import OPERATOR, screenshot

BUYER = ("buyer@demo.local", "demo-password-2026")
#: The e-fapiao as the tax authority's platform would give it (any PDF will do for the portal).
EFAPIAO = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _sign_in(page, who, lang):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/(account|staff)"))


def _fits(page):
    width = page.evaluate("() => window.innerWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def _paid_order(page, lang) -> str:
    """One tonne from the first project's first batch, paid with the test card: its id."""
    page.goto(f"/?lang={lang}&min_available=10")
    page.locator("a.project-link").first.click()
    page.wait_for_url(re.compile(r"/projects/"))
    form = page.locator("table.history form.buy").first
    form.locator("input[name=quantity]").fill("1")
    form.locator("button").click()
    page.wait_for_url(re.compile(r"/checkout\?add="))
    page.click("button[value=hold]")
    page.wait_for_url(re.compile(r"/orders/ord_"))
    public_id = page.url.split("/orders/")[1].split("?")[0]
    page.click("button[value=visa]")
    page.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)
    return public_id


@pytest.mark.parametrize(
    ("lang", "viewport"),
    [("zh", {"width": 1280, "height": 900}), ("en", {"width": 390, "height": 844})],
    ids=["zh-desktop", "en-phone"],
)
def test_a_fapiao_is_requested_recorded_by_staff_and_downloaded(chromium, live_server, lang, viewport):
    name = "desktop" if viewport["width"] > 400 else "phone"
    words = {
        "zh": {"request": "申请发票", "send": "提交申请", "issued": "已开具", "download": "下载发票（PDF）"},
        "en": {
            "request": "Request a fapiao",
            "send": "Send the request",
            "issued": "Issued",
            "download": "Download the fapiao (PDF)",
        },
    }[lang]
    mobile = viewport["width"] < 400
    buyer = chromium.new_context(
        base_url=live_server, viewport=viewport, is_mobile=mobile, accept_downloads=True
    )
    staff = chromium.new_context(base_url=live_server, viewport=viewport, is_mobile=mobile)
    page, desk = buyer.new_page(), staff.new_page()
    errors = []
    for p in (page, desk):
        p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # --- the buyer pays, and the order shows the seller
        _sign_in(page, BUYER, lang)
        order = _paid_order(page, lang)
        seller = page.locator("section.seller")
        assert re.search(r"\b[0-9A-Z]{18}\b", seller.inner_text())  # the seller's USCC
        assert seller.locator("code.account").inner_text().strip()
        _fits(page)
        screenshot(page, f"fapiao-1-order-paid-{lang}-{name}")

        # --- asks for a fapiao: a bad taxpayer id first (refused, nothing stored), then right
        page.click(f"section.fapiao-box a:has-text('{words['request']}')")
        page.wait_for_url(re.compile(r"/account/orders/ord_.+/fapiao"))
        uscc = page.input_value("input[name=taxpayer_id]")
        assert len(uscc) == 18
        page.fill("input[name=taxpayer_id]", uscc[:-1] + ("0" if uscc[-1] != "0" else "1"))
        page.click(f"button:has-text('{words['send']}')")
        assert page.locator("input[name=taxpayer_id][aria-invalid=true]").count() == 1
        assert page.locator(".flash-error").count() == 1
        screenshot(page, f"fapiao-2-request-refused-{lang}-{name}")
        page.fill("input[name=taxpayer_id]", uscc)
        if lang == "zh":  # a special fapiao: the bank details too
            page.check("input[name=kind][value=special]")
            page.fill("input[name=address]", "赤峰市红山区钢铁路1号")
            page.fill("input[name=phone]", "0476-1234567")
            page.fill("input[name=bank]", "中国工商银行赤峰分行")
            page.fill("input[name=bank_account]", "0604 0012 3456 7890")
        _fits(page)
        screenshot(page, f"fapiao-3-request-form-{lang}-{name}")
        page.click(f"button:has-text('{words['send']}')")
        page.wait_for_url(re.compile(r"/fapiao/fp_"))
        request_url = page.url.split("?")[0]
        public_id = request_url.rsplit("/", 1)[1]
        assert order in page.content()
        screenshot(page, f"fapiao-4-requested-{lang}-{name}")

        # --- the operator finds it among the waiting requests and records the fapiao
        _sign_in(desk, OPERATOR, lang)
        desk.goto(f"/staff/fapiao?lang={lang}")
        assert desk.locator(f"a:has-text('{public_id}')").count() == 1
        _fits(desk)
        screenshot(desk, f"fapiao-5-staff-list-{lang}-{name}")
        desk.click(f"a:has-text('{public_id}')")
        desk.wait_for_url(re.compile(r"/fapiao/fp_"))
        desk.fill("input[name=fapiao_number]", "25157000000012345678")
        desk.set_input_files(
            "input[name=pdf]",
            files=[{"name": "e-fapiao.pdf", "mimeType": "application/pdf", "buffer": EFAPIAO}],
        )
        _fits(desk)
        screenshot(desk, f"fapiao-6-staff-issue-{lang}-{name}")
        desk.click("form.fapiao-issue button[type=submit]")
        desk.wait_for_selector(f"p.verdict:has-text('{words['issued']}')")
        desk.goto(f"/staff/fapiao?lang={lang}&status=issued")
        assert desk.locator(f"a:has-text('{public_id}')").count() == 1

        # --- the buyer downloads exactly that file
        page.goto(f"{request_url}?lang={lang}")
        assert words["issued"] in page.locator("p.verdict").inner_text()
        assert hashlib.sha256(EFAPIAO).hexdigest() in page.content()
        _fits(page)
        screenshot(page, f"fapiao-7-issued-{lang}-{name}")
        with page.expect_download() as download:
            page.click(f"a.button:has-text('{words['download']}')")
        with open(download.value.path(), "rb") as f:
            assert f.read() == EFAPIAO
        page.goto(f"/orders/{order}?lang={lang}")
        assert page.locator(f"section.fapiao-box a[href='/fapiao/{public_id}/fapiao.pdf']").count() == 1
    finally:
        buyer.close()
        staff.close()
    assert errors == []
