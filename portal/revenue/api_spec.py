"""OpenAPI description of ``GET /api/v1/revenue/lines`` (``portal.revenue.api``)."""

from portal.api.openapi import (
    BOOLEAN,
    DATE,
    DECIMAL,
    INTEGER,
    N_,
    STRING,
    answer,
    array,
    enum,
    nullable,
    obj,
    operation,
    query,
    ref,
    refusal,
)

PATHS = {
    "/revenue/lines": {
        "get": operation(
            N_("Revenue lines: one per paid sale portion, and one per reversal of a refund"),
            "Operators",
            {
                200: answer(
                    obj(
                        {
                            "truncated": BOOLEAN,
                            "items": array(
                                obj(
                                    {
                                        "sale_ref": STRING,
                                        "sale_kind": enum(["order", "invoice"]),
                                        "paid_on": DATE,
                                        "county": STRING,
                                        "batch_code": STRING,
                                        "amount": ref("Money"),
                                        "city_share": ref("Money"),
                                        "county_share": ref("Money"),
                                        "rule": obj(
                                            {
                                                "id": INTEGER,
                                                "effective_from": DATE,
                                                "city_pct": DECIMAL,
                                                "county_pct": DECIMAL,
                                            }
                                        ),
                                        "reversal_of": nullable(INTEGER),
                                    }
                                )
                            ),
                        }
                    ),
                    N_("At most 100,000 lines: `truncated` says when there are more."),
                ),
                400: refusal("invalid_date"),
            },
            parameters=[query("from", DATE), query("to", DATE), query("county", STRING)],
        )
    },
}
