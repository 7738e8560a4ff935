"""Public catalog pages."""

from flask import Blueprint, abort, current_app, render_template, request

from portal.catalog import services

bp = Blueprint("catalog", __name__, template_folder="templates")


@bp.get("/")
def index():
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        abort(400)
    result = services.listed_batches(int(page), current_app.config["CATALOG_PER_PAGE"])
    return render_template("catalog/index.html", result=result)
