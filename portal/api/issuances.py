"""``POST /api/v1/projects/<code>/issuances``: operators' scripts record a registry issuance
through the same service, and the same rules, as the back office's form."""

from flask import g
from flask_babel import gettext as _
from sqlalchemy import select

from portal.api.auth import require_key
from portal.api.views import api_error, batch_json, bp, json_object
from portal.catalog import services as catalog
from portal.catalog.models import Project
from portal.extensions import db
from portal.timeutil import iso_date

_DATES = ("vintage_start", "vintage_end", "issued_on")
_TEXTS = ("registry_reference", "registry_serial_start", "registry_serial_end")


@bp.post("/projects/<code>/issuances")
@require_key("projects.change")
def record_issuance(code):
    project = db.session.scalar(select(Project).filter_by(code=code))
    if project is None:
        return api_error(404, "unknown_project", _("There is no project %(code)s.", code=code[:40]))
    body = json_object()
    values = {}
    for name in _DATES:
        values[name] = iso_date(body.get(name))
        if values[name] is None:
            return api_error(
                400, f"invalid_{name}", _("%(field)s must be a date such as 2025-06-01.", field=name)
            )
    for name in ("quantity", "buffer_quantity"):
        raw = body.get(name, 0 if name == "buffer_quantity" else None)
        if type(raw) is not int:
            return api_error(
                400, f"invalid_{name}", _("%(field)s must be a whole number of tonnes.", field=name)
            )
        values[name] = raw
    for name in _TEXTS:
        raw = body.get(name, "")
        if not isinstance(raw, str) or len(raw) > 120:
            return api_error(
                400, f"invalid_{name}", _("%(field)s must be text of at most 120 characters.", field=name)
            )
        values[name] = raw
    price = body.get("price_per_t")
    if price is not None and not isinstance(price, str):
        return api_error(400, "price", _('price_per_t is a decimal string, such as "68.00".'))
    try:
        batch, created = catalog.submit_issuance(
            project, **values, price_per_t=price, actor=g.principal.actor
        )
    except catalog.CatalogError as exc:
        db.session.rollback()
        return api_error(exc.status, exc.code, exc.message)
    row = catalog.find_batch(batch.code)
    body = batch_json(batch, row.price_per_t if row else None, row.available if row else 0)
    return (body, 201) if created else (body, 200, {"Idempotent-Replayed": "true"})
