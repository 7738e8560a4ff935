"""OpenAPI description of the footprint calculator, orders and quotes (``portal.offsets.api``,
``portal.offsets.orders_api``)."""

from portal.api.openapi import (
    BOOLEAN,
    DATE,
    DATETIME,
    IDEMPOTENCY_KEY,
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
    ref,
    refusal,
)
from portal.certificates.models import Purpose
from portal.offsets.models import OrderStatus

_LINE_IN = obj({"batch_code": STRING, "quantity": QUANTITY})

SCHEMAS = {
    "PricedLine": obj(
        {
            "batch_code": STRING,
            "project_code": STRING,
            "quantity": QUANTITY,
            "unit_price": ref("Money"),
            "amount": ref("Money"),
        }
    ),
    "Order": obj(
        {
            "id": STRING,
            "status": enum(OrderStatus),
            "quantity": QUANTITY,
            "amount": ref("Money"),
            "batch_code": nullable(STRING),
            "beneficiary": STRING,
            "purpose": enum(Purpose),
            "purpose_detail": STRING,
            "lines": array(ref("PricedLine")),
            "quote": nullable(STRING),
            "hold_expires_at": DATETIME,
            "payment": obj({"payment_intent": nullable(STRING), "client_secret": nullable(STRING)}),
            "certificate": nullable(obj({"number": STRING, "url": STRING})),
        }
    ),
    "Quote": obj(
        {
            "id": STRING,
            "quantity": QUANTITY,
            "amount": ref("Money"),
            "lines": array(ref("PricedLine")),
            "created_at": DATETIME,
            "expires_at": DATETIME,
        }
    ),
}

_NUMBER = {
    "anyOf": [{"type": "number"}, {"type": "string"}],
    "description": N_("A JSON number or a decimal string."),
}

_ORDER_REFUSALS = {
    400: refusal(
        "invalid_quantity",
        "invalid_lines",
        "duplicate_batch",
        "too_many_lines",
        "ambiguous_order",
        "invalid_json",
        "invalid_text",
    ),
    403: refusal("purchase_not_allowed", "forbidden"),
    404: refusal("unknown_batch", "unknown_quote"),
    409: refusal("sold_out", "insufficient_stock", "quote_expired", "quote_used"),
    413: refusal("request_too_large"),
}

PATHS = {
    "/estimates": {
        "post": operation(
            N_("The footprint calculator"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "kind": enum(["event", "office"]),
                            "tco2e": STRING,
                            "breakdown": array(
                                obj(
                                    {
                                        "item": STRING,
                                        "label": STRING,
                                        "quantity": STRING,
                                        "unit": STRING,
                                        "factor": STRING,
                                        "factor_unit": STRING,
                                        "uncertain": BOOLEAN,
                                        "tco2e": STRING,
                                    }
                                )
                            ),
                            "factor_set": STRING,
                            "purchase_tonnes": INTEGER,
                        }
                    )
                ),
                400: refusal("invalid_estimate", description=N_("`fields` names each bad field.")),
                413: refusal("request_too_large"),
            },
            description=N_("Numbers may be JSON numbers or decimal strings. Nothing is stored."),
            body=json_body(
                {
                    "type": "object",
                    "properties": {
                        "kind": enum(["event", "office"]),
                        "factor_set": STRING,
                        "attendees": _NUMBER,
                        "name": STRING,
                        "start_date": DATE,
                        "end_date": DATE,
                        "year": _NUMBER,
                    },
                    "required": ["kind"],
                    "additionalProperties": _NUMBER,
                },
                example={
                    "kind": "event",
                    "name": "2026 年会",
                    "start_date": "2026-12-10",
                    "end_date": "2026-12-11",
                    "attendees": 120,
                    "electricity_kwh": "1500.5",
                },
            ),
        )
    },
    "/orders": {
        "post": operation(
            N_("Buy and retire in one go"),
            "Buyers",
            {
                201: answer(obj({"order": ref("Order")}), headers=REPLAYED),
                **_ORDER_REFUSALS,
                422: refusal("idempotency_key_reused"),
                503: refusal(
                    "payment_unavailable",
                    "database_unavailable",
                    "outcome_unknown",
                    description=N_("Nothing charged."),
                ),
            },
            description=(
                N_(
                    "Say what to buy one way: `quantity` (and `batch_code`), `lines`, or a `quote`. The "
                    "credits are held for 30 minutes at the prices shown; pay the PaymentIntent and the "
                    "signed payment webhook retires every line into one certificate."
                )
            ),
            parameters=[IDEMPOTENCY_KEY],
            body=json_body(
                obj(
                    {
                        "quantity": QUANTITY,
                        "batch_code": STRING,
                        "lines": array(_LINE_IN, maxItems=20),
                        "quote": STRING,
                        "beneficiary": STRING,
                        "purpose": enum(Purpose),
                        "purpose_detail": STRING,
                    },
                    optional=(
                        "quantity",
                        "batch_code",
                        "lines",
                        "quote",
                        "beneficiary",
                        "purpose",
                        "purpose_detail",
                    ),
                ),
                example={
                    "lines": [{"batch_code": "CF-FOR-2022-001", "quantity": 2}],
                    "beneficiary": "测试钢铁",
                    "purpose": "voluntary",
                },
            ),
        )
    },
    "/orders/{public_id}": {
        "get": operation(
            N_("One of the organisation's orders"),
            "Buyers",
            {200: answer(obj({"order": ref("Order")})), 404: refusal("unknown_order")},
            description=N_("Reading an order whose hold ran out releases it (`expired`)."),
            parameters=[path("public_id")],
        )
    },
    "/quotes": {
        "post": operation(
            N_("Price lines at the listed prices, holding nothing"),
            "Buyers",
            {201: answer(obj({"quote": ref("Quote")})), **_ORDER_REFUSALS},
            description=N_("Valid 10 minutes; an order citing it is charged these prices."),
            body=json_body(
                obj({"lines": array(_LINE_IN, maxItems=20)}),
                example={"lines": [{"batch_code": "CF-FOR-2022-001", "quantity": 5}]},
            ),
        )
    },
}
