"""Guest checkout in Chromium: a visitor without an account neutralises an event from the
catalog, pays with the test wallet (WeChat Pay's QR code on a laptop in English, Alipay's
redirect on a phone in Chinese), and receives the order's link and then the certificate's by
e-mail (the demo outbox). The guest pages fit the screen and pass axe-core."""

import re
import sqlite3

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_every_page_browser import AXE, AXE_RUN


def _mails(database, to: str) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as db:
        return db.execute(
            'SELECT subject, body FROM outbox_messages WHERE "to" = ? ORDER BY id', (to,)
        ).fetchall()


def _path(body: str, prefix: str) -> str:
    return re.search(rf"https?://[^/\s]+({prefix}[^\s]+)", body).group(1)


def _fits_and_passes_axe(page):
    width = page.evaluate("() => window.innerWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    violations = page.evaluate(AXE_RUN)
    assert violations == [], violations


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}])
def test_a_guest_neutralises_an_event_with_the_test_wallet(chromium, live_server, live_database, viewport):
    phone = viewport["width"] < 400
    lang, name = ("zh", "phone") if phone else ("en", "desktop")
    email = f"guest-{name}@example.cn"
    context = chromium.new_context(
        base_url=live_server, viewport=viewport, is_mobile=phone, has_touch=phone, bypass_csp=True
    )
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"/?lang={lang}&min_available=10")
        row = page.locator("table.catalog tbody tr", has=page.locator("form.buy")).first
        batch = row.locator("input[name=add]").get_attribute("value")
        row.locator("input[name=quantity]").fill("2")
        row.locator("form.buy button").click()

        # Not signed in: sign in, or go on as a guest.
        page.wait_for_url(re.compile(r"/guest/checkout\?add="))
        assert page.locator("a[data-sign-in]").count() == 1
        assert page.locator("tr[data-line] input[name=batch]").get_attribute("value") == batch
        assert re.search(r"[\d,]+\.\d\d", page.locator("[data-total]").inner_text())
        # The totals follow what is typed, tonnes as well as money.
        tonnes = page.locator("tr[data-line] input[name=quantity]")
        tonnes.fill("7")
        assert re.match(r"7\s*(t|吨)$", page.locator("[data-total-tonnes]").inner_text().strip())
        tonnes.fill("2")
        assert re.match(r"2\s*(t|吨)$", page.locator("[data-total-tonnes]").inner_text().strip())
        _fits_and_passes_axe(page)
        screenshot(page, f"guest-1-checkout-{lang}-{name}")

        # Bad input first: a wrong e-mail address is refused, nothing is held.
        page.fill("input[name=name]", "李华")
        page.fill("input[name=email]", "not-an-address")
        page.click("button[value=hold]")
        page.wait_for_selector(".flash-error")
        assert (
            ("电子邮件地址" in page.content())
            if lang == "zh"
            else ("not a valid e-mail address" in page.content())
        )
        assert "/guest/orders/" not in page.url

        page.fill("input[name=name]", "李华")
        page.fill("input[name=email]", email)
        page.fill("input[name=organisation_name]", "红山文化节组委会")
        page.select_option("select[name=purpose]", "event")
        page.fill(
            "input[name=purpose_detail]",
            "红山文化节 2026" if lang == "zh" else "Hongshan Culture Festival 2026",
        )
        screenshot(page, f"guest-2-details-{lang}-{name}")
        page.click("button[value=hold]")
        page.wait_for_url(re.compile(r"/guest/orders/ord_[0-9a-z]{20}/[A-Za-z0-9_-]+"))
        order_path = re.search(r"(/guest/orders/[^?#]+)", page.url).group(1)

        # The order's link came by e-mail.
        (subject, body), *_ = _mails(live_database, email)
        assert _path(body, "/guest/orders/") == order_path
        assert page.locator("table.order-lines tbody tr").count() == 1
        _fits_and_passes_axe(page)
        screenshot(page, f"guest-3-order-{lang}-{name}")

        if not phone:  # WeChat Pay: the QR code; the test wallet approves; the page moves on
            page.click("button.wallet-wechat_pay")
            page.wait_for_url(re.compile(r"/scan/wechat_pay"))
            assert page.locator(".qr-code svg").count() == 1
            screenshot(page, f"guest-4-qr-{lang}-{name}")
            wallet = context.new_page()
            wallet.goto(page.locator("a[data-test-wallet]").get_attribute("href"))
            assert "TEST WALLET" in wallet.content()
            wallet.click("button[value=approve]")
            wallet.wait_for_selector("text=Payment approved")
            wallet.close()
            page.wait_for_url(re.compile(r"/guest/orders/ord_[0-9a-z]+/[A-Za-z0-9_-]+$"), timeout=30_000)
        else:  # Alipay: to the (test) wallet and back to the order's link
            page.click("button.wallet-alipay")
            page.wait_for_url(re.compile(r"/payments/test-wallet/"))
            assert "测试钱包" in page.content()
            screenshot(page, f"guest-4-test-wallet-{lang}-{name}")
            page.click("button[value=approve]")
            page.wait_for_url(re.compile(r"/guest/orders/ord_.*paid=1"))
        page.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)
        _fits_and_passes_axe(page)
        screenshot(page, f"guest-5-paid-{lang}-{name}")
        number = re.search(
            r"CFC-[0-9A-Z-]+", page.locator("a.button[href*='/certificates/']").get_attribute("href")
        ).group(0)

        # The receipt and the certificate's address came by e-mail too.
        receipt = [b for s, b in _mails(live_database, email) if number in s]
        assert receipt, _mails(live_database, email)
        certificate_path = _path(receipt[0], "/certificates/")
        assert certificate_path == f"/certificates/{number}"
        assert f"/certificates/{number}.pdf" in receipt[0]
        page.goto(f"{certificate_path}?lang={lang}")
        assert "红山文化节组委会" in page.content()
        screenshot(page, f"guest-6-certificate-{lang}-{name}")
        # Verified by number like any other.
        page.goto(f"/verify?number={number}&lang={lang}")
        assert number in page.content() and "红山文化节组委会" in page.content()

        # Someone else's token finds nothing.
        response = page.goto(order_path[:-3] + "xyz")
        assert response.status == 404
    finally:
        context.close()
    assert errors == []
