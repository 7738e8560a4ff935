"""Browser tests: the demo portal served by gunicorn on loopback, driven by Debian's Chromium.

Skipped, with the reason shown, where Chromium or Playwright is missing (``.ci/run`` makes
sure both are there). Screenshots go to ``tests/artifacts/``.
"""

import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.payments import free_port, localstripe, stop  # noqa: F401  (the embedded payment backend)

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
BIN = Path(sys.executable).parent
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


OPERATOR = ("operator@demo.cn", "staff-pw-2026x")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the items
def pytest_collection_modifyitems(items):
    """The browser tests share one served portal (its demo data, changed as they go), one
    localstripe and one Chromium: under pytest-xdist (``--dist loadgroup``) they run together on
    one worker, in their order, as they do alone."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def live_database(live_server):
    """The live server's SQLite file, for reading what it wrote (the e-mail outbox)."""
    return live_server.database


class LiveServer(str):
    database: Path


WEBHOOK_SECRET = "whsec_browser_tests"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, localstripe):  # noqa: F811
    """The portal with the demo data set, served by gunicorn (2 workers) on a free port, paying
    through localstripe, whose signed webhooks come back to it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: browser tests skipped (scripts/ensure-chromium installs it)")
    instance = tmp_path_factory.mktemp("live")
    env = dict(
        os.environ,
        FLASK_APP="portal",
        PORTAL_INSTANCE_PATH=str(instance),
        PORTAL_DATABASE_URL=f"sqlite:///{instance}/portal.db",
        PORTAL_SECRET_KEY="browser-tests",
        PORTAL_LOG_LEVEL="WARNING",
        PORTAL_MAIL_OUTBOX_PAGE="1",  # as make run serves the demo: the outbox page is checked too
        STRIPE_API_BASE=localstripe,
        STRIPE_SECRET_KEY="sk_test_browser",
        STRIPE_PUBLISHABLE_KEY="pk_test_browser",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    for command in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run([str(BIN / "flask"), *command], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(
        [str(BIN / "flask"), "users", "create", OPERATOR[0], "--role", "operator"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        input=OPERATOR[1] + "\n",
        text=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "portal:create_app()"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = LiveServer(f"http://127.0.0.1:{port}")
    base.database = instance / "portal.db"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        data = urllib.parse.urlencode({"url": f"{base}/stripe/webhook", "secret": WEBHOOK_SECRET}).encode()
        urllib.request.urlopen(f"{localstripe}/_config/webhooks/portal", data=data, timeout=5).read()
        yield base
    finally:
        stop(server)


@pytest.fixture(scope="session")
def chromium(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = page.console_errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    # A Content-Security-Policy violation or a script error is a defect, even if the page looks fine.
    assert errors == []


@pytest.fixture
def phone(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield context.new_page()
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
