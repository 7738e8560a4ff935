"""Reading the catalog: listed batches with what is available, always from the ledger."""

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from portal.catalog.models import Listing, Project
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch


@dataclass
class CatalogRow:
    batch: Batch
    price_per_t: Decimal
    available: int


@dataclass
class CatalogPage:
    rows: list[CatalogRow]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def listed_batches(page: int = 1, per_page: int = 20) -> CatalogPage:
    query = (
        select(Batch, Listing.price_per_t)
        .join(Listing, Listing.batch_id == Batch.id)
        .join(Project, Project.id == Batch.project_id)
        .where(Listing.is_active)
        .order_by(Batch.vintage_start.desc(), Project.code, Batch.id)
    )
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all()
    available = ledger.balances_by_batch(
        ledger.system_account(AccountKind.INVENTORY), [batch.id for batch, _ in rows]
    )
    return CatalogPage(
        [CatalogRow(batch, price, available.get(batch.id, 0)) for batch, price in rows], page, per_page, total
    )
