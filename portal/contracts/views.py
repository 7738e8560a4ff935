"""Offtake contract screens: the sales team's list, drafts, contract pages and their actions,
supply planning and invoices; a buyer's own contracts and invoices, paid online; invoice and
contract PDFs.

Thin: every rule lives in :mod:`portal.contracts.services`. A refusal (``ServiceError``) is
shown on the page it came from, with its HTTP status, and nothing it began stays (the request
rolls back; only a delivery's reserve top-up, committed on purpose by the service, remains).
"""

import json
import secrets
from decimal import Decimal

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, or_, select
from wtforms.fields.choices import SelectChoice

from portal.access import is_staff, may, page
from portal.audit.models import AuditEvent
from portal.buyers import uscc as uscc_rules
from portal.buyers.models import Organisation, OrgStatus, User
from portal.catalog.labels import PROJECT_TYPES
from portal.catalog.models import Region
from portal.certificates.services import request_digest
from portal.contracts import services
from portal.contracts.forms import (
    CONTRACT_STATUSES,
    DELIVERY_MODES,
    INVOICE_STATUSES,
    PAYMENT_METHODS,
    TRANCHE_ROWS,
    AmendForm,
    ContractForm,
    DeliverForm,
    PaymentForm,
    ReasonForm,
)
from portal.contracts.models import Contract, ContractStatus, Invoice, InvoiceStatus
from portal.core.confirm import ask, confirmed
from portal.core.errors import ServiceError, error_response
from portal.core.i18n import current_language, date_text, localized, yuan
from portal.core.spreadsheet import csv_response, xlsx_response
from portal.extensions import db
from portal.offsets.views import STRIPE_CSP
from portal.payments import services as payments
from portal.staff.readable import Reader

bp = Blueprint("contracts", __name__, template_folder="templates")


@bp.context_processor
def _labels():
    return {
        "contract_status_label": lambda s: CONTRACT_STATUSES.get(s, s),
        "delivery_label": lambda m: DELIVERY_MODES.get(m, m),
        "invoice_status_label": lambda s: INVOICE_STATUSES.get(s, s),
        "payment_method_label": lambda m: PAYMENT_METHODS.get(m, m),
        "price_for": services.price_for,
        "today": services.beijing_today(),
        "project_type_names": lambda types: _listed(str(PROJECT_TYPES.get(t, t)) for t in types),
        "county_names": _county_names,
    }


def _listed(names) -> str:
    return ("、" if current_language() == "zh" else ", ").join(names)


def _county_names(codes: list[str]) -> str:
    regions = {r.code: r for r in db.session.scalars(select(Region).where(Region.code.in_(codes)))}
    return _listed(localized(regions[c], "name") if c in regions else c for c in codes)


def _actor() -> str:
    return f"user:{current_user.id}"


def _contract_or_404(number) -> Contract:
    contract = services.find(number)
    if contract is None:
        abort(404)
    return contract


def _invoice_or_404(number) -> Invoice:
    invoice = services.find_invoice(number)
    if invoice is None:
        abort(404)
    return invoice


# --- the draft and amendment form ---------------------------------------------------------------


def _choices(form: ContractForm) -> None:
    organisations = db.session.scalars(
        select(Organisation)
        .where(Organisation.status.in_((OrgStatus.APPROVED, OrgStatus.RESTRICTED)))
        .order_by(Organisation.name_zh)
        .limit(1000)
    )
    form.organisation.choices = [SelectChoice("", _("Choose an approved organisation"))] + [
        SelectChoice(o.uscc, f"{localized(o, 'name')} · {o.uscc}") for o in organisations
    ]
    form.project_types.choices = [SelectChoice(k, str(v)) for k, v in PROJECT_TYPES.items()]
    form.counties.choices = [
        SelectChoice(r.code, localized(r, "name"))
        for r in db.session.scalars(select(Region).order_by(Region.id))
    ]


def _form_data(terms: dict) -> dict:
    """A form's initial data from terms as ``Terms.as_json`` writes them."""
    escalation = terms.get("escalation_pct_per_year") or ""
    rows = [{"due": t["due"], "quantity": str(t["quantity"])} for t in terms.get("tranches", [])]
    wanted = min(services.MAX_TRANCHES, max(TRANCHE_ROWS, len(rows) + 3))
    rows += [{"due": "", "quantity": ""}] * (wanted - len(rows))

    def text(value):
        return "" if value is None else str(value)

    return {
        "title": terms.get("title", ""),
        "start": terms.get("start", ""),
        "end": terms.get("end", ""),
        "price_per_t": terms.get("price_per_t", ""),
        "escalation_pct_per_year": "" if Decimal(escalation or 0) == 0 else escalation,
        "year_prices": "\n".join(f"{y}={p}" for y, p in sorted((terms.get("year_prices") or {}).items())),
        "standard": terms.get("standard", ""),
        "project_types": terms.get("project_types", []),
        "counties": terms.get("counties", []),
        "vintage_from": text(terms.get("vintage_from")),
        "vintage_to": text(terms.get("vintage_to")),
        "delivery": terms.get("delivery", "holding"),
        "beneficiary": terms.get("beneficiary", ""),
        "payment_days": text(terms.get("payment_days", 30)),
        "tranches": rows,
        "total_quantity": "",  # a cross-check typed by hand, not a copy of the sum
    }


def _year_prices(text: str) -> dict:
    """``2027=70.00`` lines as the mapping parse_terms checks (years and prices are its business)."""
    prices = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        year, sep, price = line.replace("：", ":").replace(":", "=").partition("=")
        if not sep or not year.strip() or not price.strip():
            raise services.ContractError(
                "invalid_year_prices",
                _("Write one price per line as YEAR=PRICE, for example 2027=70.00."),
                field="year_prices",
            )
        prices[year.strip()] = price.strip()
    return prices


def _terms(form: ContractForm) -> dict:
    """What was typed, as the dict services.parse_terms reads; empty tranche rows are dropped."""

    def text(field):
        return (field.data or "").strip()

    rows = [
        {"due": text(row.form.due), "quantity": text(row.form.quantity)}
        for row in form.tranches
        if text(row.form.due) or text(row.form.quantity)
    ]
    return {
        "title": form.title.data or "",
        "start": text(form.start),
        "end": text(form.end),
        "price_per_t": text(form.price_per_t),
        "escalation_pct_per_year": text(form.escalation_pct_per_year),
        "year_prices": _year_prices(form.year_prices.data),
        "standard": form.standard.data or "",
        "project_types": list(form.project_types.data or []),
        "counties": list(form.counties.data or []),
        "vintage_from": text(form.vintage_from),
        "vintage_to": text(form.vintage_to),
        "delivery": form.delivery.data or "",
        "beneficiary": form.beneficiary.data or "",
        "payment_days": text(form.payment_days),
        "tranches": rows,
        "total_quantity": text(form.total_quantity) or None,
    }


def _form_page(form, *, contract=None, mode="new", error=None, status=200):
    if mode == "amend":
        heading = _("Amend contract %(number)s", number=contract.number)
    elif mode == "edit":
        heading = _("Edit draft %(number)s", number=contract.number)
    else:
        heading = _("New offtake contract")
    return (
        render_template(
            "contracts/form.html", form=form, contract=contract, mode=mode, error=error, heading=heading
        ),
        status,
    )


def _form_invalid(form) -> ServiceError:
    """The form's own checks failed (too many tranche rows, a stale CSRF token)."""
    message = next((e for errors in form.errors.values() for e in _flat(errors)), None)
    return ServiceError("invalid_form", message or _("The request could not be understood."))


def _flat(errors):
    for e in errors if isinstance(errors, list) else errors.values():
        if isinstance(e, list | dict):
            yield from _flat(e)
        else:
            yield e


@bp.route("/staff/contracts/new", methods=["GET", "POST"])
@page("contracts.manage")
def new_contract():
    if request.method == "GET":
        form = ContractForm(data={"idempotency_key": secrets.token_urlsafe(16)})
        _choices(form)
        return _form_page(form)
    form = ContractForm()
    _choices(form)
    if not form.validate_on_submit():
        return _form_page(form, error=_form_invalid(form), status=400)
    code = (form.organisation.data or form.org_uscc.data or "").strip()
    organisation = (
        db.session.scalar(select(Organisation).filter_by(uscc=uscc_rules.normalise(code)))
        if code and len(code) <= 32
        else None
    )
    key = (form.idempotency_key.data or "").strip()[:100] or None
    try:
        data = _terms(form)
        contract, created = services.create_draft(
            organisation,
            data,
            owner=current_user,
            actor=_actor(),
            idempotency_key=f"web:{key}" if key else None,
            digest=request_digest({"org": code, **data}) if key else None,
        )
    except ServiceError as exc:
        db.session.rollback()
        return _form_page(form, error=exc, status=exc.status)
    if created:
        flash(_("Draft %(number)s is saved.", number=contract.number), "success")
    return redirect(url_for("contracts.staff_contract", number=contract.number)), 303


@bp.route("/staff/contracts/<number>/edit", methods=["GET", "POST"])
@page("contracts.manage")
def edit_contract(number):
    def save(contract, form):
        services.update_draft(contract, _terms(form), actor=_actor())
        return _("Draft %(number)s is saved.", number=contract.number)

    return _change_terms(number, "edit", ContractForm, services.check_editable, save)


@bp.route("/staff/contracts/<number>/amend", methods=["GET", "POST"])
@page("contracts.manage")
def amend_contract(number):
    def save(contract, form):
        services.amend(contract, _terms(form), form.reason.data, actor=_actor())
        return _("Contract %(number)s is amended: version %(v)s.", number=contract.number, v=contract.version)

    return _change_terms(number, "amend", AmendForm, services.check_amendable, save)


def _change_terms(number, mode, form_class, check, save):
    """The edit and amendment forms: prefilled with the terms in force, refused at once (with the
    service's own reason) when the contract's state does not allow the change."""
    contract = _contract_or_404(number)
    if request.method == "GET":
        form = form_class(data=_form_data(services.terms_of(contract).as_json()))
        _choices(form)
        try:
            check(contract)
        except ServiceError as exc:
            return _form_page(form, contract=contract, mode=mode, error=exc, status=exc.status)
        return _form_page(form, contract=contract, mode=mode)
    form = form_class()
    _choices(form)
    if not form.validate_on_submit():
        return _form_page(form, contract=contract, mode=mode, error=_form_invalid(form), status=400)
    try:
        message = save(contract, form)
    except ServiceError as exc:
        db.session.rollback()
        return _form_page(form, contract=contract, mode=mode, error=exc, status=exc.status)
    flash(message, "success")
    return redirect(url_for("contracts.staff_contract", number=contract.number)), 303


# --- staff pages ---------------------------------------------------------------------------------


@bp.get("/staff/contracts")
@page("contracts.read_all")
def staff_contracts():
    default = "mine" if may(current_user, "contracts.manage") else "all"  # sales start on their own
    scope = request.args.get("scope") if request.args.get("scope") in ("mine", "all") else default
    status = request.args.get("status", "")
    if status not in CONTRACT_STATUSES:
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
        statuses=CONTRACT_STATUSES,
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
    covers = services.cover(contract)
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


def _confirm_delivery(contract: Contract, plan: services.DeliveryPlan):
    buyer = localized(contract.organisation, "name")
    n, seq = plan.quantity, plan.tranche.seq
    consequences = []
    if plan.from_reserve < n:
        consequences.append(
            _(
                "%(n)s t are first taken from inventory into the contract's reserve.",
                n=n - plan.from_reserve,
            )
        )
    if plan.mode == "retire":
        consequences.append(
            _(
                "%(n)s t are retired for %(beneficiary)s and a signed certificate is issued: "
                "retired credits can never be sold or used again.",
                n=n,
                beneficiary=plan.beneficiary,
            )
        )
    else:
        consequences.append(
            _("%(n)s t move from the contract's reserve to the holding of %(buyer)s.", n=n, buyer=buyer)
        )
    consequences += [
        _(
            "Invoice of %(amount)s (%(n)s t at %(price)s) is issued to %(buyer)s, due on %(due)s; "
            "invoices are numbered consecutively and never withdrawn.",
            amount=yuan(plan.amount),
            n=n,
            price=yuan(plan.unit_price),
            buyer=buyer,
            due=date_text(plan.due_on),
        ),
        _("The buyer and the contract's owner are e-mailed about the delivery and the invoice."),
    ]
    facts = [
        (_("Contract"), f"{contract.number} · {contract.title}"),
        (_("Buyer"), buyer),
        (
            _("Tranche"),
            _("Tranche %(seq)s, due on %(due)s", seq=seq, due=date_text(plan.tranche.due)),
        ),
        (_("Tonnes"), _("%(n)s t", n=n)),
        (_("Delivery"), str(DELIVERY_MODES.get(plan.mode, plan.mode))),
    ]
    if plan.mode == "retire":
        facts.append((_("Beneficiary"), plan.beneficiary))
    return ask(
        title=_(
            "Deliver %(n)s t of tranche %(seq)s of contract %(number)s?", n=n, seq=seq, number=contract.number
        ),
        consequences=consequences,
        facts=facts,
        button=_("Deliver and issue the invoice"),
        back=url_for("contracts.staff_contract", number=contract.number) + "#deliver",
    )


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


def _confirm_termination(contract: Contract, reason: str):
    reserved = services.reserved(contract)
    return ask(
        title=_("Terminate contract %(number)s?", number=contract.number),
        consequences=[
            _(
                "The contract ends now: its %(n)s undelivered t will not be delivered.",
                n=contract.undelivered,
            ),
            _("The %(n)s t reserved for it go back to inventory for sale.", n=reserved),
            _("Invoices already issued stay payable; the buyer keeps what was delivered."),
        ],
        facts=[
            (_("Contract"), f"{contract.number} · {contract.title}"),
            (_("Buyer"), localized(contract.organisation, "name")),
            (_("Reason"), reason),
        ],
        button=_("Terminate the contract"),
        back=url_for("contracts.staff_contract", number=contract.number) + "#terminate",
    )


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


def _record_payment(invoice: Invoice, form: PaymentForm) -> None:
    if not form.validate_on_submit():
        raise _form_invalid(form)
    services.record_payment(
        invoice, form.amount.data, form.received_on.data, form.reference.data, actor=_actor()
    )
    flash(
        _("Payment recorded on invoice %(invoice)s.", invoice=invoice.number)
        if invoice.status == InvoiceStatus.OPEN
        else _("Invoice %(invoice)s is paid in full.", invoice=invoice.number),
        "success",
    )


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
        "contracts/version.html", contract=contract, version=found, document=json.loads(found.terms)
    )


@bp.get("/staff/contracts/planning")
@page("contracts.read_all")
def planning():
    return render_template("contracts/planning.html", plan=services.plan())


# --- invoices --------------------------------------------------------------------------------------


def _invoice_page(invoice: Invoice, *, staff: bool, error=None, status=200, form=None):
    waiting = (
        not staff
        and request.args.get("paid") == "1"
        and request.args.get("redirect_status") != "failed"
        and invoice.status == InvoiceStatus.OPEN
        and bool(invoice.payment_intent_id)
    )
    paying = (
        not staff
        and not waiting
        and request.args.get("pay") == "1"
        and invoice.status == InvoiceStatus.OPEN
        and bool(invoice.client_secret)
    )
    stripe_page = (
        paying and not payments.embedded() and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY"))
    )
    response = current_app.make_response(
        (
            render_template(
                "contracts/invoice.html",
                invoice=invoice,
                contract=invoice.contract,
                staff=staff,
                waiting=waiting,
                paying=paying,
                embedded=payments.embedded(),
                stripe_page=stripe_page,
                publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY", ""),
                form=form or PaymentForm(data={"received_on": services.beijing_today().isoformat()}),
                error=error,
            ),
            status,
        )
    )
    if stripe_page:
        response.headers["Content-Security-Policy"] = STRIPE_CSP
    return response


INVOICE_FILTERS = {
    "open": _l("Open (due or overdue)"),
    "due": _l("Due, not yet overdue"),
    "overdue": _l("Overdue"),
    "paid": _l("Paid"),
}
INVOICES_PER_PAGE = 50


def _ageing_label(bucket) -> str:
    if bucket is None:
        return ""
    low, high = bucket
    if high is None:
        return _("over %(n)s days", n=low - 1)
    return _("%(low)s–%(high)s days", low=low, high=high)


def _invoice_filters():
    """The list's filters from the query string: (status, organisation, owner). A value that is
    not one of the choices is refused (ContractError, 400)."""
    status = request.args.get("status", "")
    buyer = (request.args.get("buyer") or "").strip()
    owner_id = (request.args.get("owner") or "").strip()
    organisation = owner = None
    if buyer:
        organisation = db.session.scalar(select(Organisation).filter_by(uscc=buyer[:32]))
    if owner_id and owner_id.isascii() and owner_id.isdigit() and len(owner_id) < 10:
        owner = db.session.get(User, int(owner_id))
    if (
        (status and status not in INVOICE_FILTERS)
        or (buyer and organisation is None)
        or (owner_id and (owner is None or not is_staff(owner)))
    ):
        raise services.ContractError(
            "invalid_filter", _("Choose a status, a buyer and a sales owner from the lists.")
        )
    return status, organisation, owner


def _invoice_rows(invoices, totals, today):
    """The list as rows for CSV and XLSX: a header, one row per invoice, a total. Amounts and
    days are numbers, dates are dates; the buyer by name, the status and age in words."""
    yield [
        _("Invoice"),
        _("Contract"),
        _("Buyer organisation"),
        _("Unified social credit code"),
        _("Sales owner"),
        _("Issued on"),
        _("Due on"),
        _("Status"),
        _("Days past due"),
        _("Age"),
        _("Tonnes"),
        _("Amount (yuan)"),
        _("Paid (yuan)"),
        _("Outstanding (yuan)"),
    ]
    for invoice in invoices:
        days = services.days_past_due(invoice, today)
        if invoice.status == InvoiceStatus.OPEN and invoice.due_on > today:
            age = _("not yet due")
        else:
            age = _ageing_label(services.ageing_bucket(days))
        yield [
            invoice.number,
            invoice.contract.number,
            localized(invoice.contract.organisation, "name"),
            invoice.contract.organisation.uscc,
            invoice.contract.owner.email,
            invoice.issued_on,
            invoice.due_on,
            _("Overdue") if invoice.is_overdue(today) else str(INVOICE_STATUSES.get(invoice.status)),
            days,
            age,
            invoice.quantity,
            invoice.amount,
            invoice.paid_amount,
            invoice.outstanding,
        ]
    yield [
        _("Total"),
        "",
        "",
        "",
        "",
        None,
        None,
        "",
        None,
        "",
        None,
        totals.amount,
        totals.paid,
        totals.outstanding,
    ]


#: Columns of ``_invoice_rows`` that hold yuan.
_INVOICE_MONEY_COLUMNS = (11, 12, 13)


@bp.get("/staff/invoices")
@page("invoices.read_all")
def staff_invoices():
    """Every contract invoice, filtered by status, buyer and sales owner, with what is outstanding
    by age; as a page, CSV or XLSX."""
    today = services.beijing_today()
    try:
        status, organisation, owner = _invoice_filters()
    except ServiceError as exc:
        return error_response(exc.status, exc.code, exc.message)
    query = services.invoice_query(today=today, status=status, organisation=organisation, owner=owner)
    totals = services.invoice_totals(query, today)
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        rows = _invoice_rows(db.session.scalars(query.limit(100_000)), totals, today)
        filename = f"invoices-{status or 'all'}-{today.isoformat()}.{fmt}"
        if fmt == "csv":
            return csv_response(rows, filename)
        return xlsx_response(rows, filename, title=_("Invoices"), money_columns=_INVOICE_MONEY_COLUMNS)
    page = request.args.get("page", "1")
    page = int(page) if page.isascii() and page.isdigit() and 0 < int(page) <= 100_000 else 1
    invoices = list(db.session.scalars(query.limit(INVOICES_PER_PAGE).offset((page - 1) * INVOICES_PER_PAGE)))
    filters = {
        "status": status or None,
        "buyer": organisation.uscc if organisation else None,
        "owner": owner.id if owner else None,
    }
    return render_template(
        "contracts/staff_invoices.html",
        invoices=invoices,
        totals=totals,
        ageing=[(_ageing_label(b), b, totals.ageing[b]) for b in services.AGEING],
        days_past_due=lambda i: services.days_past_due(i, today),
        filters=filters,
        statuses=INVOICE_FILTERS,
        buyers=services.invoice_buyers(),
        owners=services.invoice_owners(),
        page=page,
        per_page=INVOICES_PER_PAGE,
    )


@bp.get("/staff/invoices/<number>")
@page("contracts.read_all")
def staff_invoice(number):
    return _invoice_page(_invoice_or_404(number), staff=True)


@bp.post("/staff/invoices/<number>/payments")
@page("invoices.record_payment")
def invoice_payment(number):
    invoice = _invoice_or_404(number)
    form = PaymentForm()
    try:
        _record_payment(invoice, form)
    except ServiceError as exc:
        db.session.rollback()
        return _invoice_page(invoice, staff=True, error=exc, status=exc.status, form=form)
    return redirect(url_for("contracts.staff_invoice", number=invoice.number)), 303


def _may_see(contract: Contract) -> bool:
    """Staff see every contract; a buyer its own organisation's, once signed (``portal.access``)."""
    return may(current_user, "view", contract)


@bp.get("/invoices/<number>.pdf")
@page("contracts.read_own", "contracts.read_all")
def invoice_pdf(number):
    invoice = _invoice_or_404(number)
    if not _may_see(invoice.contract):
        abort(404)
    from portal.contracts import pdf  # written alongside these views

    try:
        data = pdf.render_invoice(invoice)
    except pdf.PdfError as exc:
        abort(503, exc.message)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
    )


# --- contract documents ----------------------------------------------------------------------------


def _seen_contract_or_404(number) -> Contract:
    """The contract if the signed-in user may see it; 404 for anything else, as on the buyer's
    pages, so that contract numbers cannot be probed."""
    contract = services.find(number)
    if contract is None or not _may_see(contract):
        abort(404)
    return contract


@bp.get("/contracts/<number>")
@page("contracts.read_own", "contracts.read_all")
def contract_page(number):
    """The address printed on a contract's PDF: the staff's page or the buyer's, by who follows it."""
    contract = _seen_contract_or_404(number)
    page = (
        "contracts.staff_contract" if may(current_user, "contracts.read_all") else "contracts.buyer_contract"
    )
    return redirect(url_for(page, number=contract.number))


@bp.get("/contracts/<number>.pdf")
@page("contracts.read_own", "contracts.read_all")
def contract_pdf(number):
    """A signed contract's document. A draft has none: its terms are not agreed yet."""
    contract = _seen_contract_or_404(number)
    if contract.signed_at is None:
        abort(404)
    from portal.contracts import pdf

    try:
        data = pdf.render_contract(contract)
    except pdf.PdfError as exc:
        abort(503, exc.message)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{contract.number}.pdf"'},
    )


# --- the buyer's pages -----------------------------------------------------------------------------


def _own_contract(number) -> Contract:
    """The contract if the signed-in buyer may see it; 404 for anything else (another
    organisation's, a draft), so that contract numbers cannot be probed."""
    contract = services.find(number)
    if contract is None or not may(current_user, "view", contract):
        abort(404)
    return contract


def _own_invoice(number) -> Invoice:
    invoice = services.find_invoice(number)
    if invoice is None or not may(current_user, "view", invoice):
        abort(404)
    return invoice


@bp.get("/account/contracts")
@page("contracts.read_own")
def buyer_contracts():
    return render_template(
        "contracts/buyer_list.html", contracts=services.contracts_of(current_user.organisation)
    )


@bp.get("/account/contracts/<number>")
@page("contracts.read_own")
def buyer_contract(number):
    contract = _own_contract(number)
    covers = services.cover(contract)
    return render_template(
        "contracts/buyer_contract.html",
        contract=contract,
        terms=services.terms_of(contract),
        covers=covers,
        deliveries=services.deliveries_of(contract),
        invoices=services.invoices_of(contract=contract),
    )


@bp.get("/account/invoices/<number>")
@page("contracts.read_own")
def buyer_invoice(number):
    return _invoice_page(_own_invoice(number), staff=False)


@bp.post("/account/invoices/<number>/pay")
@page("invoices.pay")
def pay_online(number):
    invoice = _own_invoice(number)
    try:
        services.start_online_payment(invoice)
    except ServiceError as exc:
        db.session.rollback()
        return _invoice_page(invoice, staff=False, error=exc, status=exc.status)
    return redirect(url_for("contracts.buyer_invoice", number=invoice.number, pay=1)), 303


@bp.post("/account/invoices/<number>/pay-test")
@page("invoices.pay")
def pay_with_test_card(number):
    """The embedded backend's stand-in for the Payment Element (as on the order page): the
    invoice turns paid only when the signed webhook arrives."""
    invoice = _own_invoice(number)
    if not payments.embedded() or invoice.status != InvoiceStatus.OPEN or not invoice.payment_intent_id:
        abort(409)
    card = "pm_card_chargeCustomerFail" if request.form.get("card") == "declined" else "pm_card_visa"
    try:
        intent = payments.pay_with_test_card(invoice.payment_intent_id, card)
    except payments.PaymentError:
        flash(_("The payment service is not available. Nothing was charged; please try again."), "error")
        return redirect(url_for("contracts.buyer_invoice", number=invoice.number)), 303
    if intent.status != "succeeded":
        flash(_("The card was declined. Nothing was charged."), "error")
        return redirect(url_for("contracts.buyer_invoice", number=invoice.number)), 303
    return redirect(url_for("contracts.buyer_invoice", number=invoice.number, paid=1)), 303
