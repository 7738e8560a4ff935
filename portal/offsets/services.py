"""Checkout orders: hold, pay, retire.

An order holds its blocks in its own ``hold`` account for 30 minutes. Payment is confirmed only
by Stripe's signed ``payment_intent.succeeded`` webhook, whose handler retires the held blocks
into a certificate. Webhooks may come twice, out of order, or after the hold expired: every
handler locks the order row first and acts on its state, so the outcome is the same.
"""

import logging
import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import exists, func, select

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers.models import Organisation, User
from portal.catalog.labels import ORDER_NOTES
from portal.catalog.models import Listing
from portal.certificates import services as certificates
from portal.certificates.models import Purpose, Source
from portal.core import mail
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url, datetime_text
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, LedgerError
from portal.ledger.models import Account, AccountKind, Batch
from portal.offsets.models import Order, OrderLine, OrderNote, OrderStatus
from portal.payments import services as payments
from portal.revenue import services as revenue
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

HOLD_MINUTES = 30
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class OrderError(ServiceError):
    """A refused order or order action: nothing was held, charged or retired."""


def _listed():
    """SQL condition on Batch: listed for sale at an active price."""
    return exists().where(Listing.batch_id == Batch.id, Listing.is_active.is_(True))


def bought_this_year(organisation) -> int:
    """Tonnes the organisation has ordered this (calendar) year, paid or still held."""
    start = utcnow().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return db.session.scalar(
        select(func.coalesce(func.sum(Order.quantity), 0)).where(
            Order.organisation_id == organisation.id,
            Order.created_at >= start,
            Order.status.in_((OrderStatus.AWAITING_PAYMENT, OrderStatus.FULFILLED)),
        )
    )


# --- creating ------------------------------------------------------------------------------


def create_order(
    organisation,
    quantity,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    batch_code=None,
    actor: str,
    user: User | None = None,
    estimate_version: str = "",
    idempotency_key: str | None = None,
    digest: str | None = None,
) -> tuple[Order, bool]:
    """Hold ``quantity`` t for ``organisation`` and price the order; (order, created).

    The PaymentIntent is created by ``attach_payment`` once this is committed, so that no Stripe
    call runs while the batches are locked. A repeat with the same idempotency key returns the
    first order.
    """
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 200:
            raise OrderError(
                "invalid_idempotency_key", _("Idempotency-Key must be 1 to %(n)s characters.", n=200)
            )
        earlier = _by_idempotency_key(organisation, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    try:
        quantity = ledger.parse_quantity(quantity)
    except LedgerError as exc:
        raise OrderError(exc.code, exc.message, field="quantity") from None
    try:
        purpose = certificates.parse_purpose(purpose)
        beneficiary = certificates.clean_text(
            beneficiary,
            field="beneficiary",
            label=_("Beneficiary"),
            max_length=certificates.BENEFICIARY_MAX,
            required=True,
        )
        purpose_detail = certificates.clean_text(
            purpose_detail,
            field="purpose_detail",
            label=_("Purpose details"),
            max_length=certificates.DETAIL_MAX,
            required=False,
        )
    except certificates.RetirementError as exc:
        raise OrderError(exc.code, exc.message, field=exc.field) from None
    if purpose == Purpose.COMPLIANCE:
        raise OrderError(
            "compliance_via_holding",
            _(
                "Compliance offsets count against a compliance year's cap: buy the credits into your holding, "
                "then retire them for compliance there."
            ),
            field="purpose",
        )
    # Orders of one organisation take turns here, so that a yearly limit cannot be overrun by
    # orders placed at the same moment (each would see the others' tonnes not yet counted).
    # FOR NO KEY UPDATE: a fulfilment inserting a certificate (foreign key to the organisation)
    # must not wait for it, or it would deadlock with an order waiting for its batch.
    _lock_organisation(organisation)
    if idempotency_key is not None:  # a repeat sent at the same moment waited here for the first
        earlier = _by_idempotency_key(organisation, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    refusal = policy.purchase_refusal(organisation, quantity, bought_this_year=bought_this_year(organisation))
    if refusal:
        raise OrderError("purchase_not_allowed", refusal, status=403, field="quantity")
    condition = _listed()
    batch_codes = None
    if batch_code not in (None, ""):
        batch = (
            db.session.scalar(select(Batch).filter_by(code=batch_code))
            if isinstance(batch_code, str) and len(batch_code) <= 80
            else None
        )
        listed = batch is not None and db.session.scalar(select(_listed().where(Batch.id == batch.id)))
        if not listed:
            raise OrderError(
                "unknown_batch",
                _("No batch %(batch)s is for sale.", batch=str(batch_code)[:80]),
                404,
                "batch_code",
            )
        batch_codes = [batch.code]

    public_id = "ord_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))
    order = Order(
        public_id=public_id,
        organisation_id=organisation.id,
        user_id=user.id if user is not None else None,
        quantity=quantity,
        batch_code=batch_codes[0] if batch_codes else None,
        beneficiary=beneficiary,
        purpose=purpose,
        purpose_detail=purpose_detail,
        estimate_version=(estimate_version or "")[:40],
        amount=Decimal("0.01"),  # priced below, once the blocks are held
        status=OrderStatus.AWAITING_PAYMENT,
        hold_expires_at=utcnow() + timedelta(minutes=HOLD_MINUTES),
        actor=actor,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    db.session.add(order)
    db.session.flush()
    try:
        with db.session.begin_nested():
            movement = _hold(order, condition)
    except InsufficientCredits as exc:
        raise OrderError(
            "insufficient_stock",
            _(
                "Only %(available)s t are for sale; %(requested)s t were requested.",
                available=exc.params.get("available"),
                requested=quantity,
            ),
            status=409,
            field="quantity",
        ) from None
    _price(order, movement.ranges)
    audit.record(
        actor, "order.create", "order", public_id, after={"quantity": quantity, "amount": order.amount}
    )
    return order, True


def _lock_organisation(organisation) -> None:
    """Orders of one organisation take turns from here (see ``create_order``)."""
    db.session.execute(
        select(Organisation.id).where(Organisation.id == organisation.id).with_for_update(key_share=True)
    )


def _by_idempotency_key(organisation, key, digest) -> Order | None:
    earlier = db.session.scalar(select(Order).filter_by(organisation_id=organisation.id, idempotency_key=key))
    if earlier is not None and digest is not None and earlier.request_digest != digest:
        raise OrderError(
            "idempotency_key_reused", _("This Idempotency-Key was already used for a different request."), 422
        )
    return earlier


def _hold(order: Order, condition):
    hold = ledger.open_account(AccountKind.HOLD, order.hold_ref, capacity=order.quantity)
    return ledger.transfer(
        order.quantity,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=hold,
        batch_codes=[order.batch_code] if order.batch_code else None,
        batch_condition=condition,
        reference=order.hold_ref,
        actor=order.actor,
    )


def _price(order: Order, ranges) -> None:
    """The order's lines at the listed prices of the held batches, and its exact total."""
    per_batch: dict[int, int] = defaultdict(int)
    for r in ranges:
        per_batch[r.batch_id] += r.quantity
    prices = {
        batch.id: (batch, price)
        for batch, price in db.session.execute(
            select(Batch, Listing.price_per_t)
            .join(Listing, Listing.batch_id == Batch.id)
            .where(Batch.id.in_(list(per_batch)))
        )
    }
    for line in list(order.lines):
        order.lines.remove(line)
    for batch_id, quantity in per_batch.items():
        batch, price = prices[batch_id]
        order.lines.append(
            OrderLine(batch=batch, quantity=quantity, unit_price=price, amount=price * quantity)
        )
    order.amount = sum((line.amount for line in order.lines), Decimal("0"))


def attach_payment(order: Order) -> None:
    """Create the order's PaymentIntent (after the hold is committed). On failure the hold is
    released and OrderError raised."""
    try:
        ensure_payment(order)
    except OrderError:
        _release(order, OrderStatus.CANCELLED, OrderNote.PAYMENT_UNAVAILABLE, actor="system")
        order.idempotency_key = None  # a retry with the same key makes a new order
        raise


def _intent_metadata(order: Order) -> dict:
    # The same for every call about one order: Stripe's idempotency key only gives back the
    # first intent when the parameters are the same.
    return {"portal_order": order.public_id, "quantity": str(order.quantity)}


def ensure_payment(order: Order) -> None:
    """An order awaiting payment without a recorded PaymentIntent (the request that made it died
    after the hold was committed, before Stripe answered or the answer was saved): create its
    intent now. Stripe gives back the intent it may already have made, since the order's own
    reference is the idempotency key of the call (see ``payments.create_payment_intent``)."""
    if order.status != OrderStatus.AWAITING_PAYMENT or order.payment_intent_id is not None:
        return
    try:
        intent = payments.create_payment_intent(
            payments.to_fen(order.amount), reference=order.public_id, metadata=_intent_metadata(order)
        )
    except payments.PaymentError:
        # Unlike a new order's, this hold is kept: the order expires in its own time, and the
        # next try may reach Stripe.
        raise OrderError(
            "payment_unavailable",
            _("The payment service is not available. Nothing was charged; please try again."),
            503,
        ) from None
    order.payment_intent_id = intent.id
    order.client_secret = intent.client_secret


# --- finding -------------------------------------------------------------------------------


def find(public_id) -> Order | None:
    if not isinstance(public_id, str) or not public_id.startswith("ord_") or len(public_id) != 24:
        return None
    return db.session.scalar(select(Order).filter_by(public_id=public_id))


def orders_of(organisation, limit: int = 100) -> list[Order]:
    return list(
        db.session.scalars(
            select(Order).filter_by(organisation_id=organisation.id).order_by(Order.id.desc()).limit(limit)
        )
    )


def _locked(order: Order) -> Order:
    """The order row, locked for this transaction and re-read (webhooks and expiry race)."""
    return db.session.scalars(
        select(Order)
        .where(Order.id == order.id)
        # OF orders: the eagerly joined organisation is the nullable side of an outer join,
        # which PostgreSQL refuses to lock (and it needs no lock).
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    ).one()


# --- expiry --------------------------------------------------------------------------------


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
    db.session.commit()
    expired = []
    for order_id in due:
        order = db.session.get(Order, order_id)
        try:
            if expire_if_due(order, now):
                expired.append(order)
            db.session.commit()
        except LedgerError:
            db.session.rollback()
            log.exception("expiring order %s failed; the others go on", order.public_id)
    return expired


def expire_on_access(order: Order) -> None:
    """The check on access: release the hold of an unpaid order past its time, commit, then stop
    its PaymentIntent (Stripe is called only after the release is committed)."""
    if expire_if_due(order):
        db.session.commit()
        cancel_payment(order)


def cancel_payment(order: Order) -> None:
    """After an expiry is committed: stop the PaymentIntent being paid (best effort; a payment
    that wins the race is handled by the webhook as a late payment)."""
    if order.payment_intent_id:
        payments.cancel(order.payment_intent_id)


def _release(order: Order, status: OrderStatus, note: str, *, actor: str) -> None:
    hold = db.session.scalar(select(Account).filter_by(kind=AccountKind.HOLD, ref=order.hold_ref))
    held = ledger.balance(hold) if hold is not None else 0
    if held:
        ledger.transfer(
            held,
            source=hold,
            destination=ledger.system_account(AccountKind.INVENTORY),
            reference=order.hold_ref,
            actor=actor,
        )
    before = order.status
    order.status = status
    order.note = note
    audit.record(
        actor,
        f"order.{status}",
        "order",
        order.public_id,
        before={"status": before},
        after={"status": status, "released": held, "note": note},
    )


# --- payment events ------------------------------------------------------------------------


def _order_for_intent(intent: dict) -> Order | None:
    found = db.session.scalar(select(Order).filter_by(payment_intent_id=str(intent.get("id", ""))))
    if found is None:
        metadata = intent.get("metadata") or {}
        found = find(metadata.get("portal_order"))
        if found is not None and found.payment_intent_id not in (None, intent.get("id")):
            found = None  # another intent names this order: not ours to settle
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
    order = _locked(order)
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
    order = _order_for_intent(intent)
    if order is None:
        return payments.UNKNOWN
    order = _locked(order)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        return "ignored"  # fulfilled, expired or refunded already: a late failure changes nothing
    _release(order, OrderStatus.FAILED, OrderNote.PAYMENT_FAILED, actor="stripe")
    return "released"


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
    order = db.session.scalar(select(Order).filter_by(payment_intent_id=intent_id)) if intent_id else None
    if order is None:
        return payments.UNKNOWN
    order = _locked(order)
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
    if policy.purchase_refusal(
        order.organisation, order.quantity, bought_this_year=bought_this_year(order.organisation)
    ):
        return OrderNote.NOT_ALLOWED_NOW
    try:
        with db.session.begin_nested():
            movement = _hold(order, _listed())
    except InsufficientCredits:
        return OrderNote.STOCK_GONE
    _apportion_paid(order, movement.ranges)
    return None


def _apportion_paid(order: Order, ranges) -> None:
    """Lines for the batches now held, at their listed prices, with the amount the buyer paid
    shared between them in proportion, exactly to the fen (largest remainders)."""
    paid = order.amount
    _price(order, ranges)
    listed = order.amount
    if listed == paid:
        return
    fen = int(paid * 100)
    shares = [(line, line.amount * fen / listed) for line in order.lines]
    floors = {id(line): int(share) for line, share in shares}
    left = fen - sum(floors.values())
    for line, _share in sorted(shares, key=lambda item: item[1] - int(item[1]), reverse=True)[:left]:
        floors[id(line)] += 1
    for line in order.lines:
        line.amount = Decimal(floors[id(line)]) / 100
    order.amount = paid
    order.note = OrderNote.HELD_AGAIN


def _fulfil(order: Order) -> None:
    hold = ledger.find_account(AccountKind.HOLD, order.hold_ref)
    certificate = certificates.retire_into_certificate(
        hold,
        order.organisation,
        order.quantity,
        beneficiary=order.beneficiary,
        purpose=order.purpose,
        purpose_detail=order.purpose_detail,
        source=Source.ORDER,
        source_ref=order.public_id,
        actor="stripe",
    )
    order.certificate_id = certificate.id
    order.certificate = certificate
    order.status = OrderStatus.FULFILLED
    revenue.record_sale(
        "order", order.public_id, [(line.batch, line.amount) for line in order.lines], order.paid_at
    )
    audit.record(
        "stripe",
        "order.fulfilled",
        "order",
        order.public_id,
        before={"status": "awaiting_payment"},
        after={"status": "fulfilled", "certificate": certificate.number},
    )
    _receipt(order, certificate)


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
        payments.tell_staff(subject, body)
        db.session.commit()
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


# --- mail ----------------------------------------------------------------------------------


def _receipt(order: Order, certificate) -> None:
    recipients = (
        [order.user.email]
        if order.user is not None
        else [
            u.email
            for u in db.session.scalars(
                select(User).filter_by(
                    organisation_id=order.organisation_id, is_org_admin=True, is_active=True
                )
            )
        ]
    )
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
    for email in recipients:
        mail.send(email, _("Receipt and retirement certificate %(number)s", number=certificate.number), body)


def note_label(note: str) -> str:
    """An order's note in the reader's language."""
    return str(ORDER_NOTES.get(note, note))


def batches_for_sale(limit: int = 200):
    """(batch, price, available) of listed batches with stock, in allocation order."""
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id)
    rows = db.session.execute(
        select(Batch, Listing.price_per_t, available.label("available"))
        .join(Listing, Listing.batch_id == Batch.id)
        .where(Listing.is_active.is_(True), available > 0)
        .order_by(*ledger.ALLOCATION_ORDER)
        .limit(limit)
    )
    return [(batch, price, int(n)) for batch, price, n in rows]
