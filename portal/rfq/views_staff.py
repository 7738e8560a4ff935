"""The sales desk for requests for quote: the list (filtered by status and salesperson), one
request with its schedule, messages and history, and its actions: reply, assign, decline with a
reason, and turn it into an offtake contract draft. Staff read; sales and the operator act."""

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.access import page
from portal.audit.models import AuditEvent
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.rfq import services
from portal.rfq.forms import AssignForm, ConvertForm, DeclineForm, MessageForm
from portal.rfq.models import RFQ_STATUS_LABELS, QuoteRequest
from portal.rfq.views import actor, bp, request_or_404
from portal.staff.readable import Reader


@bp.get("/staff/quote-requests")
@page("rfq.read_all")
def staff_requests():
    status = request.args.get("status", "")
    if status not in RFQ_STATUS_LABELS:
        status = ""
    people = services.salespeople()
    who = request.args.get("assigned", "")
    assigned = next((p for p in people if str(p.id) == who), None)
    if who == "mine":
        assigned = current_user
    elif who not in ("", "none") and assigned is None:
        who = ""
    return render_template(
        "rfq/staff_list.html",
        requests=services.all_requests(status=status or None, assigned=assigned, unassigned=who == "none"),
        status=status,
        statuses=RFQ_STATUS_LABELS,
        assigned=who,
        people=people,
    )


def _assign_form(rfq: QuoteRequest) -> AssignForm:
    form = AssignForm(data={"assigned_to": str(rfq.assigned_to_id or "")})
    form.assigned_to.choices = [SelectChoice("", _("Nobody yet"))] + [
        SelectChoice(str(p.id), p.email) for p in services.salespeople()
    ]
    return form


def _staff_page(rfq: QuoteRequest, *, error=None, status=200, posted=None):
    forms = {
        "reply": MessageForm(),
        "decline": DeclineForm(),
        "assign": _assign_form(rfq),
        "convert": ConvertForm(data={"price_per_t": str(rfq.price_expectation or "")}),
    }
    if posted is not None:
        name, form = posted
        if name == "assign":
            form.assigned_to.choices = forms["assign"].assigned_to.choices
        forms[name] = form
    trail = list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_type == "rfq", AuditEvent.subject_id == rfq.number)
            .order_by(AuditEvent.id)
            .limit(500)
        )
    )
    return (
        render_template(
            "rfq/staff_request.html",
            rfq=rfq,
            forms=forms,
            error=error,
            failed=posted[0] if posted else None,
            trail=trail,
            read=Reader.for_events(trail),
        ),
        status,
    )


@bp.get("/staff/quote-requests/<number>")
@page("rfq.read_all")
def staff_request(number):
    return _staff_page(request_or_404(number))


def _act(number, name, form_class, do):
    """Run one desk action: the form checked, the service called, the page shown again with the
    refusal (and nothing changed) or the request's page after a success message."""
    rfq = request_or_404(number)
    form = form_class()
    if name == "assign":
        form.assigned_to.choices = _assign_form(rfq).assigned_to.choices
    try:
        if not form.validate_on_submit():
            raise ServiceError("invalid_form", _("The request could not be understood."))
        message, target = do(rfq, form)
    except ServiceError as exc:
        db.session.rollback()
        return _staff_page(rfq, error=exc, status=exc.status, posted=(name, form))
    flash(message, "success")
    return redirect(target or url_for("rfq.staff_request", number=rfq.number)), 303


@bp.post("/staff/quote-requests/<number>/reply")
@page("rfq.manage")
def staff_reply(number):
    def do(rfq, form):
        services.reply(rfq, current_user, form.body.data, from_staff=True, actor=actor())
        return _("Your reply is sent to the buyer."), None

    return _act(number, "reply", MessageForm, do)


@bp.post("/staff/quote-requests/<number>/assign")
@page("rfq.manage")
def assign(number):
    def do(rfq, form):
        services.assign(rfq, form.assigned_to.data, actor=actor())
        if rfq.assigned_to is None:
            return _("Request %(number)s is assigned to nobody.", number=rfq.number), None
        return _(
            "Request %(number)s is assigned to %(who)s.", number=rfq.number, who=rfq.assigned_to.email
        ), None

    return _act(number, "assign", AssignForm, do)


@bp.post("/staff/quote-requests/<number>/decline")
@page("rfq.manage")
def decline(number):
    def do(rfq, form):
        services.decline(rfq, current_user, form.reason.data, actor=actor())
        return _("Request %(number)s is declined; the buyer is told why.", number=rfq.number), None

    return _act(number, "decline", DeclineForm, do)


@bp.post("/staff/quote-requests/<number>/convert")
@page("rfq.manage")
def convert(number):
    def do(rfq, form):
        contract = services.convert(
            rfq, (form.price_per_t.data or "").strip(), user=current_user, actor=actor()
        )
        return (
            _(
                "Contract draft %(contract)s is made from request %(number)s.",
                contract=contract.number,
                number=rfq.number,
            ),
            url_for("contracts.staff_contract", number=contract.number),
        )

    return _act(number, "convert", ConvertForm, do)
