"""The buyer's request-for-quote pages: the form (prefilled from where the buyer came: an order
above its limit or the stock, a project page, the account page), its organisation's requests,
one request with its status and messages, and replying on it. The sales desk is ``views_staff``,
whose routes are on this module's ``rfq`` blueprint (``create_app`` imports it). Thin: every rule is in :mod:`portal.rfq.services`."""

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import may, owns, page
from portal.catalog.models import PROJECT_TYPE_LABELS
from portal.core.errors import ServiceError
from portal.core.labels import look_up
from portal.extensions import db
from portal.rfq import services
from portal.rfq.forms import MessageForm, RequestForm
from portal.rfq.models import RFQ_STATUS_LABELS, SCHEDULE_KIND_LABELS, QuoteRequest
from portal.timeutil import beijing_today

bp = Blueprint("rfq", __name__, template_folder="templates")


def may_ask_key() -> tuple:
    """Whether the viewer of a cached catalog page is offered a request for quote (a guest, to
    sign in first, or one who may ask): staff are not, so pages are kept per kind of viewer."""
    return (not current_user.is_authenticated or may(current_user, "rfq.create"),)


bp.record_once(lambda state: state.app.extensions.setdefault("catalog_viewer_keys", []).append(may_ask_key))


@bp.context_processor
def _labels():
    return {
        "rfq_status_label": look_up(RFQ_STATUS_LABELS),
        "schedule_label": look_up(SCHEDULE_KIND_LABELS),
        "type_names": lambda codes: "、".join(str(PROJECT_TYPE_LABELS.get(c, c)) for c in codes),
    }


def actor() -> str:
    return f"user:{current_user.id}"


def request_or_404(number) -> QuoteRequest:
    """The request ``number`` if the signed-in user may see it; 404 otherwise (another
    organisation's request is not shown to exist)."""
    found = services.find(number)
    if found is None or not may(current_user, "view", found):
        abort(404)
    return found


def form_data(form: RequestForm) -> dict:
    """What was typed, as ``services.parse_request`` reads it; empty schedule rows are dropped."""

    def text(field):
        return (field.data or "").strip()

    return {
        "quantity": text(form.quantity),
        "standards": list(form.standards.data or []),
        "project_types": list(form.project_types.data or []),
        "projects": text(form.projects),
        "vintage_from": text(form.vintage_from),
        "vintage_to": text(form.vintage_to),
        "schedule": form.schedule.data or "",
        "tranches": [
            {"due": text(row.form.due), "quantity": text(row.form.quantity)}
            for row in form.tranches
            if text(row.form.due) or text(row.form.quantity)
        ],
        "price_expectation": text(form.price_expectation),
        "contact_name": form.contact_name.data or "",
        "contact_email": text(form.contact_email),
        "contact_phone": form.contact_phone.data or "",
        "notes": form.notes.data or "",
    }


def _prefill(form: RequestForm) -> None:
    """The form as the link that opened it describes the order (quantity, projects, standard,
    project type, vintages): one delivery in three months, the buyer's own e-mail as contact."""
    args = request.args
    quantity = (args.get("quantity") or "").strip()[:12]
    form.quantity.data = quantity
    form.projects.data = (args.get("projects") or "")[:400]
    form.standards.data = [s for s in args.getlist("standard") if s in ("CCER", "VCS")]
    form.project_types.data = [t for t in args.getlist("type") if t in PROJECT_TYPE_LABELS]
    form.vintage_from.data = (args.get("vintage_from") or "")[:4]
    form.vintage_to.data = (args.get("vintage_to") or "")[:4]
    form.tranches[0].form.due.data = (beijing_today() + timedelta(days=90)).isoformat()
    form.tranches[0].form.quantity.data = quantity
    form.contact_email.data = current_user.email


def _form_page(form, error=None, status=200):
    return render_template(
        "rfq/new.html", form=form, error=error, source=request.args.get("from", "")
    ), status


@bp.route("/quote-requests/new", methods=["GET", "POST"])
@page("rfq.create")
def new_request():
    if request.method == "GET":
        form = RequestForm()
        _prefill(form)
        return _form_page(form)
    form = RequestForm()
    if not form.validate_on_submit():
        return _form_page(
            form, error=ServiceError("invalid_form", _("The request could not be understood.")), status=400
        )
    try:
        rfq = services.create_request(current_user.organisation, current_user, form_data(form), actor=actor())
    except ServiceError as exc:
        db.session.rollback()
        return _form_page(form, error=exc, status=exc.status)
    flash(
        _("Request %(number)s is sent: the sales team will reply here and by e-mail.", number=rfq.number),
        "success",
    )
    return redirect(url_for("rfq.request_page", number=rfq.number)), 303


@bp.get("/account/quote-requests")
@page("rfq.read_own")
def mine():
    return render_template("rfq/mine.html", requests=services.requests_of(current_user.organisation))


def _request_page(rfq, *, form=None, error=None, status=200):
    return (
        render_template("rfq/request.html", rfq=rfq, form=form or MessageForm(), error=error),
        status,
    )


@bp.get("/quote-requests/<number>")
@page("rfq.read_own", "rfq.read_all")
def request_page(number):
    rfq = request_or_404(number)
    if not owns(current_user, rfq):  # staff read it on their desk
        return redirect(url_for("rfq.staff_request", number=rfq.number))
    return _request_page(rfq)


@bp.post("/quote-requests/<number>/reply")
@page("rfq.create")
def buyer_reply(number):
    rfq = request_or_404(number)
    form = MessageForm()
    try:
        if not form.validate_on_submit():
            raise ServiceError("invalid_form", _("The request could not be understood."))
        services.reply(rfq, current_user, form.body.data, from_staff=False, actor=actor())
    except ServiceError as exc:
        db.session.rollback()
        return _request_page(rfq, form=form, error=exc, status=exc.status)
    flash(_("Your message is sent."), "success")
    return redirect(url_for("rfq.request_page", number=rfq.number)), 303
