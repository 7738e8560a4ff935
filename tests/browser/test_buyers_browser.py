"""Registration → e-mail confirmation → approval in the back office → sign-in, in Chromium."""

import re
import sqlite3

from tests.browser.conftest import OPERATOR, screenshot

USCC = "91110000802100433B"


def last_mail_link(database, path):
    with sqlite3.connect(database) as db:
        (body,) = db.execute("SELECT body FROM outbox_messages ORDER BY id DESC LIMIT 1").fetchone()
    return re.search(rf"https?://[^/\s]+({path}[^\s]+)", body).group(1)


def test_register_confirm_approve_sign_in(page, live_database):
    page.goto("/signup?lang=en")
    page.fill("input[name=name_zh]", "赤峰浏览器测试有限公司")
    page.fill("input[name=name_en]", "Chifeng Browser Test Co.")
    page.fill("input[name=uscc]", USCC)
    page.select_option("select[name=sector]", "event_organiser")
    page.fill("input[name=contact_name]", "李经理")
    page.fill("input[name=contact_phone]", "0476-7654321")
    page.fill("input[name=email]", "events@browser.cn")
    page.fill("input[name=password]", "browser-pw-2026")
    page.fill("input[name=password_again]", "browser-pw-2026")
    screenshot(page, "register-en")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/login"))
    assert "We have sent you an e-mail" in page.content()

    page.goto(last_mail_link(live_database, "/confirm/"))
    assert "Your e-mail address is confirmed" in page.content()

    # The operator approves the new organisation.
    page.fill("input[name=email]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    with page.expect_navigation():  # signed in before the next page is asked for
        page.click("button[type=submit]")
    page.goto("/staff/organisations?status=pending&lang=en")
    row = page.locator("tr", has_text=USCC)
    row.locator("select[name=status]").select_option("approved")
    row.locator("input[name=reason]").fill("营业执照核验通过")
    with page.expect_navigation():  # the page read is the answer to the change, not the form
        row.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "changed to Approved" in page.content()
    screenshot(page, "staff-organisations-en")
    # Wait for the sign-out to land: a navigation started before its response arrives would
    # race with the response's session cookie (which still says "en").
    with page.expect_navigation():
        page.locator("button", has_text="Sign out").click()
    assert "Sign in" in page.content()
    # And for every request that page started: one answered after the next page's would set
    # the session cookie it was sent with, still "en" (once in about twenty runs on CI).
    page.wait_for_load_state("networkidle")

    # The buyer signs in, sees its (empty) holding and may create API keys now.
    page.goto("/login?lang=zh")
    page.fill("input[name=email]", "events@browser.cn")
    page.fill("input[name=password]", "browser-pw-2026")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))
    assert "贵机构尚未持有碳信用。" in page.content()
    assert "贵机构可以购买现货抵销并签订承购合同。" in page.locator(".purchase-status").inner_text()
    page.click("text=API 密钥")
    page.click("button:has-text('创建密钥')")
    assert page.locator("code.secret").inner_text().startswith("cfk_")
    screenshot(page, "api-keys-zh")
