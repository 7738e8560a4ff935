"""Projects in development: the list, a project's page with its stages, the county's review, the
city's filing and the forecast, and a new project; a county reviewer's supervision page."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import county_of, may, page
from portal.catalog.geometry import boundary_drawing
from portal.catalog.models import Region
from portal.core.limits import body_limit
from portal.extensions import db
from portal.pipeline import services
from portal.pipeline.documents import MAX_DOCUMENT_BYTES
from portal.pipeline.models import STAGES, Stage
from portal.pipeline.queries import batches, county_overview
from portal.pipeline.views_shared import READ, actor, bp, project_or_404, uploads
from portal.timeutil import beijing_today


@bp.get("/pipeline/")
@page(*READ)
def projects():
    region_id = county_of(current_user)
    return render_template(
        "pipeline/projects.html",
        projects=services.projects(region_id),
        figures=services.figures(region_id),
        stages=STAGES,
    )


def _project_page(project, error=None, status=200):
    return render_template(
        "pipeline/project.html",
        project=project,
        stages=STAGES,
        reached={s.stage: s for s in project.stages},
        next_stage=services.next_stage(project),
        review=services.latest_review(project),
        approved=services.is_approved(project),
        forecast=services.forecast_in_force(project),
        revisions=services.revisions(project),
        today=beijing_today(),
        drawing=boundary_drawing(services.boundary_geojson(project)),
        error=error,
        form=request.form,
    ), status


@bp.get("/pipeline/projects/<code>")
@page(*READ)
def project(code):
    return _project_page(project_or_404(code))


def _act(code: str, action: str, work, done: str):
    """Run ``work(project)`` for a project the user may act on; its refusal is shown on the
    project's page, nothing kept."""
    found = project_or_404(code)
    if not may(current_user, action, found):
        abort(403)
    try:
        work(found)
    except services.PipelineError as exc:
        db.session.rollback()
        return _project_page(project_or_404(code), exc, exc.status if exc.status < 500 else 400)
    flash(done, "success")
    return redirect(url_for("pipeline.project", code=code))


@bp.post("/pipeline/projects/<code>/stages")
@body_limit(3 * MAX_DOCUMENT_BYTES + 256 * 1024)
@page("pipeline.change")
def advance(code):
    form = request.form

    def work(project):
        services.advance(
            project,
            form.get("stage", ""),
            reached_on=form.get("reached_on", ""),
            responsible_body=form.get("responsible_body", ""),
            reference=form.get("reference", ""),
            notes=form.get("notes", ""),
            documents=uploads(),
            actor=actor(),
        )

    return _act(code, "pipeline.change", work, _("The stage is recorded."))


@bp.post("/pipeline/projects/<code>/review")
@page("pipeline.review")
def review(code):
    def work(project):
        services.review(
            project,
            decision=request.form.get("decision", ""),
            comments=request.form.get("comments", ""),
            reviewer=current_user,
            actor=actor(),
        )

    return _act(code, "pipeline.review", work, _("Your review is recorded."))


@bp.post("/pipeline/projects/<code>/filing")
@page("pipeline.change")
def filing(code):
    def work(project):
        services.record_filing(
            project,
            reference=request.form.get("filing_reference", ""),
            filed_on=request.form.get("filed_on", ""),
            actor=actor(),
        )

    return _act(code, "pipeline.change", work, _("The city's filing is recorded."))


@bp.post("/pipeline/projects/<code>/forecast")
@page("pipeline.change")
def forecast(code):
    form = request.form
    lines = [
        {"vintage": v, "expected_t": e, "low_t": lo, "high_t": hi}
        for v, e, lo, hi in zip(
            form.getlist("vintage"),
            form.getlist("expected_t"),
            form.getlist("low_t"),
            form.getlist("high_t"),
            strict=False,
        )
        if v.strip() or e.strip()
    ]

    def work(project):
        services.revise(project, lines, note=form.get("note", ""), actor=actor())

    return _act(code, "pipeline.change", work, _("The forecast is revised."))


@bp.route("/pipeline/projects/new", methods=["GET", "POST"])
@body_limit(3 * MAX_DOCUMENT_BYTES + 256 * 1024)
@page("pipeline.change")
def new_project():
    error = None
    county = (request.values.get("county") or "").strip()
    if request.method == "POST":
        try:
            created = services.create_project(
                request.form.to_dict(), request.form.getlist("parcels"), actor=actor(), documents=uploads()
            )
        except services.PipelineError as exc:
            db.session.rollback()
            error = exc
        else:
            flash(_("Project %(code)s is in assessment.", code=created.code), "success")
            return redirect(url_for("pipeline.project", code=created.code))
    regions = list(db.session.scalars(db.select(Region).order_by(Region.id)))
    region = next((r for r in regions if r.code == county), None)
    free = [p for p in services.parcels(region.id) if p.project_id is None] if region else []
    return render_template(
        "pipeline/project_new.html",
        regions=regions,
        county=county,
        parcels=free,
        error=error,
        form=request.form,
    ), (error.status if error else 200)


@bp.get("/county/")
@page("county.supervise")
def county_home():
    region = db.session.get(Region, county_of(current_user))
    return render_template(
        "pipeline/county.html",
        overview=county_overview(region),
        projects=services.projects(region.id),
        batches=batches(region.id, limit=50),
        stages=STAGES,
        assessment=Stage.ASSESSMENT,
        year=beijing_today().year,
    )
