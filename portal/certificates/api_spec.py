"""OpenAPI description of the certificate routes (``portal.certificates.api``)."""

from portal.api.openapi import (
    BOOLEAN,
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
from portal.certificates.models import CertificateStatus, Purpose
from portal.certificates.verification import RESULTS

SIGNATURE = obj(
    {"alg": enum(["Ed25519"]), "key_id": STRING, "value": {"type": "string", "description": "base64"}}
)

SCHEMAS = {
    "Signature": SIGNATURE,
    "RegistryStatus": obj(
        {
            "status": enum(["pending", "confirmed", "rejected"]),
            "reference": nullable(STRING),
            "confirmed_at": nullable({"type": "string", "format": "date"}),
            "url": nullable(STRING),
        },
        description=N_("Whether the official registry has done the retirement in the operator's account."),
    ),
    "Certificate": obj(
        {
            "number": STRING,
            "status": enum(CertificateStatus),
            "url": STRING,
            "pdf_url": STRING,
            "quantity": QUANTITY,
            "beneficiary": STRING,
            "purpose": enum(Purpose),
            "purpose_detail": STRING,
            "retired_at": nullable(STRING),
            "retired_by": nullable({"type": "object"}),
            "project": nullable({"type": "object", "description": N_("The project of most tonnes.")}),
            "projects": array({"type": "object"}),
            "blocks": array(ref("Block")),
            "revoked": nullable(obj({"at": DATETIME, "reason": STRING})),
            "payload": {"type": "string", "description": N_("Canonical JSON: what the signature covers.")},
            "signature": ref("Signature"),
            "signature_valid": BOOLEAN,
            "transparency_log": obj(
                {
                    "entries": array(obj({"kind": STRING, "leaf_index": INTEGER, "logged_at": DATETIME})),
                    "proof_url": STRING,
                }
            ),
            "registry": ref("RegistryStatus"),
        }
    ),
}

_LOOKUP_REFUSALS = {
    400: refusal(
        "invalid_number", "bad_request", description=N_("Not a certificate number (check character wrong).")
    ),
    404: refusal("unknown_certificate"),
    429: refusal("too_many_lookups", description=N_("Too many failed look-ups from this client.")),
}

PATHS = {
    "/signing-keys": {
        "get": operation(
            N_("The keys certificates were ever signed with"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "document_signing": obj(
                                {
                                    "alg": STRING,
                                    "subject": STRING,
                                    "not_after": DATETIME,
                                    "chain_pem": STRING,
                                    "chain_url": STRING,
                                }
                            ),
                            "keys": array(
                                obj(
                                    {
                                        "key_id": STRING,
                                        "alg": enum(["Ed25519"]),
                                        "public_key": {
                                            "type": "string",
                                            "description": N_("Raw 32 bytes, base64."),
                                        },
                                        "created_at": DATETIME,
                                    }
                                )
                            ),
                        }
                    )
                )
            },
        )
    },
    "/signing-chain.pem": {
        "get": operation(
            N_("The document-signing certificate and its chain (PEM, root last)"),
            "Public",
            {200: {"description": "PEM", "content": {"application/x-pem-file": {"schema": STRING}}}},
        )
    },
    "/verify": {
        "post": operation(
            N_("Check a PDF someone brought"),
            "Public",
            {
                200: answer(
                    obj(
                        {
                            "result": enum(RESULTS),
                            "message": STRING,
                            "certificate": obj(
                                {
                                    "number": STRING,
                                    "status": enum(CertificateStatus),
                                    "registry": ref("RegistryStatus"),
                                }
                            ),
                        },
                        optional=("certificate",),
                    )
                ),
                400: refusal("no_file"),
                413: refusal("request_too_large", description=N_("Over 5 MB.")),
                429: refusal("too_many_uploads"),
                503: refusal(
                    "busy", description=N_("Every sandbox slot is taken; try again a moment later.")
                ),
            },
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": obj(
                            {
                                "file": {
                                    "type": "string",
                                    "format": "binary",
                                    "contentMediaType": "application/pdf",
                                }
                            }
                        )
                    }
                },
            },
        )
    },
    "/certificates/{number}": {
        "get": operation(
            N_("A retirement certificate"),
            "Public",
            {200: answer(ref("Certificate")), **_LOOKUP_REFUSALS},
            parameters=[
                path("number", description=N_("Forgiving of case and spaces; carries a check character."))
            ],
        )
    },
    "/retirements": {
        "post": operation(
            N_("Retire from the organisation's holding"),
            "Buyers",
            {
                201: answer(obj({"certificate": ref("Certificate")}), headers=REPLAYED),
                400: refusal(
                    "invalid_quantity", "invalid_purpose", "invalid_json", description=N_("Names the field.")
                ),
                403: refusal("organisation_not_allowed", "forbidden"),
                404: refusal("unknown_batch"),
                409: refusal("insufficient_holding"),
                413: refusal("request_too_large"),
                422: refusal("idempotency_key_reused"),
            },
            description=(
                N_(
                    "Compliance retirements are CCER only and capped at 5 %% of the allowances the "
                    "organisation declared for the year."
                )
            ),
            parameters=[IDEMPOTENCY_KEY],
            body=json_body(
                obj(
                    {
                        "quantity": QUANTITY,
                        "beneficiary": {"type": "string", "maxLength": 200},
                        "purpose": enum(Purpose),
                        "purpose_detail": STRING,
                        "batch_code": STRING,
                        "compliance_year": INTEGER,
                    },
                    optional=("beneficiary", "purpose_detail", "batch_code", "compliance_year"),
                ),
                example={
                    "quantity": 3,
                    "beneficiary": "测试钢铁 2026 年度",
                    "purpose": "event",
                    "purpose_detail": "2026 年会",
                    "batch_code": "CF-FOR-2022-001",
                },
            ),
        )
    },
}
