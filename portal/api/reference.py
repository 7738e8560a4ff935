"""``/api/docs``: the API reference as a page, rendered here from the OpenAPI document (no
script, nothing fetched from elsewhere: it works with no internet)."""

import json
import re

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.api.openapi import openapi_document
from portal.core.guard import public

bp = Blueprint("api_reference", __name__, template_folder="templates")

METHODS = ("get", "post", "put", "patch", "delete")

#: The document's tags (English, for programs) as the page names them.
TAG_LABELS = {
    "Public": _l("Public (no key)"),
    "Buyers": _l("Buyers (an organisation's key)"),
    "Contracts": _l("Offtake contracts and invoices"),
    "Operators": _l("Operators and auditors"),
    "Pipeline": _l("The project pipeline"),
    "Transparency log": _l("The transparency log"),
    "Webhooks": _l("Webhooks to the organisation's systems"),
}

_CODE = re.compile(r"`([^`]+)`")


def inline_code(text: str) -> Markup:
    """The document's prose with its `code` spans set as code (everything else escaped)."""
    parts = _CODE.split(str(text or ""))
    return Markup("").join(
        Markup("<code>%s</code>") % part if i % 2 else escape(part) for i, part in enumerate(parts)
    )


def _ref_name(schema: dict) -> str | None:
    target = schema.get("$ref", "") if isinstance(schema, dict) else ""
    return target.rsplit("/", 1)[-1] if target else None


def _sections(document: dict) -> list[dict]:
    """The operations grouped by tag, in the document's order of paths."""
    sections: dict[str, list] = {}
    for route, operations in document["paths"].items():
        for method in METHODS:
            op = operations.get(method)
            if op is None:
                continue
            tag = (op.get("tags") or ["API"])[0]
            tag = TAG_LABELS.get(tag, tag)
            sections.setdefault(tag, []).append(
                {
                    "method": method.upper(),
                    "path": document["servers"][0]["url"] + ("" if route == "/" else route),
                    "anchor": f"{method}-{route}".replace("/", "-").replace("{", "").replace("}", ""),
                    "op": op,
                }
            )
    return [{"tag": tag, "operations": ops} for tag, ops in sections.items()]


def _resolve(document: dict, item: dict) -> dict:
    """A parameter or response given by ``$ref``, looked up in the components."""
    while isinstance(item, dict) and "$ref" in item:
        kind, name = item["$ref"].split("/")[-2:]
        item = document["components"][kind][name]
    return item


@bp.get("/api/docs")
@public
def reference():
    document = openapi_document()
    return render_template(
        "api/reference.html",
        document=document,
        sections=_sections(document),
        resolve=lambda item: _resolve(document, item),
        ref_name=_ref_name,
        prose=inline_code,
        as_json=lambda value: json.dumps(value, ensure_ascii=False, indent=2),
    )
