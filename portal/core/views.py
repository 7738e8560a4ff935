"""The health check."""

from flask import Blueprint

from portal.core.guard import public

bp = Blueprint("core", __name__)


@bp.get("/healthz")
@public
def healthz():
    # Never touches the database: the baseline the benchmarks divide by.
    return {"status": "ok"}
