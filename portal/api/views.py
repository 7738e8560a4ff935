"""``/api/v1`` endpoints. Errors: a 4xx and ``{"error": {"code", "message"}}``; never a 5xx for
bad input."""

from flask import Blueprint, abort, current_app, g, jsonify, make_response, request, url_for
from flask_babel import gettext as _

from portal.api.auth import count_call, require_key
from portal.buyers import services as buyers
from portal.catalog import cache
from portal.catalog import services as catalog
from portal.catalog.views import args_key
from portal.core import jsontext
from portal.core.guard import public
from portal.core.i18n import localized_en
from portal.core.text import has_unstorable_text

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def money(amount) -> dict | None:
    return None if amount is None else {"amount": f"{amount:.2f}", "currency": "CNY"}


def project_summary(project) -> dict:
    return {
        "code": project.code,
        "name": project.name_zh,
        "name_en": project.name_en,
        "type": project.type,
        "standard": project.standard,
        "methodology": project.methodology,
        "county": project.region.code,
        "county_name": project.region.name_zh,
        "county_name_en": project.region.name_en,
    }


def batch_json(batch, price, available, retired=None) -> dict:
    data = {
        "code": batch.code,
        "project": project_summary(batch.project),
        "vintage_start": batch.vintage_start.isoformat(),
        "vintage_end": batch.vintage_end.isoformat(),
        "issued_quantity": batch.quantity,
        "buffer_quantity": batch.buffer_quantity,
        "available_quantity": available,
        "issued_on": batch.issued_on.isoformat(),
        "registry_reference": batch.registry_reference,
        "registry_serial_start": batch.registry_serial_start,
        "registry_serial_end": batch.registry_serial_end,
        "price": money(price),
    }
    if retired is not None:
        data["retired_quantity"] = retired
    return data


@bp.before_request
def count_public_calls():
    """Public calls that send something (estimates, PDF checks) count against the client's
    address; keyed calls against the key (``require_key``). Public reads are not counted here:
    they are served from the catalog's cache at one query each, and the reverse proxy limits them
    (docs/deployment.md)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if getattr(view, "access", ("",))[0] == "public":
        return count_call(f"address:{request.remote_addr or 'unknown'}")
    return None


@bp.after_request
def vary_on_language(response):
    # Messages follow Accept-Language: shared caches must keep the languages apart.
    response.vary.add("Accept-Language")
    return response


def json_object() -> dict:
    """The request's JSON object; anything else ends the request with a 400 saying why (not a
    JSON object, nested too deeply, or holding text no database stores: a NUL or a lone
    surrogate), or a 413 when it is too large (see ``portal.core.jsontext``)."""
    body = None
    if request.is_json:
        try:
            body = jsontext.request_json()
        except jsontext.JsonRefused as exc:
            if exc.code != "invalid":
                abort(make_response(api_error(exc.status, _refusal_codes[exc.code], exc.message)))
    if not isinstance(body, dict):
        abort(make_response(api_error(400, "invalid_json", _("Send a JSON object."))))
    if has_unstorable_text(body):
        message = _("Text may not contain NUL characters or unpaired surrogates.")
        abort(make_response(api_error(400, "invalid_text", message)))
    return body


_refusal_codes = {"too_large": "request_too_large", "too_deep": "invalid_json"}


def api_error(status: int, code: str, message: str):
    return jsonify(error={"code": code, "message": message}), status


@bp.get("/batches")
@public
def batches():
    try:
        filters = catalog.CatalogFilters.from_args(request.args, current_app.config["CATALOG_PER_PAGE"])
    except catalog.FilterError as exc:
        return api_error(400, "invalid_filter", exc.message)

    def build():
        page = catalog.search(filters)
        return {
            "items": [batch_json(r.batch, r.price_per_t, r.available) for r in page.rows],
            "page": filters.page,
            "per_page": filters.per_page,
            "total": page.total,
        }

    return cache.cached(("api-batches", args_key()), build)


@bp.get("/batches/<code>")
@public
def batch(code):
    row = catalog.find_batch(code)
    if row is None:
        abort(404)
    return batch_json(row.batch, row.price_per_t, row.available)


def _boundary(geojson: str | None) -> dict | None:
    if not geojson:
        return None
    try:
        return catalog.boundary_geometry(geojson)
    except catalog.BoundaryError:
        return None  # saved before the bounds applied, and beyond them: not served


@bp.get("/projects/<code>")
@public
def project(code):
    page = catalog.find_project(code)
    if page is None:
        abort(404)
    p = page.project
    return {
        **project_summary(p),
        "description": p.description_zh,
        "description_en": localized_en(p, "description"),
        "area_ha": f"{p.area_ha:.2f}",
        "crediting_start": p.crediting_start.isoformat(),
        "crediting_end": p.crediting_end.isoformat(),
        "status": p.status,
        "validation_body": p.validation_body,
        "verification_body": p.verification_body,
        "registry_id": p.registry_id,
        "boundary": _boundary(p.boundary_geojson),
        "totals": {"issued": page.issued, "available": page.available, "retired": page.retired},
        "batches": [batch_json(h.batch, h.price_per_t, h.available, h.retired) for h in page.batches],
    }


@bp.get("/holdings")
@require_key("holdings.read_own")
def holdings():
    """The calling organisation's holding, block by block (portal serials, 1-based, inclusive)."""
    blocks = buyers.holding_blocks(g.principal.organisation)
    return {
        "blocks": [
            {
                "batch_code": b.batch.code,
                "serial_start": b.serial_start,
                "serial_end": b.serial_end,
                "quantity": b.quantity,
            }
            for b in blocks
        ],
        "total": sum(b.quantity for b in blocks),
    }


@bp.get("")
@bp.get("/")
@public
def index():
    """What the API offers, for a newcomer who opens ``/api/v1``: every endpoint, the OpenAPI
    document and its reference page."""
    endpoints = sorted(
        (rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"}))
        for rule in current_app.url_map.iter_rules()
        if rule.rule.startswith(bp.url_prefix + "/") and rule.endpoint != "api.index"
    )
    return {
        "api": "v1",
        "documentation": "docs/api.md",
        "openapi": url_for("api.openapi_document"),
        "reference": url_for("api_reference.reference"),
        "authentication": "Authorization: Bearer <api key>",
        "endpoints": [{"path": path, "methods": methods} for path, methods in endpoints],
    }
