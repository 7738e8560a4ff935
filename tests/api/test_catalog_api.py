"""GET /api/v1/batches, /api/v1/batches/<code>, /api/v1/projects/<code>; the API's JSON bodies."""

import io
import json

import pytest

from portal.extensions import db
from tests import factories


@pytest.fixture
def stock(app):
    region = factories.region("aohan")
    project = factories.project(code="AH-FOR-01", region_=region)
    factories.batch(quantity=1000, vintage=2021, project_=project, code="CCER-AH-FOR-01-2021", price="68.00")
    factories.batch(quantity=400, vintage=2022, project_=project, code="CCER-AH-FOR-01-2022", price="70.50")
    db.session.commit()


def test_batches_list(stock, client):
    data = client.get("/api/v1/batches?per_page=1&sort=vintage_asc").get_json()
    assert data["total"] == 2 and data["page"] == 1 and data["per_page"] == 1
    (item,) = data["items"]
    assert item["code"] == "CCER-AH-FOR-01-2021"
    assert item["issued_quantity"] == 1000 and item["available_quantity"] == 1000
    assert item["price"] == {"amount": "68.00", "currency": "CNY"}
    assert item["project"]["code"] == "AH-FOR-01" and item["project"]["county"] == "aohan"
    assert item["project"]["standard"] == "CCER" and item["project"]["type"] == "forestry"
    assert item["vintage_start"] == "2021-01-01" and item["vintage_end"] == "2021-12-31"


def test_batches_filters(stock, client):
    assert client.get("/api/v1/batches?vintage=2022").get_json()["total"] == 1
    assert client.get("/api/v1/batches?min_available=500").get_json()["total"] == 1
    assert client.get("/api/v1/batches?standard=VCS").get_json()["total"] == 0
    assert client.get("/api/v1/batches?county=aohan&project_type=forestry").get_json()["total"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "vintage=x",
        "min_available=1.5",
        "standard=GS",
        "page=-1",
        "per_page=0",
        "price_min=abc",
        "per_page=101",
        "price_min=%D9%A3",  # Arabic-Indic 3
        "price_min=%EF%BC%97%EF%BC%90",  # full-width 70
        "price_max=1E%2B2",
        "price_max=NaN",
        "price_min=6_8",
        "price_max=68.005",
    ],
)
def test_invalid_filters_are_400_json(stock, client, query):
    response = client.get("/api/v1/batches?" + query, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_filter"
    assert error["message"]


def test_error_messages_follow_accept_language(stock, client):
    zh = client.get("/api/v1/batches?vintage=x", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_json()
    assert "年份" in zh["error"]["message"]
    en = client.get("/api/v1/batches?vintage=x", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_json()
    assert "Vintage (vintage) must be a whole number" in en["error"]["message"]


def test_one_batch(stock, client):
    data = client.get("/api/v1/batches/CCER-AH-FOR-01-2022").get_json()
    assert data["code"] == "CCER-AH-FOR-01-2022" and data["price"]["amount"] == "70.50"
    missing = client.get("/api/v1/batches/NOPE")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_project(stock, client):
    data = client.get("/api/v1/projects/AH-FOR-01").get_json()
    assert [b["code"] for b in data["batches"]] == ["CCER-AH-FOR-01-2021", "CCER-AH-FOR-01-2022"]
    assert data["totals"] == {"issued": 1400, "available": 1400, "retired": 0}
    assert data["area_ha"] == "1000.00" and data["methodology"] == "CCER-14-001-V01"
    assert client.get("/api/v1/projects/NOPE").status_code == 404


def test_a_stored_boundary_beyond_bounds_is_not_served_and_not_a_500(stock, client):
    """Saved before the bounds applied: the project page draws nothing and the API says null (a
    boundary nested past Python's stack was a RecursionError in both)."""
    from portal.catalog.models import Project

    project = db.session.query(Project).filter_by(code="AH-FOR-01").one()
    project.boundary_geojson = '{"type": "Polygon", "coordinates": ' + "[" * 50_000 + "]" * 50_000 + "}"
    db.session.commit()
    response = client.get("/api/v1/projects/AH-FOR-01")
    assert response.status_code == 200 and response.get_json()["boundary"] is None
    page = client.get("/projects/AH-FOR-01?lang=en")
    assert page.status_code == 200 and "No boundary has been recorded" in page.get_data(as_text=True)


def test_a_stored_boundary_within_bounds_is_served(stock, client):
    from portal.catalog.models import Project

    geometry = {
        "type": "Polygon",
        "coordinates": [[[119.9, 42.2], [120.0, 42.2], [120.0, 42.3], [119.9, 42.2]]],
    }
    project = db.session.query(Project).filter_by(code="AH-FOR-01").one()
    project.boundary_geojson = json.dumps(geometry)
    db.session.commit()
    assert client.get("/api/v1/projects/AH-FOR-01").get_json()["boundary"] == geometry


# --- JSON bodies: one bounded reader (portal.core.jsontext) -----------------------------------------


@pytest.fixture
def retire_key(app):
    from portal.buyers import services as buyers

    buyers.create_organisation(name_zh="测试钢铁", uscc=factories.STEEL_USCC, sector="steel", approve=True)
    db.session.commit()
    return factories.api_key(app, "--org", factories.STEEL_USCC)


def _post(client, key, data, lang="en"):
    return client.post(
        "/api/v1/retirements",
        data=data,
        content_type="application/json",
        headers={**factories.bearer(key), "Accept-Language": lang},
    )


@pytest.mark.parametrize("levels", [33, 5_000, 30_000])
def test_a_body_nested_too_deeply_is_a_clear_400(retire_key, client, levels):
    body = '{"quantity": 1, "x": ' + "[" * levels + "]" * levels + "}"
    for lang, expected in (("en", "nested too deeply: at most 32 levels"), ("zh", "嵌套层数过多")):
        response = _post(client, retire_key, body, lang)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "invalid_json" and expected in error["message"]


def test_a_body_nested_within_bounds_is_read(retire_key, client):
    body = '{"quantity": "x", "beneficiary": "b", "purpose": "voluntary", "x": ' + "[" * 31 + "]" * 31 + "}"
    response = _post(client, retire_key, body)
    assert response.get_json()["error"]["code"] == "invalid_quantity"  # read, then refused for its quantity


def test_a_body_too_large_is_a_413(retire_key, client):
    body = json.dumps({"quantity": 1, "padding": "x" * 70_000})
    response = _post(client, retire_key, body)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_too_large"
    # Without Content-Length (sent in chunks, as a server passes it on), the size is checked on
    # what was read.
    response = client.post(
        "/api/v1/retirements",
        input_stream=io.BytesIO(body.encode()),
        content_type="application/json",
        headers={**factories.bearer(retire_key), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_too_large"
