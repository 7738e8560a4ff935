"""The sales team's desk: the contract list, a contract's page with its history, and its
actions (sign, deliver, reserve, terminate, delete a draft, record a payment), versions and
supply planning. Irreversible actions ask first (see :mod:`portal.contracts.views_confirmations`)."""

import json
import secrets

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import and_, or_, select
from wtforms.fields.choices import SelectChoice

from portal.access import may, page
from portal.audit.models import AuditEvent
from portal.contracts import services
from portal.contracts.forms import DeliverForm, PaymentForm, ReasonForm
from portal.contracts.models import CONTRACT_STATUS_LABELS, Contract, ContractStatus, Invoice, InvoiceStatus
from portal.contracts.views_confirmations import _confirm_delivery, _confirm_termination
from portal.contracts.views_shared import _actor, _contract_or_404, _form_invalid, _record_payment, bp
from portal.core.confirm import ask, confirmed
from portal.core.errors import ServiceError
from portal.core.i18n import date_text, localized
from portal.core.idempotency import request_digest
from portal.extensions import db
from portal.staff.readable import Reader


@bp.get("/staff/contracts")
@page("contracts.read_all")
def staff_contracts():
    default = "mine" if may(current_user, "contracts.manage") else "all"  # sales start on their own
    scope = request.args.get("scope") if request.args.get("scope") in ("mine", "all") else default
    status = request.args.get("status", "")
    if status not in CONTRACT_STATUS_LABELS:
        status = ""
    owner = current_user if scope == "mine" else None
    contracts = services.all_contracts(owner=owner, status=status or None)
    if not status:
        contracts = [c for c in contracts if c.status != ContractStatus.DRAFT]  # drafts have their panel
    return render_template(
        "contracts/staff_list.html",
        contracts=contracts,
        drafts=services.all_contracts(owner=owner, status=ContractStatus.DRAFT, limit=100),
        due=services.due_tranches(owner=owner),
        overdue=services.overdue_invoices(owner=owner),
        scope=scope,
        status=status,
        statuses=CONTRACT_STATUS_LABELS,
    )


def _audit_trail(contract: Contract, invoices: list[Invoice]):
    events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    and_(AuditEvent.subject_type == "contract", AuditEvent.subject_id == contract.number),
                    and_(
                        AuditEvent.subject_type == "invoice",
                        AuditEvent.subject_id.in_([i.number for i in invoices]),
                    ),
                )
            )
            .order_by(AuditEvent.id)
            .limit(1000)
        )
    )
    return events


def _reader(trail, versions) -> Reader:
    """Names for the people and things the history shows (see ``portal.staff.readable``)."""
    return Reader.for_events(trail, actors={v.actor for v in versions})


def _deliver_form(contract: Contract, covers) -> DeliverForm:
    form = DeliverForm(data={"idempotency_key": secrets.token_urlsafe(16)})
    open_ = [c for c in covers if c.tranche.remaining > 0]
    form.tranche.choices = [
        SelectChoice(
            str(c.seq),
            _(
                "Tranche %(seq)s · due %(due)s · %(n)s t left",
                seq=c.seq,
                due=date_text(c.tranche.due),
                n=c.tranche.remaining,
            ),
        )
        for c in open_
    ]
    if open_:
        form.quantity.data = str(open_[0].tranche.remaining)
    return form


def _contract_page(contract: Contract, *, error=None, status=200, posted=None):
    """The staff page of one contract. ``posted`` is the form that failed (shown as typed)."""
    sources = services.forward_sources(contract)
    covers = services.cover(contract, forward=sum(s.forward for s in sources))
    invoices = services.invoices_of(contract=contract)
    versions = services.versions(contract)
    trail = _audit_trail(contract, invoices)
    forms = {
        "deliver": _deliver_form(contract, covers),
        "terminate": ReasonForm(),
        "payment": PaymentForm(data={"received_on": services.beijing_today().isoformat()}),
    }
    if posted is not None:
        name, form = posted
        if name == "deliver":
            form.tranche.choices = forms["deliver"].tranche.choices
        forms[name] = form
    return (
        render_template(
            "contracts/staff_contract.html",
            contract=contract,
            terms=services.terms_of(contract),
            covers=covers,
            reserved=sum(c.reserved for c in covers),
            uncovered=sum(c.uncovered for c in covers),
            forward=sum(c.forward for c in covers),
            sources=sources,
            shortfalls={(f.project.id, f.vintage) for f in services.forward_shortfalls()},
            deliveries=services.deliveries_of(contract),
            invoices=invoices,
            open_invoices=[i for i in invoices if i.status == InvoiceStatus.OPEN],
            versions=versions,
            trail=trail,
            read=_reader(trail, versions),
            forms=forms,
            error=error,
            failed=posted[0] if posted else None,
        ),
        status,
    )


@bp.get("/staff/contracts/<number>")
@page("contracts.read_all")
def staff_contract(number):
    return _contract_page(_contract_or_404(number))


def _back(contract: Contract):
    return redirect(url_for("contracts.staff_contract", number=contract.number)), 303


@bp.post("/staff/contracts/<number>/sign")
@page("contracts.manage")
def sign(number):
    contract = _contract_or_404(number)
    try:
        services.sign(contract, actor=_actor())
    except ServiceError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status)
    flash(
        _(
            "Contract %(number)s is signed; %(n)s t are reserved for it.",
            number=contract.number,
            n=services.reserved(contract),
        ),
        "success",
    )
    return _back(contract)


@bp.post("/staff/contracts/<number>/deliver")
@page("contracts.manage")
def deliver(number):
    contract = _contract_or_404(number)
    form = DeliverForm()
    key = (form.idempotency_key.data or "").strip()[:100] or None
    body = {
        "tranche": form.tranche.data,
        "quantity": form.quantity.data,
        "delivery": form.mode.data,
        "beneficiary": form.beneficiary.data,
    }
    try:
        if not form.validate_on_submit():
            raise _form_invalid(form)
        if not confirmed():
            plan = services.check_delivery(
                contract,
                (form.tranche.data or "").strip(),
                (form.quantity.data or "").strip() or None,  # empty: what is left of the tranche
                mode=form.mode.data or None,
                beneficiary=form.beneficiary.data or None,
            )
            return _confirm_delivery(contract, plan)
        delivery, created = services.deliver(
            contract,
            (form.tranche.data or "").strip(),
            (form.quantity.data or "").strip() or None,  # empty: what is left of the tranche
            actor=_actor(),
            idempotency_key=f"web:{key}" if key else None,
            digest=request_digest(body) if key else None,
            mode=form.mode.data or None,
            beneficiary=form.beneficiary.data or None,
        )
    except ServiceError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status, posted=("deliver", form))
    if created:
        flash(
            _(
                "%(n)s t of tranche %(seq)s delivered; invoice %(invoice)s issued.",
                n=delivery.quantity,
                seq=delivery.tranche.seq,
                invoice=delivery.invoice.number,
            ),
            "success",
        )
    else:
        flash(_("This delivery was already recorded."), "info")
    return _back(contract)


@bp.post("/staff/contracts/<number>/reserve")
@page("contracts.manage")
def reserve(number):
    contract = _contract_or_404(number)
    if contract.status != ContractStatus.ACTIVE:
        exc = services.ContractError("not_active", _("Only an active contract reserves stock."), status=409)
        return _contract_page(contract, error=exc, status=409)
    got = services.reserve(contract, actor=_actor())
    if got:
        flash(_("%(n)s t more are reserved for the contract.", n=got), "success")
    else:
        flash(
            _("Nothing more could be reserved: the reserve is full or no matching stock is listed."), "info"
        )
    return _back(contract)


@bp.post("/staff/contracts/<number>/forward")
@page("contracts.manage")
def add_forward(number):
    contract = _contract_or_404(number)
    form = request.form
    try:
        source = services.add_forward_source(
            contract,
            project_code=form.get("project", ""),
            vintage=form.get("vintage", ""),
            quantity=form.get("quantity", ""),
            actor=_actor(),
        )
    except services.ContractError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status, posted=("forward", None))
    flash(
        _(
            "%(n)s t of the contract now count on vintage %(vintage)s of %(code)s.",
            n=source.quantity,
            vintage=source.vintage,
            code=source.project.code,
        ),
        "success",
    )
    return _back(contract)


@bp.post("/staff/contracts/<number>/forward/<int:source_id>/delete")
@page("contracts.manage")
def remove_forward(number, source_id):
    contract = _contract_or_404(number)
    try:
        services.remove_forward_source(contract, source_id, actor=_actor())
    except services.ContractError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status)
    flash(_("The contract no longer counts on that forecast."), "success")
    return _back(contract)


@bp.post("/staff/contracts/<number>/terminate")
@page("contracts.manage")
def terminate(number):
    contract = _contract_or_404(number)
    form = ReasonForm()
    try:
        if not form.validate_on_submit():
            raise _form_invalid(form)
        if not confirmed():
            reason = services.check_termination(contract, form.reason.data)
            return _confirm_termination(contract, reason)
        services.terminate(contract, form.reason.data, actor=_actor())
    except ServiceError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status, posted=("terminate", form))
    flash(_("Contract %(number)s is terminated.", number=contract.number), "success")
    return _back(contract)


@bp.post("/staff/contracts/<number>/delete")
@page("contracts.manage")
def delete_draft(number):
    """A draft that will not be signed goes away (a signed contract is terminated instead)."""
    contract = _contract_or_404(number)
    try:
        services.check_deletable(contract)
        if not confirmed():
            return ask(
                title=_("Delete draft %(number)s?", number=contract.number),
                consequences=[
                    _("The draft and its delivery schedule are deleted."),
                    _("It was never signed: nothing was reserved for it and the buyer never saw it."),
                    _("The audit log keeps a record of its last terms."),
                ],
                facts=[
                    (_("Contract"), f"{contract.number} · {contract.title}"),
                    (_("Buyer"), localized(contract.organisation, "name")),
                    (_("Total"), _("%(n)s t", n=contract.total_quantity)),
                ],
                button=_("Delete the draft"),
                back=url_for("contracts.staff_contract", number=contract.number),
            )
        services.delete_draft(contract, actor=_actor())
    except ServiceError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status)
    flash(_("Draft %(number)s is deleted.", number=number), "success")
    return redirect(url_for("contracts.staff_contracts")), 303


@bp.post("/staff/contracts/<number>/payments")
@page("invoices.record_payment")
def contract_payment(number):
    """A bank payment recorded from the contract page (the invoice chosen in the form)."""
    contract = _contract_or_404(number)
    form = PaymentForm()
    invoice = services.find_invoice(request.form.get("invoice", ""))
    try:
        if invoice is None or invoice.contract_id != contract.id:
            raise services.ContractError(
                "unknown_invoice", _("Choose one of the contract's invoices."), field="invoice"
            )
        _record_payment(invoice, form)
    except ServiceError as exc:
        db.session.rollback()
        return _contract_page(contract, error=exc, status=exc.status, posted=("payment", form))
    return _back(contract)


@bp.get("/staff/contracts/<number>/versions/<int:version>")
@page("contracts.read_all")
def version(number, version):
    contract = _contract_or_404(number)
    found = next((v for v in services.versions(contract) if v.version == version), None)
    if found is None:
        abort(404)
    return render_template(
        "contracts/version.html",
        contract=contract,
        version=found,
        document=json.loads(found.terms),
        read=Reader(actors=[found.actor]),
    )


@bp.get("/staff/contracts/planning")
@page("contracts.read_all")
def planning():
    return render_template(
        "contracts/planning.html", plan=services.plan(), shortfalls=services.forward_shortfalls()
    )
