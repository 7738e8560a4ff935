"""When a hold expires: an unpaid order holds its tonnes for ``HOLD_MINUTES`` from the moment it
is placed (``hold_expires_at``); after that it is released on access (``expire_on_access``) and
by ``flask orders expire`` every minute (``expire_due``). A payment that arrives later finds the
order expired and is refunded (``fulfilment``)."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from portal.core.database import checkpoint, unit_of_work
from portal.extensions import db
from portal.ledger.errors import LedgerError
from portal.offsets.holds import _locked, _release
from portal.offsets.models import Order, OrderNote, OrderStatus
from portal.payments import services as payments
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

#: How long an unpaid order holds its tonnes.
HOLD_MINUTES = 30


def hold_expiry(placed_at: datetime) -> datetime:
    """When the hold of an order placed at ``placed_at`` runs out."""
    return placed_at + timedelta(minutes=HOLD_MINUTES)


def expire_if_due(order: Order, now: datetime | None = None) -> bool:
    """Release the hold of an unpaid order whose time is up (a check on every access)."""
    now = now or utcnow()
    if order.status != OrderStatus.AWAITING_PAYMENT or order.hold_expires_at > now:
        return False
    order = _locked(order)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        return False
    _release(order, OrderStatus.EXPIRED, OrderNote.EXPIRED, actor="system")
    return True


def expire_due(now: datetime | None = None, limit: int = 500) -> list[Order]:
    """Expire every unpaid order past its hold (``flask orders expire``), each in a transaction
    of its own (committed here): one ledger movement per transaction is what keeps the lock
    order deadlock-free (a late payment's webhook may hold one of these orders while it takes
    batch locks), and one failure does not keep the others."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.AWAITING_PAYMENT, Order.hold_expires_at <= now)
        .order_by(Order.hold_expires_at)
        .limit(limit)
    ).all()
    checkpoint()  # the list is read; each order is a transaction of its own
    expired = []
    for order_id in due:
        order = db.session.get(Order, order_id)
        try:
            with unit_of_work():
                if expire_if_due(order, now):
                    expired.append(order)
        except LedgerError:
            log.exception("expiring order %s failed; the others go on", order.public_id)
    return expired


def expire_on_access(order: Order) -> None:
    """The check on access: release the hold of an unpaid order past its time, commit, then stop
    its PaymentIntent (Stripe is called only after the release is committed)."""
    if expire_if_due(order):
        checkpoint()  # the release stands before Stripe is called
        cancel_payment(order)


def cancel_payment(order: Order) -> None:
    """After an expiry is committed: stop the PaymentIntent being paid (best effort; a payment
    that wins the race is handled by the webhook as a late payment)."""
    if order.payment_intent_id:
        payments.cancel(order.payment_intent_id)
