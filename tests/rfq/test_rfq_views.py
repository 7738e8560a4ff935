"""The request-for-quote screens: who may open and post what (a buyer only its organisation's
requests, only sales and the operator act), the form with bad input (a translated refusal, 4xx,
nothing saved), the offer to ask for a quote where an order is refused, and the staff desk
turning a request into a contract draft."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.contracts.models import Contract
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.rfq import services
from portal.rfq.models import QuoteRequest, QuoteRequestMessage, RfqStatus
from tests import factories
from tests.rfq.helpers import EMAILS, Desk, day, wanted
from tests.visible import visible_text

ROLES = ("anonymous", "buyer", "other_buyer", "sales", "operator", "auditor")


@pytest.fixture
def desk(app):
    desk = Desk()
    desk.rfq = services.create_request(desk.steel, desk.buyer, wanted(), actor="t")
    desk.theirs = services.create_request(
        desk.cement,
        desk.other_buyer,
        wanted(quantity="800", tranches=[{"due": day(90), "quantity": "800"}], schedule="one_off"),
        actor="t",
    )
    db.session.commit()
    return desk


def sign_in(client, role):
    if role != "anonymous":
        response = client.post("/login", data={"email": EMAILS[role], "password": factories.PASSWORD})
        assert response.status_code == 302, role
    return client


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (QuoteRequest, QuoteRequestMessage, Contract, AuditEvent, OutboxMessage)
    )


def form(**change) -> dict:
    """The request form as a browser posts it (two schedule rows filled, six empty)."""
    data = {
        "quantity": "5000",
        "standards": ["CCER"],
        "project_types": ["forestry"],
        "projects": "",
        "vintage_from": "2021",
        "vintage_to": "2023",
        "schedule": "yearly",
        "price_expectation": "",
        "contact_name": "王经理",
        "contact_email": "procurement@steel.cn",
        "contact_phone": "",
        "notes": "",
    }
    rows = [(day(60), "2000"), (day(430), "3000")] + [("", "")] * 6
    for i, (due, quantity) in enumerate(rows):
        data[f"tranches-{i}-due"], data[f"tranches-{i}-quantity"] = due, quantity
    data.update(change)
    return data


def pages(desk):
    mine, theirs = desk.rfq.number, desk.theirs.number
    return [
        ("/quote-requests/new", {"buyer": 200, "other_buyer": 200}),
        ("/account/quote-requests", {"buyer": 200, "other_buyer": 200}),
        (
            f"/quote-requests/{mine}",
            {"buyer": 200, "other_buyer": 404, "sales": 302, "operator": 302, "auditor": 302},
        ),
        (
            f"/quote-requests/{theirs}",
            {"buyer": 404, "other_buyer": 200, "sales": 302, "operator": 302, "auditor": 302},
        ),
        ("/staff/quote-requests", {"sales": 200, "operator": 200, "auditor": 200}),
        (f"/staff/quote-requests/{mine}", {"sales": 200, "operator": 200, "auditor": 200}),
        ("/quote-requests/RFQ-2020-9999", {r: 404 for r in ROLES}),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_who_may_open_what(desk, client, role):
    sign_in(client, role)
    for path, allowed in pages(desk):
        status = client.get(path).status_code
        if role == "anonymous":
            assert status == 302, path
        else:
            assert status == allowed.get(role, 403), (path, role, status)


def test_a_buyer_sees_only_its_own_requests_listed(desk, client):
    sign_in(client, "buyer")
    page = client.get("/account/quote-requests").get_data(as_text=True)
    assert desk.rfq.number in page and desk.theirs.number not in page


def posts(desk):
    n = desk.rfq.number
    return [
        (f"/staff/quote-requests/{n}/reply", {"body": "hello"}),
        (f"/staff/quote-requests/{n}/assign", {"assigned_to": str(desk.sales.id)}),
        (f"/staff/quote-requests/{n}/decline", {"reason": "no"}),
        (f"/staff/quote-requests/{n}/convert", {"price_per_t": "68.00"}),
    ]


@pytest.mark.parametrize("role", ["buyer", "other_buyer", "auditor"])
def test_buyers_and_the_auditor_take_no_staff_action(desk, client, role):
    sign_in(client, role)
    before = counts()
    for path, data in posts(desk):
        assert client.post(path, data=data).status_code == 403, path
    assert counts() == before
    assert db.session.get(QuoteRequest, desk.rfq.id).status == RfqStatus.NEW


def test_another_organisation_cannot_reply_on_a_request(desk, client):
    sign_in(client, "other_buyer")
    before = counts()
    assert (
        client.post(f"/quote-requests/{desk.rfq.number}/reply", data={"body": "mine now"}).status_code == 404
    )
    assert counts() == before
    sign_in(client, "sales")
    assert client.post(f"/quote-requests/{desk.rfq.number}/reply", data={"body": "x"}).status_code == 403


def test_a_buyer_sends_a_request_from_the_form(desk, client):
    sign_in(client, "buyer")
    response = client.post("/quote-requests/new", data=form())
    assert response.status_code == 303
    rfq = db.session.scalar(select(QuoteRequest).order_by(QuoteRequest.id.desc()))
    assert response.location.endswith(f"/quote-requests/{rfq.number}")
    assert rfq.organisation == desk.steel and rfq.requested_by == desk.buyer
    assert [t.quantity for t in rfq.tranches] == [2000, 3000]
    page = client.get(response.location + "?lang=en").get_data(as_text=True)
    assert "Not yet answered" in page and "5,000 t" in page and "Yearly tranches" in page


BAD_FORMS = [
    ({"quantity": "0"}, "数量须为", "The quantity must be a whole number"),
    ({"quantity": "-3"}, "数量须为", "The quantity must be a whole number"),
    ({"quantity": "10000000000"}, "数量须为", "The quantity must be a whole number"),
    ({"tranches-1-quantity": "2999"}, "各交付批次合计 4999 吨", "The tranches add up to 4,999 t"),
    ({"tranches-0-due": day(-1)}, "交付日期必须在今天之后", "delivery dates must be in the future"),
    ({"vintage_from": "2024", "vintage_to": "2021"}, "年份范围颠倒", "The vintage range is reversed"),
]


@pytest.mark.parametrize("change, zh, en", BAD_FORMS)
def test_a_bad_form_is_refused_translated_with_nothing_saved(desk, client, change, zh, en):
    sign_in(client, "buyer")
    before = counts()
    chinese = client.post("/quote-requests/new", data=form(**change))
    english = client.post("/quote-requests/new?lang=en", data=form(**change))
    assert chinese.status_code == english.status_code == 400
    assert zh in visible_text(chinese.get_data(as_text=True))
    text = visible_text(english.get_data(as_text=True))
    assert en in text or en.replace("4,999", "4999") in text
    assert counts() == before


def test_odd_forms_never_make_a_server_error(desk, client):
    sign_in(client, "buyer")
    for change in (
        {"quantity": "１２"},
        {"standards": ["X" * 5000]},
        {"schedule": "weekly"},
        {"tranches-0-due": "tomorrow"},
        {"tranches-99-due": day(5)},
        {"price_expectation": "NaN"},
        {"contact_email": "@"},
        {"projects": "A," * 300},
    ):
        status = client.post("/quote-requests/new", data=form(**change)).status_code
        assert status == 400, change
    for path, data in posts(desk):
        sign_in(client, "sales")
        assert client.post(path, data={k: "\u202e" for k in data}).status_code in (303, 400), path


def test_the_form_is_prefilled_from_the_link(desk, client):
    sign_in(client, "buyer")
    page = client.get(
        "/quote-requests/new?quantity=150&projects=P1&standard=CCER&type=forestry&from=order"
    ).get_data(as_text=True)
    assert 'name="quantity" type="text" value="150"' in page or 'value="150"' in page
    assert 'name="projects" type="text" value="P1"' in page or 'value="P1"' in page
    assert re.search(r'value="CCER"[^>]*checked|checked[^>]*value="CCER"', page)
    assert "buyer@steel.cn" in page


def test_an_order_above_the_limit_offers_a_quote_prefilled(desk, client):
    sign_in(client, "buyer")
    response = client.post(
        "/checkout",
        data={
            "batch": ["CCER-2022-A"],
            "quantity": ["150"],
            "price": ["68.00"],
            "beneficiary": "测试钢铁",
            "purpose": "event",
            "purpose_detail": "",
            "action": "hold",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "贵机构被限制为每笔订单 100 吨。" in visible_text(page)
    link = re.search(r'href="(/quote-requests/new\?[^"]+)"', page)
    assert link, page
    assert "quantity=150" in link.group(1) and "from=order" in link.group(1)


def test_an_order_above_the_stock_offers_a_quote(desk, client):
    sign_in(client, "buyer")
    desk.steel.status = "approved"
    db.session.commit()
    page = client.get("/checkout?add=CCER-2022-A&quantity=500").get_data(as_text=True)
    link = re.search(r'href="(/quote-requests/new\?[^"]+)"', page)
    assert link and "quantity=500" in link.group(1).replace("&amp;", "&")


def test_the_catalog_project_and_account_pages_link_to_the_form(desk, client):
    project = desk.batch.project.code
    assert "/quote-requests/new?from=catalog" in client.get("/").get_data(as_text=True)
    assert f"/quote-requests/new?projects={project}" in client.get(f"/projects/{project}").get_data(
        as_text=True
    )
    sign_in(client, "buyer")
    assert "/quote-requests/new" in client.get("/account").get_data(as_text=True)


def test_staff_filter_the_list_by_status_and_salesperson(desk, client):
    services.assign(desk.theirs, str(desk.other_sales.id), actor="t")
    db.session.commit()
    sign_in(client, "sales")
    text = client.get("/staff/quote-requests?status=new").get_data(as_text=True)
    assert desk.rfq.number in text and desk.theirs.number not in text
    text = client.get("/staff/quote-requests?status=discussion").get_data(as_text=True)
    assert desk.rfq.number not in text and desk.theirs.number in text
    text = client.get(f"/staff/quote-requests?assigned={desk.other_sales.id}").get_data(as_text=True)
    assert desk.rfq.number not in text and desk.theirs.number in text
    text = client.get("/staff/quote-requests?assigned=none").get_data(as_text=True)
    assert desk.rfq.number in text and desk.theirs.number not in text
    assert client.get("/staff/quote-requests?status=bogus&assigned=%00x").status_code in (200, 400)


def test_staff_reply_then_convert_and_the_buyer_sees_it(desk, client):
    n = desk.rfq.number
    sign_in(client, "sales")
    assert (
        client.post(
            f"/staff/quote-requests/{n}/reply", data={"body": "可以供应，价格 68 元/吨。"}
        ).status_code
        == 303
    )
    response = client.post(f"/staff/quote-requests/{n}/convert", data={"price_per_t": "68.00"})
    assert response.status_code == 303
    contract = db.session.scalar(select(Contract))
    assert response.location.endswith(f"/staff/contracts/{contract.number}")
    draft_page = client.get(response.location).get_data(as_text=True)
    assert f"/staff/quote-requests/{n}" in draft_page  # the draft links back
    staff_page = client.get(f"/staff/quote-requests/{n}").get_data(as_text=True)
    assert f"/staff/contracts/{contract.number}" in staff_page
    # Converting again: refused on the page, translated, nothing changed.
    before = counts()
    again = client.post(f"/staff/quote-requests/{n}/convert?lang=en", data={"price_per_t": "70.00"})
    assert again.status_code == 409 and "was already turned into contract draft" in visible_text(
        again.get_data(as_text=True)
    )
    assert counts() == before
    client.post("/logout")
    sign_in(client, "buyer")
    page = visible_text(client.get(f"/quote-requests/{n}?lang=en").get_data(as_text=True))
    assert "Converted to a contract draft" in page and "可以供应" in page
    assert contract.number not in page  # an unsigned draft is the sales team's work in progress
    assert "sales@portal.cn" not in page  # the buyer hears from the sales team, not from whom


def test_a_bad_conversion_price_is_shown_on_the_desk(desk, client):
    sign_in(client, "operator")
    before = counts()
    response = client.post(
        f"/staff/quote-requests/{desk.rfq.number}/convert?lang=en", data={"price_per_t": "-1"}
    )
    assert response.status_code == 400
    assert "must be an amount in yuan above zero" in visible_text(response.get_data(as_text=True))
    assert counts() == before


def test_decline_needs_a_reason_and_the_buyer_reads_it(desk, client):
    n = desk.rfq.number
    sign_in(client, "operator")
    before = counts()
    assert client.post(f"/staff/quote-requests/{n}/decline", data={"reason": ""}).status_code == 400
    assert counts() == before
    assert (
        client.post(f"/staff/quote-requests/{n}/decline", data={"reason": "暂无该年份的库存"}).status_code
        == 303
    )
    client.post("/logout")
    sign_in(client, "buyer")
    page = client.get(f"/quote-requests/{n}").get_data(as_text=True)
    assert "暂无该年份的库存" in page and "已拒绝" in page
    assert client.post(f"/quote-requests/{n}/reply", data={"body": "为什么？"}).status_code == 409


def test_the_catalog_offers_a_quote_only_to_those_who_may_ask_for_one(desk, client):
    """Guests (asked to sign in) and buyers see the offer on the catalog and the project page;
    staff, who may not ask, do not (the link led them to a refusal). The project page's body is
    kept per kind of viewer, so one kind's page is never served to the other."""
    project = desk.batch.project.code
    seen = {}
    for role in ("anonymous", "buyer", "sales", "auditor", "anonymous"):
        client.post("/logout")
        sign_in(client, role)
        for path in ("/?lang=en", f"/projects/{project}?lang=en"):
            html = client.get(path).get_data(as_text=True)
            seen[(role, path)] = "/quote-requests/new" in html
    for path in ("/?lang=en", f"/projects/{project}?lang=en"):
        assert seen[("anonymous", path)] and seen[("buyer", path)], path
        assert not seen[("sales", path)] and not seen[("auditor", path)], path
