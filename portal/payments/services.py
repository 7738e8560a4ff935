"""Calling Stripe, and turning its signed webhooks into calls of the registered handlers.

Amounts are integer fen (CNY's minor unit) here and only here converted from the features'
exact decimals. With ``STRIPE_API_BASE`` set (the embedded localstripe), the same client talks to
it instead of Stripe.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.buyers.accounts import operator_emails
from portal.core import mail
from portal.core.database import unit_of_work
from portal.core.errors import ServiceError
from portal.core.money import fen
from portal.extensions import db
from portal.payments.models import WebhookEvent
from portal.timeutil import utcnow

# The Stripe SDK (some 15 MB with its HTTP clients) is imported by the functions that call it:
# a worker that takes no payment never loads it.
if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)

CURRENCY = "cny"
#: Signatures older than this are refused (replays).
SIGNATURE_TOLERANCE_S = 300

_handlers: dict[tuple[str, str], Callable[[dict], str]] = {}
#: The outcome of a handler that does not know the object (another purpose's handler may).
UNKNOWN = "unknown_intent"
#: The outcome of a handler that knows the object but cannot apply the event yet (a refund seen
#: before its payment): the event is kept and applied when the payment has been handled.
DEFERRED = "deferred"
#: What a PaymentIntent pays for, from its ``portal_purpose`` metadata; checkout orders set none.
DEFAULT_PURPOSE = "order"
#: Events that may arrive before the payment they are about, and wait for it.
WAITS_FOR_PAYMENT = ("charge.refunded",)
#: An event still waiting this long after it arrived is brought to staff (once).
DEFERRED_REPORT_AFTER = timedelta(hours=1)


class PaymentError(ServiceError):
    """Stripe refused or could not be reached; nothing was charged by this call. ``detail`` is
    Stripe's own words, for the log; ``message`` is what a person is told."""

    def __init__(self, detail: str):
        super().__init__(
            "payment_unavailable",
            _("The payment service is not available. Nothing was charged; please try again."),
            status=503,
        )
        self.detail = detail
        self.args = (detail,)


class BadSignature(Exception):
    """The webhook's signature is missing, wrong or stale."""


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    status: str
    amount: int
    currency: str


def on(event_type: str, purpose: str = DEFAULT_PURPOSE):
    """Register the handler of ``event_type`` for intents paying for ``purpose`` (one each): it
    gets the event's object as a dict and returns a short outcome for the record. Events for
    an unknown purpose go to the default purpose's handler, which reports unknown intents."""

    def decorate(handler):
        _handlers[(event_type, purpose)] = handler
        return handler

    return decorate


def client() -> "stripe.StripeClient":
    import stripe

    config = current_app.config
    key = config.get("STRIPE_SECRET_KEY")
    if not key:
        raise PaymentError("STRIPE_SECRET_KEY is not set")
    base = config.get("STRIPE_API_BASE")
    kwargs = {"base_addresses": {"api": base}} if base else {}
    return stripe.StripeClient(key, max_network_retries=2, **kwargs)


def embedded() -> bool:
    """Whether payments go to the embedded backend (localstripe), where the test card is offered."""
    return bool(current_app.config.get("STRIPE_API_BASE"))


def to_fen(amount: Decimal) -> int:
    """The amount Stripe is asked for: yuan as whole fen (``core.money.fen``)."""
    return fen(amount)


def payment_method_types() -> list[str]:
    configured = current_app.config.get("STRIPE_PAYMENT_METHODS", "card,alipay,wechat_pay")
    return [m.strip() for m in configured.split(",") if m.strip()]


def intent_params(amount_fen: int, *, reference: str, metadata: dict) -> dict:
    """The exact parameters of a PaymentIntent for ``amount_fen`` (tested as such: localstripe
    cannot show that Stripe accepts them)."""
    methods = payment_method_types()
    params = {
        "amount": amount_fen,
        "currency": CURRENCY,
        "payment_method_types": methods,
        "metadata": {"portal_reference": reference, **metadata},
    }
    if "wechat_pay" in methods:  # WeChat Pay on the web shows a QR code to scan
        params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
    return params


def _intent(obj) -> Intent:
    return Intent(obj.id, obj.client_secret or "", obj.status, obj.amount, obj.currency)


def create_payment_intent(amount_fen: int, *, reference: str, metadata: dict) -> Intent:
    """A PaymentIntent for ``amount_fen``; the same ``reference`` never creates two (Stripe's
    Idempotency-Key)."""
    import stripe

    try:
        created = client().v1.payment_intents.create(
            params=intent_params(amount_fen, reference=reference, metadata=metadata),
            options={"idempotency_key": f"intent-{reference}"},
        )
    except stripe.StripeError as exc:
        log.warning("creating a PaymentIntent for %s failed: %s", reference, exc)
        raise PaymentError(str(exc)) from None
    return _intent(created)


def retrieve(intent_id: str) -> Intent:
    import stripe

    try:
        return _intent(client().v1.payment_intents.retrieve(intent_id))
    except stripe.StripeError as exc:
        raise PaymentError(str(exc)) from None


def pay_with_test_card(intent_id: str, card: str = "pm_card_visa") -> Intent:
    """Embedded backend only: attach a test card and confirm, as a buyer's browser would."""
    import stripe

    if not embedded():
        raise PaymentError("the test card exists only with the embedded payment backend")
    intents = client().v1.payment_intents
    try:
        intents.update(intent_id, params={"payment_method": card})
        return _intent(intents.confirm(intent_id))
    except stripe.CardError:
        return retrieve(intent_id)  # declined: the intent says so, and payment_failed follows
    except stripe.StripeError as exc:
        raise PaymentError(str(exc)) from None


def cancel(intent_id: str) -> bool:
    """Cancel an unpaid PaymentIntent so it can no longer be paid; False if Stripe refuses
    (e.g. it was paid a moment ago: its webhook will say so)."""
    import stripe

    try:
        client().v1.payment_intents.cancel(intent_id)
    except stripe.StripeError as exc:
        log.info("cancelling %s refused: %s", intent_id, exc)
        return False
    return True


def refund(intent_id: str, *, reference: str) -> str:
    """Refund a paid PaymentIntent in full; the refund's id."""
    import stripe

    try:
        created = client().v1.refunds.create(
            params={"payment_intent": intent_id, "metadata": {"portal_reference": reference}},
            options={"idempotency_key": f"refund-{reference}"},
        )
    except stripe.StripeError as exc:
        log.warning("refunding %s failed: %s", intent_id, exc)
        raise PaymentError(str(exc)) from None
    return created.id


def _dispatch(event_type: str, obj: dict) -> str:
    """The outcome of the handler for ``obj``'s purpose (from its ``portal_purpose`` metadata).

    A charge may carry no metadata (Stripe does not promise to copy the PaymentIntent's): it is
    offered to the default purpose's handler, then to the others, until one knows its intent.
    """
    purpose = str((obj.get("metadata") or {}).get("portal_purpose") or "")
    if not purpose and obj.get("object") == "charge":
        outcome = "ignored"
        for (kind, _purpose), handler in sorted(
            _handlers.items(), key=lambda item: item[0][1] != DEFAULT_PURPOSE
        ):
            if kind == event_type:
                outcome = handler(obj)
                if outcome != UNKNOWN:
                    break
        return outcome
    handler = _handlers.get((event_type, purpose or DEFAULT_PURPOSE)) or _handlers.get(
        (event_type, DEFAULT_PURPOSE)
    )
    return handler(obj) if handler else "ignored"


def _intent_of(event_type: str, obj: dict) -> str:
    if event_type.startswith("payment_intent."):
        return str(obj.get("id") or "")[:255]
    return str(obj.get("payment_intent") or "")[:255]


def handle_webhook(payload: bytes, signature_header: str | None) -> str:
    """Verify a webhook and hand its object to the registered handler, once per event.

    Raises BadSignature (the caller answers 400). Returns the outcome; ``duplicate`` when the
    event was handled before. Whatever order Stripe's events come in, each is applied: a refund
    that arrives before its payment (no handler knows the payment yet, or one says
    ``deferred``) is kept, and applied right after the payment's success has been handled, in
    the same transaction (``apply_deferred`` also retries it every minute, and brings it to
    staff if it still waits after an hour).
    """
    import stripe

    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret or not signature_header:
        raise BadSignature()
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret, SIGNATURE_TOLERANCE_S)
    except (stripe.SignatureVerificationError, ValueError):
        raise BadSignature() from None
    data = event.to_dict()
    obj = data.get("data", {}).get("object", {}) or {}
    record = WebhookEvent(
        event_id=str(data.get("id", ""))[:255],
        type=str(data.get("type", ""))[:80],
        object_id=str(obj.get("id", ""))[:255],
        intent_id=_intent_of(str(data.get("type", "")), obj),
    )
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except IntegrityError:
        return "duplicate"
    _apply(record, obj)
    if record.type == "payment_intent.succeeded" and record.intent_id:
        for waiting in _deferred(intent_id=record.intent_id):
            _apply(waiting, json.loads(waiting.pending_object), final=True)
    return record.outcome


def _apply(record: WebhookEvent, obj: dict, *, final: bool = False) -> None:
    """Dispatch ``record``'s object and note the outcome; keep it for later when it must wait
    for its payment (unless ``final``: its payment has been handled, so waiting longer cannot
    help, and staff are told instead)."""
    outcome = _dispatch(record.type, obj)
    waits = outcome == DEFERRED or (outcome == UNKNOWN and record.type in WAITS_FOR_PAYMENT)
    if waits and record.intent_id and not final:
        record.outcome = DEFERRED
        record.pending_object = json.dumps(obj)
        log.warning(
            "stripe event %s %s for %s waits for its payment", record.event_id, record.type, record.intent_id
        )
        return
    if waits:
        _report(record, _("It still cannot be applied after its payment was handled."))
    record.outcome = outcome
    record.pending_object = None
    log.info("stripe event %s %s for %s: %s", record.event_id, record.type, record.object_id, outcome)


def _deferred(*, intent_id: str | None = None) -> list[WebhookEvent]:
    query = select(WebhookEvent).where(WebhookEvent.pending_object.is_not(None))
    if intent_id is not None:
        query = query.where(WebhookEvent.intent_id == intent_id)
    # Locked, so that a retry and the payment's own event never apply one twice.
    return list(db.session.scalars(query.order_by(WebhookEvent.id).with_for_update(skip_locked=True)))


def apply_deferred(now: datetime | None = None) -> dict[str, int]:
    """Retry every event waiting for its payment (``flask payments deferred``, every minute): a
    payment handled at the same moment as its refund arrived may have missed it. Those still
    waiting after ``DEFERRED_REPORT_AFTER`` are brought to staff, once. Commits each event on
    its own. {"applied": n, "waiting": n, "reported": n}."""
    now = now or utcnow()
    counts = {"applied": 0, "waiting": 0, "reported": 0}
    with unit_of_work():
        ids = [e.id for e in _deferred()]
    for event_id in ids:
        with unit_of_work():  # each event on its own: one ledger movement per transaction
            _apply_deferred_event(event_id, now, counts)
    return counts


def _apply_deferred_event(event_id: int, now, counts: dict[str, int]) -> None:
    record = db.session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.pending_object.is_not(None))
        .with_for_update(skip_locked=True)
    ).first()
    if record is None:
        return
    _apply(record, json.loads(record.pending_object))
    if record.pending_object is None:
        counts["applied"] += 1
    else:
        counts["waiting"] += 1
        if record.reported_at is None and record.received_at <= now - DEFERRED_REPORT_AFTER:
            _report(record, _("Its payment has not arrived after an hour."))
            counts["reported"] += 1


def _report(record: WebhookEvent, why: str) -> None:
    record.reported_at = utcnow()
    tell_staff(
        _("A Stripe event could not be applied"),
        _(
            "Stripe event %(event)s (%(type)s) for PaymentIntent %(intent)s could not be applied: %(why)s "
            "Please check the payment in Stripe.",
            event=record.event_id,
            type=record.type,
            intent=record.intent_id or record.object_id,
            why=why,
        ),
    )


def tell_staff(
    subject: str,
    body: str,
    *,
    action: str = "payments.attention",
    subject_type: str = "payment",
    subject_id="-",
) -> None:
    """Bring a matter to the operators (a payment's, unless ``action`` and ``subject_type`` say
    whose): mail each active one, log and audit it."""
    log.warning("%s: %s", subject, body)
    for email in operator_emails():
        mail.send(email, subject, body)
    audit.record("system", action, subject_type, subject_id, after={"subject": subject, "body": body})
