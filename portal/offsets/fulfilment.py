"""Payment events and refunds: paid orders retired into a certificate, failed or refunded ones
released.

Payment is confirmed only by Stripe's signed ``payment_intent.succeeded`` webhook, whose handler
retires the held blocks into a certificate. Webhooks may come twice, out of order, or after the
hold expired: every handler locks the order row first and acts on its state, so the outcome is
the same.
"""

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.audit import services as audit
from portal.buyers.models import User
from portal.certificates import services as certificates
from portal.certificates.models import Source
from portal.core import mail
from portal.core.database import unit_of_work
from portal.core.i18n import absolute_url, datetime_text
from portal.core.seller import seller
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits
from portal.ledger.models import AccountKind
from portal.offsets.holds import (
    OrderError,
    _hold,
    _listed,
    _lock_organisation,
    _locked,
    _release,
    purchase_refusal,
)
from portal.offsets.models import Order, OrderNote, OrderStatus
from portal.offsets.pricing import _apportion_paid
from portal.offsets.queries import find, note_label
from portal.payments import services as payments
from portal.revenue import services as revenue
from portal.timeutil import utcnow
from portal.webhooks import events as webhook_events


def _by_intent_locked(intent_id: str) -> Order | None:
    """The order paid by PaymentIntent ``intent_id``, locked and re-read with its lines in one
    statement (only the order's row is locked: the rest is on the nullable side of outer joins)."""
    return (
        db.session.scalars(
            select(Order)
            .where(Order.payment_intent_id == intent_id)
            .options(joinedload(Order.lines))  # its lines (and their batches) in the same statement
            .with_for_update(of=Order)
            .execution_options(populate_existing=True)
        )
        .unique()
        .one_or_none()
    )


def _order_for_intent(intent: dict) -> Order | None:
    """The order an intent pays, locked for this transaction (see ``holds._locked``)."""
    found = _by_intent_locked(str(intent.get("id", "")))
    if found is None:
        metadata = intent.get("metadata") or {}
        found = find(metadata.get("portal_order"))
        if found is not None and found.payment_intent_id not in (None, intent.get("id")):
            found = None  # another intent names this order: not ours to settle
        if found is not None:
            found = _locked(found)
    return found


@payments.on("payment_intent.succeeded")
def payment_succeeded(intent: dict) -> str:
    order = _order_for_intent(intent)
    if order is None:
        payments.tell_staff(
            _("A payment arrived for no known order"),
            _(
                "PaymentIntent %(intent)s (%(amount)s fen) succeeded but matches no order. Please check it in Stripe.",
                intent=intent.get("id"),
                amount=intent.get("amount"),
            ),
        )
        return payments.UNKNOWN
    if order.status == OrderStatus.FULFILLED:
        return "already_fulfilled"
    if order.status == OrderStatus.REFUNDED:
        return "already_refunded"
    order.payment_intent_id = order.payment_intent_id or intent.get("id")
    order.paid_at = order.paid_at or utcnow()
    if (
        intent.get("amount") != payments.to_fen(order.amount)
        or str(intent.get("currency", "")).lower() != "cny"
    ):
        return _refund_paid(order, OrderNote.WRONG_AMOUNT)
    if order.status == OrderStatus.CANCELLED:
        return _refund_paid(order, OrderNote.PAID_AFTER_CANCELLATION)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        # Paid after the hold was released (expired, or a failed attempt then a good one):
        # take the same quantity again if it is still for sale, else give the money back.
        refused = _hold_again(order)
        if refused:
            return _refund_paid(order, refused)
        payments.tell_staff(
            _("A late payment was fulfilled from new stock"),
            _(
                "Order %(order)s was paid after its hold was released; %(n)s t were held again and retired.",
                order=order.public_id,
                n=order.quantity,
            ),
        )
    _fulfil(order)
    return "fulfilled"


@payments.on("payment_intent.payment_failed")
def payment_failed(intent: dict) -> str:
    """A declined attempt: the order keeps its hold until it expires, so that the buyer can try
    again (with another method: ``paying.fresh_attempt`` gives it a new PaymentIntent)."""
    order = _order_for_intent(intent)
    if order is None:
        return payments.UNKNOWN
    if order.status != OrderStatus.AWAITING_PAYMENT:
        return "ignored"  # fulfilled, expired or refunded already: a late failure changes nothing
    if order.note == OrderNote.ATTEMPT_DECLINED:
        return "already_declined"
    order.note = OrderNote.ATTEMPT_DECLINED
    error = intent.get("last_payment_error") or {}
    audit.record(
        "stripe",
        "order.payment_declined",
        "order",
        order.public_id,
        after={"payment_intent": intent.get("id"), "code": str(error.get("code") or "")[:80], "held": True},
    )
    return "declined"


@payments.on("charge.refunded")
def charge_refunded(charge: dict) -> str:
    """Stripe says a payment was refunded (``amount_refunded`` is the total so far): the portal's
    own refunds, or one made in Stripe's dashboard.

    Before fulfilment a whole refund releases the hold and ends the order as refunded, so that a
    ``succeeded`` event handled afterwards retires nothing (this also settles a staff refund whose
    commit failed after Stripe had refunded). After fulfilment the credits stay retired (a
    retirement cannot be undone): the refunded amount is reversed in the revenue lines and staff
    are told, who may revoke the certificate.
    """
    intent_id = str(charge.get("payment_intent") or "")
    order = _by_intent_locked(intent_id) if intent_id else None
    if order is None:
        return payments.UNKNOWN
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or refunded <= 0:
        return "ignored"
    whole = refunded >= payments.to_fen(order.amount)
    if order.status == OrderStatus.AWAITING_PAYMENT and whole:
        _release(order, OrderStatus.REFUNDED, OrderNote.REFUNDED_IN_STRIPE, actor="stripe")
        payments.tell_staff(
            _("An order was refunded in Stripe"),
            _(
                "Order %(order)s was refunded in Stripe before its credits were retired; its hold was released.",
                order=order.public_id,
            ),
        )
        return "refunded"
    if order.status == OrderStatus.FULFILLED:
        reversals = revenue.reverse_sale("order", order.public_id, utcnow(), refunded)
        if not reversals:
            return "already_reversed"
        audit.record(
            "stripe",
            "order.refunded_after_retirement",
            "order",
            order.public_id,
            after={"refunded_fen": refunded, "certificate": order.certificate.number},
        )
        payments.tell_staff(
            _("A fulfilled order was refunded"),
            _(
                "Order %(order)s was refunded in Stripe (%(fen)s fen in all) after its credits were retired "
                "into certificate %(number)s. The retirement stands and the refund was taken out of the "
                "revenue lines; revoke the certificate if the buyer may no longer claim it.",
                order=order.public_id,
                fen=refunded,
                number=order.certificate.number,
            ),
        )
        return "revenue_reversed"
    if order.status == OrderStatus.AWAITING_PAYMENT:
        # Partly refunded before its payment's event was handled: the order is fulfilled (or
        # refunded) when that event comes, and this refund is applied to it right after, so
        # that the revenue lines equal the money kept.
        return payments.DEFERRED
    if order.status == OrderStatus.REFUNDED:
        return "already_refunded"
    # Expired, failed or cancelled: nothing is held. The order ends refunded, so that a success
    # event handled after this one (a late payment, then refunded) holds and retires nothing.
    if whole:
        before = order.status
        order.status = OrderStatus.REFUNDED
        order.note = OrderNote.REFUNDED_IN_STRIPE
        audit.record(
            "stripe",
            "order.refunded",
            "order",
            order.public_id,
            before={"status": before},
            after={"status": order.status, "note": order.note},
        )
        return "refunded"
    return "nothing_held"


def _hold_again(order: Order) -> OrderNote | None:
    """After a late payment: hold the same quantity again, under the same rules as a new order
    (listed stock; an organisation still allowed to buy it, within its limits, counted while
    holding its order lock). None when held, else why not."""
    _lock_organisation(order.organisation)
    if purchase_refusal(
        order.organisation, order.quantity, order.guest.email if order.guest is not None else None
    ):
        return OrderNote.NOT_ALLOWED_NOW
    try:
        with db.session.begin_nested():
            movement = _hold(order, _listed(order.organisation))
    except InsufficientCredits:
        return OrderNote.STOCK_GONE
    if not order.by_lines:  # the lines the buyer named stand, at the prices paid
        _apportion_paid(order, movement.ranges)
    return None


def _fulfil(order: Order, *, actor: str = "stripe") -> None:
    """Retire the paid order's held credits into its certificate (``actor``: who confirmed the
    payment, Stripe's webhook or staff recording a bank transfer).

    The hold is the order's own and the order is locked, so the certificate and everything that
    goes with it are written first and the ledger movement last (``certificates.retiring``): the
    batches every order draws from are locked only for the movement and the commit."""
    # Nothing this reads depends on what it changes: it is written in two flushes (with the
    # certificate, whose id its blocks need, then the rest) rather than before each query.
    with db.session.no_autoflush:
        hold = ledger.find_account(AccountKind.HOLD, order.hold_ref)
        with certificates.retiring(
            hold,
            order.organisation,
            order.quantity,
            beneficiary=order.beneficiary,
            purpose=order.purpose,
            purpose_detail=order.purpose_detail,
            source=Source.ORDER,
            source_ref=order.public_id,
            actor=actor,
            # A guest's certificate names the guest (or the organisation the guest gave), not the
            # guest organisation the order belongs to.
            retired_by=(order.guest.retired_by, order.guest.uscc or "") if order.guest is not None else None,
        ) as certificate:
            order.certificate_id = certificate.id
            order.certificate = certificate
            order.status = OrderStatus.FULFILLED
            revenue.record_sale(
                "order", order.public_id, [(line.batch, line.amount) for line in order.lines], order.paid_at
            )
            audit.record(
                actor,
                "order.fulfilled",
                "order",
                order.public_id,
                before={"status": "awaiting_payment"},
                after={"status": "fulfilled", "certificate": certificate.number},
            )
            webhook_events.order_fulfilled(order, certificate)
            _receipt(order, certificate)
            db.session.flush()  # all of it written before the batches are locked


def _refund_paid(order: Order, why: str) -> str:
    """Give back a payment the portal cannot fulfil; the hold (if any) goes back to inventory."""
    try:
        order.refund_id = payments.refund(order.payment_intent_id, reference=order.public_id)
    except payments.PaymentError:
        # The event fails (Stripe delivers it again later), so this transaction is undone; the
        # alert is written in a transaction of its own, which must outlive it.
        subject = _("A refund failed")
        body = _(
            "Order %(order)s must be refunded (%(why)s) but Stripe refused. Please refund it by hand.",
            order=order.public_id,
            why=note_label(why),
        )
        db.session.rollback()
        with unit_of_work():  # the alert outlives the failed refund's transaction
            payments.tell_staff(subject, body)
        raise
    _release(order, OrderStatus.REFUNDED, why, actor="stripe")
    payments.tell_staff(
        _("An order was refunded"),
        _(
            "Order %(order)s (%(n)s t, %(amount)s yuan) was refunded: %(why)s.",
            order=order.public_id,
            n=order.quantity,
            amount=order.amount,
            why=note_label(why),
        ),
    )
    return "refunded"


def refund(order: Order, *, actor: str) -> Order:
    """Staff: refund a paid order before anything was retired, or cancel an unpaid one."""
    order = _locked(order)
    if order.status == OrderStatus.FULFILLED:
        raise OrderError(
            "already_retired", _("The credits of this order are retired: it can no longer be refunded."), 409
        )
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise OrderError("not_refundable", _("This order has nothing to refund."), 409)
    paid = False
    if order.payment_intent_id:
        paid = payments.retrieve(order.payment_intent_id).status == "succeeded"
    if paid:
        order.refund_id = payments.refund(order.payment_intent_id, reference=order.public_id)
        _release(order, OrderStatus.REFUNDED, OrderNote.REFUNDED_BY_STAFF, actor=actor)
    else:
        _release(order, OrderStatus.CANCELLED, OrderNote.CANCELLED_BY_STAFF, actor=actor)
    return order


def _receipt(order: Order, certificate) -> None:
    if order.guest is not None:
        recipients = [order.guest.email]
    elif order.user is not None:
        recipients = [order.user.email]
    else:
        recipients = [
            u.email
            for u in db.session.scalars(
                select(User).filter_by(
                    organisation_id=order.organisation_id, is_org_admin=True, is_active=True
                )
            )
        ]
    url = absolute_url("certificates.show", number=certificate.number)
    body = _(
        "Thank you. Your payment for order %(order)s was received and %(n)s t of carbon credits were "
        "retired for %(beneficiary)s.\n\nAmount paid: %(amount)s yuan\nPaid at: %(paid_at)s\n"
        "Certificate: %(number)s\n%(url)s\n",
        order=order.public_id,
        n=order.quantity,
        beneficiary=order.beneficiary,
        amount=order.amount,
        paid_at=datetime_text(order.paid_at),
        number=certificate.number,
        url=url,
    )
    if order.guest is not None:  # no account to find it in: the signed PDF's address too
        body += _(
            "The certificate as a signed PDF: %(url)s\n",
            url=absolute_url("certificates.certificate_pdf", number=certificate.number),
        )
    else:  # an organisation's order: the seller's details, and where to ask for a fapiao
        the_seller = seller()
        body += "\n" + _(
            "Seller: %(name)s (unified social credit code %(uscc)s)\nPayee account: %(account)s, %(bank)s\n"
            "For a VAT fapiao, request it on the order's page:\n%(order_url)s\n",
            name=the_seller.name_zh,
            uscc=the_seller.uscc,
            account=the_seller.account_display,
            bank=the_seller.bank,
            order_url=absolute_url("offsets.order", public_id=order.public_id),
        )
    for email in recipients:
        mail.send(email, _("Receipt and retirement certificate %(number)s", number=certificate.number), body)
