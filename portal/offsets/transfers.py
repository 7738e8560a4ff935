"""Paying a large order by bank transfer (对公转账).

Above the configured threshold (``core.seller``), an approved organisation's buyer may choose to
pay an order by bank transfer instead of by card or wallet. The order then shows the payee
account, the exact amount and a reference of its own to write in the transfer's memo, and waits
for staff to record the transfer, as they do for contract invoices.

The hold: a transfer takes days, not minutes, so choosing it extends the order's hold to
``BANK_TRANSFER_HOLD_DAYS`` (7 by default) from when the order was placed; the order page states
the new expiry. After that the hold expires as any other (``expiry``), and a transfer that
arrives later is not recorded against the order: staff return it, or the buyer orders again.

Choosing a transfer cancels the order's PaymentIntent first (a cancellation Stripe refuses means
it may be being paid, and nothing changes), so that the order can be paid one way only.
Recording the transfer checks the amount exactly (a different amount is refused, nothing
changes) and then runs the same fulfilment as a paid card order: the held credits are retired
into a certificate, the revenue recorded, the receipt sent.
"""

import secrets
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit import services as audit
from portal.buyers.models import OrgStatus
from portal.core.numbers import money
from portal.core.seller import seller
from portal.core.text import clean_text
from portal.extensions import db
from portal.offsets.expiry import expire_if_due, expire_on_access
from portal.offsets.fulfilment import _fulfil
from portal.offsets.holds import OrderError, _locked
from portal.offsets.models import Order, OrderNote, OrderStatus
from portal.payments import services as payments
from portal.timeutil import beijing_today, utcnow

#: The memo reference: easy to read out and type (no 0/O, 1/I/L).
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: The largest transfer staff may type (well above any order a buyer may place).
_MAX_TRANSFER = 10**12


def transfer_offered(order: Order) -> bool:
    """Whether ``order``'s buyer may choose to pay it by bank transfer now: above the threshold,
    an approved organisation, still awaiting payment and not already paid by transfer."""
    return (
        order.status == OrderStatus.AWAITING_PAYMENT
        and not order.pays_by_transfer
        and order.amount > seller().transfer_threshold
        and order.organisation.status == OrgStatus.APPROVED
    )


def choose_transfer(order: Order, *, actor: str) -> Order:
    """The buyer pays ``order`` by bank transfer: its PaymentIntent is cancelled, it gets its memo
    reference and its hold lasts the configured days. OrderError when it may not."""
    expire_on_access(order)
    if order.pays_by_transfer and order.status == OrderStatus.AWAITING_PAYMENT:
        return order
    if not transfer_offered(order):
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise OrderError("not_payable", _("This order no longer waits for a payment."), 409)
        raise OrderError(
            "transfer_not_offered",
            _(
                "Bank transfer is offered for orders above %(amount)s yuan of approved organisations only.",
                amount=seller().transfer_threshold,
            ),
            403,
        )
    if order.payment_intent_id and not payments.cancel(order.payment_intent_id):
        try:
            state = payments.retrieve(order.payment_intent_id).status
        except payments.PaymentError:
            state = None
        if state != "canceled":
            raise OrderError(
                "payment_in_progress",
                _(
                    "A payment for this order is still being processed: please wait a moment and reload the page."
                ),
                409,
            )
    order = _locked(order)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise OrderError("not_payable", _("This order no longer waits for a payment."), 409)
    before = order.hold_expires_at
    reference = _new_reference()
    order.pays_by_transfer = True
    order.transfer_reference = reference
    order.client_secret = None
    order.note = ""
    order.hold_expires_at = max(before, order.created_at + timedelta(days=seller().transfer_hold_days))
    audit.record(
        actor,
        "order.transfer_chosen",
        "order",
        order.public_id,
        before={"hold_expires_at": before.isoformat(), "payment_intent": order.payment_intent_id},
        after={
            "reference": order.transfer_reference,
            "hold_expires_at": order.hold_expires_at.isoformat(),
            "amount": order.amount,
        },
    )
    db.session.flush()
    return order


def _new_reference() -> str:
    while True:
        code = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
        reference = f"ZZ-{code[:4]}-{code[4:]}"
        if db.session.scalar(select(Order.id).filter_by(transfer_reference=reference)) is None:
            return reference


def awaiting_transfers() -> list[Order]:
    """Orders waiting for a bank transfer, the soonest to expire first (staff's list)."""
    return list(
        db.session.scalars(
            select(Order)
            .where(Order.pays_by_transfer.is_(True), Order.status == OrderStatus.AWAITING_PAYMENT)
            .order_by(Order.hold_expires_at, Order.id)
            .limit(500)
        )
    )


def find_by_transfer_reference(reference) -> Order | None:
    if not isinstance(reference, str) or len(reference) > 20:
        return None
    return db.session.scalar(select(Order).filter_by(transfer_reference=reference.strip().upper()))


def record_transfer(
    order: Order, amount, received_on, bank_reference, *, actor: str, today: date | None = None
) -> Order:
    """Staff record the bank transfer that pays ``order``; the order is fulfilled as a paid card
    order is. OrderError (nothing changed) for a wrong amount, a bad date or reference, or an
    order that no longer waits for a transfer."""
    today = today or beijing_today()
    paid = money(amount, Decimal("0.01"), Decimal(_MAX_TRANSFER))
    if paid is None:
        raise OrderError(
            "invalid_amount",
            _(
                "%(field)s must be an amount in yuan above zero, with at most two decimals.",
                field=_("Amount"),
            ),
            field="amount",
        )
    received = _day(received_on)
    if received > today:
        raise OrderError(
            "invalid_received_on", _("The payment cannot be received in the future."), field="received_on"
        )
    if received < order.created_at.date() - timedelta(days=1):
        raise OrderError(
            "invalid_received_on",
            _("The transfer cannot have been received before the order was placed."),
            field="received_on",
        )
    reference = clean_text(
        bank_reference,
        field="reference",
        label=_("Bank reference"),
        max_length=200,
        required=True,
        error=OrderError,
    )
    if expire_if_due(order):
        raise OrderError(
            "hold_expired",
            _(
                "The hold of order %(order)s expired: the transfer cannot be recorded against it. "
                "Return the money or ask the buyer to order again.",
                order=order.public_id,
            ),
            409,
        )
    order = _locked(order)
    if not order.pays_by_transfer:
        raise OrderError("not_by_transfer", _("This order is not paid by bank transfer."), 409)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise OrderError("not_payable", _("This order no longer waits for a payment."), 409)
    if paid != order.amount:
        raise OrderError(
            "wrong_amount",
            _(
                "Order %(order)s is for %(due)s yuan; a transfer of %(paid)s yuan cannot pay it. Nothing "
                "was recorded: settle the difference with the buyer first.",
                order=order.public_id,
                due=order.amount,
                paid=paid,
            ),
            409,
            "amount",
        )
    if db.session.scalar(select(Order.id).filter_by(transfer_bank_reference=reference)) is not None:
        raise OrderError(
            "duplicate_reference",
            _("A payment with reference %(ref)s is already recorded.", ref=reference),
            409,
            "reference",
        )
    order.transfer_amount = paid
    order.transfer_received_on = received
    order.transfer_bank_reference = reference
    order.paid_at = utcnow()
    if order.note == OrderNote.ATTEMPT_DECLINED:
        order.note = ""
    audit.record(
        actor,
        "order.transfer_recorded",
        "order",
        order.public_id,
        after={"amount": paid, "received_on": received.isoformat(), "reference": reference},
    )
    _fulfil(order, actor=actor)
    return order


def _day(value) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise OrderError(
        "invalid_received_on",
        _("%(field)s must be a date (YYYY-MM-DD).", field=_("Received on")),
        field="received_on",
    )
