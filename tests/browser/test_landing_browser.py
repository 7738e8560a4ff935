"""Each demo role signs in, in Chromium, and lands on its own work; the staff invoice list and the
operator's dashboard fit a phone's width in both languages."""

import re

import pytest

from tests.browser.conftest import screenshot

PASSWORD = "demo-password-2026"

#: Role → (e-mail, the path it lands on, a heading of its work there, in Chinese).
LANDINGS = {
    "buyer": ("buyer@demo.local", "/account", "我们的承购合同"),
    "sales": ("sales@demo.local", "/staff/contracts", "逾期发票"),
    "operator": ("operator@demo.local", "/staff/dashboard", "待处理事项"),
    "auditor": ("auditor@demo.local", "/staff/", "最新审计事件"),
}


def _sign_in(page, email, lang="zh"):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")


def _sign_out(page):
    with page.expect_navigation():
        page.locator("button", has_text=re.compile("Sign out|退出登录")).click()


def test_each_role_lands_on_its_own_work(page, live_server):
    for role, (email, path, heading) in LANDINGS.items():
        _sign_in(page, email)
        assert page.url == live_server + path, role
        assert page.locator("h2", has_text=heading).first.is_visible(), role
        screenshot(page, f"landing-{role}-zh")
        _sign_out(page)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_invoice_list_and_the_dashboard_fit_a_phone(phone, lang):
    _sign_in(phone, "operator@demo.local", lang)
    for path, name in (("/staff/invoices", "invoices"), ("/staff/dashboard", "dashboard")):
        phone.goto(path)
        assert phone.locator("#ageing" if name == "invoices" else "#queues").is_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        screenshot(phone, f"{name}-phone-{lang}")
