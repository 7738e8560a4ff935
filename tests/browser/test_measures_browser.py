"""Suspending an organisation in Chromium with JavaScript turned off: the server asks first, the
status control then shows the new status, the notice is public, and lifting it leaves history."""

from tests.browser.conftest import OPERATOR, screenshot

USCC = "91150400MA00000056"  # 赤峰学院 in the demo data (no other browser test uses it)


def test_suspend_confirm_notice_and_lift_without_javascript(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server, viewport={"width": 1366, "height": 900}, java_script_enabled=False
    )
    page = context.new_page()
    try:
        page.goto("/login?lang=en")
        page.fill("input[name=email]", OPERATOR[0])
        page.fill("input[name=password]", OPERATOR[1])
        page.click("main button[type=submit]")
        page.goto("/staff/organisations?lang=en")

        row = page.locator("tr", has_text=USCC)
        assert row.locator("select[name=status]").input_value() == "approved"
        row.locator("select[name=status]").select_option("suspended")
        row.locator("input[name=reason]").fill("未按期提交年度报告")
        row.locator("button[type=submit]").click()
        # Nothing is done yet: the server's page says what will happen.
        assert page.locator("h1").inner_text() == "Suspend Chifeng University?"
        assert "announced publicly on the Notices page" in page.content()
        screenshot(page, "confirm-suspend-en")
        page.click("text=Suspend the organisation")
        # the form's answer is a redirect: wait for the page it leads to (fails after 30 s)
        page.wait_for_selector("text=Status of Chifeng University changed to Suspended.")
        row = page.locator("tr", has_text=USCC)
        assert row.locator("select[name=status]").input_value() == "suspended"  # not back to approved

        page.goto("/notices?lang=en")
        notice = page.locator("table.notices:not(.past) tr", has_text=USCC)
        assert "Suspended" in notice.inner_text() and "未按期提交年度报告" in notice.inner_text()

        page.goto("/staff/organisations?lang=en")
        row = page.locator("tr", has_text=USCC)
        row.locator("select[name=status]").select_option("approved")
        row.locator("input[name=reason]").fill("已补交")
        row.locator("button[type=submit]").click()  # reinstating needs no confirmation
        page.wait_for_selector("text=changed to Approved")
        page.goto("/notices?lang=en")
        past = page.locator("table.past tr", has_text=USCC)
        assert "Lifted on" in past.inner_text() and "未按期提交年度报告" in past.inner_text()
        screenshot(page, "notices-en")
    finally:
        context.close()
