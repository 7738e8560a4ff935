"""``/api/v1/parcels`` and ``/api/v1/projects/<code>/pipeline``; county reviewers from the CLI."""

import pytest

from portal.extensions import db
from tests import factories
from tests.pipeline import world
from tests.pipeline.helpers import AOHAN, FOREST_COMPARTMENT, rectangle

bearer = factories.bearer


@pytest.fixture
def pipeline(app):
    built = world.build()
    built.keys = {
        "operator": factories.api_key(app, "--user", "operator@portal.cn"),
        "auditor": factories.api_key(app, "--user", "auditor@portal.cn"),
        "aohan": factories.api_key(app, "--user", "review@aohan.gov.cn"),
        "kalaqin": factories.api_key(app, "--user", "review@kalaqin.gov.cn"),
    }
    return built


def parcel_body(boundary, county="aohan"):
    return {
        "county": county,
        "land_type": "grassland",
        "tenure": "household_contract",
        "rights_holder": "新惠镇牧户王某",
        "boundary": boundary,
    }


def test_the_operator_enrols_a_parcel(client, pipeline):
    response = client.post(
        "/api/v1/parcels",
        json=parcel_body(rectangle(*AOHAN, 1000, 1000, east_m=3000)),
        headers=bearer(pipeline.keys["operator"]),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert isinstance(body["id"], int)
    assert float(body["area_ha"]) == pytest.approx(100, rel=1e-3)
    assert body["county"] == "aohan" and body["boundary"]["type"] == "Polygon"


def test_an_overlap_is_a_409_naming_the_parcels_and_hectares(client, pipeline):
    for language, word in (("en", "overlaps"), ("zh", "重叠")):
        response = client.post(
            "/api/v1/parcels",
            json=parcel_body(FOREST_COMPARTMENT),
            headers={**bearer(pipeline.keys["operator"]), "Accept-Language": language},
        )
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["code"] == "parcel_overlap" and word in error["message"]
        assert error["overlaps"] == [
            {
                "id": pipeline.parcel.id,
                "code": pipeline.parcel.code,
                "overlap_ha": f"{pipeline.parcel.area_ha:.4f}",
            }
        ]


@pytest.mark.parametrize(
    "boundary, code",
    [
        ({"type": "Polygon", "coordinates": []}, "empty_geometry"),
        ({"type": "Point", "coordinates": [119.9, 42.3]}, "invalid_geojson"),
        ("not geojson", "invalid_geojson"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[500000, 4680000], [500100, 4680000], [500100, 4680100], [500000, 4680000]]],
            },
            "not_wgs84",
        ),
    ],
)
def test_bad_boundaries_are_400s_and_store_nothing(client, pipeline, boundary, code):
    response = client.post(
        "/api/v1/parcels",
        json=parcel_body(boundary),
        headers={**bearer(pipeline.keys["operator"]), "Accept-Language": "en"},
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code
    listed = client.get("/api/v1/parcels", headers=bearer(pipeline.keys["auditor"])).get_json()
    assert listed["total"] == 1


def test_only_operator_keys_enrol(client, pipeline):
    for who in ("auditor", "aohan"):
        response = client.post(
            "/api/v1/parcels",
            json=parcel_body(rectangle(*AOHAN, 100, 100, east_m=3000)),
            headers=bearer(pipeline.keys[who]),
        )
        assert response.status_code == 403, who


def test_county_keys_read_their_own_county_only(client, pipeline):
    own = client.get("/api/v1/parcels", headers=bearer(pipeline.keys["aohan"])).get_json()
    assert [p["code"] for p in own["items"]] == [pipeline.parcel.code]
    other = client.get("/api/v1/parcels", headers=bearer(pipeline.keys["kalaqin"])).get_json()
    assert other == {"items": [], "total": 0}
    asked = client.get(
        "/api/v1/parcels?county=aohan", headers={**bearer(pipeline.keys["kalaqin"]), "Accept-Language": "en"}
    )
    assert asked.status_code == 403 and asked.get_json()["error"]["code"] == "other_county"
    path = f"/api/v1/projects/{pipeline.project.code}/pipeline"
    assert client.get(path, headers=bearer(pipeline.keys["kalaqin"])).status_code == 404
    assert client.get(path, headers=bearer(pipeline.keys["aohan"])).status_code == 200
    staff = client.get("/api/v1/parcels?county=kalaqin", headers=bearer(pipeline.keys["auditor"])).get_json()
    assert staff["total"] == 0


def test_the_pipeline_of_a_project_has_its_stages_and_forecast(client, pipeline):
    body = client.get(
        f"/api/v1/projects/{pipeline.project.code}/pipeline", headers=bearer(pipeline.keys["auditor"])
    ).get_json()
    assert [(s["stage"], s["date"]) for s in body["stages"]] == [
        ("assessment", "2025-03-01"),
        ("design_document", "2025-05-01"),
        ("validation", "2025-06-01"),
        ("registration", "2025-07-01"),
    ]
    assert body["stages"][1]["documents"][0]["sha256"] == pipeline.document.sha256
    assert body["forecast"]["lines"] == [{"vintage": 2025, "expected_t": 1200, "low_t": 900, "high_t": 1500}]
    assert body["filing"] == {"reference": "赤林草备〔2025〕17号", "date": "2025-04-01"}
    assert (
        body["county_review"]["decision"] == "approved" and body["catalog_project"] == pipeline.project.code
    )


def test_county_reviewers_are_created_from_the_command_line(app, pipeline):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "new@ningcheng.gov.cn", "--role", "county", "--county", "kalaqin"],
        input="a-long-password-1\n",
    )
    assert result.exit_code == 0 and "county, kalaqin" in result.output
    assert runner.invoke(args=["apikeys", "create", "--user", "new@ningcheng.gov.cn"]).exit_code == 0
    missing = runner.invoke(
        args=["users", "create", "x@gov.cn", "--role", "county"], input="a-long-password-1\n"
    )
    assert missing.exit_code == 1
    unknown = runner.invoke(
        args=["users", "create", "y@gov.cn", "--role", "county", "--county", "atlantis"],
        input="a-long-password-1\n",
    )
    assert unknown.exit_code == 1 and "atlantis" in unknown.output
    stray = runner.invoke(
        args=["users", "create", "z@gov.cn", "--role", "sales", "--county", "aohan"],
        input="a-long-password-1\n",
    )
    assert stray.exit_code == 1
    db.session.rollback()
