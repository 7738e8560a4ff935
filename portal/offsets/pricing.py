"""An order's price: lines at the listed prices of the batches it holds, and a late payment's
amount shared over the batches held again."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from portal.alliance import services as alliance
from portal.catalog.models import Listing
from portal.core.money import apportion, fen, yuan_of
from portal.extensions import db
from portal.ledger.models import Batch
from portal.offsets.models import Order, OrderLine, OrderNote


def _price(order: Order, ranges, organisation) -> None:
    """The order's lines at the prices ``organisation`` pays for the held batches (listed, or
    member prices for an alliance member), and its exact total."""
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
        price = alliance.price_for(organisation, price)
        order.lines.append(
            OrderLine(batch=batch, quantity=quantity, unit_price=price, amount=price * quantity)
        )
    order.amount = sum((line.amount for line in order.lines), Decimal("0"))


def _apportion_paid(order: Order, ranges) -> None:
    """Lines for the batches now held, at their listed prices, with the amount the buyer paid
    shared between them in proportion, exactly to the fen (largest remainders)."""
    paid = order.amount
    _price(order, ranges, order.organisation)
    listed = order.amount
    if listed == paid:
        return
    parts = apportion(fen(paid), [fen(line.amount) for line in order.lines])
    for line, part in zip(order.lines, parts, strict=True):
        line.amount = yuan_of(part)
    order.amount = paid
    order.note = OrderNote.HELD_AGAIN
