"""OpenAPI description of the registry routes (``portal.registry.api``)."""

from portal.api.openapi import (
    DATE,
    DATETIME,
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
from portal.certificates.models import Purpose
from portal.registry.api import PAGE_MAX
from portal.registry.models import InstructionKind, InstructionStatus, Registry

_CONFIRMATION_RECORD = obj(
    {"payload": STRING, "signature": ref("Signature"), "signature_valid": {"type": "boolean"}},
    description=N_("The portal's signed record of the registry's confirmation."),
)

SCHEMAS = {
    "RegistryInstruction": obj(
        {
            "id": INTEGER,
            "certificate_number": STRING,
            "registry": enum(Registry),
            "kind": enum(InstructionKind),
            "batch": obj({"code": STRING, "project_code": STRING, "registry_reference": STRING}),
            "beneficiary": STRING,
            "purpose": enum(Purpose),
            "compliance_year": nullable(INTEGER),
            "quantity": QUANTITY,
            "serial_ranges": array(
                obj({"serial_start": INTEGER, "serial_end": INTEGER, "quantity": QUANTITY})
            ),
            "registry_serials": array(STRING),
            "status": enum(InstructionStatus),
            "created_at": DATETIME,
            "confirmation": nullable({"type": "object"}),
            "rejection": nullable({"type": "object"}),
        }
    ),
}

_ID = [path("n", {"type": "integer", "minimum": 0}, N_("The instruction's id."))]
_DECIDED = answer(obj({"instruction": ref("RegistryInstruction")}), headers=REPLAYED)
_DECISION_REFUSALS = {
    404: refusal("unknown_instruction"),
    409: refusal("already_decided", "serials_differ"),
    413: refusal("request_too_large"),
}

PATHS = {
    "/registry/instructions": {
        "get": operation(
            N_("Registry instructions, oldest first, page by page"),
            "Operators",
            {
                200: answer(
                    obj(
                        {
                            "items": array(ref("RegistryInstruction")),
                            "next_after": nullable(
                                {"type": "integer", "description": N_("`after` for the next page.")}
                            ),
                        }
                    )
                ),
                400: refusal("invalid_status", "invalid_registry", "invalid_page"),
            },
            parameters=[
                query("status", enum(InstructionStatus)),
                query("registry", enum(Registry)),
                query("after", {"type": "integer", "minimum": 0}, N_("The last id seen.")),
                query("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}),
            ],
        )
    },
    "/registry/instructions/{n}/confirmation": {
        "post": operation(
            N_("Record the registry's confirmation"),
            "Operators",
            {
                200: _DECIDED,
                400: refusal("invalid_reference", "invalid_date", "invalid_serials", "invalid_json"),
                **_DECISION_REFUSALS,
            },
            description=N_("The serials as the registry states them; they must be the instructed ones."),
            parameters=_ID,
            body=json_body(
                obj(
                    {"reference": STRING, "date": DATE, "serial_start": STRING, "serial_end": STRING},
                    optional=("serial_end",),
                )
            ),
        )
    },
    "/registry/instructions/{n}/rejection": {
        "post": operation(
            N_("Record the registry's rejection"),
            "Operators",
            {200: _DECIDED, 400: refusal("invalid_reason", "invalid_json"), **_DECISION_REFUSALS},
            parameters=_ID,
            body=json_body(
                obj({"reason": STRING}), example={"reason": "The registry account holds fewer units."}
            ),
        )
    },
    "/certificates/{number}/registry": {
        "get": operation(
            N_("The official registry's side of a certificate"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "certificate": STRING,
                            "registry": ref("RegistryStatus"),
                            "instructions": array(
                                obj(
                                    {
                                        "registry": enum(Registry),
                                        "kind": enum(InstructionKind),
                                        "batch_code": STRING,
                                        "quantity": QUANTITY,
                                        "registry_serials": array(STRING),
                                        "status": enum(InstructionStatus),
                                        "reference": nullable(STRING),
                                        "date": nullable(DATE),
                                        "confirmation": nullable(_CONFIRMATION_RECORD),
                                    }
                                )
                            ),
                        }
                    )
                ),
                404: refusal("unknown_certificate"),
                429: refusal("too_many_lookups"),
            },
            parameters=[path("number")],
        )
    },
}
