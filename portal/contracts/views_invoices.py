"""Invoices: one invoice's page (for staff and for its buyer, with the online payment step),
the staff's invoice list with its filters, ageing and CSV/XLSX export, and bank payments recorded
on an invoice."""

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.access import is_staff, page
from portal.buyers.models import Organisation, User
from portal.contracts import services
from portal.contracts.forms import PaymentForm
from portal.contracts.models import INVOICE_STATUS_LABELS, Invoice, InvoiceStatus
from portal.contracts.views_shared import _invoice_or_404, _record_payment, bp
from portal.core.errors import ServiceError, error_response
from portal.core.i18n import localized
from portal.core.spreadsheet import csv_response, xlsx_response
from portal.extensions import db
from portal.offsets.views import STRIPE_CSP
from portal.payments import services as payments


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
            _("Overdue") if invoice.is_overdue(today) else str(INVOICE_STATUS_LABELS.get(invoice.status)),
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
