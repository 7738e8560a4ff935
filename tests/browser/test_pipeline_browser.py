"""One project from assessment to issuance in Chromium, in both languages: the operator starts it
on a free parcel of Aohan, Aohan's county reviewer approves its boundary and crediting period, the
operator records the city's filing and every stage (documents uploaded as PDFs), records the
issuance in the back office and names its batch; Harqin's reviewer cannot open it. Before the
issuance, sales staff count a new offtake contract on the project's forecast (forward supply):
the issued batch is reserved for that contract first."""

import re
from datetime import timedelta

from portal.timeutil import beijing_today
from tests.browser.conftest import screenshot

PASSWORD = "demo-password-2026"
OPERATOR = "operator@demo.local"
SALES = "sales@demo.local"
AOHAN = "county-aohan@demo.local"
HARQIN = "county-kalaqin@demo.local"
CODE = "CF-AOHAN-BT01"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _sign_in(page, email, lang):
    page.context.clear_cookies()
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert "/login" not in page.url


def _record_stage(page, lang, body="", reference="", document=None):
    page.goto(f"/pipeline/projects/{CODE}?lang={lang}")
    form = page.locator("#stage-form")
    form.locator("input[name=reached_on]").fill(beijing_today().isoformat())
    if body:
        form.locator("input[name=responsible_body]").fill(body)
    if reference:
        form.locator("input[name=reference]").fill(reference)
    if document:
        form.locator("input[name=documents]").set_input_files(
            {"name": document, "mimeType": "application/pdf", "buffer": PDF}
        )
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator(".flash-error").count() == 0, page.locator(".flash-error").inner_text()


def test_a_project_from_assessment_to_issuance(page):
    today = beijing_today()
    # The operator starts the project, in Chinese, on Aohan's first free parcel.
    _sign_in(page, OPERATOR, "zh")
    page.goto("/pipeline/projects/new?county=aohan&lang=zh")
    form = page.locator("#project-form")
    form.locator("input[name=code]").fill(CODE)
    form.locator("input[name=name_zh]").fill("敖汉旗浏览器测试造林碳汇项目")
    form.locator("input[name=name_en]").fill("Aohan browser-test afforestation")
    form.locator("input[name=crediting_start]").fill(f"{today.year - 1}-01-01")
    form.locator("input[name=crediting_end]").fill(f"{today.year + 29}-12-31")
    form.locator("input[name=reached_on]").fill(today.isoformat())
    form.locator("input[name=parcels]").first.check()
    form.locator("input[name=documents]").set_input_files(
        {"name": "评估报告.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.url.endswith(f"/pipeline/projects/{CODE}")
    assert "项目评估" in page.inner_text(".pipeline-stages")
    # Past assessment it may not go yet.
    page.locator("#stage-form input[name=reached_on]").fill(today.isoformat())
    with page.expect_navigation():
        page.locator("#stage-form button[type=submit]").click()
    assert "旗县区审核通过" in page.locator(".flash-error").inner_text()
    page.console_errors.remove(
        "Failed to load resource: the server responded with a status of 409 (CONFLICT)"
    )
    screenshot(page, "pipeline-assessment-zh")

    # Harqin's reviewer does not see it; Aohan's approves it, in English.
    _sign_in(page, HARQIN, "en")
    assert page.goto(f"/pipeline/projects/{CODE}?lang=en").status == 404
    page.console_errors.remove(
        "Failed to load resource: the server responded with a status of 404 (NOT FOUND)"
    )
    _sign_in(page, AOHAN, "en")
    page.goto("/county/?lang=en")
    assert CODE in page.content() and "awaiting your review" in page.content()
    page.goto(f"/pipeline/projects/{CODE}?lang=en")
    screenshot(page, "pipeline-review-en")
    page.check("#review-form input[value=approved]")
    with page.expect_navigation():
        page.click("#review-form button[type=submit]")
    assert "Your review is recorded." in page.content()
    assert "Approved" in page.content()

    # The operator records the city's filing and the stages, in English then Chinese.
    _sign_in(page, OPERATOR, "en")
    page.goto(f"/pipeline/projects/{CODE}?lang=en")
    page.fill("#filing-form input[name=filing_reference]", "赤林草碳备〔2026〕88号")
    page.fill("#filing-form input[name=filed_on]", today.isoformat())
    with page.expect_navigation():
        page.click("#filing-form button[type=submit]")
    assert "The city's filing is recorded." in page.content()
    _record_stage(page, "en", document="PDD.pdf")
    _record_stage(page, "en", body="China Quality Certification Centre")
    _record_stage(page, "zh", reference="CCER-14-BT-0001")
    _record_stage(page, "zh")
    _record_stage(page, "zh", document="监测报告.pdf")
    _record_stage(page, "zh", body="中国船级社质量认证有限公司")
    vintage = today.year - 1
    page.goto(f"/pipeline/projects/{CODE}?lang=en")
    forecast = page.locator("#forecast-form")
    for name, value in (("vintage", vintage), ("expected_t", 800), ("low_t", 600), ("high_t", 900)):
        forecast.locator(f"input[name={name}]").first.fill(str(value))
    with page.expect_navigation():
        forecast.locator("button[type=submit]").click()
    assert "The forecast is revised." in page.content()

    # Sales staff draft a contract that counts on that vintage, then sign it (in Chinese).
    number = _forward_contract(page, today, vintage)
    _sign_in(page, OPERATOR, "en")

    # The issuance, recorded in the back office for the catalog project registration made.
    page.goto(f"/staff/projects/{CODE}?lang=en")
    page.fill("input[name=vintage_start]", f"{today.year - 1}-01-01")
    page.fill("input[name=vintage_end]", f"{today.year - 1}-12-31")
    page.fill("input[name=issued_on]", today.isoformat())
    page.fill("input[name=quantity]", "800")
    page.fill("form.grid-form input[name=price_per_t]", "68.00")  # listed at once
    page.fill("input[name=registry_reference]", "CCER-ISS-BT-01")
    # The registry's serial range: its count must equal the quantity.
    page.fill("input[name=registry_serial_start]", f"CN-CCER-BT01-{today.year - 1}-000000001")
    page.fill("input[name=registry_serial_end]", f"CN-CCER-BT01-{today.year - 1}-000000800")
    with page.expect_navigation():
        page.click("form.grid-form button[type=submit]")
    batch = f"CCER-{CODE}-{today.year - 1}"
    assert batch in page.content()
    _record_stage(page, "en", reference=batch)
    stages = page.inner_text(".pipeline-stages")
    assert "Issuance" in stages and batch in stages
    assert page.locator(".pipeline-stages li.done").count() == 8
    assert page.locator("#stage-form").count() == 0  # nothing left to record
    screenshot(page, "pipeline-issued-en")

    # The issued batch was reserved for the contract that counted on it, before anyone else.
    _sign_in(page, SALES, "en")
    page.goto(f"/staff/contracts/{number}?lang=en")
    row = page.locator("#forward tbody tr").first
    assert CODE in row.inner_text() and re.search(r"300\s+300\s+0", row.inner_text()), row.inner_text()
    screenshot(page, "pipeline-forward-reserved-en")

    # The county sees it issued, in Chinese, with its documents' digests.
    _sign_in(page, AOHAN, "zh")
    page.goto(f"/pipeline/projects/{CODE}?lang=zh")
    assert "签发" in page.inner_text(".pipeline-stages") and re.search(r"[0-9a-f]{16}…", page.content())
    screenshot(page, "pipeline-issued-zh")
    page.goto("/county/?lang=zh")
    assert batch in page.content()
    screenshot(page, "pipeline-county-zh")


def _forward_contract(page, today, vintage) -> str:
    """A signed 300 t contract for Aohan's CCER credits of ``vintage``, counting on the project's
    forecast for all of it: nothing else is reserved for it. Its number."""
    _sign_in(page, SALES, "zh")
    page.goto("/staff/contracts/new?lang=zh")
    page.select_option("select[name=organisation]", index=1)
    page.fill("input[name=title]", "敖汉旗远期碳汇承购")
    page.fill("input[name=start]", today.isoformat())
    page.fill("input[name=end]", (today + timedelta(days=700)).isoformat())
    page.fill("input[name=price_per_t]", "70.00")
    page.select_option("select[name=standard]", "CCER")
    page.select_option("select[name=counties]", "aohan")
    page.fill("input[name=vintage_from]", str(vintage))
    page.fill("input[name=vintage_to]", str(vintage))
    page.fill("input[name=tranches-0-due]", (today + timedelta(days=400)).isoformat())
    page.fill("input[name=tranches-0-quantity]", "300")
    page.fill("input[name=total_quantity]", "300")
    with page.expect_navigation():
        page.click("form button[type=submit]:has-text('保存草稿')")
    number = page.url.rsplit("/", 1)[1]
    assert re.fullmatch(r"OC-\d{4}-\d{4}", number), page.url
    forward = page.locator("#forward form")
    forward.locator("input[name=project]").fill(CODE)
    forward.locator("input[name=vintage]").fill(str(vintage))
    forward.locator("input[name=quantity]").fill("300")
    with page.expect_navigation():
        forward.locator("button[type=submit]").click()
    assert page.locator(".flash-error").count() == 0
    assert CODE in page.inner_text("#forward")
    with page.expect_navigation():
        page.click("text=签署合同")
    assert f"合同 {number} 已签署，已为其预留 0 吨。" in page.content()  # its need is forward
    screenshot(page, "pipeline-forward-contract-zh")
    return number
