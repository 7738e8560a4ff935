"""An event's footprint, from the estimate to the certificate, paid through localstripe, then the
certificate checked on the verification page (number and PDF upload), in Chromium."""

import re
import urllib.request

from tests.browser.conftest import screenshot

BUYER = ("buyer@demo.local", "demo-password-2026")


def test_estimate_buy_pay_and_verify_an_event_offset(page, live_server, tmp_path):
    page.goto("/estimate?lang=en")
    page.fill("input[name=name]", "Hongshan Culture Festival")
    page.fill("input[name=start_date]", "2026-07-18")
    page.fill("input[name=end_date]", "2026-07-20")
    page.fill("input[name=attendees]", "300")
    page.fill("input[name=rail_share]", "60")
    page.fill("input[name=rail_distance]", "800")
    page.fill("input[name=hotel_room_nights]", "400")
    page.fill("input[name=meals_meat]", "1200")
    page.fill("input[name=electricity_kwh]", "15000")
    page.locator("main button[type=submit]").first.click()
    page.wait_for_selector("text=Offset this footprint")
    screenshot(page, "offset-1-estimate-en")
    page.click("text=Offset this footprint")

    # Not signed in yet: sign in, and come back to the prefilled checkout.
    page.wait_for_url(re.compile(r"/login"))
    page.fill("input[name=email]", BUYER[0])
    page.fill("input[name=password]", BUYER[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/checkout"))
    quantity = page.input_value("input[name=quantity]")
    assert int(quantity) > 0
    assert "Hongshan Culture Festival" in page.input_value("input[name=purpose_detail]")
    screenshot(page, "offset-2-checkout-en")
    page.click("main button[type=submit]")

    page.wait_for_url(re.compile(r"/orders/ord_"))
    assert "held for you until" in page.content()
    screenshot(page, "offset-3-order-en")
    page.click("button[value=visa]")
    # The page refreshes until the signed webhook has retired the credits.
    page.wait_for_selector("text=View certificate", timeout=30_000)
    screenshot(page, "offset-4-paid-en")
    page.click("text=View certificate")

    page.wait_for_url(re.compile(r"/certificates/CFC-"))
    content = page.content()
    assert "Valid" in content and "Hongshan Culture Festival" in content
    assert f"{int(quantity):,} tCO2e" in content
    screenshot(page, "offset-5-certificate-en")
    number = page.url.rsplit("/", 1)[1].split("?")[0]

    # The PDF, as someone would be sent it, uploaded to the verification page.
    pdf = tmp_path / f"{number}.pdf"
    with urllib.request.urlopen(f"{live_server}/certificates/{number}.pdf", timeout=30) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        pdf.write_bytes(response.read())
    page.goto("/verify?lang=zh")
    page.set_input_files("input[name=pdf]", str(pdf))
    page.click("text=核验 PDF")
    page.wait_for_selector("text=真实有效")
    screenshot(page, "offset-6-pdf-checked-zh")

    page.goto(f"/verify?number={number.lower()}")
    page.wait_for_url(re.compile(rf"/certificates/{number}"))
    page.goto(f"/register?q={number}")
    assert number in page.content()
    screenshot(page, "offset-7-register-zh")


def test_the_operator_sees_the_sale_in_the_revenue_statement(page):
    """Runs after the purchase above (same live server): the sale is in this month's statement."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.browser.conftest import OPERATOR

    page.goto("/login?lang=zh")
    page.fill("input[name=email]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("main button[type=submit]")
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    page.goto(f"/staff/revenue/?period={month}")
    assert "收入分成报表" in page.content() and "ord_" in page.content()
    screenshot(page, "revenue-statement-zh")
    page.goto("/staff/revenue/rules")
    screenshot(page, "revenue-rules-zh")
    page.goto("/staff/dashboard?lang=en")
    assert page.locator("figure.chart svg").count() >= 6
    screenshot(page, "dashboard-en")
