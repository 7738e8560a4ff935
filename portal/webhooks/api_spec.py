"""OpenAPI description of ``/api/v1/webhook-endpoints`` (``portal.webhooks.api``)."""

from portal.api.openapi import N_, STRING, answer, array, enum, json_body, obj, operation, path, ref, refusal
from portal.webhooks.models import EventType

SCHEMAS = {
    "WebhookEndpoint": obj(
        {
            "id": STRING,
            "url": STRING,
            "events": array(enum(EventType)),
            "created": {"type": "string", "format": "date-time"},
            "secret": {
                "type": "string",
                "description": N_("`whsec_…`, in the answer that makes or rotates it only."),
            },
        },
        optional=("secret",),
    ),
}

_ID = [path("public_id")]

PATHS = {
    "/webhook-endpoints": {
        "get": operation(
            N_("The organisation's webhook endpoints, without secrets"),
            "Webhooks",
            {200: answer(obj({"items": array(ref("WebhookEndpoint"))}))},
        ),
        "post": operation(
            N_("Register an endpoint"),
            "Webhooks",
            {
                201: answer(ref("WebhookEndpoint"), N_("The secret is in this answer only.")),
                400: refusal("invalid_url_*", "invalid_events", "invalid_json"),
                409: refusal("too_many_endpoints"),
                413: refusal("request_too_large"),
            },
            body=json_body(
                obj({"url": {"type": "string", "maxLength": 2048}, "events": array(enum(EventType))}),
                example={"url": "https://erp.example.com/carbon/hooks", "events": ["certificate.issued"]},
            ),
        ),
    },
    "/webhook-endpoints/{public_id}": {
        "delete": operation(
            N_("Delete an endpoint (what was still to be delivered to it is given up)"),
            "Webhooks",
            {204: answer(None, N_("Deleted.")), 404: refusal("unknown_endpoint")},
            parameters=_ID,
        )
    },
    "/webhook-endpoints/{public_id}/rotate-secret": {
        "post": operation(
            N_("A new secret, in this answer only"),
            "Webhooks",
            {200: answer(ref("WebhookEndpoint")), 404: refusal("unknown_endpoint")},
            parameters=_ID,
        )
    },
}
