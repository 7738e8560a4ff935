"""The registry hand-off in Chromium, in both languages: the operator works the queue, records
the registry's confirmation, and the certificate shows it; a statement is imported, a GBK file
refused with a translated message, and the report shows each difference."""

import csv
import re

from tests.browser.conftest import screenshot

OPERATOR = ("operator@demo.local", "demo-password-2026")


def _sign_in(page, lang):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/staff"))


def test_the_queue_in_both_languages_and_a_confirmation_shown_on_the_certificate(page, phone):
    _sign_in(page, "zh")
    page.goto("/staff/registry/?lang=zh")
    assert page.locator("h1").inner_text() == "注册登记系统交接"
    assert "全国 CCER 注册登记系统" in page.locator("main").inner_text()
    assert page.locator("section.registry-group").count() > 0
    screenshot(page, "registry-queue-zh")

    page.goto("/staff/registry/?lang=en")
    assert page.locator("h1").inner_text() == "Registry hand-off"
    with page.expect_download() as caught:
        page.click("text=Download CSV")
    with open(caught.value.path(), encoding="utf-8-sig") as f:
        header, *rows = list(csv.reader(f))
    assert header[:3] == ["instruction_id", "registry", "action"] and rows
    assert all(row[header.index("status")] == "pending" for row in rows)
    screenshot(page, "registry-queue-en")

    # The first CCER instruction: confirm it with the serials the registry states.
    group = page.locator("section.registry-group", has_text="National CCER registry").first
    group.locator("tbody tr").first.locator("a").first.click()
    page.wait_for_url(re.compile(r"/staff/registry/instructions/\d+"))
    number = page.locator("dd a code").first.inner_text()
    serials = page.locator("dt:text-is('Registry serials') + dd code").first.inner_text()
    first, last = serials.split("–")
    page.fill("input[name=reference]", "ZX-20261203-000777")
    page.fill("input[name=date]", page.evaluate("new Date().toISOString().slice(0, 10)"))
    page.fill("input[name=serial_start]", first)
    prefix, unit = last.rsplit("-", 1)
    page.fill("input[name=serial_end]", f"{prefix}-{int(unit) + 1:0{len(unit)}d}")  # one too many
    screenshot(page, "registry-instruction-en")
    page.click("text=Record the confirmation")
    assert "the instruction is for" in page.locator("main").inner_text()  # refused, named
    assert [e for e in page.console_errors if "status of 409" not in e] == []
    page.console_errors.clear()  # the refused form's own status
    screenshot(page, "registry-instruction-refused-en")
    page.fill("input[name=serial_end]", last)
    page.click("text=Record the confirmation")
    page.wait_for_url(re.compile(r"/staff/registry/"))
    assert "is recorded and signed" in page.locator("main").inner_text()

    page.goto(f"/certificates/{number}?lang=en")
    official = page.locator("dl.registry-status").inner_text()
    assert "Confirmed by the registry" in official and "ZX-20261203-000777" in official
    screenshot(page, "registry-certificate-confirmed-en")
    phone.goto(f"/certificates/{number}?lang=zh")
    assert "注册登记系统已确认" in phone.locator("dl.registry-status").inner_text()
    screenshot(phone, "registry-certificate-confirmed-zh-phone")
    record = page.request.get(f"/api/v1/certificates/{number}").json()["registry"]
    assert record["status"] == "confirmed" and record["reference"] == "ZX-20261203-000777"


def test_a_statement_import_in_both_languages(page, tmp_path):
    _sign_in(page, "zh")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("serial_start,serial_end,quantity,status\n甲,乙,1,持有\n".encode("gbk"))
    page.goto("/staff/registry/statements?lang=zh")
    page.select_option("select[name=registry]", "ccer")
    page.fill("input[name=account]", "赤峰农投-CCER-001")
    page.set_input_files("input[name=file]", str(gbk))
    page.click("text=导入并对账")
    assert "第 2 行不是 UTF-8 文本" in page.locator("main").inner_text()
    assert [e for e in page.console_errors if "status of 400" not in e] == []
    page.console_errors.clear()  # the refused upload's own status
    screenshot(page, "registry-statement-refused-zh")

    # A statement that shows only the first batch's first hundred units as active: the rest of
    # that batch is for sale here and missing there, so it is withheld.
    page.goto("/staff/registry/?lang=en&status=confirmed&registry=ccer")
    with page.expect_download() as caught:
        page.click("text=Download CSV")
    with open(caught.value.path(), encoding="utf-8-sig") as f:
        header, row, *_ = list(csv.reader(f))
    start = row[header.index("registry_serial_start")]
    prefix, unit = start.rsplit("-", 1)
    statement = tmp_path / "statement.csv"
    statement.write_text(
        "serial_start,serial_end,status\n"
        f"{start},{prefix}-{int(unit) + 99:0{len(unit)}d},active\n"
        f"{prefix}-{999999990:0{len(unit)}d},{prefix}-{999999999:0{len(unit)}d},active\n",
        encoding="utf-8",
    )
    page.goto("/staff/registry/statements?lang=en")
    page.select_option("select[name=registry]", "ccer")
    page.fill("input[name=account]", "CFAI-CCER-001")
    page.set_input_files("input[name=file]", str(statement))
    page.click("text=Import and reconcile")
    page.wait_for_url(re.compile(r"/staff/registry/statements/\d+"))
    text = page.locator("main").inner_text()
    for label in ("In the portal but not in the registry", "In the registry but not in the portal"):
        assert label in text
    assert "Withheld from sale" in text or "Withheld (registry difference)" in text
    screenshot(page, "registry-report-en")
    page.goto(page.url.split("?")[0] + "?lang=zh")
    assert "平台有而注册登记系统没有" in page.locator("main").inner_text()
    screenshot(page, "registry-report-zh")
    page.goto("/staff/registry/statements?lang=zh")
    assert page.locator("form.registry-decide select[name=outcome]").count() > 0
    screenshot(page, "registry-statements-zh")
