"""No cache keeps an answer given to a caller with credentials — an API key or a signed-in
session — whatever the answer, errors included; public answers stay cacheable.

The keyed API routes are read from the URL map, so a new one is checked without being listed
here; what each needs to succeed is in ``SUCCESS``, which must name them all."""

from types import SimpleNamespace

import pytest
from flask import url_for
from sqlalchemy import select

from portal import access
from portal.buyers import services as buyers
from portal.extensions import db
from portal.offsets import services as orders
from tests import factories
from tests.conftest import make_app
from tests.contracts.helpers import day
from tests.payments import localstripe  # noqa: F401
from tests.pipeline import world as pipeline_world
from tests.pipeline.helpers import AOHAN, rectangle

STEEL = factories.STEEL_USCC
bearer = factories.bearer

#: The /api/v1 routes anyone may call (everything else needs a key).
PUBLIC = {
    "api.batches",
    "api.batch",
    "api.project",
    "api.certificate",
    "api.signing_keys",
    "api.signing_chain",
    "api.verify_pdf",
    "api.create_estimate",
    "api.index",
    # The OpenAPI document of all of this (portal.api.openapi).
    "api.openapi_document",
    # The transparency log: public by design, like the certificates it records.
    "api.log_tree_head",
    "api.log_tree_heads",
    "api.log_entries",
    "api.log_inclusion_proof",
    "api.log_consistency_proof",
    "api.certificate_registry",
}


def _api_routes():
    """(endpoint, the action its key must allow, or None) of every /api/v1 route."""
    app = make_app("sqlite://")
    return sorted(
        {
            (rule.endpoint, getattr(app.view_functions[rule.endpoint], "api_key_action", None))
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/v1/")
        }
    )


API_ROUTES = _api_routes()
KEYED = {endpoint: action for endpoint, action in API_ROUTES if action is not None}

CONTRACT = {
    "org_uscc": STEEL,
    "title": "钢铁承购",
    "start": day(0),
    "end": day(500),
    "price_per_t": "68.50",
    "tranches": [{"due": day(3), "quantity": 30}, {"due": day(10), "quantity": 20}],
    "delivery": "holding",
}

#: endpoint → (method, path, who calls, JSON body) of a call that succeeds in ``world``.
SUCCESS = {
    "api.holdings": lambda w: ("GET", "/api/v1/holdings", "steel", None),
    "api.list_contracts": lambda w: ("GET", "/api/v1/contracts", "steel", None),
    "api.get_contract": lambda w: ("GET", f"/api/v1/contracts/{w.signed}", "steel", None),
    "api.create_contract": lambda w: ("POST", "/api/v1/contracts", "sales", CONTRACT),
    "api.sign_contract": lambda w: ("POST", f"/api/v1/contracts/{w.draft}/sign", "sales", None),
    "api.deliver_tranche": lambda w: (
        "POST",
        f"/api/v1/contracts/{w.signed}/tranches/2/deliver",
        "sales",
        {},
    ),
    "api.get_invoice": lambda w: ("GET", f"/api/v1/invoices/{w.invoice}", "steel", None),
    "api.record_invoice_payment": lambda w: (
        "POST",
        f"/api/v1/invoices/{w.invoice}/payments",
        "operator",
        {"amount": "10.00", "received_on": day(0), "reference": "ICBC-1"},
    ),
    "api.pay_invoice_online": lambda w: ("POST", f"/api/v1/invoices/{w.invoice}/pay", "steel", None),
    "api.revenue_lines": lambda w: ("GET", "/api/v1/revenue/lines", "auditor", None),
    "api.create_order": lambda w: (
        "POST",
        "/api/v1/orders",
        "steel",
        {"quantity": 1, "beneficiary": "测试钢铁", "purpose": "voluntary"},
    ),
    "api.create_quote": lambda w: (
        "POST",
        "/api/v1/quotes",
        "steel",
        {"lines": [{"batch_code": "OLD-2021", "quantity": 1}]},
    ),
    "api.get_order": lambda w: ("GET", f"/api/v1/orders/{w.order}", "steel", None),
    "api.create_webhook_endpoint": lambda w: (
        "POST",
        "/api/v1/webhook-endpoints",
        "steel",
        {"url": "http://127.0.0.1:9/hook", "events": ["certificate.issued"]},
    ),
    "api.list_webhook_endpoints": lambda w: ("GET", "/api/v1/webhook-endpoints", "steel", None),
    "api.delete_webhook_endpoint": lambda w: (
        "DELETE",
        f"/api/v1/webhook-endpoints/{w.endpoint}",
        "steel",
        None,
    ),
    "api.rotate_webhook_secret": lambda w: (
        "POST",
        f"/api/v1/webhook-endpoints/{w.endpoint}/rotate-secret",
        "steel",
        None,
    ),
    "api.record_issuance": lambda w: (
        "POST",
        f"/api/v1/projects/{w.project}/issuances",
        "operator",
        {
            "vintage_start": "2024-01-01",
            "vintage_end": "2024-12-31",
            "issued_on": "2025-06-01",
            "quantity": 100,
            "registry_reference": "CCER-ISS-2025-0009",
            "registry_serial_start": "CN-CCER-9-2024-000000001",
            "registry_serial_end": "CN-CCER-9-2024-000000100",
        },
    ),
    "api.registry_instructions": lambda w: ("GET", "/api/v1/registry/instructions", "auditor", None),
    "api.confirm_instruction": lambda w: (
        "POST",
        f"/api/v1/registry/instructions/{w.instruction}/confirmation",
        "operator",
        {
            "reference": "CCER-ZX-2026-1",
            "date": day(0),
            "serial_start": "CN-CCER-1-000000001",
            "serial_end": "CN-CCER-1-000000001",
        },
    ),
    "api.reject_instruction": lambda w: (
        "POST",
        f"/api/v1/registry/instructions/{w.instruction}/rejection",
        "operator",
        {"reason": "账户余额不足"},
    ),
    "api.create_parcel": lambda w: (
        "POST",
        "/api/v1/parcels",
        "operator",
        {
            "county": "aohan",
            "land_type": "forest",
            "tenure": "collective",
            "rights_holder": "新惠镇某村",
            "boundary": rectangle(*AOHAN, 300, 300, east_m=4000),
        },
    ),
    "api.list_parcels": lambda w: ("GET", "/api/v1/parcels", "auditor", None),
    "api.project_pipeline": lambda w: ("GET", f"/api/v1/projects/{w.pipeline}/pipeline", "auditor", None),
    "api.retirements": lambda w: (
        "POST",
        "/api/v1/retirements",
        "steel",
        {"quantity": 1, "beneficiary": "测试钢铁", "purpose": "voluntary"},
    ),
}


@pytest.fixture
def world(app, client, localstripe):  # noqa: F811
    """Keys of every role; a draft contract, a signed one with tranche 1 delivered and
    invoiced, an order awaiting payment, credits in the steel company's holding; payments
    through localstripe."""
    app.config.update(
        STRIPE_API_BASE=localstripe, STRIPE_SECRET_KEY="sk_test_portal", STRIPE_PUBLISHABLE_KEY="pk_test_x"
    )
    steel, _cement = factories.steel_and_cement()
    for role in ("sales", "operator", "auditor"):
        factories.user(f"{role}@portal.cn", role=role)
    batch = factories.batch(quantity=500, code="OLD-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 10)
    from portal.certificates import services as certificates
    from portal.registry.models import RegistryInstruction

    certificates.retire_from_holding(steel, 1, beneficiary="测试钢铁", purpose="voluntary", actor="t")
    instruction = db.session.scalar(select(RegistryInstruction.id))
    order, _created = orders.create_order(steel, 1, beneficiary="测试钢铁", purpose="voluntary", actor="t")
    db.session.commit()
    keys = {"steel": factories.api_key(app, "--org", STEEL)}
    for role in ("sales", "operator", "auditor"):
        keys[role] = factories.api_key(app, "--user", f"{role}@portal.cn")

    def create():
        response = client.post("/api/v1/contracts", json=CONTRACT, headers=bearer(keys["sales"]))
        return response.get_json()["contract"]["number"]

    draft, signed = create(), create()
    client.post(f"/api/v1/contracts/{signed}/sign", headers=bearer(keys["sales"]))
    delivered = client.post(f"/api/v1/contracts/{signed}/tranches/1/deliver", headers=bearer(keys["sales"]))
    invoice = delivered.get_json()["delivery"]["invoice"]["number"]
    hook = client.post(
        "/api/v1/webhook-endpoints",
        json={"url": "http://127.0.0.1:9/hook", "events": ["invoice.paid"]},
        headers=bearer(keys["steel"]),
    ).get_json()["id"]
    pipeline = pipeline_world.build(staff=False).project.code
    return SimpleNamespace(
        endpoint=hook,
        keys=keys,
        draft=draft,
        signed=signed,
        invoice=invoice,
        order=order.public_id,
        project=batch.project.code,
        instruction=instruction,
        pipeline=pipeline,
    )


def test_every_api_route_needs_a_key_or_is_known_to_be_public():
    assert {endpoint for endpoint, action in API_ROUTES if action is None} == PUBLIC
    assert set(KEYED) == set(SUCCESS)  # a new keyed route says here how it succeeds
    assert {"api.get_invoice", "api.list_contracts", "api.get_contract", "api.revenue_lines"} <= set(KEYED)


def _unknown_path(app, endpoint):
    """``path`` with every value of the route replaced by one that names nothing."""
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    if not rule.arguments:
        return None
    with app.test_request_context():
        return url_for(endpoint, **{name: 999_999 if name == "n" else "NOPE-0" for name in rule.arguments})


@pytest.mark.parametrize("endpoint", sorted(KEYED))
def test_keyed_answers_are_never_stored(app, client, world, endpoint):
    method, path, who, body = SUCCESS[endpoint](world)
    forbidden = [
        name
        for name, role in (
            ("steel", "buyer"),
            ("sales", "sales"),
            ("operator", "operator"),
            ("auditor", "auditor"),
        )
        if role not in access.roles_for(*KEYED[endpoint])
    ]

    def call(key, path=path, **kwargs):
        kwargs = kwargs or ({} if body is None else {"json": body})
        return client.open(path, method=method, headers=bearer(key), **kwargs)

    answers = {"success": call(world.keys[who]), "unknown key": call("cfk_live_not-a-key")}
    if forbidden:
        answers["role may not"] = call(world.keys[forbidden[0]])
    unknown = _unknown_path(app, endpoint)
    if unknown is not None:
        answers["unknown object"] = call(world.keys[who], unknown)
    if body is not None:
        answers["malformed body"] = call(world.keys[who], data="{", content_type="application/json")

    statuses = {case: response.status_code for case, response in answers.items()}
    expected = {"success": 200 if method == "GET" else 201, "unknown key": 401}
    expected |= {"role may not": 403} if forbidden else {}
    expected |= {"unknown object": 404} if unknown is not None else {}
    expected |= {"malformed body": 400} if body is not None else {}
    if endpoint in ("api.sign_contract", "api.rotate_webhook_secret"):
        expected["success"] = 200
    if method == "DELETE":
        expected["success"] = 204
    if endpoint in ("api.sign_contract", "api.confirm_instruction", "api.reject_instruction"):
        expected["success"] = 200  # a change of state of what exists
    assert statuses == expected, {c: r.get_json() for c, r in answers.items()}
    for case, response in answers.items():
        assert response.headers.get("Cache-Control") == "private, no-store", case


def test_public_answers_stay_cacheable_unless_credentials_come_with_them(app, client):
    factories.batch(quantity=10, code="OLD-2021", vintage=2021)
    db.session.commit()
    for path in ("/api/v1/batches", "/api/v1/batches/OLD-2021", "/", "/register"):
        assert "no-store" not in client.get(path).headers.get("Cache-Control", ""), path
        with_key = client.get(path, headers=bearer("cfk_live_any"))
        assert with_key.headers["Cache-Control"] == "private, no-store", path


def test_a_signed_in_session_gets_no_store_on_errors_too(app, client):
    factories.user("buyer@steel.cn", role="buyer", organisation=factories.steel_and_cement()[0])
    db.session.commit()
    assert client.get("/no-such-page").headers.get("Cache-Control") is None
    assert (
        client.post("/login", data={"email": "buyer@steel.cn", "password": factories.PASSWORD}).status_code
        == 302
    )
    for path in ("/no-such-page", "/staff/", "/api/v1/nothing-here", "/"):
        assert client.get(path).headers["Cache-Control"] == "private, no-store", path


def test_anonymous_forms_with_a_session_token_are_not_stored(csrf_app):
    client = csrf_app.test_client()
    for path in ("/login", "/signup", "/reset", "/verify"):
        assert client.get(path).headers["Cache-Control"] == "private, no-store", path
    assert "no-store" not in client.get("/register").headers.get("Cache-Control", "")
