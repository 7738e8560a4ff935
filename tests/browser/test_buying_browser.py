"""Buying from the catalog in Chromium: two batches of two projects in one order and one
certificate; a declined card, then the same order paid on a second try; the test wallet standing
in for Alipay and WeChat Pay. In both languages, at 1280 and 390 px wide."""

import re

import pytest

from tests.browser.conftest import screenshot

BUYER = ("buyer@demo.local", "demo-password-2026")


def _sign_in(page):
    page.fill("input[name=email]", BUYER[0])
    page.fill("input[name=password]", BUYER[1])
    page.click("main button[type=submit]")


def _fits(page):
    width = page.evaluate("() => window.innerWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def _rows_of_two_projects(page) -> tuple[int, int]:
    """Indexes of two catalog rows with stock, of different projects."""
    rows = page.locator("table.catalog tbody tr")
    first, first_project = None, None
    for i in range(rows.count()):
        row = rows.nth(i)
        if row.locator("form.buy").count() == 0:
            continue
        project = row.locator("a.project-link").inner_text()
        if first is None:
            first, first_project = i, project
        elif project != first_project:
            return first, i
    pytest.fail("the catalog's first page has no two projects with stock")


def _pay_and_wait_for_certificate(page, button="button[value=visa]"):
    page.click(button)
    page.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_two_batches_of_two_projects_in_one_order_and_one_certificate(chromium, live_server, viewport):
    lang, name = ("en", "desktop") if viewport["width"] > 400 else ("zh", "phone")
    context = chromium.new_context(base_url=live_server, viewport=viewport, is_mobile=viewport["width"] < 400)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/?lang={lang}&min_available=10")
        first, second = _rows_of_two_projects(page)
        rows = page.locator("table.catalog tbody tr")
        first_batch = rows.nth(first).locator("input[name=add]").get_attribute("value")
        second_batch = rows.nth(second).locator("input[name=add]").get_attribute("value")
        rows.nth(first).locator("input[name=quantity]").fill("4")
        # The live total: price × tonnes, before anything else happens.
        assert re.search(r"¥\s?[\d,]+\.\d\d", rows.nth(first).locator("output").inner_text())
        _fits(page)
        screenshot(page, f"buy-1-catalog-{lang}-{name}")
        rows.nth(first).locator("form.buy button").click()

        # A visitor is offered sign-in or guest checkout, signs in and comes back to the line.
        page.wait_for_url(re.compile(r"/guest/checkout\?add="))
        page.click("a[data-sign-in]")
        page.wait_for_url(re.compile(r"/login"))
        _sign_in(page)
        page.wait_for_url(re.compile(r"/checkout\?add="))
        assert page.locator("tr[data-line]").count() == 1
        assert page.input_value("tr[data-line] input[name=quantity]") == "4"
        screenshot(page, f"buy-2-first-line-{lang}-{name}")
        page.click("button[value=save]")  # keep it, and go on choosing

        page.wait_for_url(re.compile(r"/(\?.*)?$"))
        page.goto(f"/?lang={lang}&min_available=10")
        row = page.locator("table.catalog tbody tr").nth(second)
        row.locator("input[name=quantity]").fill("3")
        row.locator("form.buy button").click()
        page.wait_for_url(re.compile(r"/checkout\?add="))
        lines = page.locator("tr[data-line]")
        assert lines.count() == 2
        assert {lines.nth(i).locator("input[name=batch]").get_attribute("value") for i in range(2)} == {
            first_batch,
            second_batch,
        }
        # Price and total shown before anything is held.
        assert re.search(r"[\d,]+\.\d\d", page.locator("[data-total]").inner_text())
        _fits(page)
        screenshot(page, f"buy-3-order-two-lines-{lang}-{name}")
        page.fill("input[name=beneficiary]", "Chifeng Grassland Forum" if lang == "en" else "赤峰草原论坛")
        page.click("button[value=hold]")

        page.wait_for_url(re.compile(r"/orders/ord_"))
        assert page.locator("table.order-lines tbody tr").count() == 2
        _fits(page)
        screenshot(page, f"buy-4-held-{lang}-{name}")
        _pay_and_wait_for_certificate(page)
        screenshot(page, f"buy-5-paid-{lang}-{name}")
        page.click("a.button[href*='/certificates/']")
        page.wait_for_url(re.compile(r"/certificates/CFC-"))
        content = page.content()
        assert first_batch in content and second_batch in content
        assert (
            ("7 tCO2e" in content)
            or ("7 吨" in content)
            or ("7" in page.locator("h1, .facts").first.inner_text())
        )
        _fits(page)
        screenshot(page, f"buy-6-certificate-{lang}-{name}")
    finally:
        context.close()
    assert errors == []


def _one_line_order(page, lang, quantity="2"):
    """From a project page: one batch's buy form → the order page → held."""
    page.goto(f"/?lang={lang}&min_available=10")
    page.locator("a.project-link").first.click()
    page.wait_for_url(re.compile(r"/projects/"))
    form = page.locator("table.history form.buy").first
    form.locator("input[name=quantity]").fill(quantity)
    form.locator("button").click()
    page.wait_for_url(re.compile(r"/checkout\?add="))
    page.click("button[value=hold]")
    page.wait_for_url(re.compile(r"/orders/ord_"))


def test_a_declined_card_keeps_the_hold_and_the_retry_pays(page):
    page.goto("/login?lang=zh")
    _sign_in(page)
    page.wait_for_url(re.compile(r"/account"))
    _one_line_order(page, "zh")
    screenshot(page, "retry-1-held-zh")
    page.click("button[value=declined]")
    page.wait_for_selector("text=上一次付款被拒绝", timeout=30_000)
    assert "重新付款" in page.content()  # the payment box is titled "try again"
    screenshot(page, "retry-2-declined-zh")
    _pay_and_wait_for_certificate(page)
    screenshot(page, "retry-3-paid-zh")


def test_the_declined_card_and_retry_on_a_phone_in_english(phone):
    phone.goto("/login?lang=en")
    _sign_in(phone)
    phone.wait_for_url(re.compile(r"/account"))
    _one_line_order(phone, "en", "1")
    phone.click("button[value=declined]")
    phone.wait_for_selector("text=The last payment attempt was declined", timeout=30_000)
    _fits(phone)
    screenshot(phone, "retry-declined-en-phone")
    _pay_and_wait_for_certificate(phone)


def test_the_test_wallet_pays_with_wechat_pay_and_alipay(page):
    page.goto("/login?lang=en")
    _sign_in(page)
    page.wait_for_url(re.compile(r"/account"))

    # WeChat Pay: the QR code; the test wallet page (what scanning leads to) approves; the QR
    # page, polling, moves on to the paid order by itself.
    _one_line_order(page, "en")
    page.click("button.wallet-wechat_pay")
    page.wait_for_url(re.compile(r"/scan/wechat_pay"))
    assert page.locator(".qr-code svg").count() == 1
    screenshot(page, "wallet-1-wechat-qr-en")
    wallet = page.context.new_page()
    wallet.goto(page.locator("a[data-test-wallet]").get_attribute("href"))
    assert "TEST WALLET" in wallet.content()
    screenshot(wallet, "wallet-2-test-wallet-en")
    wallet.click("button[value=approve]")
    wallet.wait_for_selector("text=Payment approved")
    wallet.close()
    page.wait_for_url(re.compile(r"/orders/ord_[0-9a-z]+$"), timeout=30_000)
    page.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)
    screenshot(page, "wallet-3-wechat-paid-en")

    # Alipay: the browser goes to the (test) wallet and comes back to the order, which waits for
    # the webhook.
    _one_line_order(page, "zh", "1")
    page.click("button.wallet-alipay")
    page.wait_for_url(re.compile(r"/payments/test-wallet/"))
    assert "测试钱包" in page.content()
    screenshot(page, "wallet-4-alipay-test-wallet-zh")
    page.click("button[value=approve]")
    page.wait_for_url(re.compile(r"/orders/ord_.*paid=1"))
    page.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)
    screenshot(page, "wallet-5-alipay-paid-zh")
