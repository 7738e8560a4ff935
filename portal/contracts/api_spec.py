"""OpenAPI description of the offtake contract and invoice routes (``portal.contracts.api``)."""

from portal.api.openapi import (
    BOOLEAN,
    DATE,
    DATETIME,
    DECIMAL,
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
    query,
    ref,
    refusal,
)
from portal.contracts.models import ContractStatus, InvoiceStatus

_TRANCHE = obj(
    {
        "n": INTEGER,
        "due": DATE,
        "contracted": INTEGER,
        "reserved": INTEGER,
        "delivered": INTEGER,
        "uncovered": INTEGER,
        "late": BOOLEAN,
        "price_per_t": nullable(ref("Money")),
        "invoiced": nullable(ref("Money")),
        "paid": nullable(ref("Money")),
    }
)

SCHEMAS = {
    "Invoice": obj(
        {
            "contract": STRING,
            "number": STRING,
            "status": enum(InvoiceStatus),
            "quantity": INTEGER,
            "unit_price": ref("Money"),
            "amount": ref("Money"),
            "paid": ref("Money"),
            "issued_on": DATE,
            "due_on": DATE,
            "overdue": BOOLEAN,
            "payments": array(
                obj({"method": STRING, "amount": ref("Money"), "received_on": DATE, "reference": STRING})
            ),
            "pdf": STRING,
        }
    ),
    "Delivery": obj(
        {
            "tranche": INTEGER,
            "quantity": QUANTITY,
            "mode": enum(["holding", "retire"]),
            "from_inventory": INTEGER,
            "delivered_at": DATETIME,
            "blocks": array(obj({"batch_code": STRING, "quantity": QUANTITY})),
            "certificate": nullable(obj({"number": STRING, "url": STRING})),
            "invoice": nullable(ref("Invoice")),
        }
    ),
    "Contract": obj(
        {
            "number": STRING,
            "status": enum(ContractStatus),
            "version": INTEGER,
            "buyer": obj({"uscc": STRING, "name": STRING}),
            "owner": STRING,
            "title": STRING,
            "start": DATE,
            "end": DATE,
            "total_quantity": INTEGER,
            "price_per_t": ref("Money"),
            "escalation_pct_per_year": DECIMAL,
            "year_prices": {"type": "object", "additionalProperties": DECIMAL},
            "standard": nullable(STRING),
            "project_types": nullable(array(STRING)),
            "counties": nullable(array(STRING)),
            "vintage_from": nullable(INTEGER),
            "vintage_to": nullable(INTEGER),
            "delivery": enum(["holding", "retire"]),
            "beneficiary": nullable(STRING),
            "payment_days": INTEGER,
            "signed_at": nullable(DATETIME),
            "termination_reason": nullable(STRING),
            "contracted": INTEGER,
            "reserved": INTEGER,
            "delivered": INTEGER,
            "uncovered": INTEGER,
            "tranches": array(_TRANCHE),
            "deliveries": array(ref("Delivery")),
        },
        optional=("deliveries",),
        description=N_("`deliveries` is in the answers about one contract, not in lists."),
    ),
}

_CONTRACT = answer(obj({"contract": ref("Contract")}))
_NUMBER = [path("number")]
_STATE = refusal(
    "not_draft", "not_active", "draft_contract", "signed_contract", description=N_("Not in that state.")
)

PATHS = {
    "/contracts": {
        "get": operation(
            N_("Offtake contracts: a buyer's own, or every one for staff"),
            "Contracts",
            {200: answer(obj({"items": array(ref("Contract"))})), 400: refusal("invalid_status")},
            parameters=[query("status", enum(ContractStatus))],
        ),
        "post": operation(
            N_("Draft a contract"),
            "Contracts",
            {
                201: answer(obj({"contract": ref("Contract")}), headers=REPLAYED),
                400: refusal(
                    "unknown_organisation", "invalid_json", description=N_("Each bad term names its field.")
                ),
                403: refusal("buyer_refused", "forbidden"),
                409: _STATE,
                413: refusal("request_too_large"),
                422: refusal("idempotency_key_reused"),
            },
            parameters=[IDEMPOTENCY_KEY],
            body=json_body(
                obj(
                    {
                        "org_uscc": STRING,
                        "title": STRING,
                        "start": DATE,
                        "end": DATE,
                        "price_per_t": DECIMAL,
                        "escalation_pct_per_year": DECIMAL,
                        "year_prices": {"type": "object", "additionalProperties": DECIMAL},
                        "standard": STRING,
                        "project_types": array(STRING),
                        "counties": array(STRING),
                        "vintage_from": INTEGER,
                        "vintage_to": INTEGER,
                        "tranches": array(obj({"due": DATE, "quantity": QUANTITY}), minItems=1),
                        "delivery": enum(["holding", "retire"]),
                        "beneficiary": STRING,
                    },
                    optional=(
                        "escalation_pct_per_year",
                        "year_prices",
                        "standard",
                        "project_types",
                        "counties",
                        "vintage_from",
                        "vintage_to",
                        "beneficiary",
                    ),
                ),
                example={
                    "org_uscc": "91350100M000100Y43",
                    "title": "钢铁承购 2027–2028",
                    "start": "2027-01-01",
                    "end": "2028-12-31",
                    "price_per_t": "68.50",
                    "escalation_pct_per_year": "2",
                    "standard": "CCER",
                    "tranches": [
                        {"due": "2027-06-30", "quantity": 30},
                        {"due": "2028-06-30", "quantity": 20},
                    ],
                    "delivery": "holding",
                },
            ),
        ),
    },
    "/contracts/{number}": {
        "get": operation(
            N_("One contract, with its tranches, deliveries and invoices"),
            "Contracts",
            {200: _CONTRACT, 404: refusal("unknown_contract")},
            parameters=_NUMBER,
        )
    },
    "/contracts/{number}/sign": {
        "post": operation(
            N_("Sign a draft and reserve matching stock for its tranches"),
            "Contracts",
            {
                200: _CONTRACT,
                403: refusal("buyer_refused", "forbidden"),
                404: refusal("unknown_contract"),
                409: _STATE,
                503: refusal("busy", "database_unavailable", "outcome_unknown"),
            },
            parameters=_NUMBER,
        )
    },
    "/contracts/{number}/tranches/{n}/deliver": {
        "post": operation(
            N_("Deliver a tranche (all that is left, or `quantity`) and invoice it"),
            "Contracts",
            {
                201: answer(
                    obj({"delivery": ref("Delivery"), "contract": ref("Contract")}), headers=REPLAYED
                ),
                400: refusal("invalid_quantity", "invalid_json"),
                403: refusal("buyer_refused", "forbidden"),
                404: refusal("unknown_contract", "unknown_tranche"),
                409: refusal("tranche_delivered", "beyond_due", "not_active", "insufficient_stock"),
                413: refusal("request_too_large"),
                422: refusal("idempotency_key_reused"),
                503: refusal("busy", "database_unavailable", "outcome_unknown"),
            },
            parameters=[
                *_NUMBER,
                path("n", {"type": "integer", "minimum": 0}, N_("From 1, in due order.")),
                IDEMPOTENCY_KEY,
            ],
            body=json_body(
                obj(
                    {"quantity": QUANTITY, "delivery": enum(["holding", "retire"]), "beneficiary": STRING},
                    optional=("quantity", "delivery", "beneficiary"),
                ),
                required=False,
                example={"quantity": 3},
            ),
        )
    },
    "/invoices/{number}": {
        "get": operation(
            N_("One invoice: amount, outstanding, due date, status, payments"),
            "Contracts",
            {200: answer(obj({"invoice": ref("Invoice")})), 404: refusal("unknown_invoice")},
            parameters=_NUMBER,
        )
    },
    "/invoices/{number}/payments": {
        "post": operation(
            N_("Record a bank transfer"),
            "Contracts",
            {
                201: answer(obj({"invoice": ref("Invoice")})),
                400: refusal("invalid_amount", "invalid_date", "invalid_reference", "invalid_json"),
                404: refusal("unknown_invoice"),
                409: refusal("overpayment", "duplicate_reference", "already_paid"),
                413: refusal("request_too_large"),
            },
            parameters=_NUMBER,
            body=json_body(
                obj({"amount": DECIMAL, "received_on": DATE, "reference": STRING}),
                example={"amount": "68.50", "received_on": "2026-12-01", "reference": "ICBC-20261201-0001"},
            ),
        )
    },
    "/invoices/{number}/pay": {
        "post": operation(
            N_("A PaymentIntent for what is outstanding"),
            "Contracts",
            {
                201: answer(
                    obj(
                        {
                            "invoice": ref("Invoice"),
                            "payment": obj(
                                {"payment_intent": nullable(STRING), "client_secret": nullable(STRING)}
                            ),
                        }
                    )
                ),
                404: refusal("unknown_invoice"),
                409: refusal("already_paid"),
                503: refusal("payment_unavailable", "database_unavailable", "outcome_unknown"),
            },
            parameters=_NUMBER,
        )
    },
}
