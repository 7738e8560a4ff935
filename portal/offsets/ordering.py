"""Placing an order: checked, held for 30 minutes and priced; then its PaymentIntent, made once
the hold is committed so that no Stripe call runs while batches are locked."""

import secrets
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.alliance import services as alliance
from portal.audit import services as audit
from portal.buyers.models import User
from portal.catalog.models import Listing
from portal.certificates import services as certificates
from portal.certificates.models import Purpose
from portal.core import idempotency
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, LedgerError
from portal.ledger.models import Batch
from portal.offsets.expiry import hold_expiry
from portal.offsets.holds import OrderError, _hold, _listed, _lock_organisation, _release, purchase_refusal
from portal.offsets.lines import parse_lines, price_lines, quote_for_order
from portal.offsets.models import GuestBuyer, Order, OrderLine, OrderNote, OrderStatus
from portal.offsets.pricing import _price
from portal.payments import services as payments
from portal.timeutil import utcnow

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def create_order(
    organisation,
    quantity=None,
    *,
    beneficiary,
    purpose,
    purpose_detail="",
    batch_code=None,
    lines=None,
    quote=None,
    shown_prices=None,
    actor: str,
    user: User | None = None,
    estimate_version: str = "",
    idempotency_key: str | None = None,
    digest: str | None = None,
    guest: GuestBuyer | None = None,
) -> tuple[Order, bool]:
    """Hold the tonnes of an order for ``organisation`` and price it; (order, created).

    Three ways to say what is bought: ``quantity`` (and ``batch_code``), allocated by the stated
    rule; ``lines``, ``[{"batch_code", "quantity"}, …]``, each batch's tonnes held exactly, every
    line or none; or ``quote``, a valid quote's public id, whose lines are held at the quoted
    prices. ``shown_prices`` ({batch code: price}) are the prices a page showed the buyer: if a
    listing changed since, the order is refused (``price_changed``) rather than charged another
    price. The organisation's limits apply to the order's total; a ``guest``'s order (``guests``,
    as the guest organisation) keeps to the guest's own limits instead.

    The PaymentIntent is created by ``attach_payment`` once this is committed, so that no Stripe
    call runs while the batches are locked. A repeat with the same idempotency key returns the
    first order.
    """
    if idempotency.check_key(idempotency_key, OrderError) is not None:
        earlier = _by_idempotency_key(organisation, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    named = _named_lines(organisation, quantity, batch_code, lines, quote)
    if named is None:
        if quantity is None:  # nothing named at all (a quote or lines sent as null count as absent)
            raise OrderError(
                "invalid_quantity",
                _("Say what to buy: quantity (and batch_code), lines, or a quote."),
                field="quantity",
            )
        try:
            quantity = ledger.parse_quantity(quantity)
        except LedgerError as exc:
            raise OrderError(exc.code, exc.message, field="quantity") from None
    else:
        quantity = sum(q for _code, q in named[0])
    beneficiary, purpose, purpose_detail = _checked_terms(beneficiary, purpose, purpose_detail)
    # Orders of one organisation take turns here, so that a yearly limit cannot be overrun by
    # orders placed at the same moment (each would see the others' tonnes not yet counted).
    # FOR NO KEY UPDATE: a fulfilment inserting a certificate (foreign key to the organisation)
    # must not wait for it, or it would deadlock with an order waiting for its batch.
    _lock_organisation(organisation)
    if idempotency_key is not None:  # a repeat sent at the same moment waited here for the first
        earlier = _by_idempotency_key(organisation, idempotency_key, digest)
        if earlier is not None:
            return earlier, False
    if named is not None and named[1] is not None:  # two orders citing one quote at once
        quote_for_order(named[1].public_id, organisation)
    refusal = purchase_refusal(organisation, quantity, guest.email if guest is not None else None)
    if refusal:
        raise OrderError("purchase_not_allowed", refusal, status=403, field="quantity")
    batch_codes = None
    if named is None and batch_code not in (None, ""):
        batch_codes = [_listed_batch(batch_code, organisation).code]

    order = Order(
        public_id="ord_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20)),
        organisation_id=organisation.id,
        user_id=user.id if user is not None else None,
        guest=guest,
        quantity=quantity,
        batch_code=batch_codes[0] if batch_codes else None,
        beneficiary=beneficiary,
        purpose=purpose,
        purpose_detail=purpose_detail,
        estimate_version=(estimate_version or "")[:40],
        amount=Decimal("0.01"),  # priced below
        status=OrderStatus.AWAITING_PAYMENT,
        hold_expires_at=hold_expiry(utcnow()),
        actor=actor,
        idempotency_key=idempotency_key,
        request_digest=digest,
        by_lines=named is not None,
    )
    if named is not None:
        _price_named(order, *named, shown_prices, organisation)
    db.session.add(order)
    db.session.flush()
    try:
        # No savepoint: a refused movement writes nothing, and the caller rolls back the order.
        movement = _hold(order, _listed(organisation))
    except InsufficientCredits as exc:
        raise _short(exc, quantity) from None
    if named is None:
        _price(order, movement.ranges, organisation)
    audit.record(
        actor,
        "order.create",
        "order",
        order.public_id,
        after={
            "quantity": quantity,
            "amount": order.amount,
            "lines": [[line.batch.code, line.quantity, line.unit_price] for line in order.lines],
            "quote": named[1].public_id if named and named[1] is not None else None,
        },
    )
    return order, True


def _named_lines(organisation, quantity, batch_code, lines, quote):
    """(lines as [(code, tonnes)], the quote or None) when the buyer named lines or a quote;
    None for the single form (``quantity`` and perhaps ``batch_code``)."""
    if quote is None and lines is None:
        return None
    if quantity is not None or batch_code not in (None, "") or (quote is not None and lines is not None):
        raise OrderError(
            "ambiguous_order",
            _("Say what to buy one way: quantity (and batch_code), lines, or a quote."),
            field="lines",
        )
    if quote is not None:
        cited = quote_for_order(quote, organisation)
        return [(line.batch.code, line.quantity) for line in cited.lines], cited
    return parse_lines(lines), None


def _price_named(order: Order, named, quote, shown_prices, organisation) -> None:
    """The order's lines as named, at the quote's prices or else those the organisation pays
    now (listed, or member prices)."""
    if quote is not None:
        prices = {line.batch.code: (line.batch, line.unit_price) for line in quote.lines}
        order.quote_id = quote.id
    else:
        prices = {line.batch.code: (line.batch, line.unit_price) for line in price_lines(named, organisation)}
    for code, price in (shown_prices or {}).items():
        if code in prices and prices[code][1] != price:
            raise OrderError(
                "price_changed",
                _(
                    "The price of batch %(batch)s changed from %(shown)s to %(now)s yuan per t since the "
                    "page was shown: nothing was held. Please check the new total.",
                    batch=code,
                    shown=price,
                    now=prices[code][1],
                ),
                409,
                "lines",
            )
    for code, quantity in named:
        batch, price = prices[code]
        order.lines.append(
            OrderLine(batch=batch, quantity=quantity, unit_price=price, amount=price * quantity)
        )
    order.amount = sum((line.amount for line in order.lines), Decimal("0"))


def _listed_batch(batch_code, organisation) -> Batch:
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
    listed_at = db.session.scalar(select(Listing.listed_at).where(Listing.batch_id == batch.id))
    first_call = alliance.first_call_refusal(organisation, batch.code, listed_at)
    if first_call is not None:
        raise OrderError("members_first", first_call, 409, "batch_code")
    return batch


def _checked_terms(beneficiary, purpose, purpose_detail):
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
    return beneficiary, purpose, purpose_detail


def _short(exc: InsufficientCredits, quantity: int) -> OrderError:
    """The refusal for stock that ran short while holding (another buyer was quicker)."""
    batch = exc.params.get("batch")
    if batch is None:
        message = _(
            "Only %(available)s t are for sale; %(requested)s t were requested.",
            available=exc.params.get("available"),
            requested=quantity,
        )
    else:
        message = _(
            "Only %(available)s t of batch %(batch)s are for sale; %(requested)s t were requested.",
            available=exc.params.get("available"),
            batch=batch,
            requested=exc.params.get("requested"),
        )
    return OrderError("insufficient_stock", message, status=409, field="quantity")


def _by_idempotency_key(organisation, key, digest) -> Order | None:
    earlier = db.session.scalar(select(Order).filter_by(organisation_id=organisation.id, idempotency_key=key))
    return idempotency.replay(earlier, digest, OrderError)


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
    if (
        order.status != OrderStatus.AWAITING_PAYMENT
        or order.payment_intent_id is not None
        or order.pays_by_transfer
    ):
        return
    # Each attempt its own intent: the first keeps the order's id as its reference (as before).
    reference = (
        order.public_id
        if order.payment_attempt in (None, 1)
        else f"{order.public_id}-{order.payment_attempt}"
    )
    try:
        intent = payments.create_payment_intent(
            payments.to_fen(order.amount), reference=reference, metadata=_intent_metadata(order)
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
