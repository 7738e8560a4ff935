"""GET /api/v1/batches, /api/v1/batches/<code>, /api/v1/projects/<code>."""

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
