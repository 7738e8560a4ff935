"""Where each role lands after signing in: its own work, unless it asked for a page (on this site).
The buyer's account page with its holding, orders and contracts; the staff account page."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.buyers import services as buyers
from portal.buyers import uscc
from portal.contracts import services as contracts
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from portal.offsets import services as orders
from tests import factories
from tests.contracts.helpers import TODAY
from tests.contracts.test_contract_views import EMAILS, Desk


@pytest.fixture
def desk(app):
    desk = Desk()
    desk.order, _ = orders.create_order(
        desk.steel,
        3,
        beneficiary="测试钢铁",
        purpose="voluntary",
        actor="t",
        user=buyers.find_user(EMAILS["buyer"]),
    )
    # Registered, not yet approved: in the operator's queue.
    buyers.create_organisation(name_zh="待审企业", uscc=PENDING_USCC, sector="steel")
    db.session.commit()
    return desk


PENDING_USCC = "91110108MA0000000" + uscc.check_character("91110108MA0000000")


def sign_in(client, role, next_=None, lang="en"):
    path = f"/login?lang={lang}" + (f"&next={quote(next_, safe='')}" if next_ is not None else "")
    return client.post(path, data={"email": EMAILS[role], "password": factories.PASSWORD})


#: Where each role lands, and what the page shows there (in English and in Chinese).
LANDINGS = {
    "buyer": ("/account", ["Holding", "Our orders", "Our offtake contracts", "Invoices to pay"],
              ["持有的碳信用", "本单位订单", "我们的承购合同", "待付发票"]),
    "sales": ("/staff/contracts", ["Due and late tranches", "Overdue invoices"], ["到期", "逾期发票"]),
    "operator": ("/staff/dashboard", ["Waiting for staff", "Organisations awaiting approval",
                                      "Orders awaiting payment", "Inventory for sale"],
                 ["待处理", "待审批的机构", "待付款的订单", "在售库存"]),
    "auditor": ("/staff/", ["Latest ledger journal entries", "Latest audit events"],
                ["最新登记簿流水", "最新审计事件"]),
}  # fmt: skip


@pytest.mark.parametrize("role", LANDINGS)
def test_each_role_lands_on_its_own_work(desk, client, role):
    path, english, chinese = LANDINGS[role]
    response = sign_in(client, role)
    assert response.status_code == 302 and response.headers["Location"] == path
    page = client.get(path + "?lang=en")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for words in english:
        assert words in text, (role, words)
    text = client.get(path + "?lang=zh").get_data(as_text=True)
    for words in chinese:
        assert words in text, (role, words)


@pytest.mark.parametrize("role", LANDINGS)
def test_a_next_page_on_this_site_wins(desk, client, role):
    response = sign_in(client, role, next_="/certificates/register?year=2026")
    assert response.headers["Location"] == "/certificates/register?year=2026"


@pytest.mark.parametrize("role", LANDINGS)
@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", ""])
def test_a_next_page_elsewhere_is_refused_for_the_roles_own(desk, client, role, target):
    response = sign_in(client, role, next_=target)
    assert response.status_code == 302 and response.headers["Location"] == LANDINGS[role][0]


def test_the_buyers_account_page_links_its_holding_orders_and_contracts(desk, client):
    sign_in(client, "buyer")
    page = client.get("/account?lang=en").get_data(as_text=True)
    assert "Total: 20 t" in page  # the contract's delivery, in the holding
    links = set(re.findall(r'href="([^"]+)"', page))
    for href in (
        f"/orders/{desk.order.public_id}",
        "/account/orders",
        "/checkout",
        f"/account/contracts/{desk.active.number}",
        f"/account/invoices/{desk.invoice.number}",
        "/account/contracts",
    ):
        assert href in links, href
        assert client.get(href).status_code == 200, href
    # Another organisation's contract and invoice are not there.
    assert desk.theirs.number not in page and desk.their_invoice.number not in page
    assert desk.draft.number not in page  # nor its own unsigned draft


def test_an_overdue_invoice_is_flagged_on_the_buyers_account_page(desk, client):
    desk.invoice.issued_on = TODAY - timedelta(days=40)
    desk.invoice.due_on = TODAY - timedelta(days=10)
    db.session.commit()
    sign_in(client, "buyer")
    page = client.get("/account?lang=en").get_data(as_text=True)
    row = page[page.index(f"/account/invoices/{desk.invoice.number}") :].split("</tr>")[0]
    assert "Overdue" in row


def _account_links(page: str) -> str:
    found = re.search(r'<p class="account-links">(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found[1]).strip() if found else ""


@pytest.mark.parametrize("role", ["buyer", "sales", "operator", "auditor"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_account_page_has_no_stray_separator(desk, client, role, lang):
    sign_in(client, role)
    page = client.get(f"/account?lang={lang}").get_data(as_text=True)
    links = _account_links(page)
    assert links and not links.startswith("·") and not links.endswith("·") and "· ·" not in links
    if role != "buyer":  # staff find the way to their own work from their account page
        assert f'href="{LANDINGS[role][0]}"' in page


def test_the_dashboard_queues_count_what_waits(desk, client):
    desk.invoice.issued_on = TODAY - timedelta(days=40)
    desk.invoice.due_on = TODAY - timedelta(days=10)
    db.session.commit()
    sign_in(client, "operator")
    page = client.get("/staff/dashboard?lang=en").get_data(as_text=True)
    queues = page[page.index('id="queues"') :].split("</div>\n</div>")[0]
    pending = re.search(r'href="/staff/organisations\?status=pending"><strong>(\d+)</strong>', queues)
    awaiting = re.search(r'href="/staff/orders\?status=awaiting_payment"><strong>(\d+)</strong>', queues)
    overdue = re.search(r'href="/staff/invoices\?status=overdue"><strong>(\d+)</strong>', queues)
    assert (pending[1], awaiting[1], overdue[1]) == ("1", "1", "1")
    assert f"Overdue invoices: CN¥{desk.invoice.amount:,} outstanding" in queues
    for href in ("/staff/organisations?status=pending", "/staff/orders?status=awaiting_payment",
                 "/staff/invoices?status=overdue"):  # fmt: skip
        assert client.get(href).status_code == 200


def test_the_auditor_starts_on_the_latest_journal_entries_and_audit_events(desk, client):
    for _ in range(5):  # more journal entries than the page shows
        contracts.deliver(desk.active, 1, 1, actor="t")
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) > 10
    sign_in(client, "auditor")
    page = client.get("/staff/?lang=en").get_data(as_text=True)
    journal = page[page.index('id="latest-journal"') : page.index('id="latest-audit"')]
    audit = page[page.index('id="latest-audit"') :]
    assert "STOCK-2022" in journal and 'href="/staff/journal"' in journal
    assert "contract.deliver" in audit and 'href="/staff/audit"' in audit
    assert journal.count("<tr>") == 1 + 10  # the header and the latest ten
