"""``/api/docs``: the API reference as a page, rendered here from the OpenAPI document (no
script, nothing fetched from elsewhere: it works with no internet).

The document is in English, for programs. Its prose (summaries and descriptions, marked ``N_`` in
``portal.api.openapi`` and the ``api_spec.py`` modules, so that the catalog has them) is shown in
the page's language: ``translated``."""

import json
import re

from flask import Blueprint, render_template
from flask_babel import gettext
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
#: A refusal's description: its codes, then what ``refusal(description=…)`` says of them.
_CODES_THEN_TEXT = re.compile(r"(`[^`]+`(?:, `[^`]+`)*): (.+)", re.DOTALL)


def translated(text: str) -> str:
    """The document's English ``text`` in the page's language. A refusal's description, made of
    its codes and a sentence, is the codes as they are and the sentence translated."""
    if not text:
        return text or ""
    found = _message(text)
    if found != text:
        return found
    match = _CODES_THEN_TEXT.fullmatch(text)
    if match:
        reason = _message(match[2])
        if reason != match[2]:
            return gettext("%(codes)s: %(reason)s", codes=match[1], reason=reason)
    return text


def _message(text: str) -> str:
    """The catalog's translation of ``text``, itself when it has none. The catalog has a per cent
    sign as ``%%`` (``portal.api.openapi.N_``)."""
    key = text.replace("%", "%%")
    found = gettext(key)
    return text if found == key else found.replace("%%", "%")


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
        prose=lambda text: inline_code(translated(text)),
        text=translated,
        as_json=lambda value: json.dumps(value, ensure_ascii=False, indent=2),
    )
