"""Every page of the portal, in both languages, on a phone (390 px) and a laptop (1366 px):

- nothing makes the page scroll sideways (a wide table scrolls in its own box, which then
  takes the keyboard focus);
- axe-core finds no WCAG 2 A or AA violation;
- at 1366 px, every chart's text is drawn at 11 px or more.

The pages are enumerated from the application's routes (every GET page; a new one must be added
to ``PARAMS`` or ``NOT_PAGES``), with real numbers from the demo data. One browser, one pass per
width and language; each page is loaded once for all three checks.
"""

import re
import sqlite3
from pathlib import Path

import pytest

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
PASSWORD = "demo-password-2026"
ROLES = {
    "buyer": "buyer@demo.local",
    "operator": "operator@demo.local",
    "sales": "sales@demo.local",
    "county": "county-aohan@demo.local",
}

#: GET routes that are not pages to look at.
NOT_PAGES = {
    "static": "files",
    "core.healthz": "a health check",
    "ops.readyz": "a readiness check (JSON)",
    "ops.prometheus_metrics": "metrics for Prometheus (text)",
    "certificates.register_csv": "a download",
    "certificates.certificate_pdf": "a download",
    "contracts.invoice_pdf": "a download",
    "contracts.contract_pdf": "a download",
    "staff.journal_csv": "a download",
    "staff.audit_csv": "a download",
    "offsets.status": "JSON for the QR page's poll",
    "offsets.guest_status": "JSON for the QR page's poll",
    "registry.export_csv": "a download",
    "registry.export_xlsx": "a download",
    "registry.report_csv": "a download",
    # The demo imports no registry statement; the registry browser test imports one and looks.
    "registry.statement": "a reconciliation report",
    "pipeline.document": "a download",
    "fapiao.pdf": "a download",
}
#: Pages only the sales role may open (contracts.manage).
SALES_ONLY = {"contracts.new_contract", "contracts.edit_contract", "contracts.amend_contract"}
#: Pages that answer 400 by design with the argument given (an unknown token).
EXPECTED_STATUS = {
    "buyers.confirm": 400,
    "payments.test_wallet": 404,
    # A guest order's pages need its secret link (the guest browser test looks at them).
    "offsets.guest_order": 404,
    "offsets.guest_scan": 404,
}


def _one(database, sql, *args):
    with sqlite3.connect(database) as db:
        row = db.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0]


def _demo_ids(database) -> dict:
    """Real numbers from the demo data: the buyer's own order, contract and invoice, a
    certificate with long registry serials, the revoked certificate, a draft contract."""
    buyer_org = _one(database, "SELECT organisation_id FROM users WHERE email = ?", ROLES["buyer"])
    return {
        "project": _one(database, "SELECT code FROM projects ORDER BY id"),
        "certificate": _one(
            database,
            "SELECT c.number FROM certificates c JOIN certificate_blocks cb ON cb.certificate_id = c.id "
            "JOIN batches b ON b.id = cb.batch_id WHERE c.status = 'valid' "
            "ORDER BY length(b.registry_serial_start) DESC, length(c.purpose_detail) DESC, c.id",
        ),
        "revoked": _one(database, "SELECT number FROM certificates WHERE status = 'revoked' ORDER BY id"),
        "order": _one(
            database,
            "SELECT public_id FROM orders WHERE organisation_id = ? AND status = 'fulfilled' ORDER BY id",
            buyer_org,
        ),
        "contract": _one(
            database,
            "SELECT number FROM contracts WHERE organisation_id = ? AND status = 'active' ORDER BY id",
            buyer_org,
        ),
        "draft": _one(database, "SELECT number FROM contracts WHERE status = 'draft' ORDER BY id"),
        "batch": _one(
            database,
            "SELECT b.code FROM batches b JOIN listings l ON l.batch_id = b.id WHERE l.is_active ORDER BY b.id",
        ),
        "instruction": _one(
            database, "SELECT id FROM registry_instructions WHERE status = 'pending' ORDER BY id"
        ),
        "invoice": _one(
            database, "SELECT number FROM invoices WHERE organisation_id = ? ORDER BY id", buyer_org
        ),
        "pipeline": _one(database, "SELECT code FROM pipeline_projects ORDER BY id"),
        "in_review": _one(
            database,
            "SELECT p.code FROM pipeline_projects p JOIN regions r ON r.id = p.region_id "
            "WHERE r.code = 'aohan' AND p.stage = 'assessment' ORDER BY p.id",
        ),
        "parcel": _one(database, "SELECT code FROM parcels ORDER BY id"),
        "in_development": _one(
            database, "SELECT code FROM pipeline_projects WHERE catalog_project_id IS NULL ORDER BY id"
        ),
        "registered": _one(
            database,
            "SELECT c.code FROM pipeline_projects p JOIN projects c ON c.id = p.catalog_project_id ORDER BY p.id",
        ),
        "fapiao": _one(
            database, "SELECT public_id FROM fapiao_requests WHERE organisation_id = ? ORDER BY id", buyer_org
        ),
        "alliance_member": _one(
            database, "SELECT organisation_id FROM alliance_memberships WHERE status = 'member' ORDER BY id"
        ),
        "rfq": _one(
            database, "SELECT number FROM quote_requests WHERE organisation_id = ? ORDER BY id", buyer_org
        ),
    }


#: How to fill each page route's arguments from the demo numbers (``ids``).
PARAMS = {
    "catalog.project": lambda ids: {"code": ids["project"]},
    "certificates.show": lambda ids: {"number": ids["certificate"]},
    "offsets.order": lambda ids: {"public_id": ids["order"]},
    "contracts.buyer_contract": lambda ids: {"number": ids["contract"]},
    "contracts.contract_page": lambda ids: {"number": ids["contract"]},  # the buyer's, after a redirect
    "contracts.buyer_invoice": lambda ids: {"number": ids["invoice"]},
    "contracts.staff_contract": lambda ids: {"number": ids["contract"]},
    "contracts.amend_contract": lambda ids: {"number": ids["contract"]},
    "contracts.edit_contract": lambda ids: {"number": ids["draft"]},
    "contracts.version": lambda ids: {"number": ids["contract"], "version": 1},
    "contracts.staff_invoice": lambda ids: {"number": ids["invoice"]},
    "staff.project": lambda ids: {"code": ids["project"]},
    "registry.instruction": lambda ids: {"instruction_id": ids["instruction"]},
    "staff.edit_project": lambda ids: {"code": ids["project"]},
    "pipeline.project": lambda ids: {"code": ids["pipeline"]},
    "pipeline.parcel": lambda ids: {"code": ids["parcel"]},
    "pipeline.development_project": lambda ids: {"code": ids["in_development"]},
    "buyers.confirm": lambda ids: {"token": "not-a-token"},
    "offsets.scan": lambda ids: {"public_id": ids["order"], "method": "wechat_pay"},  # paid: the order
    "payments.test_wallet": lambda ids: {"token": "not-a-token"},
    "offsets.guest_order": lambda ids: {"public_id": ids["order"], "token": "not-the-token-of-this-order"},
    "offsets.guest_scan": lambda ids: {
        "public_id": ids["order"],
        "token": "not-the-token-of-this-order",
        "method": "wechat_pay",
    },
    "buyers.reset_password": lambda ids: {"token": "not-a-token"},
    "fapiao.ask": lambda ids: {"ref": ids["order"]},  # the buyer's paid order (it has a request)
    "fapiao.show": lambda ids: {"public_id": ids["fapiao"]},
    "alliance.member": lambda ids: {"organisation_id": ids["alliance_member"]},
    "rfq.request_page": lambda ids: {"number": ids["rfq"]},
    "rfq.staff_request": lambda ids: {"number": ids["rfq"]},
}

ESTIMATE = (
    "kind=event&calculate=1&name=Chifeng+Grassland+Forum&start_date=2025-06-18&end_date=2025-06-20"
    "&attendees=200&air_short_haul_share=10&air_short_haul_distance=2000&rail_share=50&rail_distance=600"
    "&car_pkm=3000&car_occupancy=3&hotel_room_nights=150&meals_meat=400&electricity_kwh=5000&grid=national"
)


def _extra_pages(ids) -> list[tuple[str, str]]:
    """States of pages that routes alone do not reach: (role, path)."""
    return [
        (None, f"/certificates/{ids['revoked']}"),
        (None, "/estimate?kind=office"),
        (None, f"/projects/{ids['registered']}"),  # with its development history
        (None, f"/estimate?{ESTIMATE}"),
        ("buyer", "/checkout?quantity=12&purpose=event&beneficiary=Chifeng+Grassland+Forum"),
        ("buyer", f"/checkout?add={ids['batch']}&quantity=3"),  # the order being put together
        (None, f"/guest/checkout?add={ids['batch']}&quantity=3"),  # a visitor's: sign in or guest
        ("operator", f"/certificates/{ids['certificate']}"),  # with the revocation form
        ("operator", f"/certificates/{ids['revoked']}"),
        ("operator", "/pipeline/projects/new?county=aohan"),
        ("county", f"/pipeline/projects/{ids['in_review']}"),  # with the review form
        ("county", "/pipeline/parcels"),
        ("county", "/staff/revenue/"),
    ]


def _role_of(endpoint: str, rule: str) -> str | None:
    if endpoint in SALES_ONLY:
        return "sales"
    if rule.startswith("/county"):
        return "county"
    if rule.startswith(("/staff", "/pipeline")):
        return "operator"
    if rule.startswith(("/account", "/checkout", "/orders", "/fapiao", "/quote-requests")):
        return "buyer"
    return None


@pytest.fixture(scope="module")
def pages(live_database) -> list[tuple[str | None, str, str]]:
    """(role, endpoint, path) of every page, enumerated from the application's routes."""
    from tests.conftest import make_app

    app = make_app("sqlite://")  # for its routes only
    ids = _demo_ids(live_database)
    found, missing = [], []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.rule.startswith("/api/"):
                continue
            if rule.arguments and rule.endpoint not in PARAMS:
                missing.append(rule.rule)
                continue
            values = PARAMS[rule.endpoint](ids) if rule.arguments else {}
            if not set(rule.arguments) <= set(values):
                continue  # the other rule of the same endpoint (e.g. /staff/projects/new)
            path = url_for(rule.endpoint, **{k: v for k, v in values.items() if k in rule.arguments})
            found.append((_role_of(rule.endpoint, rule.rule), rule.endpoint, path))
    assert missing == [], f"pages with no demo arguments in PARAMS: {missing}"
    found += [(role, "extra", path) for role, path in _extra_pages(ids)]
    return sorted(set(found), key=lambda p: (p[0] or "", p[2]))


@pytest.fixture(scope="module")
def signed_in(chromium, live_server) -> dict:
    """Each role's signed-in browser state (cookies), made once."""
    states = {None: None}
    for role, email in ROLES.items():
        context = chromium.new_context(base_url=live_server)
        page = context.new_page()
        page.goto("/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert "/login" not in page.url, f"{email} could not sign in"
        states[role] = context.storage_state()
        context.close()
    return states


#: Horizontal overflow: the page's width, and the elements sticking out to the right that are not
#: inside a box of their own that scrolls.
OVERFLOW = """() => {
  const width = window.innerWidth, out = [];
  if (document.documentElement.scrollWidth <= width) return [document.documentElement.scrollWidth, out];
  for (const el of document.querySelectorAll('body *')) {
    if (el.getBoundingClientRect().right <= width + 0.5) continue;
    let box = el.parentElement, scrolled = false;
    for (; box; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== 'visible' && box.scrollWidth > box.clientWidth) { scrolled = true; break; }
    }
    if (!scrolled) out.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + String(el.className).trim().replace(/\\s+/g, '.') : ''));
  }
  return [document.documentElement.scrollWidth, out.slice(0, 5)];
}"""

#: Boxes that scroll sideways but cannot be reached with the keyboard.
UNREACHABLE_SCROLL = """() => [...document.querySelectorAll('body *')].filter(el =>
  ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth
  && !(el.tabIndex >= 0 && (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
).map(el => el.tagName.toLowerCase() + '.' + el.className)"""

#: Every visible SVG text's size on the screen: its font size times the drawing's scale.
SVG_TEXT = """() => [...document.querySelectorAll('svg text')].filter(t => t.getBBox().width > 0
  && getComputedStyle(t).display !== 'none').map(t => {
    const m = t.getScreenCTM();
    return [t.firstChild ? t.firstChild.textContent.trim() : '', parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b)];
  })"""

AXE_RUN = """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']},
  resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary.replace(/\\s+/g, ' ').slice(0, 160))})))"""


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("width", [390, 1366])
def test_every_page_fits_the_screen_and_passes_axe(chromium, live_server, pages, signed_in, width, lang):
    problems = []
    contexts = {}
    try:
        for role, endpoint, path in pages:
            if role not in contexts:
                contexts[role] = chromium.new_context(
                    base_url=live_server,
                    viewport={"width": width, "height": 900},
                    storage_state=signed_in[role],
                    bypass_csp=True,  # axe-core is injected as an inline script
                )
                # Loaded into every page before its own scripts (once per context, not per page).
                contexts[role].add_init_script(path=str(AXE))
                contexts[role].new_page()
            page = contexts[role].pages[0]
            url = path + ("&" if "?" in path else "?") + f"lang={lang}"
            where = f"{url if len(url) < 90 else url[:87] + '...'} ({role or 'anonymous'})"
            response = page.goto(url)
            if response.status != EXPECTED_STATUS.get(endpoint, 200):
                problems.append(f"{where}: HTTP {response.status}")
                continue
            scroll_width, sticking_out = page.evaluate(OVERFLOW)
            if scroll_width > width:
                problems.append(f"{where}: {scroll_width} px wide: {', '.join(sticking_out)}")
            for box in page.evaluate(UNREACHABLE_SCROLL):
                problems.append(f"{where}: {box} scrolls but takes no keyboard focus or has no label")
            if width >= 1366:
                for text, size in page.evaluate(SVG_TEXT):
                    if size < 11:
                        problems.append(f"{where}: chart text {text!r} is {size:.1f} px")
            for v in page.evaluate(AXE_RUN):
                problems.append(f"{where}: axe {v['id']} ({v['impact']}): {v['help']}")
                problems += [f"    {node}" for node in v["nodes"]]
    finally:
        for context in contexts.values():
            context.close()
    assert not problems, f"{len(problems)} problems at {width} px in {lang}:\n" + "\n".join(problems)


def test_the_enumeration_covers_the_pages_the_trial_found(pages):
    """The pages the new-user trial found too wide or failing axe are among those checked."""
    paths = [path for _role, _endpoint, path in pages]
    assert any(re.fullmatch(r"/certificates/CFC-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", p) for p in paths)
    assert "/staff/journal" in paths and "/staff/dashboard" in paths and "/estimate" in paths
    assert any(p.startswith("/orders/ord_") for p in paths)
    assert len(paths) >= 45
