"""Public catalog pages: the list of issued batches and one page per project.

Both are served from the catalog's cache (``portal.catalog.cache``), in two layers: the body of
the page, the same for every viewer of a kind (guests and buyers; alliance members, who see
member prices), and the page around it, which a signed-in user's page renders afresh (their
e-mail, their order's lines, the sign-out form's CSRF token). A guest with nothing flashed sees
what every such guest sees, so a guest gets the whole page from the cache: no rendering at all.
"""

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

from portal.catalog import cache, services
from portal.core.guard import public
from portal.core.i18n import localized
from portal.core.visitors import sees_shared_pages

bp = Blueprint("catalog", __name__, template_folder="templates")

#: Further sections of a project's page from other packages: each takes the ``Project`` and gives
#: markup or None. They are rendered into the cached page, so what they read must be watched by
#: the cache (``cache.watch``).
PROJECT_SECTIONS: list = []


def args_key():
    """The query arguments that shape a page (not the language switch), in a stable order."""
    return tuple(sorted((k, tuple(v)) for k, v in request.args.lists() if k != "lang"))


def _guest_page_key():
    """The key of the whole page when this visitor's page is every guest's
    (``core.visitors.sees_shared_pages``), else None. The page's links to the other language keep every
    query argument, in the order given, so the key is the path and the query as sent."""
    if not sees_shared_pages():
        return None
    return ("page", request.path, request.query_string)


def _serve(key, build_body, render_page):
    """The page whose body is ``build_body()`` (cached under ``key``), drawn by
    ``render_page(body)``: for a guest, the whole page comes from the cache. A body of None
    (nothing found) is given to ``render_page`` as it is."""
    version = cache.current_version()  # one query for both layers

    def body():
        return cache.cached(key, build_body, version)

    guest = _guest_page_key()
    if guest is None:
        return render_page(body())
    return cache.cached((*key, guest), lambda: render_page(body()), version)


@bp.get("/")
@public
def index():
    filters, errors = services.CatalogFilters.parse(request.args, current_app.config["CATALOG_PER_PAGE"])
    if errors:  # the good filters still apply; the bad ones are named
        return render_template("catalog/index.html", body=_render_catalog(filters, errors)), 400
    key = ("catalog", args_key(), str(get_locale()), cache.viewer_key())
    return _serve(
        key, lambda: _render_catalog(filters), lambda body: render_template("catalog/index.html", body=body)
    )


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

    def render_page(found):
        if found is None:
            return None
        title, body = found
        return render_template("catalog/project.html", title=title, body=body)

    page = _serve(("project", code, str(get_locale()), cache.viewer_key()), build, render_page)
    if page is None:
        abort(404)
    return page
