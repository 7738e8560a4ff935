"""The OpenAPI document of /api/v1 names exactly the app's routes, is a valid OpenAPI 3.1
document, and is served with its reference page (which fetches nothing from elsewhere)."""

import re

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from portal.api import openapi

METHODS = {"get", "post", "put", "patch", "delete"}


def documented(document) -> set[tuple[str, str]]:
    return {
        (route, method) for route, ops in document["paths"].items() for method in ops if method in METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists(app):
    document = openapi.build(app)
    routes = set(openapi.api_routes(app))
    missing = sorted(routes - documented(document))
    assert not missing, (
        f"routes of /api/v1 missing from the OpenAPI document (describe them in api_spec.py): {missing}"
    )
    extra = sorted(documented(document) - routes)
    assert not extra, f"the OpenAPI document names routes the app lacks: {extra}"


def test_a_route_added_without_a_description_is_caught(app):
    from flask import Flask

    from portal.api.views import bp

    other = Flask("other")
    other.register_blueprint(bp)
    other.add_url_rule("/api/v1/novelties/<int:n>", "novelty", lambda n: "", methods=["PUT"])
    assert ("/novelties/{n}", "put") in set(openapi.api_routes(other)) - documented(openapi.build(app))


def test_the_document_is_valid_openapi_3_1(app):
    document = openapi.build(app)
    assert document["openapi"].startswith("3.1")
    errors = [str(e.message)[:200] for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_keyed_operations_say_so_and_public_ones_need_nothing(app):
    document = openapi.build(app)
    views = openapi.api_routes(app)
    for (route, method), view in views.items():
        op = document["paths"][route][method]
        kind = view.access[0]
        if kind == "api":
            assert op["security"] == [{"apiKey": []}], (route, method)
            assert {"401", "403"} <= set(op["responses"]), (route, method)
        else:
            assert kind == "public" and op["security"] == [], (route, method)


def test_idempotent_calls_document_the_header(app):
    document = openapi.build(app)
    for route in ("/orders", "/retirements", "/contracts"):
        params = document["paths"][route]["post"]["parameters"]
        assert {"$ref": "#/components/parameters/IdempotencyKey"} in params


def test_the_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json()["openapi"] == "3.1.0"


@pytest.mark.parametrize("address", ["/api/v1", "/api/v1/"])
def test_the_index_points_to_the_document_and_the_reference(client, address):
    response = client.get(address)
    assert response.status_code == 200
    data = response.get_json()
    assert data["openapi"] == "/api/v1/openapi.json" and data["reference"] == "/api/docs"
    assert {"path": "/api/v1/batches", "methods": ["GET"]} in data["endpoints"]


@pytest.mark.parametrize(
    ("language", "heading", "section"),
    [("zh-CN", "接口参考", "请求正文"), ("en", "API reference", "Request body")],
)
def test_the_reference_page_lists_every_operation_and_needs_no_internet(
    app, client, language, heading, section
):
    response = client.get("/api/docs", headers={"Accept-Language": language})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert heading in page and section in page
    for route, method in documented(openapi.build(app)):
        full = "/api/v1" + ("" if route == "/" else route)
        assert f"<code>{full}</code>" in page, (method, route)
    assert "#schema-Batch" in page and 'id="schema-Batch"' in page
    # Nothing is loaded from another site: every script, style sheet and image is the portal's.
    assets = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
