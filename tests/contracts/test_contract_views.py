"""The contract screens: every page for every role, the forbidden paths, the forms with bad input
(translated refusals, 4xx, nothing changed), and a buyer paying an invoice online."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers.models import Organisation
from portal.certificates import services as certificates
from portal.contracts import services
from portal.contracts.models import Contract, ContractVersion, Delivery, Invoice, InvoicePayment
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from tests import factories
from tests.contracts.helpers import TODAY, day
from tests.contracts.helpers import terms as base_terms
from tests.payments import LiveShop, localstripe, wait_for  # noqa: F401
from tests.visible import visible_text

STEEL, CEMENT, PASSWORD = factories.STEEL_USCC, factories.CEMENT_USCC, factories.PASSWORD

EMAILS = {
    "buyer": "buyer@steel.cn",
    "other_buyer": "buyer@cement.cn",
    "sales": "sales@portal.cn",
    "other_sales": "sales2@portal.cn",
    "operator": "operator@portal.cn",
    "auditor": "auditor@portal.cn",
}
ROLES = ("anonymous", "buyer", "sales", "operator", "auditor")


def terms(**change) -> dict:
    return base_terms(**{"title": "钢铁承购 2026–2028", "start": day(-60), **change})


class Desk:
    """Two buyers, the staff, stock, and contracts in every state."""

    def __init__(self):
        self.steel, self.cement = factories.steel_and_cement()
        factories.user(EMAILS["buyer"], organisation=self.steel, org_admin=True)
        factories.user(EMAILS["other_buyer"], organisation=self.cement, org_admin=True)
        self.sales = factories.user(EMAILS["sales"], role="sales")
        self.other_sales = factories.user(EMAILS["other_sales"], role="sales")
        factories.user(EMAILS["operator"], role="operator")
        factories.user(EMAILS["auditor"], role="auditor")
        factories.batch(quantity=3000, code="STOCK-2022", vintage=2022)
        self.active, _ = services.create_draft(self.steel, terms(), owner=self.sales, actor="t")
        services.sign(self.active, actor="t")
        delivery, _ = services.deliver(self.active, 1, 20, actor="t")
        self.invoice = delivery.invoice
        self.draft, _ = services.create_draft(self.steel, terms(title="草稿"), owner=self.sales, actor="t")
        self.theirs, _ = services.create_draft(
            self.cement, terms(title="水泥承购"), owner=self.other_sales, actor="t"
        )
        services.sign(self.theirs, actor="t")
        their_delivery, _ = services.deliver(self.theirs, 1, 10, actor="t")
        self.their_invoice = their_delivery.invoice
        db.session.commit()


@pytest.fixture
def desk(app):
    return Desk()


def sign_in(client, role):
    if role != "anonymous":
        response = client.post("/login", data={"email": EMAILS[role], "password": PASSWORD})
        assert response.status_code == 302, role
    return client


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Contract, ContractVersion, Delivery, Invoice, InvoicePayment, LedgerEntry, AuditEvent)
    )


def form(**change) -> dict:
    """The draft form as a browser posts it (two tranche rows filled, ten empty)."""
    data = {
        "organisation": STEEL,
        "org_uscc": "",
        "title": "Steel offtake 2026–2028",
        "start": day(-10),
        "end": day(800),
        "price_per_t": "70.00",
        "escalation_pct_per_year": "",
        "year_prices": "",
        "standard": "",
        "vintage_from": "",
        "vintage_to": "",
        "delivery": "holding",
        "beneficiary": "",
        "payment_days": "30",
        "total_quantity": "",
    }
    rows = [(day(5), "60"), (day(400), "80")] + [("", "")] * 10
    for i, (due, quantity) in enumerate(rows):
        data[f"tranches-{i}-due"], data[f"tranches-{i}-quantity"] = due, quantity
    data.update(change)
    return data


# --- who may open what ---------------------------------------------------------------------------

STAFF = {"sales", "operator", "auditor"}


def _pages(desk):
    active, invoice = desk.active.number, desk.invoice.number
    return [
        ("/staff/contracts", STAFF),
        ("/staff/contracts?scope=all&status=active", STAFF),
        ("/staff/contracts?status=draft", STAFF),
        ("/staff/contracts/new", {"sales"}),
        (f"/staff/contracts/{active}", STAFF),
        (f"/staff/contracts/{desk.draft.number}", STAFF),
        (f"/staff/contracts/{desk.draft.number}/edit", {"sales"}),
        (f"/staff/contracts/{active}/amend", {"sales"}),
        (f"/staff/contracts/{active}/versions/1", STAFF),
        ("/staff/contracts/planning", STAFF),
        (f"/staff/invoices/{invoice}", STAFF),
        ("/staff/dashboard", STAFF),
        ("/account/contracts", {"buyer"}),
        (f"/account/contracts/{active}", {"buyer"}),
        (f"/account/invoices/{invoice}", {"buyer"}),
        (f"/invoices/{invoice}.pdf", STAFF | {"buyer"}),
        (f"/contracts/{active}.pdf", STAFF | {"buyer"}),
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pages_render_for_those_allowed_and_no_one_else(desk, client, role, lang):
    sign_in(client, role)
    for path, allowed in _pages(desk):
        response = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
        if role in allowed:
            assert response.status_code == 200, (role, path, response.status_code)
        elif role == "anonymous":
            assert response.status_code == 302 and "/login" in response.headers["Location"], path
        else:
            assert response.status_code == 403, (role, path, response.status_code)


@pytest.mark.parametrize("role", ("anonymous", "buyer", "other_buyer", "sales", "operator", "auditor"))
def test_navigation_links(desk, client, role):
    sign_in(client, role)
    page = client.get("/?lang=en").get_data(as_text=True)
    assert ("/staff/contracts" in page) == (role in STAFF)
    assert ("/account/contracts" in page) == (role in ("buyer", "other_buyer"))


def test_a_buyer_sees_only_its_own_signed_contracts_and_invoices(desk, client):
    sign_in(client, "other_buyer")
    mine = client.get("/account/contracts?lang=en").get_data(as_text=True)
    assert desk.theirs.number in mine and desk.active.number not in mine
    for path in (
        f"/account/contracts/{desk.active.number}",
        f"/account/contracts/{desk.draft.number}",
        f"/account/invoices/{desk.invoice.number}",
        f"/invoices/{desk.invoice.number}.pdf",
        f"/contracts/{desk.active.number}.pdf",
        "/account/contracts/OC-1999-0001",
        "/account/invoices/INV-1999-000001",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/account/invoices/{desk.invoice.number}/pay").status_code == 404
    assert client.post(f"/account/invoices/{desk.invoice.number}/pay-test").status_code == 404

    client.post("/logout")
    sign_in(client, "buyer")
    mine = client.get("/account/contracts?lang=en").get_data(as_text=True)
    assert desk.active.number in mine and desk.draft.number not in mine and desk.theirs.number not in mine
    # Its own draft, even by number, is the sales team's work in progress.
    assert client.get(f"/account/contracts/{desk.draft.number}").status_code == 404
    # A draft ended before it was signed (terminated, as drafts were before they could be
    # deleted) never becomes the buyer's either.
    desk.draft.status = "terminated"
    db.session.commit()
    assert client.get(f"/account/contracts/{desk.draft.number}").status_code == 404
    assert desk.draft.number not in client.get("/account/contracts").get_data(as_text=True)
    page = client.get(f"/account/contracts/{desk.active.number}?lang=en").get_data(as_text=True)
    assert desk.invoice.number in page and "Delivery schedule" in page
    assert "Uncovered" not in page  # supply planning is the operator's business


@pytest.mark.parametrize("role", ("anonymous", "buyer", "operator", "auditor"))
def test_only_sales_change_contracts(desk, client, role):
    sign_in(client, role)
    n = desk.active.number
    before = counts()
    for path, data in (
        ("/staff/contracts/new", form()),
        (f"/staff/contracts/{desk.draft.number}/edit", form()),
        (f"/staff/contracts/{desk.draft.number}/sign", {}),
        (f"/staff/contracts/{n}/deliver", {"tranche": "1", "quantity": "5"}),
        (f"/staff/contracts/{n}/reserve", {}),
        (f"/staff/contracts/{n}/amend", {**form(), "reason": "x"}),
        (f"/staff/contracts/{n}/terminate", {"reason": "x"}),
    ):
        response = client.post(path, data=data)
        if role == "anonymous":
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        else:
            assert response.status_code == 403, (role, path)
    assert counts() == before


@pytest.mark.parametrize("role", ROLES)
def test_bank_payments_are_recorded_by_sales_and_operators_only(desk, client, role):
    sign_in(client, role)
    invoice = desk.invoice.number
    data = {"amount": "100.00", "received_on": day(0), "reference": f"ICBC-{role}"}
    first = client.post(f"/staff/invoices/{invoice}/payments", data=data)
    second = client.post(
        f"/staff/contracts/{desk.active.number}/payments",
        data={**data, "invoice": invoice, "reference": f"ABC-{role}"},
    )
    paid = db.session.scalar(select(func.count()).select_from(InvoicePayment))
    if role in ("sales", "operator"):
        assert first.status_code == second.status_code == 303 and paid == 2
    else:
        expected = 302 if role == "anonymous" else 403
        assert first.status_code == second.status_code == expected and paid == 0


# --- the sales team's work ------------------------------------------------------------------------


def test_sales_draft_edit_sign_deliver_and_get_paid_on_the_web(desk, client):
    sign_in(client, "sales")
    response = client.post(
        "/staff/contracts/new?lang=en",
        data=form(
            escalation_pct_per_year="2.5",
            year_prices="2027=75.00\n",
            project_types=["forestry", "grassland"],
            total_quantity="140",
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    contract = db.session.scalar(select(Contract).order_by(Contract.id.desc()))
    assert response.headers["Location"].endswith(f"/staff/contracts/{contract.number}")
    assert contract.status == "draft" and contract.owner_id == desk.sales.id
    assert contract.organisation_id == desk.steel.id and contract.escalation_bp == 250
    assert contract.project_types == "forestry,grassland" and contract.year_prices == '{"2027": "75.00"}'
    assert [(t.seq, t.quantity) for t in contract.tranches] == [(1, 60), (2, 80)]

    # The edit form comes back filled in; a changed price is saved.
    page = client.get(f"/staff/contracts/{contract.number}/edit?lang=en").get_data(as_text=True)
    assert 'value="Steel offtake 2026–2028"' in page and "2027=75.00" in page and 'value="2.5"' in page
    response = client.post(
        f"/staff/contracts/{contract.number}/edit",
        data=form(price_per_t="72.50", org_uscc=CEMENT, organisation="", project_types=["forestry"]),
    )
    assert response.status_code == 303
    assert contract.price_per_t == Decimal("72.50") and contract.organisation_id == desk.steel.id

    assert client.post(f"/staff/contracts/{contract.number}/sign").status_code == 303
    assert contract.status == "active" and contract.version == 1
    page = client.get(f"/staff/contracts/{contract.number}?lang=en").get_data(as_text=True)
    assert "is signed" in page and "Deliver a tranche" in page

    response = client.post(
        f"/staff/contracts/{contract.number}/deliver",
        data={"tranche": "1", "quantity": "60", "confirm": "yes"},
    )
    assert response.status_code == 303
    invoice = db.session.scalar(select(Invoice).filter_by(contract_id=contract.id))
    assert invoice.quantity == 60 and invoice.amount == Decimal("4350.00")
    page = client.get(f"/staff/contracts/{contract.number}?lang=en").get_data(as_text=True)
    assert f"invoice {invoice.number} issued" in page and invoice.number in page

    response = client.post(
        f"/staff/contracts/{contract.number}/payments",
        data={"invoice": invoice.number, "amount": "4,000.00", "received_on": day(0), "reference": "ICBC-1"},
    )
    assert response.status_code == 303 and invoice.outstanding == Decimal("350.00")
    response = client.post(
        f"/staff/invoices/{invoice.number}/payments",
        data={"amount": "350", "received_on": day(-1), "reference": "ICBC-2"},
    )
    assert response.status_code == 303 and invoice.status == "paid"
    page = client.get(f"/staff/invoices/{invoice.number}?lang=en").get_data(as_text=True)
    assert (
        "full amount was received" in page
        and "ICBC-1" in page
        and "ICBC-2" in page
        and "Bank transfer" in page
    )

    # The history: version 1 as signed, and the audit trail of the contract and its invoice.
    page = client.get(f"/staff/contracts/{contract.number}/versions/1?lang=en").get_data(as_text=True)
    assert "72.50" in page and "Forestry" in page and STEEL in page
    assert client.get(f"/staff/contracts/{contract.number}/versions/2").status_code == 404
    page = client.get(f"/staff/contracts/{contract.number}?lang=en").get_data(as_text=True)
    for action in ("contract.draft", "contract.edit", "contract.sign", "contract.deliver", "invoice.payment"):
        assert action in page
    assert EMAILS["sales"] in page  # the actor, by e-mail


def test_a_double_submitted_form_drafts_and_delivers_once(desk, client):
    sign_in(client, "sales")
    data = form(idempotency_key="k-123")
    assert client.post("/staff/contracts/new", data=data).status_code == 303
    before = counts()
    assert client.post("/staff/contracts/new", data=data).status_code == 303
    assert counts() == before
    n = desk.active.number
    delivery = {"tranche": "1", "quantity": "5", "idempotency_key": "d-1", "confirm": "yes"}
    assert client.post(f"/staff/contracts/{n}/deliver", data=delivery).status_code == 303
    before = counts()
    response = client.post(f"/staff/contracts/{n}/deliver?lang=en", data=delivery, follow_redirects=True)
    assert "already recorded" in response.get_data(as_text=True) and counts() == before


@pytest.mark.parametrize(
    "change, message, status",
    [
        ({"total_quantity": "150"}, "The tranches add up to 140 t, not the contract&#39;s 150 t.", 400),
        ({"tranches-1-due": day(900)}, "outside the term", 400),
        ({"tranches-0-due": day(-20)}, "outside the term", 400),
        ({"price_per_t": "0"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "-70"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": ""}, "must be an amount in yuan above zero", 400),
        ({"tranches-0-quantity": "0"}, "a whole number of tonnes above zero", 400),
        ({"tranches-0-quantity": "1e3"}, "a whole number of tonnes above zero", 400),
        ({"tranches-0-quantity": ""}, "a whole number of tonnes above zero", 400),
        (
            {
                "tranches-0-due": "",
                "tranches-0-quantity": "",
                "tranches-1-due": "",
                "tranches-1-quantity": "",
            },
            "Give at least one tranche.",
            400,
        ),
        ({"end": day(-30)}, "The term must end after it starts.", 400),
        ({"start": "2026-02-30"}, "must be a date", 400),
        ({"title": ""}, "is required", 400),
        ({"year_prices": "2027 70"}, "Write one price per line as YEAR=PRICE", 400),
        ({"year_prices": "1999=70.00"}, "must name a year of the term", 400),
        ({"escalation_pct_per_year": "60"}, "percentage from 0 to 50", 400),
        ({"standard": "GS"}, "The standard must be CCER or VCS.", 400),
        ({"project_types": ["coal"]}, "Unknown project type.", 400),
        ({"counties": ["atlantis"]}, "Unknown county.", 400),
        ({"vintage_from": "2024", "vintage_to": "2021"}, "vintage window must end after it starts", 400),
        ({"vintage_from": "abc"}, "must be a year from 2000 to 2100", 400),
        ({"delivery": "post"}, "Delivery must be to the holding or retired.", 400),
        ({"payment_days": "-1"}, "Payment terms must be 0 to 365 days.", 400),
        ({"organisation": "", "org_uscc": ""}, "There is no such organisation.", 400),
        ({"organisation": "", "org_uscc": "91350100M000100Y44"}, "There is no such organisation.", 400),
        ({"beneficiary": "evil\u202ename"}, "control or direction-override characters", 400),
        # Decimal() reads all of these as numbers; an amount is ASCII digits and two decimals.
        ({"price_per_t": "\u0663"}, "must be an amount in yuan above zero", 400),  # Arabic-Indic 3
        ({"price_per_t": "\u0667\u0660.\u0660\u0660"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "\uff17\uff10"}, "must be an amount in yuan above zero", 400),  # full width
        ({"price_per_t": "1E+2"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "7e1"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "Infinity"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "7_0"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "7 0"}, "must be an amount in yuan above zero", 400),
        ({"price_per_t": "7,0"}, "must be an amount in yuan above zero", 400),
        ({"year_prices": "2027=\u0667\u0660"}, "must be an amount in yuan above zero", 400),
        ({"year_prices": "2027=7E+1"}, "must be an amount in yuan above zero", 400),
        ({"escalation_pct_per_year": "\u0662"}, "percentage from 0 to 50", 400),
        ({"escalation_pct_per_year": "2E0"}, "percentage from 0 to 50", 400),
    ],
)
def test_bad_drafts_are_refused_with_the_reason_and_create_nothing(desk, client, change, message, status):
    sign_in(client, "sales")
    before = counts()
    response = client.post("/staff/contracts/new?lang=en", data=form(**change))
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert message in page and 'class="flash flash-error"' in page
    assert counts() == before
    # What was typed is still there to correct.
    assert 'value="Steel offtake 2026–2028"' in page or change.get("title") == ""


def test_refusals_are_shown_in_chinese_too(desk, client):
    sign_in(client, "sales")
    response = client.post("/staff/contracts/new?lang=zh", data=form(price_per_t="0"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'lang="zh-CN"' in page and 'class="flash flash-error"' in page
    assert 'aria-invalid="true"' in page  # the price field is marked


def test_a_signed_contract_is_changed_only_by_amendment(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    response = client.get(f"/staff/contracts/{n}/edit?lang=en")
    assert response.status_code == 409
    assert "A signed contract can only be changed by an amendment." in response.get_data(as_text=True)
    before = counts()
    response = client.post(f"/staff/contracts/{n}/edit?lang=en", data=form(price_per_t="10.00"))
    assert response.status_code == 409 and "only be changed by an amendment" in response.get_data(
        as_text=True
    )
    assert counts() == before and desk.active.price_per_t == Decimal("70.00")
    response = client.post(f"/staff/contracts/{n}/sign?lang=en")
    assert response.status_code == 409 and "Only a draft can be signed." in response.get_data(as_text=True)


def test_amendments_make_versions_and_need_a_reason(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    page = client.get(f"/staff/contracts/{n}/amend?lang=en").get_data(as_text=True)
    assert f'value="{day(5)}"' in page and 'value="60"' in page  # prefilled with the current terms
    amended = form(
        start=day(-60), **{"tranches-0-quantity": "60"}, delivery="retire", beneficiary="赤峰钢铁碳中和"
    )
    before = counts()
    response = client.post(f"/staff/contracts/{n}/amend?lang=en", data={**amended, "reason": ""})
    assert response.status_code == 400 and "Reason is required." in response.get_data(as_text=True)
    assert counts() == before
    unchanged = form(start=day(-60), title=desk.active.title)
    response = client.post(f"/staff/contracts/{n}/amend?lang=en", data={**unchanged, "reason": "无"})
    assert response.status_code == 400 and "The amendment changes nothing." in response.get_data(as_text=True)
    # Tranche 1 has 20 t delivered: it must keep its due date.
    moved = form(start=day(-60), **{"tranches-0-due": day(6)})
    response = client.post(f"/staff/contracts/{n}/amend?lang=en", data={**moved, "reason": "改期"})
    assert response.status_code == 400 and "has 20 t delivered" in response.get_data(as_text=True)
    assert counts() == before

    response = client.post(f"/staff/contracts/{n}/amend", data={**amended, "reason": "买方要求注销交付"})
    assert response.status_code == 303
    assert desk.active.version == 2 and desk.active.delivery_mode == "retire"
    page = client.get(f"/staff/contracts/{n}/versions/2?lang=en").get_data(as_text=True)
    assert "买方要求注销交付" in page and "Retired for the buyer" in page
    # Who made the version, by name (the e-mail of the signed-in sales user), not the actor's code.
    assert "user:" not in visible_text(page) and 'title="user:' in page
    page = client.get(f"/staff/contracts/{n}/versions/1?lang=en").get_data(as_text=True)
    assert "To the buyer's holding" in page
    # Only an active contract is amended.
    assert client.get(f"/staff/contracts/{desk.draft.number}/amend").status_code == 409


@pytest.mark.parametrize(
    "data, message, status",
    [
        ({"tranche": "1", "quantity": "41"}, "Tranche 1 has 40 t left to deliver.", 409),
        ({"tranche": "1", "quantity": "0"}, "a whole number of tonnes above zero", 400),
        ({"tranche": "1", "quantity": "-3"}, "a whole number of tonnes above zero", 400),
        ({"tranche": "1", "quantity": "x"}, "a whole number of tonnes above zero", 400),
        ({"tranche": "2", "quantity": "5"}, "it can be delivered from 30 days before", 409),
        ({"tranche": "9", "quantity": "5"}, "There is no such tranche.", 404),
        ({"tranche": "", "quantity": "5"}, "There is no such tranche.", 404),
        (
            {"tranche": "1", "quantity": "5", "mode": "post"},
            "Delivery must be to the holding or retired.",
            400,
        ),
        (
            {"tranche": "1", "quantity": "5", "mode": "retire", "beneficiary": "x\u202e"},
            "direction-override",
            400,
        ),
    ],
)
def test_bad_deliveries_are_refused_and_change_nothing(desk, client, data, message, status):
    sign_in(client, "sales")
    before = counts()
    response = client.post(f"/staff/contracts/{desk.active.number}/deliver?lang=en", data=data)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert counts() == before


def test_without_a_quantity_the_rest_is_delivered_and_a_finished_tranche_is_a_409(desk, client):
    sign_in(client, "sales")
    url = f"/staff/contracts/{desk.active.number}/deliver?lang=en"
    asked = client.post(url, data={"tranche": "1", "quantity": ""})
    assert asked.status_code == 200 and "Deliver 40 t of tranche 1" in visible_text(
        asked.get_data(as_text=True)
    )
    assert client.post(url, data={"tranche": "1", "quantity": "", "confirm": "yes"}).status_code == 303
    db.session.expire_all()
    assert desk.active.tranches[0].remaining == 0
    before = counts()
    # A second tab, or the form sent again without its key: the tranche is finished.
    for quantity in ("", "5"):
        response = client.post(url, data={"tranche": "1", "quantity": quantity})
        assert response.status_code == 409
        assert "Tranche 1 is already delivered in full." in response.get_data(as_text=True)
    zh = client.post(url.replace("lang=en", "lang=zh"), data={"tranche": "1", "quantity": ""})
    assert zh.status_code == 409 and "第 1 交付批次已全部交付。" in zh.get_data(as_text=True)
    assert counts() == before


def test_one_delivery_may_be_retired_for_an_event_though_the_contract_delivers_to_the_holding(desk, client):
    sign_in(client, "sales")
    data = {
        "tranche": "1",
        "quantity": "5",
        "mode": "retire",
        "beneficiary": "2026 赤峰马拉松",
        "confirm": "yes",
    }
    assert client.post(f"/staff/contracts/{desk.active.number}/deliver", data=data).status_code == 303
    delivery = db.session.scalar(select(Delivery).order_by(Delivery.id.desc()))
    assert delivery.mode == "retire" and delivery.certificate.beneficiary == "2026 赤峰马拉松"
    assert desk.active.delivery_mode == "holding"


def test_nothing_is_delivered_for_an_ended_contract(desk, client):
    sign_in(client, "sales")
    response = client.post(f"/staff/contracts/{desk.draft.number}/deliver?lang=en", data={"tranche": "1"})
    assert response.status_code == 409 and "Only an active contract delivers." in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    "data, message, status",
    [
        ({"amount": "1400.01"}, "1400.00 yuan are outstanding", 409),
        ({"amount": "0"}, "must be an amount in yuan above zero", 400),
        ({"amount": "12.345"}, "must be an amount in yuan above zero", 400),
        ({"amount": "lots"}, "must be an amount in yuan above zero", 400),
        ({"amount": "1e400"}, "must be an amount in yuan above zero", 400),
        ({"amount": "1E+2"}, "must be an amount in yuan above zero", 400),
        ({"amount": "\u0663"}, "must be an amount in yuan above zero", 400),  # Arabic-Indic 3
        ({"amount": "\uff11\uff10\uff10"}, "must be an amount in yuan above zero", 400),  # full width
        ({"amount": "1_00"}, "must be an amount in yuan above zero", 400),
        ({"amount": "NaN"}, "must be an amount in yuan above zero", 400),
        ({"amount": "1,00"}, "must be an amount in yuan above zero", 400),
        ({"amount": "999999999"}, "1400.00 yuan are outstanding", 409),
        ({"received_on": day(1)}, "cannot be received in the future", 400),
        ({"received_on": "yesterday"}, "must be a date", 400),
        ({"reference": ""}, "is required", 400),
    ],
)
def test_bad_bank_payments_are_refused_and_change_nothing(desk, client, data, message, status):
    sign_in(client, "operator")
    before = counts()
    posted = {"amount": "100.00", "received_on": day(0), "reference": "ICBC-9", **data}
    response = client.post(f"/staff/invoices/{desk.invoice.number}/payments?lang=en", data=posted)
    assert response.status_code == status and message in response.get_data(as_text=True)
    response = client.post(
        f"/staff/contracts/{desk.active.number}/payments?lang=en",
        data={**posted, "invoice": desk.invoice.number},
    )
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert counts() == before


def test_a_payment_names_one_of_the_contracts_invoices(desk, client):
    sign_in(client, "sales")
    response = client.post(
        f"/staff/contracts/{desk.active.number}/payments?lang=en",
        data={"invoice": desk.their_invoice.number, "amount": "1", "received_on": day(0), "reference": "X"},
    )
    assert response.status_code == 400 and "Choose one of the contract" in response.get_data(as_text=True)
    assert desk.their_invoice.paid_amount == 0


def test_a_large_invoice_is_paid_by_bank_transfer(desk, client):
    """Whole invoices exceed the 100,000 yuan a price per tonne may be."""
    contract, _ = services.create_draft(
        desk.steel, terms(tranches=[{"due": day(3), "quantity": 2000}]), owner=desk.sales, actor="t"
    )
    services.sign(contract, actor="t")
    delivery, _ = services.deliver(contract, 1, 2000, actor="t")
    db.session.commit()
    invoice = delivery.invoice
    assert invoice.amount == Decimal("140000.00")
    sign_in(client, "sales")
    response = client.post(
        f"/staff/invoices/{invoice.number}/payments",
        data={"amount": "140,000.00", "received_on": day(0), "reference": "ICBC-BIG"},
    )
    assert response.status_code == 303 and invoice.status == "paid"
    assert contract.status == "completed"


def test_terminate_needs_a_reason_and_releases_the_reserve(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    before = counts()
    response = client.post(f"/staff/contracts/{n}/terminate?lang=en", data={"reason": " "})
    assert response.status_code == 400 and "Reason is required." in response.get_data(as_text=True)
    assert counts() == before and desk.active.status == "active"
    done = client.post(f"/staff/contracts/{n}/terminate", data={"reason": "买方破产", "confirm": "yes"})
    assert done.status_code == 303
    assert desk.active.status == "terminated" and services.reserved(desk.active) == 0
    response = client.post(f"/staff/contracts/{n}/terminate?lang=en", data={"reason": "again"})
    assert response.status_code == 409 and "already ended" in response.get_data(as_text=True)
    response = client.post(f"/staff/contracts/{n}/reserve?lang=en")
    assert response.status_code == 409
    # The buyer still sees it, with the reason.
    client.post("/logout")
    sign_in(client, "buyer")
    page = client.get(f"/account/contracts/{n}?lang=en").get_data(as_text=True)
    assert "买方破产" in page and "Terminated" in page


def test_a_pending_buyer_cannot_sign(desk, client):
    desk.steel.status = "pending"
    db.session.commit()
    sign_in(client, "sales")
    before = counts()
    response = client.post(f"/staff/contracts/{desk.draft.number}/sign?lang=en")
    assert response.status_code == 403
    assert "Offtake contracts need an approved organisation." in response.get_data(as_text=True)
    assert counts() == before and desk.draft.status == "draft"


def test_reserve_now_tops_up_from_new_stock(desk, client):
    sign_in(client, "sales")
    n = desk.active.number
    assert services.reserved(desk.active) == 120  # all it still lacks
    response = client.post(f"/staff/contracts/{n}/reserve?lang=en", follow_redirects=True)
    assert "Nothing more could be reserved" in response.get_data(as_text=True)


def test_the_staff_list_filters_and_shows_what_is_due_and_overdue(desk, client):
    late, _ = services.create_draft(
        desk.steel,
        terms(title="逾期合同", start=day(-90), tranches=[{"due": day(-35), "quantity": 10}]),
        owner=desk.sales,
        actor="t",
    )
    services.sign(late, actor="t")
    delivery, _ = services.deliver(late, 1, 4, actor="t", today=TODAY - timedelta(days=40))
    db.session.commit()
    overdue = delivery.invoice
    sign_in(client, "sales")
    page = client.get("/staff/contracts?lang=en").get_data(as_text=True)  # mine, by default
    assert desk.active.number in page and late.number in page and desk.theirs.number not in page
    assert desk.draft.number in page  # in the drafts panel
    assert overdue.number in page and "Late" in page
    page = client.get("/staff/contracts?scope=all&lang=en").get_data(as_text=True)
    assert desk.theirs.number in page
    page = client.get("/staff/contracts?scope=all&status=draft&lang=en").get_data(as_text=True)
    assert desk.draft.number in page and desk.theirs.title not in page
    client.post("/logout")
    sign_in(client, "auditor")
    page = client.get("/staff/contracts?lang=en").get_data(as_text=True)  # all, by default
    assert desk.theirs.number in page and overdue.number in page
    assert "New draft" not in page


def test_planning_and_the_dashboard_show_coverage(desk, client):
    sign_in(client, "operator")
    page = client.get("/staff/contracts/planning?lang=en").get_data(as_text=True)
    plan = services.plan()
    assert str(plan.years[0].year) in page and "<svg" in page and "CCER" in page
    assert "Supply planning" in page
    page = client.get("/staff/dashboard?lang=en").get_data(as_text=True)
    assert "Offtake contract coverage" in page and 'aria-labelledby="coverage-title"' in page


def test_invoice_pdf_for_staff_and_the_owning_buyer(desk, client):
    sign_in(client, "auditor")
    response = client.get(f"/invoices/{desk.invoice.number}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    client.post("/logout")
    sign_in(client, "buyer")
    assert client.get(f"/invoices/{desk.invoice.number}.pdf").status_code == 200
    assert client.get(f"/invoices/{desk.their_invoice.number}.pdf").status_code == 404
    assert client.get("/invoices/INV-1999-000001.pdf").status_code == 404


def test_forms_carry_a_csrf_token_and_posts_without_one_are_refused(csrf_app):
    Desk()
    client = csrf_app.test_client()
    assert factories.sign_in_with_token(client, EMAILS["sales"]).status_code == 302
    contract = db.session.scalar(select(Contract).filter_by(status="draft"))
    page = client.get(f"/staff/contracts/{contract.number}").get_data(as_text=True)
    assert page.count('name="csrf_token"') >= 2
    assert 'name="csrf_token"' in client.get("/staff/contracts/new").get_data(as_text=True)
    assert client.post(f"/staff/contracts/{contract.number}/sign").status_code == 400
    assert client.post("/staff/contracts/new", data=form()).status_code == 400
    db.session.rollback()
    assert contract.status == "draft"


# --- paying online --------------------------------------------------------------------------------


@pytest.fixture
def shop(app, desk, localstripe):  # noqa: F811
    live = LiveShop(app, localstripe)
    yield live
    live.close()


def test_a_buyer_pays_an_invoice_online_with_the_test_card(shop, desk, client):
    sign_in(client, "buyer")
    n = desk.invoice.number
    page = client.get(f"/account/invoices/{n}?lang=en").get_data(as_text=True)
    assert "Pay CN¥1,400.00 online" in page
    response = client.post(f"/account/invoices/{n}/pay")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/account/invoices/{n}?pay=1"
    )
    assert desk.invoice.payment_intent_id.startswith("pi_")
    page = client.get(f"/account/invoices/{n}?pay=1&lang=en").get_data(as_text=True)
    assert "with the test card" in page

    # The test card: the invoice is paid when the signed webhook arrives.
    response = client.post(f"/account/invoices/{n}/pay-test", data={"card": "visa"})
    assert response.headers["Location"].endswith(f"/account/invoices/{n}?paid=1")
    wait_for(lambda: db.session.get(Invoice, desk.invoice.id).status == "paid")
    page = client.get(f"/account/invoices/{n}?paid=1&lang=en").get_data(as_text=True)
    assert "full amount was received" in page and "Online payment" in page and "waiting" not in page
    # Paid: nothing more to pay.
    response = client.post(f"/account/invoices/{n}/pay?lang=en")
    assert response.status_code == 409 and "is paid" in response.get_data(as_text=True)
    assert client.post(f"/account/invoices/{n}/pay-test").status_code == 409


def test_a_declined_card_charges_nothing_and_says_so(shop, desk, client):
    sign_in(client, "buyer")
    n = desk.invoice.number
    assert client.post(f"/account/invoices/{n}/pay").status_code == 303
    response = client.post(f"/account/invoices/{n}/pay-test?lang=en", data={"card": "declined"})
    assert response.status_code == 303 and "paid=1" not in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The card was declined." in page and "waiting" not in page
    assert desk.invoice.status == "open" and desk.invoice.paid_amount == 0


def test_the_invoice_page_waits_for_the_webhook(desk, client, app):
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_SECRET_KEY="sk_test_x")
    desk.invoice.payment_intent_id = "pi_started"  # the buyer started paying online
    db.session.commit()
    sign_in(client, "buyer")
    page = client.get(f"/account/invoices/{desk.invoice.number}?paid=1&lang=en").get_data(as_text=True)
    assert "waiting for confirmation" in page and 'http-equiv="refresh"' in page
    assert "Pay online" not in page
    # The payment service unreachable: a clear 503, nothing changed.
    response = client.post(f"/account/invoices/{desk.invoice.number}/pay?lang=en")
    assert response.status_code == 503 and "Online payment is not available" in response.get_data(
        as_text=True
    )


def test_with_real_stripe_keys_the_payment_element_is_shown(desk, client, app, monkeypatch):
    from portal.payments import services as payments

    app.config.update(STRIPE_API_BASE="", STRIPE_SECRET_KEY="sk_live_x", STRIPE_PUBLISHABLE_KEY="pk_live_x")
    desk.invoice.payment_intent_id, desk.invoice.client_secret = "pi_123", "pi_123_secret_abc"
    db.session.commit()
    monkeypatch.setattr(
        payments,
        "retrieve",
        lambda _id: payments.Intent("pi_123", "pi_123_secret_abc", "requires_payment_method", 140000, "cny"),
    )
    sign_in(client, "buyer")
    assert client.post(f"/account/invoices/{desk.invoice.number}/pay").status_code == 303
    response = client.get(f"/account/invoices/{desk.invoice.number}?pay=1")
    page = response.get_data(as_text=True)
    assert 'id="payment-element"' in page and 'data-secret="pi_123_secret_abc"' in page
    assert "https://js.stripe.com" in response.headers["Content-Security-Policy"]
    assert "https://js.stripe.com" not in client.get("/account/contracts").headers["Content-Security-Policy"]


def test_organisation_select_lists_approved_buyers_only(desk, client):
    db.session.add(Organisation(name_zh="待审企业", uscc="91110000600037341L", sector="steel"))
    db.session.commit()
    sign_in(client, "sales")
    page = client.get("/staff/contracts/new?lang=en").get_data(as_text=True)
    assert STEEL in page and CEMENT in page and "待审企业" not in page


@pytest.mark.parametrize(
    "change",
    [
        {"project_types": ["x" * 300]},
        {"counties": [""] * 60},
        {"tranches-99999-due": day(5), "tranches-99999-quantity": "5"},
        {"tranches-0-quantity": "9" * 40},
        {"price_per_t": "1e999999"},
        {"escalation_pct_per_year": "NaN"},
        {"year_prices": "=\n2027="},
        {"vintage_from": "٢٠٢٤"},
        {"payment_days": "3.5"},
        {"start": "0001-01-01", "end": "9999-12-31"},
        {"title": "x" * 5000},
        {"organisation": "x" * 500},
    ],
)
def test_odd_input_never_makes_a_server_error(desk, client, change):
    sign_in(client, "sales")
    before = counts()
    for path in ("/staff/contracts/new", f"/staff/contracts/{desk.draft.number}/edit"):
        response = client.post(path, data=form(**change))
        assert response.status_code < 500, (path, response.status_code)
    response = client.post(
        f"/staff/contracts/{desk.active.number}/amend", data={**form(**change), "reason": "x"}
    )
    assert response.status_code < 500
    if not any(k.startswith("tranches-99999") or k == "organisation" for k in change):  # valid otherwise
        assert counts() == before


def test_unknown_numbers_are_404(desk, client):
    sign_in(client, "sales")
    for path in (
        "/staff/contracts/OC-1999-0001",
        "/staff/contracts/" + "x" * 300,
        f"/staff/contracts/{desk.active.number}/versions/99",
        "/staff/invoices/INV-1999-000001",
        "/invoices/nope.pdf",
        "/contracts/OC-1999-0001.pdf",
        f"/contracts/{desk.draft.number}.pdf",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/staff/contracts/OC-1999-0001/sign").status_code == 404
    assert client.post("/staff/invoices/INV-1999-000001/payments", data={"amount": "1"}).status_code == 404


# --- what a delivery's certificate publishes -----------------------------------------------------

SECRET_TITLE = "机密承购 Confidential offtake at 58 yuan"


def _public_views(client, number) -> dict[str, str]:
    """Everything the public gets for a certificate: its page, JSON (with the signed payload),
    PDF text and the register (page and CSV)."""
    from io import BytesIO

    from pypdf import PdfReader

    client.post("/logout")
    pdf = client.get(f"/certificates/{number}.pdf")
    assert pdf.status_code == 200
    views = {
        "page": client.get(f"/certificates/{number}?lang=en").get_data(as_text=True),
        "page_zh": client.get(f"/certificates/{number}?lang=zh").get_data(as_text=True),
        "json": client.get(f"/api/v1/certificates/{number}").get_data(as_text=True),
        "pdf": "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf.data)).pages),
        "register": client.get("/register?lang=en").get_data(as_text=True),
        "register_csv": client.get("/register.csv").get_data(as_text=True),
    }
    assert number in views["register"] and number in views["register_csv"]
    return views


def test_a_delivery_certificate_publishes_neither_the_contract_number_nor_its_title(desk, client):
    contract, _ = services.create_draft(
        desk.steel,
        terms(title=SECRET_TITLE, delivery="retire", beneficiary="赤峰钢铁碳中和"),
        owner=desk.sales,
        actor="t",
    )
    services.sign(contract, actor="t")
    delivery, _ = services.deliver(contract, 1, 15, actor="t")
    db.session.commit()
    certificate = delivery.certificate
    assert certificate.source == "contract" and certificate.source_ref == contract.number  # kept, privately

    views = _public_views(client, certificate.number)
    for name, text in views.items():
        assert contract.number not in text, name
        assert "Confidential offtake" not in text and "机密承购" not in text, name
    # The beneficiary and the purpose are public, and so is the kind of source.
    assert "赤峰钢铁碳中和" in views["page"] and "Voluntary offset" in views["page"]
    assert "delivered under an offtake contract" in views["page"] and "依承购合同交付" in views["page_zh"]
    assert "Delivered under an offtake contract" in views["pdf"] and "赤峰钢铁碳中和" in views["pdf"]
    document = json.loads(certificate.payload)
    assert document["source"] == "contract" and document["purpose_detail"] == ""
    assert certificates.verify(certificate).valid

    # The buyer sees the link to its contract on its own list; staff on the contract's page.
    sign_in(client, "buyer")
    mine = client.get("/account/certificates?lang=en").get_data(as_text=True)
    assert f'href="/account/contracts/{contract.number}"' in mine and certificate.number in mine
    sign_in(client, "sales")
    staff = client.get(f"/staff/contracts/{contract.number}").get_data(as_text=True)
    assert certificate.number in staff


def _certificate_as_signed_before(organisation, contract):
    """A contract delivery's certificate as ``retire_into_certificates`` wrote it before: the
    contract's number, tranche and title as purpose details, no "source" in the payload."""
    from portal.buyers import services as buyers
    from portal.certificates import numbers, signing
    from portal.certificates.models import Certificate, CertificateBlock, Purpose, Source
    from portal.ledger import services as ledger
    from portal.ledger.models import Batch
    from portal.timeutil import utcnow

    retired_at = utcnow().replace(microsecond=0)
    number = numbers.new_number(retired_at.year)
    movement = ledger.retire(
        5,
        source=buyers.holding_account(organisation),
        reference=f"certificate:{number}",
        actor="t",
    )
    batches = {b.id: b for b in db.session.scalars(select(Batch))}
    detail = f"{contract.number} · 1/2 · {SECRET_TITLE}"
    document = certificates.payload(
        number, organisation, movement.ranges, batches, "测试钢铁", Purpose.VOLUNTARY, detail, retired_at
    )
    text, key = signing.canonical(document), signing.signer()
    certificate = Certificate(
        number=number,
        organisation_id=organisation.id,
        quantity=5,
        beneficiary="测试钢铁",
        purpose=Purpose.VOLUNTARY,
        purpose_detail=detail,
        source=Source.CONTRACT,
        source_ref=contract.number,
        movement_id=movement.id,
        retired_at=retired_at,
        actor="t",
        payload=text,
        signature=key.sign(text),
        key_id=key.key_id,
    )
    db.session.add(certificate)
    db.session.flush()
    for r in movement.ranges:
        db.session.add(
            CertificateBlock(
                certificate_id=certificate.id,
                batch_id=r.batch_id,
                serial_start=r.serial_start,
                serial_end=r.serial_end,
            )
        )
    db.session.commit()
    return certificate


def test_an_older_delivery_certificate_still_verifies_and_no_longer_shows_its_contract(desk, client):
    """Before, a delivery's certificate signed "<number> · <tranche>/<tranches> · <title>" as its
    purpose details: such certificates keep their signature; pages, the PDF text and the register
    leave the details out (the signed payload, offered for checking, still holds them)."""
    from portal.certificates import pdf

    contract = desk.active
    old = _certificate_as_signed_before(desk.steel, contract)
    assert "source" not in json.loads(old.payload)

    check = certificates.verify(old)
    assert check.valid and check.document["purpose_detail"].startswith(contract.number)
    views = _public_views(client, old.number)
    api = json.loads(views["json"])
    assert api["signature_valid"] is True and api["purpose_detail"] == ""
    assert api["payload"] == old.payload  # unchanged: it still verifies
    for name in ("pdf", "register", "register_csv"):
        assert contract.number not in views[name] and "Confidential offtake" not in views[name], name
    facts = views["page"].split('<pre class="payload">')[0]
    assert contract.number not in facts and "Confidential offtake" not in facts
    assert "Valid" in views["page"] and "delivered under an offtake contract" in facts
    # Its PDF still carries the payload as signed, and checks as genuine.
    embedded = pdf.extract(client.get(f"/certificates/{old.number}.pdf").data)
    checked = certificates.check_document(embedded.payload, embedded.signature, embedded.key_id)
    assert checked.signature_ok and checked.matches_record
    assert checked.shown["purpose_detail"] == ""
