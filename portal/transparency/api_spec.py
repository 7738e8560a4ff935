"""OpenAPI description of the transparency log (``portal.transparency.api``)."""

from portal.api.openapi import (
    BOOLEAN,
    DATETIME,
    INTEGER,
    N_,
    STRING,
    answer,
    array,
    obj,
    operation,
    query,
    ref,
    refusal,
)

_SIZE = {"type": "integer", "minimum": 0}
_ENTRY = {
    "leaf_index": INTEGER,
    "kind": STRING,
    "certificate": STRING,
    "logged_at": DATETIME,
    "leaf_input": {"type": "string", "description": "base64"},
}
_REFUSED = refusal(
    "invalid_parameter", "missing_parameter", "invalid_range", "beyond_tree", "leaf_not_in_tree"
)

SCHEMAS = {
    "TreeHead": obj(
        {
            "tree_size": INTEGER,
            "root_hash": {"type": "string", "description": "base64"},
            "timestamp": {"type": "integer", "description": N_("Milliseconds since 1970-01-01 UTC.")},
            "signed_at": DATETIME,
            "signature": ref("Signature"),
        }
    ),
    "LogEntry": obj(_ENTRY),
}

PATHS = {
    "/log/tree-head": {
        "get": operation(
            N_("The latest signed tree head"),
            "Transparency log",
            {200: answer(ref("TreeHead")), 404: refusal("no_tree_head")},
        )
    },
    "/log/tree-heads": {
        "get": operation(
            N_("Signed tree heads above a size, smallest first (at most 1,000 an answer)"),
            "Transparency log",
            {200: answer(obj({"tree_heads": array(ref("TreeHead")), "more": BOOLEAN})), 400: _REFUSED},
            parameters=[query("after", _SIZE)],
        )
    },
    "/log/entries": {
        "get": operation(
            N_("Leaves start … end − 1 (at most 1,000 an answer)"),
            "Transparency log",
            {
                200: answer(
                    obj(
                        {
                            "start": INTEGER,
                            "end": INTEGER,
                            "tree_size": INTEGER,
                            "entries": array(ref("LogEntry")),
                        }
                    )
                ),
                400: _REFUSED,
            },
            parameters=[query("start", _SIZE), query("end", _SIZE)],
        )
    },
    "/log/proof/inclusion": {
        "get": operation(
            N_("The audit path of a certificate's events"),
            "Transparency log",
            {
                200: answer(
                    obj(
                        {
                            "certificate": STRING,
                            "tree_size": INTEGER,
                            "leaf_index": INTEGER,
                            "audit_path": array(STRING),
                            "entries": array(obj({**_ENTRY, "audit_path": array(STRING)})),
                            "tree_head": ref("TreeHead"),
                        },
                        optional=("tree_head",),
                    )
                ),
                400: _REFUSED,
                404: refusal("unknown_certificate", "not_logged"),
                409: refusal("not_yet_signed", description=N_("Try again after `Retry-After`.")),
                429: refusal("too_many_lookups"),
            },
            parameters=[
                query("certificate", STRING),
                query(
                    "tree_size",
                    {"type": "integer", "minimum": 1},
                    N_("By default the latest signed tree head's."),
                ),
            ],
        )
    },
    "/log/proof/consistency": {
        "get": operation(
            N_("A consistency proof between two tree sizes"),
            "Transparency log",
            {
                200: answer(obj({"first": INTEGER, "second": INTEGER, "proof": array(STRING)})),
                400: _REFUSED,
                404: refusal("no_tree_head"),
            },
            parameters=[
                {
                    "name": "first",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                },
                query(
                    "second",
                    {"type": "integer", "minimum": 1},
                    N_("By default the latest signed tree head's."),
                ),
            ],
        )
    },
}
