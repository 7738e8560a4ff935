"""An order's lines as the buyer names them (``[{"batch_code", "quantity"}, …]``): read and
checked, priced at the listed prices with the stock available, and quotes, which keep such
priced lines for ``QUOTE_MINUTES`` without holding anything.

Prices are read from the active listings when the lines are priced; a quote fixes them for its
ten minutes, and an order placed from a valid quote is charged the quoted prices, whatever the
listing says by then. Nothing here holds or moves credits (``ordering`` does).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.alliance import services as alliance
from portal.audit import services as audit
from portal.catalog.models import Listing
from portal.core.i18n import datetime_text
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import LedgerError
from portal.ledger.models import MAX_QUANTITY, AccountKind, Batch
from portal.offsets.holds import OrderError, purchase_refusal
from portal.offsets.models import Order, Quote, QuoteLine
from portal.timeutil import utcnow

#: How long a quote's prices stand.
QUOTE_MINUTES = 10
#: The most lines one order or quote may have.
MAX_LINES = 20
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True)
class PricedLine:
    """One line at the listed price, with the stock for sale when it was priced."""

    batch: Batch
    quantity: int
    unit_price: Decimal
    available: int

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


def parse_lines(raw) -> list[tuple[str, int]]:
    """``[(batch code, tonnes), …]`` from what a buyer sent; OrderError (400, nothing changed)
    for anything else: not a list of objects, no line, too many, a quantity that is not a whole
    number of tonnes above zero, a batch named on two lines."""
    if not isinstance(raw, list) or not raw:
        raise OrderError(
            "invalid_lines",
            _("Send the lines as a list of {batch_code, quantity} objects, at least one."),
            field="lines",
        )
    if len(raw) > MAX_LINES:
        raise OrderError("too_many_lines", _("An order has at most %(n)s lines.", n=MAX_LINES), field="lines")
    lines: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        code = item.get("batch_code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code.strip() or len(code) > 80:
            raise OrderError(
                "invalid_lines",
                _("Line %(n)s names no batch: give its batch_code.", n=index),
                field="lines",
            )
        code = code.strip()
        try:
            quantity = ledger.parse_quantity(item.get("quantity"))
        except LedgerError:
            raise OrderError(
                "invalid_quantity",
                _(
                    "Line %(n)s: the quantity must be a whole number of tonnes greater than zero.",
                    n=index,
                ),
                field="lines",
            ) from None
        if code in seen:
            raise OrderError(
                "duplicate_batch",
                _("Batch %(batch)s is on two lines: put all its tonnes on one line.", batch=code),
                field="lines",
            )
        seen.add(code)
        lines.append((code, quantity))
    if sum(q for _code, q in lines) > MAX_QUANTITY:
        raise OrderError(
            "invalid_quantity", _("An order of that many tonnes cannot be placed."), field="lines"
        )
    return lines


def offers(codes, organisation=None) -> dict[str, tuple[Batch, Decimal, int, datetime]]:
    """{code: (batch, price, tonnes for sale, when listed)} of those of ``codes`` listed at an
    active price, in one query whatever their number. The price is what ``organisation`` pays:
    the listed price, or the member price for an alliance member."""
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id)
    return {
        batch.code: (batch, alliance.price_for(organisation, price), int(n), listed_at)
        for batch, price, n, listed_at in db.session.execute(
            select(Batch, Listing.price_per_t, available, Listing.listed_at)
            .join(Listing, Listing.batch_id == Batch.id)
            .where(Batch.code.in_(list(codes)), Listing.is_active.is_(True))
        )
    }


def line_problem(code: str, quantity: int, offer, organisation=None) -> OrderError | None:
    """Why a line of ``quantity`` t of batch ``code`` cannot be bought at ``offer`` (from
    ``offers``, None when not for sale) by ``organisation``, or None."""
    if offer is None:
        return OrderError(
            "unknown_batch", _("No batch %(batch)s is for sale.", batch=code[:80]), 404, "lines"
        )
    first_call = alliance.first_call_refusal(organisation, code, offer[3])
    if first_call is not None:
        return OrderError("members_first", first_call, 409, "lines")
    stock = offer[2]
    if stock == 0:
        return OrderError("sold_out", _("Batch %(batch)s is sold out.", batch=code), 409, "lines")
    if quantity > stock:
        return OrderError(
            "insufficient_stock",
            _(
                "Only %(available)s t of batch %(batch)s are for sale; %(requested)s t were requested.",
                available=stock,
                batch=code,
                requested=quantity,
            ),
            409,
            "lines",
        )
    return None


def price_lines(lines: list[tuple[str, int]], organisation=None) -> list[PricedLine]:
    """The lines at the prices ``organisation`` pays (listed, or member prices), in the order
    given; OrderError when a batch is not for sale (404), sold out, short or offered first to
    alliance members (409)."""
    found = offers((code for code, _q in lines), organisation)
    priced = []
    for code, quantity in lines:
        problem = line_problem(code, quantity, found.get(code), organisation)
        if problem is not None:
            raise problem
        batch, price, stock, _listed_at = found[code]
        priced.append(PricedLine(batch, quantity, price, stock))
    return priced


def check_allowed(organisation, quantity: int) -> None:
    """The organisation's limits (per order, per year, per day) on an order or quote of ``quantity`` t in all."""
    refusal = purchase_refusal(organisation, quantity)
    if refusal:
        raise OrderError("purchase_not_allowed", refusal, status=403, field="lines")


def create_quote(organisation, raw_lines, *, actor: str) -> Quote:
    """Price ``raw_lines`` for ``organisation`` and keep them for ``QUOTE_MINUTES``; nothing held."""
    priced = price_lines(parse_lines(raw_lines), organisation)
    quantity = sum(line.quantity for line in priced)
    check_allowed(organisation, quantity)
    now = utcnow()
    quote = Quote(
        public_id="quo_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20)),
        organisation_id=organisation.id,
        quantity=quantity,
        amount=sum((line.amount for line in priced), Decimal("0")),
        actor=actor,
        created_at=now,
        expires_at=now + timedelta(minutes=QUOTE_MINUTES),
        lines=[
            QuoteLine(
                batch=line.batch, quantity=line.quantity, unit_price=line.unit_price, amount=line.amount
            )
            for line in priced
        ],
    )
    db.session.add(quote)
    db.session.flush()
    audit.record(
        actor, "quote.create", "quote", quote.public_id, after={"quantity": quantity, "amount": quote.amount}
    )
    return quote


def find_quote(public_id, organisation) -> Quote | None:
    """The organisation's quote ``public_id``; None for another's or none."""
    if not isinstance(public_id, str) or not public_id.startswith("quo_") or len(public_id) != 24:
        return None
    return db.session.scalar(select(Quote).filter_by(public_id=public_id, organisation_id=organisation.id))


def quote_for_order(public_id, organisation, now: datetime | None = None) -> Quote:
    """The quote an order cites, if it may still be used: its own, valid, not used before."""
    quote = find_quote(public_id, organisation)
    if quote is None:
        raise OrderError("unknown_quote", _("There is no such quote."), 404, "quote")
    if quote.expires_at <= (now or utcnow()):
        raise OrderError(
            "quote_expired",
            _(
                "Quote %(quote)s expired at %(time)s: ask for a new quote (prices may have changed).",
                quote=quote.public_id,
                time=datetime_text(quote.expires_at),
            ),
            409,
            "quote",
        )
    if db.session.scalar(select(Order.id).filter_by(quote_id=quote.id)) is not None:
        raise OrderError(
            "quote_used", _("Quote %(quote)s has already been ordered.", quote=quote.public_id), 409, "quote"
        )
    return quote
