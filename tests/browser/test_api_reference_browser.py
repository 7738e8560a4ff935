"""The API reference at /api/docs, in Chromium: both languages, desktop and a phone's width, and
nothing fetched from another site (it must work with no internet)."""

import pytest

from tests.browser.conftest import ARTIFACTS


@pytest.mark.parametrize(
    ("lang", "heading", "orders"), [("zh", "接口参考", "请求正文"), ("en", "API reference", "Request body")]
)
def test_the_reference_reads_offline_in_both_languages(page, phone, live_server, lang, heading, orders):
    for view, name in ((page, "desktop"), (phone, "phone")):
        elsewhere = []
        view.on(
            "request",
            lambda r, seen=elsewhere: seen.append(r.url) if not r.url.startswith(live_server) else None,
        )
        view.goto(f"/api/docs?lang={lang}")
        assert view.locator("h1", has_text=heading).is_visible()
        operation = view.locator("#post--orders")
        operation.scroll_into_view_if_needed()
        assert operation.locator("h4", has_text=orders).is_visible()
        assert operation.locator("pre.api-example").is_visible()
        # The schema names link to their definitions, further down the same page.
        view.locator("#post--orders a[href='#schema-Order']").first.click()
        assert view.locator("#schema-Order").is_visible()
        width = view.evaluate("document.documentElement.scrollWidth")
        assert width <= view.viewport_size["width"], (name, width)
        assert elsewhere == [], elsewhere
        # The page is long: the part in view (the order call's example), not all of it.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        operation.scroll_into_view_if_needed()
        view.screenshot(path=str(ARTIFACTS / f"api-reference-{lang}-{name}.png"))
