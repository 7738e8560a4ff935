"""Health check, and the demo's outbox page."""

from flask import Blueprint, abort, render_template

from portal.access import page, public
from portal.core import mail

bp = Blueprint("core", __name__)


@bp.app_context_processor
def mail_outbox():
    return {"outbox_page_enabled": mail.outbox_page_enabled}


@bp.get("/healthz")
@public
def healthz():
    # Never touches the database: the baseline the benchmarks divide by.
    return {"status": "ok"}


@bp.get("/staff/outbox")
@page("mail.outbox_read")
def outbox():
    """Sent mail, for operators, in the demo only (see ``mail.outbox_page_enabled``)."""
    if not mail.outbox_page_enabled():
        abort(404)
    return render_template("core/outbox.html", messages=mail.recent(), parts=mail.body_parts)
