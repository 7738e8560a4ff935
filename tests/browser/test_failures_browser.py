"""The page of failed background work in Chromium, in both languages and 390 px wide: the
operator reads a failed run's error and runs the job again, which the audit log records."""

import re
import sqlite3

from tests.browser.conftest import screenshot

OPERATOR = ("operator@demo.local", "demo-password-2026")


def _sign_in(page, lang):
    page.goto(f"/login?lang={lang}")
    page.fill("input[name=email]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/staff"))


def test_the_operator_reads_a_failure_and_runs_the_job_again(live_server, page, phone):
    with sqlite3.connect(live_server.database) as conn:
        conn.execute(
            "INSERT INTO job_runs (name, slot, status, started_at, finished_at, outcome, worker, duration_ms)"
            " VALUES ('contracts.overdue', 'browser-test', 'failed', '2026-12-03 07:00:00',"
            " '2026-12-03 07:00:01', 'OSError: the SMTP relay refused the connection', 'web1:77', 1000)"
        )
    _sign_in(page, "en")
    page.goto("/staff/?lang=en")
    page.click("text=Failed background work")
    assert page.locator("h1").inner_text() == "Failed background work"
    row = page.locator("#failed-runs tbody tr", has_text="contracts.overdue")
    assert "the SMTP relay refused the connection" in row.inner_text()
    screenshot(page, "failures-en")
    row.locator("button", has_text="Run again").click()
    assert (
        "The job contracts.overdue will run again in a moment." in page.locator(".flash").first.inner_text()
    )

    _sign_in(phone, "zh")
    phone.goto("/staff/failures?lang=zh")
    assert phone.locator("h1").inner_text() == "失败的后台工作"
    card = phone.locator("#failed-runs tbody tr", has_text="contracts.overdue")
    assert card.locator("button", has_text="重新运行").is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    screenshot(phone, "failures-zh-390")
    with sqlite3.connect(live_server.database) as conn:
        audited = conn.execute(
            "SELECT actor, subject_type FROM audit_events WHERE action = 'job.rerun'"
        ).fetchall()
    assert len(audited) == 1 and audited[0][1] == "job_run" and audited[0][0].startswith("user:")
