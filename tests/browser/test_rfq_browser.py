"""A request for quote in Chromium, both languages, desktop and 390 px wide: a buyer whose
organisation is restricted to 50 t per order tries to order 80 t from a project page, is refused
and offered a quote, sends a request for 80 t in two yearly tranches (a schedule that does not add
up is refused first); the sales user replies and turns it into an offtake contract draft in one
step; the draft links back to the request and the buyer sees the request converted."""

import re
import sqlite3
from datetime import timedelta

from portal.timeutil import beijing_today
from tests.browser.conftest import screenshot

SALES = ("sales@demo.local", "demo-password-2026")
BUYER = ("buyer@demo.local", "demo-password-2026")


def _one(database, sql, *args):
    with sqlite3.connect(database) as db:
        return db.execute(sql, args).fetchone()


def _run(database, sql, *args):
    with sqlite3.connect(database) as db:
        db.execute(sql, args)


def _sign_in(page, who, lang="en"):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/(account|staff)"))


def _only_expected_errors(page, *statuses):
    """A refusal is a 4xx, which Chromium reports on the console: expected there, and only there."""
    assert [e for e in page.console_errors if not any(f"status of {s}" in e for s in statuses)] == []
    page.console_errors.clear()


def test_a_buyer_above_its_limit_sends_a_request_that_sales_turn_into_a_draft(page, phone, live_database):
    today = beijing_today()
    org_id, status, order_limit = _one(
        live_database,
        "SELECT o.id, o.status, o.order_limit_t FROM users u JOIN organisations o ON o.id = u.organisation_id "
        "WHERE u.email = ?",
        BUYER[0],
    )
    with sqlite3.connect(live_database) as db:
        projects = [
            code
            for (code,) in db.execute(
                "SELECT DISTINCT p.code FROM listings l JOIN batches b ON b.id = l.batch_id "
                "JOIN projects p ON p.id = b.project_id WHERE l.is_active AND b.quantity >= 1000 ORDER BY p.code"
            )
        ]
    _run(
        live_database,
        "UPDATE organisations SET status = 'restricted', order_limit_t = 50 WHERE id = ?",
        org_id,
    )
    try:
        # --- the buyer orders 80 t from the project page: refused, and offered a quote
        _sign_in(page, BUYER)
        # The first project page with a batch of which 80 t are still for sale (other browser
        # tests buy and reserve from the same data).
        for project in projects:
            page.goto(f"/projects/{project}?lang=en")
            forms = page.locator("form.buy")
            usable = [
                forms.nth(i)
                for i in range(forms.count())
                if int(forms.nth(i).locator("input[name=quantity]").get_attribute("max")) >= 80
            ]
            if usable:
                buy = usable[0]
                break
        else:
            raise AssertionError(f"no listed batch has 80 t for sale in {projects}")
        buy.locator("input[name=quantity]").fill("80")
        buy.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r"/checkout"))
        page.click("button[value=hold]")
        page.wait_for_selector(".flash-error")
        assert "restricted to 50 t per order" in page.inner_text(".flash-error")
        offer = page.locator(".rfq-offer a", has_text="Request a quote")
        assert offer.count() == 1
        screenshot(page, "rfq-1-order-refused-en")
        _only_expected_errors(page, 403)
        offer.click()
        page.wait_for_url(re.compile(r"/quote-requests/new\?"))
        assert page.input_value("input[name=quantity]") == "80"
        assert project in page.input_value("input[name=projects]")
        assert page.input_value("input[name=contact_email]") == BUYER[0]

        # --- two yearly tranches; first a schedule that does not add up
        page.select_option("select[name=schedule]", "yearly")
        page.fill("input[name=tranches-0-due]", (today + timedelta(days=60)).isoformat())
        page.fill("input[name=tranches-0-quantity]", "50")
        page.fill("input[name=tranches-1-due]", (today + timedelta(days=430)).isoformat())
        page.fill("input[name=tranches-1-quantity]", "20")
        page.fill("input[name=vintage_from]", "2021")
        page.fill("input[name=vintage_to]", "2023")
        page.check("input[name=standards][value=CCER]")
        page.fill("input[name=price_expectation]", "66.00")
        page.fill("input[name=contact_name]", "Wang Li")
        page.fill("textarea[name=notes]", "For our 2027 and 2028 compliance periods")
        page.click("text=Send the request")
        assert "The tranches add up to 70 t, not the 80 t requested." in page.inner_text(".flash-error")
        _only_expected_errors(page, 400)
        screenshot(page, "rfq-2-form-refused-en")
        page.fill("input[name=tranches-1-quantity]", "30")
        page.click("text=Send the request")
        page.wait_for_url(re.compile(r"/quote-requests/RFQ-\d{4}-\d{4}$"))
        number = page.url.rsplit("/", 1)[1]
        assert "is sent" in page.inner_text(".flash")
        assert "Yearly tranches" in page.content()
        screenshot(page, "rfq-3-request-en")
        with page.expect_navigation():
            page.locator("button", has_text=re.compile("Sign out")).click()

        # --- on a phone, in Chinese: the buyer's request and its form
        _sign_in(phone, BUYER, lang="zh")
        phone.goto(f"/quote-requests/{number}?lang=zh")
        assert "待回复" in phone.inner_text(".rfq-status") and "按年交付批次" in phone.content()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(phone, "rfq-4-request-phone-zh")
        phone.goto(f"/quote-requests/new?lang=zh&quantity=80&projects={project}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(phone, "rfq-5-form-phone-zh")

        # --- the sales user, in Chinese: the list, a reply, the draft in one step
        _sign_in(page, SALES, lang="zh")
        page.goto("/staff/quote-requests?status=new&lang=zh")
        page.click(f"text={number}")
        page.wait_for_url(re.compile(rf"/staff/quote-requests/{number}$"))
        assert "80 吨" in page.content() or "80" in page.inner_text(".rfq-facts")
        page.fill("#reply textarea[name=body]", "可以供应 80 吨 CCER 林业碳汇，报价 68 元/吨。")
        page.click("#reply button[type=submit]")
        page.wait_for_selector("text=回复已发送给买方")
        assert "洽谈中" in page.inner_text(".rfq-status")
        screenshot(page, "rfq-6-staff-zh")
        assert page.input_value("#convert input[name=price_per_t]") == "66.00"
        page.fill("#convert input[name=price_per_t]", "68.00")
        page.click("#convert button[type=submit]")
        page.wait_for_url(re.compile(r"/staff/contracts/OC-\d{4}-\d{4}$"))
        contract = page.url.rsplit("/", 1)[1]
        assert f"/staff/quote-requests/{number}" in page.content()  # the draft links back
        assert "草稿" in page.content()
        screenshot(page, "rfq-7-draft-zh")
        tranches = (
            sqlite3.connect(live_database)
            .execute(
                "SELECT t.quantity FROM contract_tranches t JOIN contracts c ON c.id = t.contract_id "
                "WHERE c.number = ? ORDER BY t.seq",
                (contract,),
            )
            .fetchall()
        )
        assert [q for (q,) in tranches] == [50, 30]
        assert _one(live_database, "SELECT status FROM quote_requests WHERE number = ?", number) == (
            "converted",
        )
        page.goto(f"/staff/quote-requests/{number}?lang=en")
        assert f"/staff/contracts/{contract}" in page.content()
        assert "Request for quote turned into a contract draft" in page.content()
        screenshot(page, "rfq-8-staff-en")
        page.goto("/staff/quote-requests?lang=en")
        screenshot(page, "rfq-9-staff-list-en")

        # --- the buyer sees it converted, with the reply
        phone.goto(f"/quote-requests/{number}?lang=zh")
        assert "已转为合同草稿" in phone.inner_text(".rfq-status")
        assert "报价 68 元/吨" in phone.content()
        screenshot(phone, "rfq-10-converted-phone-zh")
    finally:
        _run(
            live_database,
            "UPDATE organisations SET status = ?, order_limit_t = ? WHERE id = ?",
            status,
            order_limit,
            org_id,
        )
