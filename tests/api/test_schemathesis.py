"""Schemathesis against the live app (PostgreSQL, localstripe): every operation of the OpenAPI
document, with a fixed budget of examples and a fixed seed, must answer without a server error,
with a status the document lists and a body that matches its schema.

Each operation is tried three ways: valid requests aimed at real objects (the path names a
batch, certificate, order, contract, invoice … that exists, so that the success answers are
checked too), valid requests with generated paths, and requests that break the document
(negative data). Keyed operations get a key whose role may call them.
"""

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from portal import access
from portal.api import openapi
from portal.buyers import services as buyers
from portal.extensions import db
from portal.registry.models import RegistryInstruction
from tests import factories
from tests.contracts.helpers import day
from tests.payments import LiveShop, localstripe  # noqa: F401
from tests.pipeline import world

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("schemathesis")]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: Examples per operation and way of trying it: the document's example body (on real objects),
#: valid with real objects in the path, valid with generated paths, and negative.
BUDGET = {"example": 1, "real": 6, "generated": 8, "negative": 10}


def _settings(examples: int):
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@pytest.fixture
def live(pg_app, localstripe):  # noqa: F811
    pg_app.config["WEBHOOKS_ALLOW_PRIVATE"] = True  # the endpoint the world registers is local
    shop = LiveShop(pg_app, localstripe)
    yield shop
    shop.close()


def _world(app, base: str) -> tuple[dict, dict]:
    """Keys for each role and real objects of every kind, made through the API where it can."""
    built = world.build(stage_to="registration")
    steel, _cement = factories.steel_and_cement()
    factories.user("sales@portal.cn", role="sales")
    batch = factories.batch(quantity=500, code="CF-FOR-2022-001", vintage=2022)
    buyers.deliver_from_inventory(steel, 200, batch_codes=[batch.code])
    db.session.commit()
    keys = {
        "buyer": factories.api_key(app, "--org", factories.STEEL_USCC),
        "operator": factories.api_key(app, "--user", "operator@portal.cn"),
        "sales": factories.api_key(app, "--user", "sales@portal.cn"),
        "county": factories.api_key(app, "--user", "review@aohan.gov.cn"),
    }

    def call(method, path, key, **kwargs):
        response = requests.request(
            method, f"{base}{path}", headers=factories.bearer(keys[key]), timeout=60, **kwargs
        )
        assert response.status_code in (200, 201), (path, response.status_code, response.text[:500])
        return response.json()

    certificate = call(
        "POST",
        "/retirements",
        "buyer",
        json={"quantity": 5, "beneficiary": "测试钢铁", "purpose": "voluntary"},
    )["certificate"]["number"]
    order = call("POST", "/orders", "buyer", json={"quantity": 2, "batch_code": batch.code})["order"]["id"]
    contract = call(
        "POST",
        "/contracts",
        "sales",
        json={
            "org_uscc": factories.STEEL_USCC,
            "title": "钢铁承购",
            "start": day(0),
            "end": day(500),
            "price_per_t": "68.50",
            "tranches": [{"due": day(3), "quantity": 10}, {"due": day(30), "quantity": 10}],
            "delivery": "holding",
        },
    )["contract"]["number"]
    call("POST", f"/contracts/{contract}/sign", "sales")
    invoice = call("POST", f"/contracts/{contract}/tranches/1/deliver", "sales", json={"quantity": 4})[
        "delivery"
    ]["invoice"]["number"]
    endpoint, rotated = (
        call(
            "POST",
            "/webhook-endpoints",
            "buyer",
            json={"url": f"http://127.0.0.1:9/hooks/{n}", "events": ["certificate.issued"]},
        )["id"]
        for n in (1, 2)
    )
    db.session.rollback()
    instruction = db.session.scalar(select(RegistryInstruction.id).order_by(RegistryInstruction.id))
    assert instruction is not None
    catalog_project = batch.project.code
    real = {
        "/batches/{code}": {"code": batch.code},
        "/projects/{code}": {"code": catalog_project},
        "/projects/{code}/issuances": {"code": catalog_project},
        "/projects/{code}/pipeline": {"code": built.project.code},
        "/certificates/{number}": {"number": certificate},
        "/certificates/{number}/registry": {"number": certificate},
        "/orders/{public_id}": {"public_id": order},
        "/contracts/{number}": {"number": contract},
        "/contracts/{number}/sign": {"number": contract},
        "/contracts/{number}/tranches/{n}/deliver": {"number": contract, "n": 2},
        "/invoices/{number}": {"number": invoice},
        "/invoices/{number}/payments": {"number": invoice},
        "/invoices/{number}/pay": {"number": invoice},
        "/registry/instructions/{n}/confirmation": {"n": instruction},
        "/registry/instructions/{n}/rejection": {"n": instruction},
        "/webhook-endpoints/{public_id}": {"public_id": endpoint},
        "/webhook-endpoints/{public_id}/rotate-secret": {"public_id": rotated},
    }
    return keys, real


def _key_for(view, keys: dict) -> str | None:
    """The first of ``keys`` whose role may call ``view`` (None for a public one)."""
    actions = getattr(view, "api_key_action", None)
    if not actions:
        return None
    for key in keys.values():
        principal = access.Principal.from_api_key(buyers.authenticate_api_key(key))
        if access.may_any(principal, actions):
            return key
    raise AssertionError(f"no test key may do {actions}")


def _example(operation) -> dict | None:
    """The request body the document gives as an example, if any."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    examples = content.get("application/json", {}).get("examples", {})
    return examples["example"]["value"] if "example" in examples else None


def _run(operation, examples, mode, base, session, headers, path_parameters=None, body=None):
    kwargs = (
        {"path_parameters": path_parameters}
        if body is None
        else {"path_parameters": path_parameters, "body": body}
    )

    @_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode, **kwargs))
    def check(case):
        case.call_and_validate(base_url=base, session=session, headers=headers, checks=CHECKS, timeout=60)

    check()


def test_every_operation_answers_as_documented(pg_app, live):
    base = live.url + openapi.PREFIX
    keys, real = _world(pg_app, base)
    views = openapi.api_routes(pg_app)
    document = openapi.build(pg_app)
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    failures, timings = {}, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        route, method = operation.path, operation.method.lower()
        key = _key_for(views[(route, method)], keys)
        headers = factories.bearer(key) if key else {}
        started = time.monotonic()
        ways = [("generated", GenerationMode.POSITIVE, None), ("negative", GenerationMode.NEGATIVE, None)]
        if route in real:
            ways.insert(0, ("real", GenerationMode.POSITIVE, real[route]))
        example = _example(operation)
        if example is not None:
            ways.insert(0, ("example", GenerationMode.POSITIVE, real.get(route)))
        for way, mode, path_parameters in ways:
            try:
                body = example if way == "example" else None
                _run(operation, BUDGET[way], mode, base, session, headers, path_parameters, body)
            except Unsatisfiable:
                # Nothing breaks the document here (no parameter, or only free text in the path).
                assert mode == GenerationMode.NEGATIVE, (route, way)
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; all are reported
                failures[f"{method.upper()} {route} ({way})"] = str(exc)[:4000]
        db.session.rollback()
        timings[f"{method.upper()} {route}"] = round(time.monotonic() - started, 1)
    slowest = sorted(timings.items(), key=lambda t: -t[1])[:5]
    assert not failures, "\n\n".join(f"== {name}\n{text}" for name, text in failures.items()) + f"\n{slowest}"
