"""``/api/v1/parcels`` and ``/api/v1/projects/<code>/pipeline``, for the operator's GIS and survey
tools and the counties' own: operator keys enrol parcels; staff keys read every county, a county
reviewer's key its own only (another county's parcel or project is a 404, as if absent)."""

import json

from flask import abort, g, request
from flask_babel import gettext as _

from portal import access
from portal.api.auth import require_key
from portal.api.views import api_error, bp
from portal.core import jsontext
from portal.core.limits import body_limit
from portal.core.text import has_unstorable_text
from portal.pipeline import services
from portal.pipeline.geometry import MAX_DEPTH

#: A boundary of 100,000 vertices written out in full, with the fields around it.
MAX_PARCEL_BODY = 6 * 1024 * 1024


def parcel_json(parcel, with_boundary: bool = True) -> dict:
    data = {
        "id": parcel.id,
        "code": parcel.code,
        "county": parcel.region.code,
        "land_type": parcel.land_type,
        "tenure": parcel.tenure,
        "rights_holder": parcel.rights_holder.name,
        "agreement": parcel.agreement.number if parcel.agreement else None,
        "project": parcel.project.code if parcel.project else None,
        "status": parcel.status,
        "area_ha": f"{parcel.area_ha:.4f}",
        "bbox": [parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat],
    }
    if with_boundary:
        data["boundary"] = json.loads(parcel.boundary_geojson)
    return data


def _refusal(exc):
    body = {"code": exc.code, "message": exc.message}
    if isinstance(exc, services.ParcelOverlap):
        body["overlaps"] = [
            {"id": o.parcel_id, "code": o.code, "overlap_ha": f"{o.overlap_ha:.4f}"} for o in exc.overlaps
        ]
    return {"error": body}, exc.status


@bp.post("/parcels")
@body_limit(MAX_PARCEL_BODY)
@require_key("pipeline.change")
def create_parcel():
    body = None
    if request.is_json:
        try:
            body = jsontext.request_json(max_bytes=MAX_PARCEL_BODY, max_depth=MAX_DEPTH + 2)
        except jsontext.JsonRefused as exc:
            code = "request_too_large" if exc.code == "too_large" else "invalid_json"
            return api_error(exc.status, code, exc.message)
    if not isinstance(body, dict):
        return api_error(400, "invalid_json", _("Send a JSON object."))
    if has_unstorable_text(body):
        return api_error(
            400, "invalid_text", _("Text may not contain NUL characters or unpaired surrogates.")
        )
    try:
        parcel = services.enroll_parcel(
            county=body.get("county"),
            land_type=body.get("land_type"),
            tenure=body.get("tenure"),
            rights_holder_name=body.get("rights_holder"),
            boundary=body.get("boundary"),
            actor=g.principal.actor,
        )
    except services.PipelineError as exc:
        return _refusal(exc)
    return parcel_json(parcel), 201


def _county_filter() -> int | None:
    """The region id the caller reads: a county key its own (another county asked for is a 403),
    staff the one named in ``?county=`` or every one."""
    own = access.county_of(g.principal)
    asked = (request.args.get("county") or "").strip()
    if asked:
        try:
            region = services.find_region(asked)
        except services.PipelineError as exc:
            abort(api_error_response(400, exc.code, exc.message))
        if own is not None and region.id != own:
            abort(api_error_response(403, "other_county", _("This key reads its own county only.")))
        return region.id
    return own


def api_error_response(status, code, message):
    from flask import make_response

    return make_response(*api_error(status, code, message))


@bp.get("/parcels")
@require_key("pipeline.read_all", "pipeline.read_own")
def list_parcels():
    """At most 1,000 parcels, by county; ``total`` counts them all."""
    region_id = _county_filter()
    found = services.parcels(region_id)
    with_boundary = request.args.get("boundary") == "1"
    return {
        "items": [parcel_json(p, with_boundary) for p in found],
        "total": services.parcel_count(region_id),
    }


@bp.get("/projects/<code>/pipeline")
@require_key("pipeline.read_all", "pipeline.read_own")
def project_pipeline(code):
    project = services.find_project(code)
    if project is None or not access.may(g.principal, "view", project):
        abort(404)
    forecast = services.forecast_in_force(project)
    review = services.latest_review(project)
    return {
        "code": project.code,
        "name": project.name_zh,
        "name_en": project.name_en,
        "county": project.region.code,
        "type": project.type,
        "standard": project.standard,
        "methodology": project.methodology,
        "state": project.state,
        "stage": project.stage,
        "crediting_start": project.crediting_start.isoformat(),
        "crediting_end": project.crediting_end.isoformat(),
        "catalog_project": project.catalog_project.code if project.catalog_project else None,
        "county_review": None
        if review is None
        else {
            "decision": review.decision,
            "comments": review.comments,
            "reviewed_at": review.reviewed_at.isoformat(),
            "current": services.is_approved(project) if review.decision == "approved" else False,
        },
        "filing": None
        if project.filed_on is None
        else {"reference": project.filing_reference, "date": project.filed_on.isoformat()},
        "parcels": [{"code": p.code, "area_ha": f"{p.area_ha:.4f}"} for p in project.parcels],
        "stages": [
            {
                "stage": s.stage,
                "date": s.reached_on.isoformat(),
                "responsible_body": s.responsible_body,
                "reference": s.reference,
                "notes": s.notes,
                "documents": [
                    {"filename": d.filename, "sha256": d.sha256, "size": d.size} for d in s.documents
                ],
            }
            for s in project.stages
        ],
        "forecast": None
        if forecast is None
        else {
            "revision": forecast.number,
            "revised_at": forecast.created_at.isoformat(),
            "lines": [
                {
                    "vintage": line.vintage,
                    "expected_t": line.expected_t,
                    "low_t": line.low_t,
                    "high_t": line.high_t,
                }
                for line in forecast.lines
            ],
        },
    }
