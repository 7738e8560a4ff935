"""Public pages of projects still in development (``/development``): what ``portal.pipeline.public``
publishes, served from the catalog's cache like the catalog's own pages."""

from flask import abort, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

from portal.catalog import cache
from portal.catalog.geometry import boundary_drawing
from portal.core.guard import public as public_page
from portal.core.i18n import localized
from portal.pipeline import public
from portal.pipeline.stages import boundary_geojson
from portal.pipeline.views_shared import bp


@bp.get("/development")
@public_page
def development():
    county = request.args.get("county", "")[:32]

    def build():
        return Markup(
            render_template(
                "pipeline/_development.html",
                rows=public.in_development(county or None),
                regions=public.counties(),
                county=county,
            )
        )

    body = cache.cached(("development", county, str(get_locale())), build)
    return render_template("pipeline/development.html", body=body)


@bp.get("/development/<code>")
@public_page
def development_project(code):
    def build():
        history = public.find(code)
        if history is None:
            return None
        drawing = boundary_drawing(boundary_geojson(history.project))
        body = Markup(render_template("pipeline/_development_project.html", history=history, drawing=drawing))
        return localized(history.project, "name") or history.project.name_zh, body

    found = cache.cached(("development", "project", code, str(get_locale())), build)
    if found is None:
        abort(404)
    title, body = found
    return render_template("pipeline/development.html", title=title, body=body)
