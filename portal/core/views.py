"""Health check."""

from flask import Blueprint

bp = Blueprint("core", __name__)


@bp.get("/healthz")
def healthz():
    # Never touches the database: the baseline the benchmarks divide by.
    return {"status": "ok"}
