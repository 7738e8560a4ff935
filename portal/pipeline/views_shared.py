"""The pipeline blueprint and what its screens share: who acts, finding a project the reader may
see, storing uploaded PDFs."""

from flask import Blueprint, abort, request
from flask_login import current_user

from portal.access import may
from portal.pipeline import services

bp = Blueprint("pipeline", __name__, template_folder="templates")

#: Reading the pipeline: staff every county, a county reviewer its own.
READ = ("pipeline.read_all", "pipeline.read_own")


def actor() -> str:
    return f"user:{current_user.id}"


def project_or_404(code: str):
    project = services.find_project(code)
    if project is None or not may(current_user, "view", project):
        abort(404)
    return project


def uploads(field: str = "documents") -> list:
    """The PDFs uploaded in ``field`` stored as documents (PipelineError for one that is not)."""
    stored = []
    for upload in request.files.getlist(field):
        if not upload or not upload.filename:
            continue
        stored.append(services.store_pdf(upload.read(), upload.filename, actor=actor()))
    return stored
