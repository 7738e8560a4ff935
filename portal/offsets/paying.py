"""Paying an order: a new attempt after a declined one, and the wallets (Alipay, WeChat Pay).

A declined attempt leaves the order awaiting payment with its hold (``fulfilment.payment_failed``
notes it). The next attempt, with any method, starts from a new PaymentIntent: the declined one
is cancelled first (a cancellation Stripe refuses means it may be being paid, and nothing new is
made), so that only one intent can ever pay an order. Each attempt's intent is made with its own
idempotency key (``ordering.ensure_payment``). Stripe is called here without any batch lock: the
hold was committed when the order was placed.
"""

from flask_babel import gettext as _

from portal.audit import services as audit
from portal.offsets.expiry import expire_on_access
from portal.offsets.holds import OrderError, _locked
from portal.offsets.models import Order, OrderNote, OrderStatus
from portal.offsets.ordering import ensure_payment
from portal.payments import services as payments
from portal.payments import wallets

METHODS = ("card", *wallets.WALLETS)


def payable(order: Order) -> Order:
    """The order, checked on access, if it still waits for payment; OrderError otherwise."""
    expire_on_access(order)
    if order.status != OrderStatus.AWAITING_PAYMENT:
        raise OrderError("not_payable", _("This order no longer waits for a payment."), 409)
    return order


def fresh_attempt(order: Order, *, actor: str) -> Order:
    """After a declined attempt: cancel its PaymentIntent and make a new one (see the module)."""
    order = payable(order)
    if order.pays_by_transfer:
        raise OrderError(
            "pays_by_transfer",
            _("This order is paid by bank transfer: transfer the amount with its reference, as shown."),
            409,
        )
    if order.note != OrderNote.ATTEMPT_DECLINED:
        ensure_payment(order)
        return order
    if (
        order.payment_intent_id
        and not payments.cancel(order.payment_intent_id)
        and payments.retrieve(order.payment_intent_id).status != "canceled"
    ):
        raise OrderError(
            "payment_in_progress",
            _("A payment for this order is still being processed: please wait a moment and reload the page."),
            409,
        )
    order = _locked(order)
    declined = order.payment_intent_id
    order.payment_attempt += 1
    order.payment_intent_id = None
    order.client_secret = None
    order.note = ""
    audit.record(
        actor,
        "order.payment_retry",
        "order",
        order.public_id,
        before={"payment_intent": declined},
        after={"attempt": order.payment_attempt},
    )
    ensure_payment(order)
    return order


def start_wallet(order: Order, method: str, *, return_url: str, actor: str) -> wallets.NextStep:
    """Pay ``order`` with a wallet: its next step (a redirect to Alipay, WeChat Pay's QR code)."""
    if method not in wallets.WALLETS:
        raise OrderError("unknown_method", _("Choose a bank card, Alipay or WeChat Pay."), field="method")
    order = fresh_attempt(order, actor=actor)
    try:
        return wallets.start_wallet(order.payment_intent_id, method, return_url=return_url)
    except payments.PaymentError:
        raise OrderError(
            "payment_unavailable",
            _("The payment service is not available. Nothing was charged; please try again."),
            503,
        ) from None


def wallet_step(order: Order, method: str, *, return_url: str) -> wallets.NextStep:
    """The step a wallet payment already started waits on (WeChat Pay's QR code, shown again)."""
    if method not in wallets.WALLETS or order.payment_intent_id is None:
        raise OrderError("unknown_method", _("Choose a bank card, Alipay or WeChat Pay."), field="method")
    try:
        return wallets.current_step(order.payment_intent_id, method, return_url=return_url)
    except payments.PaymentError:
        raise OrderError(
            "payment_unavailable",
            _("The payment service is not available. Nothing was charged; please try again."),
            503,
        ) from None
