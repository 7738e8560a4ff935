"""Parcels (the reserve library), rights holders' joint development agreements and the stored
documents, for staff and, read-only, a county reviewer's own county."""

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import county_of, may, page
from portal.catalog.geometry import boundary_drawing
from portal.catalog.models import Region
from portal.core.limits import body_limit
from portal.extensions import db
from portal.pipeline import services
from portal.pipeline.documents import MAX_DOCUMENT_BYTES
from portal.pipeline.models import (
    LAND_TYPE_LABELS,
    TENURE_LABELS,
    Agreement,
    Document,
    PipelineProject,
    StageRecord,
    stage_documents,
)
from portal.pipeline.views_shared import READ, actor, bp, uploads


def _regions() -> list[Region]:
    return list(db.session.scalars(select(Region).order_by(Region.id)))


def _scope() -> int | None:
    """The county the list shows: a county reviewer's own; for staff the one asked for, if any."""
    own = county_of(current_user)
    if own is not None:
        return own
    code = (request.args.get("county") or "").strip()
    region = db.session.scalar(select(Region).filter_by(code=code)) if code else None
    return region.id if region else None


def _parcels_page(error=None, status=200):
    return render_template(
        "pipeline/parcels.html",
        parcels=services.parcels(_scope()),
        regions=_regions(),
        scope=_scope(),
        land_types=LAND_TYPE_LABELS,
        tenures=TENURE_LABELS,
        error=error,
        form=request.form,
    ), status


@bp.get("/pipeline/parcels")
@page(*READ)
def parcels():
    return _parcels_page()


@bp.post("/pipeline/parcels")
@body_limit(8 * 1024 * 1024)
@page("pipeline.change")
def enroll():
    form = request.form
    try:
        agreement = None
        if form.get("agreement", "").strip():
            agreement = db.session.scalar(select(Agreement).filter_by(number=form["agreement"].strip()))
            if agreement is None:
                raise services.PipelineError(
                    "unknown_agreement", _("No agreement has that number."), field="agreement"
                )
        parcel = services.enroll_parcel(
            county=form.get("county"),
            land_type=form.get("land_type"),
            tenure=form.get("tenure"),
            rights_holder_name=agreement.rights_holder.name if agreement else form.get("rights_holder"),
            boundary=form.get("boundary", ""),
            agreement=agreement,
            actor=actor(),
        )
    except services.PipelineError as exc:
        db.session.rollback()
        return _parcels_page(exc, exc.status)
    flash(
        _("Parcel %(code)s is enrolled (%(area)s ha).", code=parcel.code, area=f"{parcel.area_ha:,.2f}"),
        "success",
    )
    return redirect(url_for("pipeline.parcel", code=parcel.code))


@bp.get("/pipeline/parcels/<code>")
@page(*READ)
def parcel(code):
    found = services.find_parcel(code)
    if found is None or not may(current_user, "view", found):
        abort(404)
    return render_template(
        "pipeline/parcel.html",
        parcel=found,
        drawing=boundary_drawing(found.boundary_geojson),
        land_types=LAND_TYPE_LABELS,
        tenures=TENURE_LABELS,
    )


def _agreements_page(error=None, status=200):
    return render_template(
        "pipeline/agreements.html",
        agreements=services.agreements(_scope()),
        regions=_regions(),
        error=error,
        form=request.form,
    ), status


@bp.get("/pipeline/agreements")
@page(*READ)
def agreements():
    return _agreements_page()


@bp.post("/pipeline/agreements")
@body_limit(MAX_DOCUMENT_BYTES + 256 * 1024)
@page("pipeline.change")
def new_agreement():
    form = request.form
    try:
        region = services.find_region(form.get("county"))
        holder = services.rights_holder(region, form.get("rights_holder"), actor=actor())
        documents = uploads("document")
        services.create_agreement(
            holder,
            number=form.get("number"),
            signed_on=form.get("signed_on"),
            term_years=form.get("term_years"),
            document=documents[0] if documents else None,
            actor=actor(),
        )
    except services.PipelineError as exc:
        db.session.rollback()
        return _agreements_page(exc, exc.status)
    flash(_("The agreement is recorded."), "success")
    return redirect(url_for("pipeline.agreements"))


def _holders_of(document: Document) -> list:
    """What cites the document: agreements and projects (each read with its own county)."""
    found = list(db.session.scalars(select(Agreement).filter_by(document_id=document.id)))
    found += list(
        db.session.scalars(
            select(PipelineProject)
            .join(StageRecord, StageRecord.project_id == PipelineProject.id)
            .join(stage_documents, stage_documents.c.stage_id == StageRecord.id)
            .where(stage_documents.c.document_id == document.id)
        )
    )
    return found


@bp.get("/pipeline/documents/<int:document_id>.pdf")
@page(*READ)
def document(document_id):
    found = db.session.get(Document, document_id)
    if found is None or not any(may(current_user, "view", holder) for holder in _holders_of(found)):
        abort(404)
    return Response(
        found.content,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f"inline; filename=document-{found.id}.pdf",
            "X-Content-Type-Options": "nosniff",
        },
    )
