"""Browse, filter, open a project and switch language in a real Chromium."""

import re

from tests.browser.conftest import screenshot


def test_browse_catalog_in_chinese_by_default(page):
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "已签发的碳信用"
    assert "找到 100 个批次" in page.locator(".count").inner_text()
    assert page.locator("table.catalog tbody tr").count() == 20
    assert "¥" in page.locator("td.price").first.inner_text()
    screenshot(page, "catalog-zh")


def test_filter_with_the_form(page):
    page.goto("/?lang=en")
    page.select_option("select[name=standard]", "VCS")
    page.select_option("select[name=project_type]", "grassland")
    page.select_option("select[name=vintage]", "2024")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"standard=VCS"))
    assert "project_type=grassland" in page.url and "vintage=2024" in page.url
    assert page.locator(".count").inner_text().startswith("4 batches found")
    rows = page.locator("table.catalog tbody tr")
    assert rows.count() == 4
    for i in range(4):
        assert "Grassland" in rows.nth(i).inner_text()
    # The filtered view is a shareable URL: opening it anew gives the same result.
    again = page.context.new_page()
    again.goto(page.url)
    assert again.locator(".count").inner_text().startswith("4 batches found")
    screenshot(page, "catalog-filtered-en")


def test_bad_filter_is_explained(page):
    response = page.goto("/?lang=en&price_min=abc")
    assert response.status == 400
    assert "must be an amount in yuan" in page.locator(".flash-error").inner_text()
    assert len(page.console_errors) == 1 and "400" in page.console_errors[0]  # the page's own status
    page.console_errors.clear()


def test_open_a_project(page):
    page.goto("/?lang=en&county=aohan&project_type=forestry&sort=project")
    page.locator("a.project-link").first.click()
    page.wait_for_url(re.compile(r"/projects/AH-FOR-01"))
    assert page.locator("h1").inner_text() == "Aohan Banner Afforestation Carbon Sink Project"
    assert page.locator("figure.boundary svg path").count() >= 1
    box = page.locator("figure.boundary svg").bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    assert page.locator("table.history tbody tr").count() == 5
    assert "CCER-14-001-V01" in page.locator(".facts").inner_text()
    screenshot(page, "project-en")


def test_switch_language_and_it_is_remembered(page):
    page.goto("/?standard=CCER")
    page.click("text=English")
    page.wait_for_url(re.compile(r"lang=en"))
    assert "standard=CCER" in page.url  # switching keeps the filters
    assert page.locator("h1").inner_text() == "Issued carbon credits"
    page.locator("a.project-link").first.click()
    assert page.locator("html").get_attribute("lang") == "en"  # remembered without ?lang
    assert "Issuance history" in page.content()
    page.click("text=中文")
    assert page.locator("h2").first.inner_text() in ("签发记录",)
    screenshot(page, "project-zh")


def test_phone_layout(phone):
    phone.goto("/?lang=zh")
    first_row = phone.locator("table.catalog tbody tr").first
    box = first_row.bounding_box()
    assert box["width"] <= 390  # cards fit the screen: no sideways scrolling
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "catalog-phone-zh")
    phone.goto("/projects/KS-WET-01?lang=en")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "project-phone-en")


def test_sign_in_page(page):
    page.goto("/login?lang=en")
    page.fill("input[name=email]", "nobody@example.cn")
    page.fill("input[name=password]", "wrong-password-1")
    page.click("button[type=submit]")
    assert "The e-mail address or the password is wrong." in page.locator(".flash-error").inner_text()
    page.console_errors.clear()  # the 401 of the page itself
    screenshot(page, "login-en")
