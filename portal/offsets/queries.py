"""Reading orders and stock: an order by its public id, an organisation's orders, the batches
for sale, and how an order's note reads."""

from sqlalchemy import select

from portal.catalog.models import Listing
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch
from portal.offsets.models import ORDER_NOTE_LABELS, Order


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


def note_label(note: str) -> str:
    """An order's note in the reader's language."""
    return str(ORDER_NOTE_LABELS.get(note, note))


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
