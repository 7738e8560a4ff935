"""The buyer's own pages: its signed contracts, their invoices, and paying an invoice online."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import may, page
from portal.contracts import services
from portal.contracts.models import Contract, Invoice, InvoiceStatus
from portal.contracts.views_invoices import _invoice_page
from portal.contracts.views_shared import bp
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.payments import services as payments


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
