"""The alliance in Chromium: an organisation applies to join, the operator sets the member terms
and approves, the member buys at the member price and appears on the public alliance page with
its retired tonnes. In both languages, at 1280 and 390 px wide."""

import os
import re
import subprocess
from decimal import ROUND_HALF_UP, Decimal

import pytest

from tests.browser.conftest import BIN, OPERATOR, ROOT, screenshot

PASSWORD = "alliance-pw-2026"
#: Valid USCCs (check characters correct) of two organisations made for these tests.
ORGS = {"en": ("91150400MA0000101F", "Hongshan Green Steel"), "zh": ("91150400MA0000102J", "红山绿色建材")}


def _flask(live_server, *args, input_=None):
    env = dict(
        os.environ,
        FLASK_APP="portal",
        PORTAL_DATABASE_URL=f"sqlite:///{live_server.database}",
        PORTAL_SECRET_KEY="browser-tests",
        PORTAL_LOG_LEVEL="WARNING",
    )
    result = subprocess.run(
        [str(BIN / "flask"), *args], env=env, cwd=ROOT, capture_output=True, text=True, input=input_
    )
    assert result.returncode == 0, result.stderr


def _fits(page):
    assert page.evaluate("() => document.documentElement.scrollWidth") <= page.evaluate(
        "() => window.innerWidth"
    )


def _sign_in(page, email, password, lang):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/(account|staff)"))


def _yuan(text: str) -> Decimal:
    return Decimal(re.search(r"([\d,]+\.\d\d)", text).group(1).replace(",", ""))


@pytest.mark.parametrize(
    "lang, viewport", [("en", {"width": 1280, "height": 900}), ("zh", {"width": 390, "height": 844})]
)
def test_an_organisation_joins_buys_at_the_member_price_and_is_listed(chromium, live_server, lang, viewport):
    uscc, name = ORGS[lang]
    email = f"buyer-{lang}@alliance.test"
    _flask(live_server, "orgs", "create", name, "--uscc", uscc, "--sector", "building_materials", "--approve")
    _flask(live_server, "users", "create", email, "--role", "buyer", "--org", uscc, input_=PASSWORD + "\n")
    size = "desktop" if viewport["width"] > 400 else "phone"
    phone = viewport["width"] < 400
    buyer_context = chromium.new_context(base_url=live_server, viewport=viewport, is_mobile=phone)
    staff_context = chromium.new_context(base_url=live_server, viewport=viewport, is_mobile=phone)
    buyer, operator = buyer_context.new_page(), staff_context.new_page()
    errors = []
    for page in (buyer, operator):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        # The organisation applies.
        _sign_in(buyer, email, PASSWORD, lang)
        buyer.goto(f"/account/alliance?lang={lang}")
        buyer.select_option("select[name=emissions_band]", "10k_100k")
        buyer.fill(
            "textarea[name=pledge]",
            "We halve our emissions by 2030 and offset the rest."
            if lang == "en"
            else "2030年前排放减半，其余以本市碳汇抵销。",
        )
        buyer.fill("input[name=website]", "https://green.example.cn")
        _fits(buyer)
        screenshot(buyer, f"alliance-1-apply-{lang}-{size}")
        buyer.click("form.apply-form button[type=submit]")
        buyer.wait_for_selector(".membership-state")
        assert ("Application pending" if lang == "en" else "申请待审核") in buyer.content()
        screenshot(buyer, f"alliance-2-pending-{lang}-{size}")

        # The operator sets the member terms and approves.
        _sign_in(operator, *OPERATOR, lang)
        operator.goto(f"/staff/alliance?lang={lang}")
        operator.fill("input[name=discount_pct]", "10")
        operator.fill("input[name=first_call_days]", "0")
        operator.click("form.terms-form button[type=submit]")
        operator.wait_for_selector(".flash-success")
        row = operator.locator("table.alliance-pending tbody tr", has_text=name)
        assert row.count() == 1
        _fits(operator)
        screenshot(operator, f"alliance-3-staff-{lang}-{size}")
        row.locator("button", has_text="Approve" if lang == "en" else "审核通过").click()
        operator.wait_for_selector(".flash-success")
        assert operator.locator("table.alliance-current", has_text=name).count() == 1

        # The member buys at the member price.
        buyer.goto(f"/?lang={lang}&min_available=10")
        row = buyer.locator("table.catalog tbody tr", has=buyer.locator("form.buy")).first
        listed = _yuan(row.locator("td.price").inner_text())
        member = (listed * Decimal("0.9")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert Decimal(row.locator("form.buy").get_attribute("data-price")) == member
        assert row.locator(".member-price").count() == 1
        _fits(buyer)
        screenshot(buyer, f"alliance-4-catalog-member-price-{lang}-{size}")
        row.locator("input[name=quantity]").fill("3")
        row.locator("form.buy button").click()
        buyer.wait_for_url(re.compile(r"/checkout\?add="))
        assert _yuan(buyer.locator("[data-total]").inner_text()) == member * 3
        assert buyer.locator(".member-note").count() == 1
        screenshot(buyer, f"alliance-5-order-{lang}-{size}")
        buyer.fill("input[name=beneficiary]", name)
        buyer.click("button[value=hold]")
        buyer.wait_for_url(re.compile(r"/orders/ord_"))
        buyer.click("button[value=visa]")
        buyer.wait_for_selector("a.button[href*='/certificates/']", timeout=30_000)

        # The public page lists it with its retired tonnes (no sign-in).
        visitor = chromium.new_context(base_url=live_server, viewport=viewport, is_mobile=phone).new_page()
        visitor.goto(f"/alliance?lang={lang}")
        listed_row = visitor.locator("table.alliance-members tbody tr", has_text=name)
        assert listed_row.count() == 1 and listed_row.locator(".retired-total").inner_text().strip() == "3"
        _fits(visitor)
        screenshot(visitor, f"alliance-6-public-{lang}-{size}")
        listed_row.locator("a").first.click()
        visitor.wait_for_url(re.compile(r"/alliance/members/\d+"))
        assert "green.example.cn" in visitor.content()
        assert visitor.locator("table.retired-per-year tfoot").inner_text().strip().endswith("3")
        _fits(visitor)
        screenshot(visitor, f"alliance-7-profile-{lang}-{size}")
        visitor.context.close()
    finally:
        buyer_context.close()
        staff_context.close()
    assert errors == []
