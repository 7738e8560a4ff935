"""An order's price: lines at the listed prices of the batches it holds, and a late payment's
amount shared over the batches held again."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from portal.catalog.models import Listing
from portal.extensions import db
from portal.ledger.models import Batch
from portal.offsets.models import Order, OrderLine, OrderNote


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
