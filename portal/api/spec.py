"""OpenAPI description of the routes in ``portal.api`` (the index, the catalog, holdings,
issuances); assembled by ``portal.api.openapi``."""

from portal.api.openapi import (
    DATE,
    DECIMAL,
    INTEGER,
    N_,
    QUANTITY,
    REPLAYED,
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
from portal.catalog.filters import MAX_PAGE, MAX_PER_PAGE, SORTS
from portal.catalog.models import ProjectType, Standard

SCHEMAS = {
    "ProjectSummary": obj(
        {
            "code": STRING,
            "name": STRING,
            "name_en": STRING,
            "type": enum(ProjectType),
            "standard": enum(Standard),
            "methodology": STRING,
            "county": {"type": "string", "description": N_("The county-level unit's code.")},
            "county_name": STRING,
            "county_name_en": STRING,
        }
    ),
    "Batch": obj(
        {
            "code": STRING,
            "project": ref("ProjectSummary"),
            "vintage_start": DATE,
            "vintage_end": DATE,
            "issued_quantity": INTEGER,
            "buffer_quantity": INTEGER,
            "available_quantity": INTEGER,
            "issued_on": DATE,
            "registry_reference": STRING,
            "registry_serial_start": STRING,
            "registry_serial_end": STRING,
            "price": nullable(ref("Money")),
            "retired_quantity": {"type": "integer", "description": N_("In a project's batches only.")},
        },
        optional=("retired_quantity",),
    ),
    "Project": {
        "allOf": [
            ref("ProjectSummary"),
            obj(
                {
                    "description": STRING,
                    "description_en": STRING,
                    "area_ha": DECIMAL,
                    "crediting_start": DATE,
                    "crediting_end": DATE,
                    "status": STRING,
                    "validation_body": STRING,
                    "verification_body": STRING,
                    "registry_id": STRING,
                    "boundary": nullable({"type": "object", "description": N_("GeoJSON geometry.")}),
                    "totals": obj({"issued": INTEGER, "available": INTEGER, "retired": INTEGER}),
                    "batches": array(ref("Batch")),
                }
            ),
        ]
    },
    "Block": obj(
        {
            "batch_code": STRING,
            "serial_start": {"type": "integer", "minimum": 1},
            "serial_end": {"type": "integer", "minimum": 1},
            "quantity": QUANTITY,
        },
        description=N_("Tonnes of one batch, by the portal's serials (1-based, inclusive)."),
    ),
}

_batch_filters = [
    query("standard", enum(Standard)),
    query("project_type", enum(ProjectType)),
    query("county", {"type": "string", "maxLength": 200}, N_("A county-level unit's code.")),
    query("vintage", {"type": "integer", "minimum": 2000, "maximum": 2100}),
    query("methodology", {"type": "string", "maxLength": 200}),
    query("min_available", {"type": "integer", "minimum": 0}),
    query("price_min", DECIMAL),
    query("price_max", DECIMAL),
    query("sort", enum(sorted(SORTS))),
    query("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
    query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
]

PATHS = {
    "/": {
        "get": operation(
            N_("What the API offers"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "api": STRING,
                            "documentation": STRING,
                            "openapi": STRING,
                            "reference": STRING,
                            "authentication": STRING,
                            "endpoints": array(obj({"path": STRING, "methods": array(STRING)})),
                        }
                    )
                )
            },
            description=N_("Every endpoint with its methods, and where this document and its reference are."),
        )
    },
    "/openapi.json": {
        "get": operation(
            N_("This document"),
            "Public",
            {200: answer({"type": "object"}, N_("The OpenAPI 3.1 document of `/api/v1`."))},
        )
    },
    "/batches": {
        "get": operation(
            N_("Listed batches, page by page"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "items": array(ref("Batch")),
                            "page": INTEGER,
                            "per_page": INTEGER,
                            "total": INTEGER,
                        }
                    )
                ),
                400: refusal("invalid_filter", description=N_("A filter's value is not one it takes.")),
            },
            parameters=_batch_filters,
        )
    },
    "/batches/{code}": {
        "get": operation(
            N_("One listed batch"),
            "Public",
            {200: answer(ref("Batch")), 404: refusal("not_found")},
            parameters=[path("code", description=N_("The batch's code, e.g. `CF-FOR-2022-001`."))],
        )
    },
    "/projects/{code}": {
        "get": operation(
            N_("A project, with its batches"),
            "Public",
            {200: answer(ref("Project")), 404: refusal("not_found")},
            parameters=[path("code")],
        )
    },
    "/holdings": {
        "get": operation(
            N_("The organisation's holding, block by block"),
            "Buyers",
            {200: answer(obj({"blocks": array(ref("Block")), "total": INTEGER}))},
        )
    },
    "/projects/{code}/issuances": {
        "post": operation(
            N_("Record a registry issuance"),
            "Operators",
            {
                201: answer(ref("Batch"), N_("The new batch.")),
                200: answer(ref("Batch"), N_("The same issuance again."), headers=REPLAYED),
                400: refusal(
                    "invalid_json",
                    "invalid_<field>",
                    "price",
                    "registry_serial_count",
                    description=N_("The message names the field at fault."),
                ),
                404: refusal("unknown_project"),
                409: refusal("registry_serial_overlap", "issuance_differs"),
                413: refusal("request_too_large"),
            },
            description=(
                N_(
                    "By the rules of the back office's form. The serial range is read in the registry's "
                    "format and must count exactly `quantity`."
                )
            ),
            parameters=[path("code")],
            body=json_body(
                obj(
                    {
                        "vintage_start": DATE,
                        "vintage_end": DATE,
                        "issued_on": DATE,
                        "quantity": QUANTITY,
                        "buffer_quantity": {"type": "integer", "minimum": 0},
                        "registry_reference": {"type": "string", "maxLength": 120},
                        "registry_serial_start": {"type": "string", "maxLength": 120},
                        "registry_serial_end": {"type": "string", "maxLength": 120},
                        "price_per_t": DECIMAL,
                    },
                    optional=("buffer_quantity", "registry_serial_end", "price_per_t"),
                ),
                example={
                    "vintage_start": "2024-01-01",
                    "vintage_end": "2024-12-31",
                    "issued_on": "2025-06-01",
                    "quantity": 12000,
                    "registry_reference": "CCER-ISS-2025-0001",
                    "registry_serial_start": "CN-CCER-14-2024001-2024-000000001",
                    "registry_serial_end": "CN-CCER-14-2024001-2024-000012000",
                    "price_per_t": "72.50",
                },
            ),
        )
    },
}
