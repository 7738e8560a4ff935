"""Checking certificate PDFs on the verification page in Chromium, in both languages: a genuine
PDF is green with the register's record beside it; the same PDF with something appended after
the signature is not."""

import re
import urllib.request

from tests.browser.conftest import screenshot


def _a_certificate_pdf(live_server, tmp_path):
    with urllib.request.urlopen(f"{live_server}/register?lang=en", timeout=30) as response:
        html = response.read().decode()
    number = re.search(r"/certificates/(CFC-[0-9A-Z-]+)", html).group(1)
    path = tmp_path / f"{number}.pdf"
    with urllib.request.urlopen(f"{live_server}/certificates/{number}.pdf", timeout=60) as response:
        path.write_bytes(response.read())
    return number, path


def test_a_genuine_and_a_modified_pdf_on_the_verification_page(page, phone, live_server, tmp_path):
    number, genuine = _a_certificate_pdf(live_server, tmp_path)

    page.goto("/verify?lang=zh")
    page.set_input_files("input[name=pdf]", str(genuine))
    page.click("text=核验 PDF")
    verdict = page.locator("p.verdict")
    verdict.wait_for()
    assert verdict.get_attribute("data-result") == "valid" and "verdict-good" in verdict.get_attribute(
        "class"
    )
    assert "真实有效" in verdict.inner_text()
    record = page.locator("section.register-record")
    assert "登记簿记录" in record.inner_text() and number in record.inner_text()
    screenshot(page, "verify-1-genuine-zh")

    page.goto("/verify?lang=en")
    page.set_input_files("input[name=pdf]", str(genuine))
    page.click("text=Check the PDF")
    page.locator("p.verdict").wait_for()
    assert "Genuine and valid" in page.locator("p.verdict").inner_text()
    assert "The register's record" in page.locator("section.register-record").inner_text()
    screenshot(page, "verify-2-genuine-en")

    modified = tmp_path / "modified.pdf"
    modified.write_bytes(genuine.read_bytes() + b"\n% added after signing\n")
    page.set_input_files("input[name=pdf]", str(modified))  # the form to check another PDF
    page.click("text=Check the PDF")
    page.wait_for_selector("p.verdict[data-result=modified]")
    verdict = page.locator("p.verdict")
    assert (
        "verdict-bad" in verdict.get_attribute("class") and "Modified after signing" in verdict.inner_text()
    )
    assert number in page.locator("section.register-record").inner_text()  # compare with the record
    screenshot(page, "verify-3-modified-en")

    phone.goto("/verify?lang=zh")
    phone.set_input_files("input[name=pdf]", str(modified))
    phone.click("text=核验 PDF")
    phone.wait_for_selector("p.verdict[data-result=modified]")
    assert "签名后已被修改" in phone.locator("p.verdict").inner_text()
    screenshot(phone, "verify-4-modified-zh-phone")
