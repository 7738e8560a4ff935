"""The revenue statement's downloads in Chromium, from the demo portal served by gunicorn: the
operator clicks CSV and XLSX, the browser saves each file whole, and both add up to the totals on
the page. Times on the pages are Beijing's, one format per language."""

import csv
import io
import re
from decimal import Decimal

from openpyxl import load_workbook

from portal.timeutil import beijing_today
from tests.browser.conftest import screenshot

OPERATOR = ("operator@demo.local", "demo-password-2026")


def _sign_in(page, who, lang="en"):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/(account|staff)"))


def _amount(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.-]", "", text))


def test_the_statement_downloads_whole_and_agrees_with_the_page(page):
    _sign_in(page, OPERATOR)
    page.goto(f"/staff/revenue/?period={beijing_today().year}&lang=en")
    received, city, county = (_amount(t) for t in page.locator(".totals strong").all_inner_texts())
    shown_lines = page.locator("table.history tbody tr").count()
    assert received > 0 and shown_lines > 0 and received == city + county

    with page.expect_download() as caught:
        page.click("text=CSV")
    download = caught.value
    assert download.failure() is None
    assert re.fullmatch(r"revenue-all-\d{4}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig") as f:
        header, *lines, total = list(csv.reader(f))
    assert header[:4] == ["Paid on", "Sale", "County", "County code"]
    assert len(lines) == shown_lines
    assert [_amount(c) for c in total[5:8]] == [received, city, county]
    assert [sum(_amount(row[i]) for row in lines) for i in (5, 6, 7)] == [received, city, county]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", row[0]) for row in lines)

    with page.expect_download() as caught:
        page.click("text=XLSX")
    download = caught.value
    assert download.failure() is None
    with open(download.path(), "rb") as f:
        sheet = load_workbook(io.BytesIO(f.read())).active
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    subtotals = [row for row in rows if row[0] == "Subtotal"]
    assert rows[-1][0] == "Total"
    assert [Decimal(str(v)) for v in rows[-1][5:8]] == [received, city, county]
    assert [sum(Decimal(str(row[i])) for row in subtotals) for i in (5, 6, 7)] == [received, city, county]
    assert all(row[2] and row[2] != row[3] for row in subtotals)  # a county's name, and its code
    assert sum(1 for row in rows if row[0] not in ("Subtotal", "Total")) == shown_lines
    screenshot(page, "revenue-statement-en")


def test_pages_show_beijing_time_in_each_language(page, phone):
    _sign_in(page, OPERATOR, lang="zh")
    for lang, date_shape, zone in (
        ("zh", r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", "北京时间"),
        ("en", r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", "Beijing time"),
    ):
        page.goto(f"/register?lang={lang}")
        table = page.locator("table.register").inner_text().replace("\u00a0", " ")
        assert zone in page.locator("table.register thead").inner_text()
        assert re.search(date_shape, table) and not re.search(r"\d{4}-\d\d-\d\dT|\d+/\d+/\d+", table)
        screenshot(page, f"register-{lang}")
        page.goto(f"/staff/audit?lang={lang}")
        assert re.search(date_shape, page.locator("table.history tbody").inner_text().replace("\u00a0", " "))
        screenshot(page, f"audit-{lang}")
    phone.goto("/register?lang=en")
    cell = phone.locator("table.register tbody tr").first.locator("td").nth(1)
    assert cell.get_attribute("data-label") == "Retired at (Beijing time)"  # the card's label
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", cell.inner_text().replace("\u00a0", " "))
    screenshot(phone, "register-en-phone")
