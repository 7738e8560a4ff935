"""What every contracts screen shares: the blueprint, the labels its templates use, finding a
contract or invoice (404 otherwise), who acts, a form's own refusal, and recording a bank payment
(from the contract page or the invoice page)."""

from flask import Blueprint, abort, flash
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.catalog.models import PROJECT_TYPE_LABELS, Region
from portal.contracts import services
from portal.contracts.forms import PaymentForm
from portal.contracts.models import (
    CONTRACT_STATUS_LABELS,
    DELIVERY_MODE_LABELS,
    INVOICE_STATUS_LABELS,
    PAYMENT_METHOD_LABELS,
    Contract,
    Invoice,
    InvoiceStatus,
)
from portal.core.errors import ServiceError
from portal.core.i18n import current_language, localized
from portal.core.labels import look_up
from portal.extensions import db

bp = Blueprint("contracts", __name__, template_folder="templates")


@bp.context_processor
def _labels():
    return {
        "contract_status_label": look_up(CONTRACT_STATUS_LABELS),
        "delivery_label": look_up(DELIVERY_MODE_LABELS),
        "invoice_status_label": look_up(INVOICE_STATUS_LABELS),
        "payment_method_label": look_up(PAYMENT_METHOD_LABELS),
        "price_for": services.price_for,
        "today": services.beijing_today(),
        "project_type_names": lambda types: _listed(str(PROJECT_TYPE_LABELS.get(t, t)) for t in types),
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
