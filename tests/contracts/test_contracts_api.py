"""``/api/v1/contracts…``: sales keys draft, sign and deliver; buyer keys read their own."""

import json

import pytest
from sqlalchemy import func, select

from portal.contracts import services
from portal.contracts.models import Contract, Delivery
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.payments import services as payments
from tests import factories
from tests.contracts.helpers import day
from tests.payments import LiveShop, localstripe, wait_for  # noqa: F401

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC
bearer = factories.bearer


BODY = {
    "org_uscc": STEEL,
    "title": "钢铁承购 2026–2027",
    "start": day(0),
    "end": day(500),
    "price_per_t": "68.50",
    "escalation_pct_per_year": "2",
    "standard": "CCER",
    "tranches": [{"due": day(3), "quantity": 30}, {"due": day(10), "quantity": 20}],
    "delivery": "holding",
}


@pytest.fixture
def keys(app):
    factories.steel_and_cement()
    factories.user("sales@portal.cn", role="sales")
    factories.user("auditor@portal.cn", role="auditor")
    factories.user("operator@portal.cn", role="operator")
    factories.batch(quantity=100, code="OLD-2021", vintage=2021)
    db.session.commit()
    return {
        "sales": factories.api_key(app, "--user", "sales@portal.cn"),
        "auditor": factories.api_key(app, "--user", "auditor@portal.cn"),
        "operator": factories.api_key(app, "--user", "operator@portal.cn"),
        "steel": factories.api_key(app, "--org", STEEL),
        "cement": factories.api_key(app, "--org", CEMENT),
    }


def _create(client, keys, body=None, headers=None):
    return client.post(
        "/api/v1/contracts", json=body or BODY, headers={**bearer(keys["sales"]), **(headers or {})}
    )


def test_draft_sign_deliver_and_read_through_the_api(client, keys):
    created = _create(client, keys)
    assert created.status_code == 201, created.get_json()
    contract = created.get_json()["contract"]
    number = contract["number"]
    assert contract["status"] == "draft" and contract["contracted"] == 50
    assert contract["owner"] == "sales@portal.cn" and contract["price_per_t"] == {
        "amount": "68.50",
        "currency": "CNY",
    }

    signed = client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    assert signed.status_code == 200
    body = signed.get_json()["contract"]
    assert body["status"] == "active" and body["reserved"] == 50 and body["uncovered"] == 0
    assert [t["reserved"] for t in body["tranches"]] == [30, 20]

    delivered = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json={"quantity": 30}, headers=bearer(keys["sales"])
    )
    assert delivered.status_code == 201, delivered.get_json()
    delivery = delivered.get_json()["delivery"]
    assert delivery["quantity"] == 30 and delivery["blocks"] == [{"batch_code": "OLD-2021", "quantity": 30}]
    assert delivery["invoice"]["amount"] == {"amount": "2055.00", "currency": "CNY"}
    # Without a quantity, what is left of the tranche.
    rest = client.post(f"/api/v1/contracts/{number}/tranches/2/deliver", headers=bearer(keys["sales"]))
    assert rest.status_code == 201 and rest.get_json()["delivery"]["quantity"] == 20

    mine = client.get(f"/api/v1/contracts/{number}", headers=bearer(keys["steel"])).get_json()["contract"]
    assert mine["delivered"] == 50 and [t["delivered"] for t in mine["tranches"]] == [30, 20]
    assert [t["invoiced"]["amount"] for t in mine["tranches"]] == ["2055.00", "1370.00"]
    assert [t["paid"]["amount"] for t in mine["tranches"]] == ["0.00", "0.00"]
    assert len(mine["deliveries"]) == 2
    listed = client.get("/api/v1/contracts", headers=bearer(keys["steel"])).get_json()["items"]
    assert [c["number"] for c in listed] == [number]
    holdings = client.get("/api/v1/holdings", headers=bearer(keys["steel"])).get_json()
    assert holdings["total"] == 50
    for staff in ("auditor", "operator", "sales"):
        assert client.get(f"/api/v1/contracts/{number}", headers=bearer(keys[staff])).status_code == 200
    assert verify_ledger().ok


def test_buyers_see_only_their_own_signed_contracts(client, keys):
    number = _create(client, keys).get_json()["contract"]["number"]
    # A draft is the sales team's work in progress: not even its buyer sees it.
    assert client.get(f"/api/v1/contracts/{number}", headers=bearer(keys["steel"])).status_code == 404
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    assert client.get(f"/api/v1/contracts/{number}", headers=bearer(keys["steel"])).status_code == 200
    other = client.get(f"/api/v1/contracts/{number}", headers=bearer(keys["cement"]))
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "unknown_contract"
    assert client.get("/api/v1/contracts", headers=bearer(keys["cement"])).get_json()["items"] == []


@pytest.mark.parametrize("who", ["steel", "auditor", "operator"])
def test_only_sales_keys_change_contracts(client, keys, who):
    assert _create(client, keys, headers=bearer(keys[who])).status_code == 403
    number = _create(client, keys).get_json()["contract"]["number"]
    for path in (f"/api/v1/contracts/{number}/sign", f"/api/v1/contracts/{number}/tranches/1/deliver"):
        response = client.post(path, headers=bearer(keys[who]))
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert client.post("/api/v1/contracts", json=BODY).status_code == 401
    assert db.session.get(Contract, 1).status == "draft"


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"org_uscc": "91110000000000000X"}, 400, "unknown_organisation"),
        ({"org_uscc": 7}, 400, "unknown_organisation"),
        ({"tranches": [{"due": day(3), "quantity": 30}], "total_quantity": 50}, 400, "tranches_total"),
        ({"tranches": [{"due": day(900), "quantity": 5}]}, 400, "tranche_outside_term"),
        ({"price_per_t": "0"}, 400, "invalid_price_per_t"),
        ({"price_per_t": -1}, 400, "invalid_price_per_t"),
        ({"title": "<script>alert(1)</script>" + "x" * 300}, 400, "invalid_title"),
        # Decimal() reads all of these as numbers; an amount is ASCII digits and two decimals.
        ({"price_per_t": "\u0663"}, 400, "invalid_price_per_t"),  # Arabic-Indic 3
        ({"price_per_t": "\uff16\uff18"}, 400, "invalid_price_per_t"),  # full-width 68
        ({"price_per_t": "1E+2"}, 400, "invalid_price_per_t"),
        ({"price_per_t": "NaN"}, 400, "invalid_price_per_t"),
        ({"price_per_t": "6_8"}, 400, "invalid_price_per_t"),
        ({"price_per_t": 68.505}, 400, "invalid_price_per_t"),
        ({"price_per_t": 0.1 + 0.2}, 400, "invalid_price_per_t"),  # 0.30000000000000004
        ({"price_per_t": True}, 400, "invalid_price_per_t"),
        ({"year_prices": {"2027": "\u0667\u0660"}}, 400, "invalid_year_prices"),
        ({"year_prices": {"2027": "7E+1"}}, 400, "invalid_year_prices"),
        ({"escalation_pct_per_year": "\u0662"}, 400, "invalid_escalation"),
        ({"escalation_pct_per_year": "2e0"}, 400, "invalid_escalation"),
    ],
)
def test_bad_contracts_are_refused_whole(client, keys, change, status, code):
    response = _create(client, keys, body={**BODY, **change})
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_bad_json_and_unknown_things(client, keys):
    sales = bearer(keys["sales"])
    assert (
        client.post(
            "/api/v1/contracts", data="[", headers={**sales, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert client.post("/api/v1/contracts", json=[1], headers=sales).status_code == 400
    assert client.post("/api/v1/contracts/OC-1999-0001/sign", headers=sales).status_code == 404
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=sales)
    assert client.post(f"/api/v1/contracts/{number}/tranches/9/deliver", headers=sales).status_code == 404
    beyond = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json={"quantity": 31}, headers=sales
    )
    assert beyond.status_code == 409 and beyond.get_json()["error"]["code"] == "beyond_due"
    bad = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json={"quantity": "lots"}, headers=sales
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_quantity"
    twice = client.post(f"/api/v1/contracts/{number}/sign", headers=sales)
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "not_draft"
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_idempotency_keys_replay_and_refuse_a_different_body(client, keys):
    first = _create(client, keys, headers={"Idempotency-Key": "draft-1"})
    again = _create(client, keys, headers={"Idempotency-Key": "draft-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["contract"]["number"] == first.get_json()["contract"]["number"]
    other = _create(client, keys, body={**BODY, "title": "other"}, headers={"Idempotency-Key": "draft-1"})
    assert other.status_code == 422
    number = first.get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    path = f"/api/v1/contracts/{number}/tranches/1/deliver"
    headers = {**bearer(keys["sales"]), "Idempotency-Key": "deliver-1"}
    one = client.post(path, json={"quantity": 10}, headers=headers)
    two = client.post(path, json={"quantity": 10}, headers=headers)
    assert (one.status_code, two.status_code) == (201, 201) and two.headers["Idempotent-Replayed"] == "true"
    assert one.get_json()["delivery"]["invoice"]["number"] == two.get_json()["delivery"]["invoice"]["number"]
    assert client.post(path, json={"quantity": 11}, headers=headers).status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 1


@pytest.fixture
def shop(app, localstripe):  # noqa: F811
    live = LiveShop(app, localstripe)
    yield live
    live.close()


def test_the_whole_contract_through_the_api_to_completion(app, keys, shop):
    """Draft → signed → tranche 1 to the holding, tranche 2 retired for an event → invoiced →
    one invoice paid by bank transfer (recorded by the operator), the other online by the buyer
    (PaymentIntent, test card, signed webhook) → completed."""
    import urllib.request

    def call(method, path, key, body=None):
        request = urllib.request.Request(
            shop.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())

    _status, created = call("POST", "/api/v1/contracts", keys["sales"], BODY)
    number = created["contract"]["number"]
    call("POST", f"/api/v1/contracts/{number}/sign", keys["sales"])
    _status, first = call("POST", f"/api/v1/contracts/{number}/tranches/1/deliver", keys["sales"], {})
    status, second = call(
        "POST",
        f"/api/v1/contracts/{number}/tranches/2/deliver",
        keys["sales"],
        {"delivery": "retire", "beneficiary": "2026 赤峰草原马拉松"},
    )
    assert (
        status == 201 and first["delivery"]["mode"] == "holding" and first["delivery"]["certificate"] is None
    )
    certificate = second["delivery"]["certificate"]
    assert second["delivery"]["mode"] == "retire" and certificate["number"].startswith("CFC-")
    _s, public = call("GET", f"/api/v1/certificates/{certificate['number']}", keys["steel"])
    assert public["beneficiary"] == "2026 赤峰草原马拉松" and public["quantity"] == 20

    bank, online = first["delivery"]["invoice"], second["delivery"]["invoice"]
    status, paid = call(
        "POST",
        f"/api/v1/invoices/{bank['number']}/payments",
        keys["operator"],
        {"amount": bank["amount"]["amount"], "received_on": day(0), "reference": "ICBC-20261124-0001"},
    )
    assert status == 201 and paid["invoice"]["status"] == "paid"
    status, started = call("POST", f"/api/v1/invoices/{online['number']}/pay", keys["steel"])
    assert status == 201 and started["payment"]["client_secret"]
    payments.pay_with_test_card(started["payment"]["payment_intent"])
    wait_for(lambda: services.find_invoice(online["number"]).status == "paid")
    _s, done = call("GET", f"/api/v1/contracts/{number}", keys["steel"])
    contract = done["contract"]
    assert contract["status"] == "completed" and contract["delivered"] == 50
    assert [t["paid"]["amount"] for t in contract["tranches"]] == ["2055.00", "1370.00"]
    _s, invoice = call("GET", f"/api/v1/invoices/{online['number']}", keys["steel"])
    assert invoice["invoice"]["payments"][0]["method"] == "stripe"
    assert verify_ledger().ok


def test_invoices_through_the_api_are_the_buyers_own_and_staff_record_payments(client, keys):
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    delivered = client.post(f"/api/v1/contracts/{number}/tranches/1/deliver", headers=bearer(keys["sales"]))
    invoice = delivered.get_json()["delivery"]["invoice"]["number"]
    assert client.get(f"/api/v1/invoices/{invoice}", headers=bearer(keys["steel"])).status_code == 200
    assert client.get(f"/api/v1/invoices/{invoice}", headers=bearer(keys["cement"])).status_code == 404
    assert client.post(f"/api/v1/invoices/{invoice}/pay", headers=bearer(keys["cement"])).status_code == 404
    body = {"amount": "10.00", "received_on": day(0), "reference": "B-1"}
    for who in ("steel", "auditor"):
        assert (
            client.post(
                f"/api/v1/invoices/{invoice}/payments", json=body, headers=bearer(keys[who])
            ).status_code
            == 403
        )
    refused = client.post(
        f"/api/v1/invoices/{invoice}/payments",
        json={**body, "amount": "1000000.00"},
        headers=bearer(keys["sales"]),
    )
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "overpayment"
    bad_mode = client.post(
        f"/api/v1/contracts/{number}/tranches/2/deliver",
        json={"delivery": ["retire"]},
        headers=bearer(keys["sales"]),
    )
    assert bad_mode.status_code == 400 and bad_mode.get_json()["error"]["code"] == "invalid_delivery"


def test_a_bank_payment_supersedes_the_online_payment_started_before(client, keys, app, localstripe):  # noqa: F811
    app.config.update(STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal")
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    delivered = client.post(f"/api/v1/contracts/{number}/tranches/1/deliver", headers=bearer(keys["sales"]))
    invoice = delivered.get_json()["delivery"]["invoice"]["number"]
    first = client.post(f"/api/v1/invoices/{invoice}/pay", headers=bearer(keys["steel"])).get_json()[
        "payment"
    ]
    again = client.post(f"/api/v1/invoices/{invoice}/pay", headers=bearer(keys["steel"])).get_json()[
        "payment"
    ]
    assert again["payment_intent"] == first["payment_intent"]  # nothing changed: the same intent
    body = {"amount": "1000.00", "received_on": day(0), "reference": "ICBC-PART"}
    assert (
        client.post(
            f"/api/v1/invoices/{invoice}/payments", json=body, headers=bearer(keys["sales"])
        ).status_code
        == 201
    )
    later = client.post(f"/api/v1/invoices/{invoice}/pay", headers=bearer(keys["steel"])).get_json()[
        "payment"
    ]
    assert later["payment_intent"] != first["payment_intent"]
    assert payments.retrieve(later["payment_intent"]).amount == 105500  # 2055.00 − 1000.00
    assert payments.retrieve(first["payment_intent"]).status == "canceled"


@pytest.mark.parametrize(
    "amount",
    [
        "\u0663",
        "\uff11\uff10",
        "1E+2",
        "1e2",
        "NaN",
        "Infinity",
        "1_0",
        "10.001",
        10.001,
        0.1 + 0.2,
        "-10",
        True,
    ],
)
def test_a_bank_payment_amount_is_ascii_digits_and_two_decimals(client, keys, amount):
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    delivered = client.post(f"/api/v1/contracts/{number}/tranches/1/deliver", headers=bearer(keys["sales"]))
    invoice = delivered.get_json()["delivery"]["invoice"]["number"]
    body = {"amount": amount, "received_on": day(0), "reference": "B-1"}
    response = client.post(f"/api/v1/invoices/{invoice}/payments", json=body, headers=bearer(keys["sales"]))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_amount"
    paid = client.get(f"/api/v1/invoices/{invoice}", headers=bearer(keys["sales"])).get_json()["invoice"]
    assert paid["paid"]["amount"] == "0.00" and paid["payments"] == []


def _counts():
    from portal.contracts.models import Invoice
    from portal.ledger.models import LedgerEntry

    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Delivery, Invoice, LedgerEntry)
    )


@pytest.mark.parametrize("body", [None, {}, {"delivery": "holding"}])
def test_a_finished_tranche_delivered_again_without_a_quantity_is_a_409(client, keys, body):
    """What is left is read once the contract is locked: it was read before, so a finished
    tranche asked for 0 t, a 400 invalid_quantity."""
    sales = bearer(keys["sales"])
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=sales)
    url = f"/api/v1/contracts/{number}/tranches/1/deliver"
    first = (
        client.post(url, json=body, headers=sales) if body is not None else client.post(url, headers=sales)
    )
    assert first.status_code == 201 and first.get_json()["delivery"]["quantity"] == 30
    before = _counts()
    for lang, words in (
        ("en", "Tranche 1 is already delivered in full."),
        ("zh", "第 1 交付批次已全部交付。"),
    ):
        headers = {**sales, "Accept-Language": lang}
        again = (
            client.post(url, json=body, headers=headers)
            if body is not None
            else client.post(url, headers=headers)
        )
        assert again.status_code == 409
        assert again.get_json()["error"] == {"code": "tranche_delivered", "message": words}
    with_quantity = client.post(url, json={"quantity": 1}, headers=sales)
    assert (
        with_quantity.status_code == 409 and with_quantity.get_json()["error"]["code"] == "tranche_delivered"
    )
    assert _counts() == before
    assert verify_ledger().ok


@pytest.mark.parametrize("written", ["2027-W01-1", "20270104"])
def test_dates_are_taken_as_yyyy_mm_dd_only(client, keys, written):
    """A term written as an ISO week date or in the basic format was read as some date; the API
    says YYYY-MM-DD, and a date written otherwise is refused, naming its field."""
    body = {**BODY, "tranches": [{"due": written, "quantity": 30}]}
    refused = _create(client, keys, body, headers={"Accept-Language": "en"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_tranches"
    refused = _create(client, keys, {**BODY, "end": written}, headers={"Accept-Language": "en"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_end"
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_a_bank_transfer_on_a_week_date_is_refused(client, keys):
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    delivered = client.post(
        f"/api/v1/contracts/{number}/tranches/1/deliver", json={"quantity": 5}, headers=bearer(keys["sales"])
    ).get_json()
    invoice = delivered["delivery"]["invoice"]["number"]
    paid = client.post(
        f"/api/v1/invoices/{invoice}/payments",
        json={
            "amount": "10.00",
            "received_on": services.beijing_today().strftime("%G-W%V-%u"),
            "reference": "T1",
        },
        headers=bearer(keys["sales"]),
    )
    assert paid.status_code == 400 and paid.get_json()["error"]["code"] == "invalid_received_on"


def test_the_status_filter_is_checked_and_applies_to_buyers_too(client, keys):
    number = _create(client, keys).get_json()["contract"]["number"]
    client.post(f"/api/v1/contracts/{number}/sign", headers=bearer(keys["sales"]))
    _create(client, keys, {**BODY, "title": "草稿"})

    def listed(key, query):
        response = client.get(
            f"/api/v1/contracts{query}", headers={**bearer(keys[key]), "Accept-Language": "en"}
        )
        return response.status_code, [c["number"] for c in response.get_json().get("items", [])]

    assert listed("sales", "?status=active") == (200, [number])
    assert listed("steel", "?status=active") == (200, [number])
    # A buyer's filter used to be ignored: every one of its contracts came back.
    assert listed("steel", "?status=completed") == (200, [])
    for key in ("sales", "steel"):
        status, _ = listed(key, "?status=activ")
        assert status == 400
    error = client.get("/api/v1/contracts?status=activ", headers=bearer(keys["sales"])).get_json()["error"]
    assert error["code"] == "invalid_status"
