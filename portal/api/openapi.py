"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Each package that adds routes to the API blueprint describes them beside its views, in an
``api_spec.py`` holding ``PATHS`` (``{"/path/{param}": {"get": operation, …}}``, paths relative to
``/api/v1``) and, if it needs named schemas, ``SCHEMAS``. This module lists those modules
(``FRAGMENTS``), merges them and adds what the code decides for every operation: whether it
needs an API key (read from the view's ``require_key``), the 400/401/403/503 answers that follow
from that, and the common error object. ``tests/api/test_openapi.py`` fails when a route of the
URL map is missing here, or the document names one the app lacks.

Adding an endpoint: describe it in its package's ``api_spec.py`` with the helpers below, its
prose (summaries, descriptions) written ``N_("…")`` so that the reference page
(``portal.api.reference``) shows it in the page's language: ``python scripts/i18n.py update``,
then translate the new messages in the Chinese catalog.
"""

import importlib
import re
from enum import Enum

from flask import current_app

from portal.api.views import bp
from portal.core.guard import public

#: The modules describing the API's operations, one per package that adds routes.
FRAGMENTS = (
    "portal.api.spec",
    "portal.certificates.api_spec",
    "portal.offsets.api_spec",
    "portal.contracts.api_spec",
    "portal.registry.api_spec",
    "portal.transparency.api_spec",
    "portal.pipeline.api_spec",
    "portal.revenue.api_spec",
    "portal.webhooks.api_spec",
)

# --- helpers for the fragments ------------------------------------------------------------------


def N_(text: str) -> str:  # noqa: N802 (gettext's name for a no-op marker)
    """``text``, marked for the message catalog (Babel extracts ``N_``): the document stays in
    English, for programs; the reference page (``portal.api.reference``) shows the prose in the
    page's language. A per cent sign is written ``%%``, as in every message of the catalog (a
    message with ``%`` is a format to Babel); the document gets one ``%``."""
    return text.replace("%%", "%")


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
URL = {"type": "string"}
QUANTITY = {"type": "integer", "minimum": 1, "description": N_("Whole tonnes of CO2e.")}
DECIMAL = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": N_("A decimal number as text."),
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def enum(values) -> dict:
    """A string of one of ``values`` (an Enum class or an iterable of strings)."""
    if isinstance(values, type) and issubclass(values, Enum):
        values = [v.value for v in values]
    return {"type": "string", "enum": list(values)}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict, *, optional: tuple[str, ...] = (), **extra) -> dict:
    """An object with ``properties``, every one required but those in ``optional``."""
    schema = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def json_body(
    schema: dict, *, required: bool = True, description: str | None = None, example: dict | None = None
) -> dict:
    """A JSON request body; ``example`` is shown in the reference and sent by the API's tests."""
    media: dict = {"schema": schema}
    if example is not None:
        media["examples"] = {"example": {"value": example}}
    body = {"required": required, "content": {"application/json": media}}
    if description:
        body["description"] = description
    return body


def answer(schema: dict | None, description: str = "", *, headers: dict | None = None) -> dict:
    """A response: a JSON body of ``schema`` (none for ``None``)."""
    response: dict = {"description": description or N_("OK")}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    if headers:
        response["headers"] = headers
    return response


def refusal(*codes: str, description: str = "") -> dict:
    """An error response, ``{"error": {"code", "message"}}``, with one of ``codes``."""
    text = "`" + "`, `".join(codes) + "`" if codes else ""
    if description:
        text = f"{text}: {description}" if text else description
    return {"description": text or N_("Refused."), "content": {"application/json": {"schema": ref("Error")}}}


def query(name: str, schema: dict, description: str = "") -> dict:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def path(name: str, schema: dict | None = None, description: str = "") -> dict:
    param = {"name": name, "in": "path", "required": True, "schema": schema or STRING}
    if description:
        param["description"] = description
    return param


#: The ``Idempotency-Key`` header of the calls that take one.
IDEMPOTENCY_KEY = {"$ref": "#/components/parameters/IdempotencyKey"}
#: The header marking a repeated call's first answer.
REPLAYED = {"Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}


def operation(
    summary: str,
    tag: str,
    responses: dict,
    *,
    description: str = "",
    parameters: list | None = None,
    body: dict | None = None,
) -> dict:
    op = {"summary": summary, "tags": [tag], "responses": {str(k): v for k, v in responses.items()}}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


# --- the document -----------------------------------------------------------------------------

PREFIX = bp.url_prefix  # "/api/v1"

_CONVERTED = re.compile(r"<(?:(\w+):)?(\w+)>")

COMMON_SCHEMAS = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {"type": "string", "description": N_("Stable, for programs.")},
                    "message": {
                        "type": "string",
                        "description": N_("For people, in the language of Accept-Language."),
                    },
                },
                description=N_("Some refusals add members (`fields`, `overlaps`) that say more."),
            )
        }
    ),
    "Money": obj(
        {
            "amount": {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["68.00"]},
            "currency": enum(["CNY"]),
        }
    ),
}


def openapi_path(rule: str) -> str:
    """``/api/v1/batches/<code>`` → ``/batches/{code}``."""
    return _CONVERTED.sub(r"{\2}", rule.removeprefix(PREFIX)) or "/"


def api_routes(app) -> dict[tuple[str, str], object]:
    """``{(openapi path, method): view}`` of every ``/api/v1`` route of ``app``."""
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.rule != PREFIX and not rule.rule.startswith(PREFIX + "/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found[(openapi_path(rule.rule), method.lower())] = app.view_functions[rule.endpoint]
    return found


def _with_code_facts(op: dict, view, method: str = "get") -> dict:
    """Adds what the view's decorators say: the key it needs and the answers that follow (a
    keyed call, or a public one that sends something, counts against the rate limit:
    ``api.auth``)."""
    op = {**op, "responses": dict(op["responses"])}
    responses = op["responses"]
    actions = getattr(view, "api_key_action", None)
    if actions:
        op["security"] = [{"apiKey": []}]
        op["x-permissions"] = list(actions)
        responses.setdefault("401", {"$ref": "#/components/responses/Unauthorized"})
        responses.setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    else:
        op["security"] = []
    if actions or method not in ("get", "head", "options"):
        responses.setdefault("429", {"$ref": "#/components/responses/RateLimited"})
    # Any request may be refused as malformed (a NUL in the path or query, say), and any may
    # meet a database that is down.
    responses.setdefault("400", {"$ref": "#/components/responses/BadRequest"})
    responses.setdefault("503", {"$ref": "#/components/responses/Unavailable"})
    return op


def build(app) -> dict:
    """The whole document, from the fragments and ``app``'s URL map."""
    paths: dict[str, dict] = {}
    schemas = dict(COMMON_SCHEMAS)
    for name in FRAGMENTS:
        module = importlib.import_module(name)
        for route, operations in module.PATHS.items():
            for method, op in operations.items():
                if method in paths.setdefault(route, {}):
                    raise ValueError(f"{method.upper()} {route} is described twice ({name})")
                paths[route][method] = op
        schemas.update(getattr(module, "SCHEMAS", {}))
    views = api_routes(app)
    for route, operations in paths.items():
        for method, op in operations.items():
            view = views.get((route, method))
            operations[method] = _with_code_facts(op, view, method) if view is not None else op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chifeng carbon-sink marketplace API",
            "version": "1",
            "description": (
                N_(
                    "Buyers' systems (holdings, retirements, orders), sales staff's tools (offtake "
                    "contracts, invoices), the operator's reporting and registry work, and the public "
                    "register (batches, projects, certificates, the transparency log). JSON in and out; "
                    'errors are a 4xx with `{"error": {"code", "message"}}` (messages follow '
                    "`Accept-Language`: Chinese by default, English with `en`); bad input never gives "
                    'a 5xx. Money is `{"amount": "68.00", "currency": "CNY"}`; quantities are '
                    "whole tonnes; dates ISO 8601."
                )
            ),
        },
        "servers": [{"url": PREFIX}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        N_(
                            "`Authorization: Bearer <api key>`. An organisation's key acts as that buyer; "
                            "a staff user's key acts with the user's role. Keys are made on the account "
                            "page or with `flask apikeys create`."
                        )
                    ),
                }
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": (
                        N_(
                            "A repeat with the same key and body returns the first result with "
                            "`Idempotent-Replayed: true`; the same key with another body is "
                            "`422 idempotency_key_reused`."
                        )
                    ),
                }
            },
            "headers": {
                "IdempotentReplayed": {
                    "schema": enum(["true"]),
                    "description": N_("Present on the first answer given again for a repeated call."),
                },
                "RetryAfter": {"schema": {"type": "string"}, "description": N_("Seconds to wait.")},
                "RateLimitLimit": {
                    "schema": {"type": "string"},
                    "description": N_("Calls allowed in the window."),
                },
                "RateLimitRemaining": {
                    "schema": {"type": "string"},
                    "description": N_("Calls left in the window."),
                },
                "RateLimitReset": {
                    "schema": {"type": "string"},
                    "description": N_("Seconds until the window ends."),
                },
            },
            "responses": {
                "BadRequest": refusal(description=N_("The request is malformed (`bad_request`, …).")),
                "Unauthorized": refusal(
                    description=N_("`invalid_api_key`: no key, or an unknown or revoked one.")
                ),
                "Forbidden": refusal(description=N_("`forbidden`: this key's role may not do that.")),
                "Unavailable": {
                    "description": (
                        N_(
                            "`database_unavailable` (nothing was saved; try again) or `outcome_unknown` "
                            "(the connection was lost while committing: look, or repeat with the same "
                            "Idempotency-Key)."
                        )
                    ),
                    "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                    "content": {"application/json": {"schema": ref("Error")}},
                },
                "RateLimited": {
                    "description": N_(
                        "`rate_limited`: too many calls for this key (or address) in the window."
                    ),
                    "headers": {
                        "Retry-After": {"$ref": "#/components/headers/RetryAfter"},
                        "RateLimit-Limit": {"$ref": "#/components/headers/RateLimitLimit"},
                        "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimitRemaining"},
                        "RateLimit-Reset": {"$ref": "#/components/headers/RateLimitReset"},
                    },
                    "content": {"application/json": {"schema": ref("Error")}},
                },
            },
        },
    }


@bp.get("/openapi.json")
@public
def openapi_document():
    """This document (``portal.api.openapi``)."""
    app = current_app._get_current_object()
    document = app.extensions.get("openapi_document")
    if document is None:
        document = app.extensions["openapi_document"] = build(app)
    return document
