"""OpenAPI description of ``/api/v1/parcels`` and ``/api/v1/projects/<code>/pipeline``
(``portal.pipeline.api``)."""

from portal.api.openapi import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
    INTEGER,
    N_,
    STRING,
    answer,
    array,
    enum,
    json_body,
    nullable,
    obj,
    operation,
    path,
    query,
    ref,
    refusal,
)
from portal.pipeline.models import LandType, ParcelStatus, ProjectState, ReviewDecision, Stage, Tenure

_GEOJSON = {
    "type": "object",
    "description": N_("A GeoJSON Polygon or MultiPolygon (WGS 84), or a Feature holding one."),
}

SCHEMAS = {
    "Parcel": obj(
        {
            "id": INTEGER,
            "code": STRING,
            "county": STRING,
            "land_type": enum(LandType),
            "tenure": enum(Tenure),
            "rights_holder": STRING,
            "agreement": nullable(STRING),
            "project": nullable(STRING),
            "status": enum(ParcelStatus),
            "area_ha": DECIMAL,
            "bbox": array(
                {"type": "number"}, minItems=4, maxItems=4, description=N_("[west, south, east, north]")
            ),
            "boundary": _GEOJSON,
        },
        optional=("boundary",),
    ),
}

_COUNTY = query("county", STRING, N_("A county-level unit's code; a county key may name its own only."))

PATHS = {
    "/parcels": {
        "get": operation(
            N_("Parcels by county (at most 1,000; `total` counts all)"),
            "Pipeline",
            {
                200: answer(obj({"items": array(ref("Parcel")), "total": INTEGER})),
                400: refusal("unknown_county"),
                403: refusal("other_county", "forbidden"),
            },
            parameters=[
                _COUNTY,
                query("boundary", STRING, N_("`1` adds each boundary; without it, none.")),
            ],
        ),
        "post": operation(
            N_("Enrol a parcel"),
            "Pipeline",
            {
                201: answer(ref("Parcel")),
                400: refusal(
                    "invalid_json",
                    "invalid_text",
                    "invalid_geojson",
                    "empty_geometry",
                    "open_ring",
                    "too_many_vertices",
                    "not_wgs84",
                    "invalid_geometry",
                    "outside_county",
                    "unknown_county",
                    description=N_("The message says which field or where."),
                ),
                409: refusal(
                    "parcel_overlap", description=N_("`overlaps` names the parcels, largest overlap first.")
                ),
                413: refusal("request_too_large"),
            },
            body=json_body(
                obj(
                    {
                        "county": STRING,
                        "land_type": enum(LandType),
                        "tenure": enum(Tenure),
                        "rights_holder": STRING,
                        "boundary": _GEOJSON,
                    }
                ),
                example={
                    "county": "aohan",
                    "land_type": "grassland",
                    "tenure": "household_contract",
                    "rights_holder": "新惠镇牧户王某",
                    "boundary": {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [119.980626, 42.316992],
                                [119.984263, 42.31699],
                                [119.984263, 42.31879],
                                [119.980626, 42.318792],
                                [119.980626, 42.316992],
                            ]
                        ],
                    },
                },
            ),
        ),
    },
    "/projects/{code}/pipeline": {
        "get": operation(
            N_("A project in development"),
            "Pipeline",
            {
                200: answer(
                    obj(
                        {
                            "code": STRING,
                            "name": STRING,
                            "name_en": STRING,
                            "county": STRING,
                            "type": STRING,
                            "standard": STRING,
                            "methodology": STRING,
                            "state": enum(ProjectState),
                            "stage": enum(Stage),
                            "crediting_start": DATE,
                            "crediting_end": DATE,
                            "catalog_project": nullable(STRING),
                            "county_review": nullable(
                                obj(
                                    {
                                        "decision": enum(ReviewDecision),
                                        "comments": STRING,
                                        "reviewed_at": DATETIME,
                                        "current": BOOLEAN,
                                    }
                                )
                            ),
                            "filing": nullable(obj({"reference": STRING, "date": DATE})),
                            "parcels": array(obj({"code": STRING, "area_ha": DECIMAL})),
                            "stages": array(
                                obj(
                                    {
                                        "stage": enum(Stage),
                                        "date": DATE,
                                        "responsible_body": STRING,
                                        "reference": STRING,
                                        "notes": STRING,
                                        "documents": array(
                                            obj({"filename": STRING, "sha256": STRING, "size": INTEGER})
                                        ),
                                    }
                                )
                            ),
                            "forecast": nullable(
                                obj(
                                    {
                                        "revision": INTEGER,
                                        "revised_at": DATETIME,
                                        "lines": array(
                                            obj(
                                                {
                                                    "vintage": INTEGER,
                                                    "expected_t": INTEGER,
                                                    "low_t": INTEGER,
                                                    "high_t": INTEGER,
                                                }
                                            )
                                        ),
                                    }
                                )
                            ),
                        }
                    )
                ),
                404: refusal("not_found"),
            },
            parameters=[path("code")],
        )
    },
}
