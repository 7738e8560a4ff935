"""Invoices: issuing one per delivery, recording bank payments, paying online (a Stripe
PaymentIntent and its webhooks), completing a contract once everything is delivered and paid,
and telling buyers and owners about overdue invoices."""

import logging
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.contracts.common import ContractError, _insert_numbered, _locked, _notify, find_invoice
from portal.contracts.models import (
    Contract,
    ContractStatus,
    Delivery,
    Invoice,
    InvoicePayment,
    InvoiceStatus,
    PaymentMethod,
    Tranche,
)
from portal.contracts.terms import MAX_AMOUNT, _date, _text, parse_money, price_for
from portal.core.i18n import absolute_url, date_text, localized
from portal.core.money import fen as to_fen
from portal.core.money import yuan_of
from portal.extensions import db
from portal.payments import services as payments
from portal.revenue import services as revenue
from portal.timeutil import beijing_today, utcnow
from portal.webhooks import events as webhook_events

log = logging.getLogger(__name__)


# --- issuing --------------------------------------------------------------------------------------


def _invoice(contract: Contract, delivery: Delivery, tranche: Tranche, today: date) -> Invoice:
    unit = price_for(contract, tranche.due)
    invoice = Invoice(
        contract_id=contract.id,
        delivery_id=delivery.id,
        organisation_id=contract.organisation_id,
        quantity=delivery.quantity,
        unit_price=unit,
        amount=unit * delivery.quantity,
        issued_on=today,
        due_on=today + timedelta(days=contract.payment_days),
        status=InvoiceStatus.OPEN,
        paid_amount=Decimal("0.00"),
    )
    _insert_numbered(invoice, Invoice.number, f"INV-{today.year}-", 6)
    return invoice


# --- payments -------------------------------------------------------------------------------------


def _locked_invoice(invoice: Invoice) -> Invoice:
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update(of=Invoice))
    db.session.refresh(invoice)
    return invoice


def record_payment(
    invoice: Invoice, amount, received_on, reference, *, actor: str, today: date | None = None
):
    """Staff record a bank transfer received for ``invoice``."""
    today = today or beijing_today()
    amount = parse_money(amount, "amount", _("Amount"), ceiling=MAX_AMOUNT)
    received = _date(received_on, "received_on", _("Received on"))
    if received > today:
        raise ContractError(
            "invalid_received_on", _("The payment cannot be received in the future."), field="received_on"
        )
    if received < invoice.issued_on - timedelta(days=366):
        raise ContractError(
            "invalid_received_on",
            _(
                "A payment for this invoice cannot have been received before %(day)s.",
                day=date_text(invoice.issued_on - timedelta(days=366)),
            ),
            field="received_on",
        )
    reference = _text(reference, field="reference", label=_("Bank reference"), max_length=200, required=True)
    payment = _pay(invoice, amount, received, reference, PaymentMethod.BANK, actor=actor)
    _drop_online_payment(invoice)
    return payment


def _drop_online_payment(invoice: Invoice) -> None:
    """A bank payment changed what is outstanding: the PaymentIntent offered before asks for the
    old amount, so cancel it (best effort: paid anyway, its webhook refunds what is not owed)
    and forget it; the buyer's next "pay online" creates one for what is outstanding now."""
    if not invoice.payment_intent_id:
        return
    try:
        payments.cancel(invoice.payment_intent_id)
    except payments.PaymentError:
        log.warning("could not cancel %s after a bank payment", invoice.payment_intent_id)
    invoice.payment_intent_id = None
    invoice.client_secret = None
    db.session.flush()


def _pay(invoice: Invoice, amount: Decimal, received: date, reference: str, method, *, actor: str):
    invoice = _locked_invoice(invoice)
    if invoice.status == InvoiceStatus.PAID:
        raise ContractError("already_paid", _("Invoice %(n)s is paid.", n=invoice.number), status=409)
    if amount <= 0 or amount > invoice.outstanding or amount.as_tuple().exponent < -2:
        raise ContractError(
            "overpayment",
            _("%(n)s yuan are outstanding on invoice %(inv)s.", n=invoice.outstanding, inv=invoice.number),
            status=409,
            field="amount",
        )
    duplicate = db.session.scalar(
        select(InvoicePayment.id).filter_by(invoice_id=invoice.id, method=method, reference=reference)
    )
    if duplicate is not None:
        raise ContractError(
            "duplicate_reference",
            _("A payment with reference %(ref)s is already recorded.", ref=reference),
            status=409,
            field="reference",
        )
    payment = InvoicePayment(
        invoice_id=invoice.id,
        method=method,
        amount=amount,
        received_on=received,
        reference=reference,
        actor=actor,
    )
    db.session.add(payment)
    invoice.paid_amount += amount
    if invoice.paid_amount == invoice.amount:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = utcnow()
    # Revenue as the money comes in, dated the day it was received (statements then match the
    # bank's receipts month by month).
    revenue.record_instalment(
        "invoice",
        invoice.number,
        [(line.batch, invoice.unit_price * line.quantity) for line in invoice.delivery.lines],
        to_fen(invoice.paid_amount),
        received,
    )
    db.session.flush()
    audit.record(
        actor,
        "invoice.payment",
        "invoice",
        invoice.number,
        after={"method": str(method), "amount": amount, "reference": reference, "status": invoice.status},
    )
    if invoice.status == InvoiceStatus.PAID:
        webhook_events.invoice_paid(invoice)
        complete_if_done(invoice.contract, actor=actor)
    return payment


def complete_if_done(contract: Contract, *, actor: str) -> bool:
    contract = _locked(contract)
    if contract.status != ContractStatus.ACTIVE or contract.undelivered:
        return False
    unpaid = db.session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.contract_id == contract.id, Invoice.status != InvoiceStatus.PAID
        )
    )
    if unpaid:
        return False
    contract.status = ContractStatus.COMPLETED
    contract.completed_at = utcnow()
    audit.record(actor, "contract.complete", "contract", contract.number, after={"status": "completed"})
    return True


# --- paying online --------------------------------------------------------------------------------


def start_online_payment(invoice: Invoice) -> Invoice:
    """A PaymentIntent for what is outstanding (created once per outstanding amount)."""
    invoice = _locked_invoice(invoice)
    if invoice.status == InvoiceStatus.PAID:
        raise ContractError("already_paid", _("Invoice %(n)s is paid.", n=invoice.number), status=409)
    fen = payments.to_fen(invoice.outstanding)
    previous = invoice.payment_intent_id
    if previous and invoice.client_secret:
        try:
            current = payments.retrieve(previous)
        except payments.PaymentError:
            current = None
        if current is not None and current.amount == fen and current.status not in ("canceled", "succeeded"):
            return invoice
        if current is not None and current.status not in ("canceled", "succeeded"):
            payments.cancel(previous)  # superseded: a bank payment changed what is outstanding
    try:
        intent = payments.create_payment_intent(
            fen,
            # A new reference whenever an intent is superseded: Stripe would give back the old one.
            reference=f"{invoice.number}-{fen}-{previous or 'first'}",
            metadata={"portal_invoice": invoice.number, "portal_purpose": "invoice"},
        )
    except payments.PaymentError:
        raise ContractError(
            "payment_unavailable", _("Online payment is not available right now."), status=503
        ) from None
    invoice.payment_intent_id = intent.id
    invoice.client_secret = intent.client_secret
    db.session.flush()
    return invoice


@payments.on("payment_intent.succeeded", purpose="invoice")
def invoice_paid_online(intent: dict) -> str:
    intent_id = str(intent.get("id", ""))
    invoice = db.session.scalar(select(Invoice).filter_by(payment_intent_id=intent_id))
    if invoice is None:
        invoice = find_invoice((intent.get("metadata") or {}).get("portal_invoice"))
    if invoice is None:
        log.warning("PaymentIntent %s names no known invoice", intent_id)
        return "unknown_invoice"
    invoice = _locked_invoice(invoice)  # first: two deliveries of the event take turns here
    if db.session.scalar(
        select(InvoicePayment.id).filter_by(method=PaymentMethod.STRIPE, reference=intent_id)
    ):
        return "already_recorded"
    fen = intent.get("amount")
    currency = str(intent.get("currency", "")).lower()
    if currency != "cny" or type(fen) is not int or fen <= 0 or yuan_of(fen) > invoice.outstanding:
        # Paid twice (a bank transfer recorded meanwhile) or a wrong amount: give it back.
        try:
            payments.refund(intent_id, reference=f"invoice-{invoice.number}-{intent_id}")
        except payments.PaymentError:
            log.error("refunding %s for invoice %s failed", intent_id, invoice.number)
        payments.tell_staff(
            _("An invoice payment was refunded"),
            _(
                "PaymentIntent %(intent)s paid %(amount)s fen for invoice %(inv)s, which had %(left)s yuan "
                "outstanding; it was refunded.\n%(url)s\n",
                intent=intent_id,
                amount=fen,
                inv=invoice.number,
                left=invoice.outstanding,
                url=absolute_url("contracts.staff_invoice", number=invoice.number),
            ),
        )
        return "refunded"
    _pay(
        invoice,
        yuan_of(fen),
        beijing_today(),
        intent_id,
        PaymentMethod.STRIPE,
        actor="stripe",
    )
    return "paid"


@payments.on("payment_intent.payment_failed", purpose="invoice")
def invoice_payment_failed(intent: dict) -> str:
    """Nothing to undo: the invoice stays open and the buyer may try again."""
    log.info(
        "PaymentIntent %s for invoice %s failed",
        intent.get("id"),
        (intent.get("metadata") or {}).get("portal_invoice"),
    )
    return "invoice_payment_failed"


@payments.on("charge.refunded", purpose="invoice")
def invoice_payment_refunded(charge: dict) -> str:
    """An online invoice payment refunded in Stripe's dashboard: the refund is reversed in the
    revenue lines (``amount_refunded`` is the charge's total so far, so a repeat reverses nothing
    more), and staff are told, since recorded payments are kept for good (append-only)."""
    intent_id = str(charge.get("payment_intent") or "")
    payment = (
        db.session.scalar(select(InvoicePayment).filter_by(method=PaymentMethod.STRIPE, reference=intent_id))
        if intent_id
        else None
    )
    if payment is None:
        return payments.UNKNOWN
    invoice = _locked_invoice(payment.invoice)
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or refunded <= 0:
        return "ignored"
    # Taken out of the revenue lines (by the difference, as refunds accumulate); the recorded
    # payment itself stays, as every recorded payment does.
    if not revenue.reverse_sale("invoice", invoice.number, utcnow(), refunded):
        return "already_reversed"
    payments.tell_staff(
        _("An invoice payment was refunded in Stripe"),
        _(
            "The online payment %(intent)s of invoice %(inv)s was refunded in Stripe (%(fen)s fen in all). "
            "The refund was taken out of the revenue lines, but the invoice still counts the payment as "
            "received: please settle this with the buyer.\n%(url)s\n",
            intent=intent_id,
            inv=invoice.number,
            fen=refunded,
            url=absolute_url("contracts.staff_invoice", number=invoice.number),
        ),
    )
    return "staff_told"


# --- overdue --------------------------------------------------------------------------------------


def notify_overdue(today: date | None = None, *, actor: str = "system") -> list[Invoice]:
    """Tell the buyer and the owner, once, about every open invoice past its due date."""
    today = today or beijing_today()
    due = list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.due_on < today,
                Invoice.overdue_notified_at.is_(None),
            )
            .order_by(Invoice.id)
            .limit(500)
        )
    )
    for invoice in due:
        invoice.overdue_notified_at = utcnow()
        _notify(invoice.contract, _overdue_mail(invoice))
        audit.record(actor, "invoice.overdue", "invoice", invoice.number, after={"due_on": invoice.due_on})
    return due


def _overdue_mail(invoice: Invoice):
    def overdue(for_staff: bool):
        facts = {
            "inv": invoice.number,
            "number": invoice.contract.number,
            "amount": invoice.amount,
            "left": invoice.outstanding,
            "due": date_text(invoice.due_on),
        }
        return (
            _("Invoice %(inv)s is overdue", inv=invoice.number),
            _(
                "Invoice %(inv)s of contract %(number)s with %(buyer)s (%(amount)s yuan, %(left)s yuan "
                "outstanding) was due on %(due)s. The buyer's administrators have been told too.\n%(url)s\n",
                buyer=localized(invoice.contract.organisation, "name"),
                url=absolute_url("contracts.staff_invoice", number=invoice.number),
                **facts,
            )
            if for_staff
            else _(
                "Invoice %(inv)s of contract %(number)s (%(amount)s yuan, %(left)s yuan outstanding) "
                "was due on %(due)s.\n%(url)s\n",
                url=absolute_url("contracts.buyer_invoice", number=invoice.number),
                **facts,
            ),
        )

    return overdue
