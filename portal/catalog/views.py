"""Public catalog pages: the list of issued batches and one page per project."""

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

from portal.catalog import cache, services
from portal.core.guard import public
from portal.core.i18n import localized

bp = Blueprint("catalog", __name__, template_folder="templates")

#: Further sections of a project's page from other packages: each takes the ``Project`` and gives
#: markup or None. They are rendered into the cached page, so what they read must be watched by
#: the cache (``cache.watch``).
PROJECT_SECTIONS: list = []


def args_key():
    """The query arguments that shape a page (not the language switch), in a stable order."""
    return tuple(sorted((k, tuple(v)) for k, v in request.args.lists() if k != "lang"))


@bp.get("/")
@public
def index():
    filters, errors = services.CatalogFilters.parse(request.args, current_app.config["CATALOG_PER_PAGE"])
    if errors:  # the good filters still apply; the bad ones are named
        return render_template("catalog/index.html", body=_render_catalog(filters, errors)), 400
    key = ("catalog", args_key(), str(get_locale()), cache.viewer_key())
    body = cache.cached(key, lambda: _render_catalog(filters))
    return render_template("catalog/index.html", body=body)


def _render_catalog(filters, errors=()) -> Markup:
    return Markup(
        render_template(
            "catalog/_catalog.html",
            result=services.search(filters),
            filters=filters,
            options=services.filter_options(),
            errors=errors,
        )
    )


@bp.get("/projects/<code>")
@public
def project(code):
    def build():
        page = services.find_project(code)
        if page is None:
            return None
        drawing = services.boundary_drawing(page.project.boundary_geojson)
        sections = [s for s in (section(page.project) for section in PROJECT_SECTIONS) if s]
        body = Markup(
            render_template(
                "catalog/_project.html", page=page, project=page.project, drawing=drawing, sections=sections
            )
        )
        return localized(page.project, "name"), body

    found = cache.cached(("project", code, str(get_locale()), cache.viewer_key()), build)
    if found is None:
        abort(404)
    title, body = found
    return render_template("catalog/project.html", title=title, body=body)
