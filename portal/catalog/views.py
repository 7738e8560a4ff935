"""Public catalog pages: the list of issued batches and one page per project."""

from flask import Blueprint, abort, current_app, render_template, request

from portal.catalog import services

bp = Blueprint("catalog", __name__, template_folder="templates")


@bp.get("/")
def index():
    error = None
    try:
        filters = services.CatalogFilters.from_args(request.args, current_app.config["CATALOG_PER_PAGE"])
    except services.FilterError as exc:
        error = exc
        filters = services.CatalogFilters(per_page=current_app.config["CATALOG_PER_PAGE"])
    result = services.search(filters)
    page = render_template(
        "catalog/index.html", result=result, filters=filters, options=services.filter_options(), error=error
    )
    return page, 400 if error else 200


@bp.get("/projects/<code>")
def project(code):
    page = services.find_project(code)
    if page is None:
        abort(404)
    drawing = services.boundary_drawing(page.project.boundary_geojson)
    return render_template("catalog/project.html", page=page, project=page.project, drawing=drawing)
