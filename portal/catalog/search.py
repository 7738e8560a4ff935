"""Reading the catalog: listed batches, their projects and what is available.

Available quantities always come from the ledger's blocks (the inventory account), never from
a stored counter that could drift. Every page is a fixed number of queries, whatever the
number of rows shown.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager

from portal.catalog.filters import SORTS, CatalogFilters
from portal.catalog.models import Listing, Project, Region
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch


@dataclass
class CatalogRow:
    batch: Batch
    price_per_t: Decimal
    available: int
    #: When the batch was first listed (alliance members' first call counts from here).
    listed_at: datetime | None = None


@dataclass
class CatalogPage:
    rows: list[CatalogRow]
    filters: CatalogFilters
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.filters.per_page))


def _listed(conditions=()):
    """Listed batches with project, county, price and available tonnes (one statement).

    Availability is a correlated sub-select on the ledger's blocks (indexed by account and
    batch), so PostgreSQL computes it only for the rows it returns unless a filter or the sort
    needs it for all.
    """
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id).label("available")
    query = (
        select(Batch, Listing.price_per_t, available, Listing.listed_at)
        .join(Listing, Listing.batch_id == Batch.id)
        .join(Batch.project)
        .join(Project.region)
        .options(
            contains_eager(Batch.project)
            .defer(Project.description_zh)
            .defer(Project.description_en)
            .defer(Project.boundary_geojson),
            contains_eager(Batch.project, Project.region),
        )
        .where(Listing.is_active, *conditions)
    )
    return query, available


def _conditions(filters: CatalogFilters, available) -> list:
    conditions = []
    if filters.standard:
        conditions.append(Project.standard == filters.standard)
    if filters.project_type:
        conditions.append(Project.type == filters.project_type)
    if filters.county:
        conditions.append(Region.code == filters.county)
    if filters.methodology:
        conditions.append(Project.methodology == filters.methodology)
    if filters.vintage:
        conditions.append(Batch.vintage_start >= date(filters.vintage, 1, 1))
        conditions.append(Batch.vintage_start < date(filters.vintage + 1, 1, 1))
    if filters.min_available is not None:
        conditions.append(available >= filters.min_available)
    if filters.price_min is not None:
        conditions.append(Listing.price_per_t >= filters.price_min)
    if filters.price_max is not None:
        conditions.append(Listing.price_per_t <= filters.price_max)
    return conditions


def search(filters: CatalogFilters) -> CatalogPage:
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id)
    conditions = _conditions(filters, available)
    count = select(func.count(Batch.id)).join(Listing, Listing.batch_id == Batch.id)
    # Every batch has a project and every project a county, so these joins only filter.
    if filters.standard or filters.project_type or filters.methodology or filters.county:
        count = count.join(Batch.project)
    if filters.county:
        count = count.join(Project.region)
    total = db.session.scalar(count.where(Listing.is_active, *conditions))
    query, available_column = _listed(conditions)
    order = [available_column.desc() if o == "available_desc" else o for o in SORTS[filters.sort]]
    rows = db.session.execute(
        query.order_by(*order).limit(filters.per_page).offset((filters.page - 1) * filters.per_page)
    ).all()
    return CatalogPage(
        [CatalogRow(b, price, int(avail), listed_at) for b, price, avail, listed_at in rows], filters, total
    )


@dataclass(frozen=True)
class CountyOption:
    code: str
    name_zh: str
    name_en: str


@dataclass
class FilterOptions:
    counties: list[CountyOption]
    methodologies: list[str]
    vintages: list[int]


def filter_options() -> FilterOptions:
    """What the filter menus offer: the counties, and the methodologies and vintages in use."""
    counties = [
        CountyOption(*row)
        for row in db.session.execute(select(Region.code, Region.name_zh, Region.name_en).order_by(Region.id))
    ]
    methodologies = list(
        db.session.scalars(select(Project.methodology).distinct().order_by(Project.methodology))
    )
    first, last = db.session.execute(
        select(func.min(Batch.vintage_start), func.max(Batch.vintage_start))
    ).one()
    vintages = list(range(last.year, first.year - 1, -1)) if first else []
    return FilterOptions(counties, methodologies, vintages)


def find_batch(code: str) -> CatalogRow | None:
    query, _available = _listed()
    row = db.session.execute(query.where(Batch.code == code)).first()
    if row is None:
        return None
    batch, price, available, listed_at = row
    return CatalogRow(batch, price, int(available), listed_at)


# --- projects ---------------------------------------------------------------------------------


@dataclass
class BatchHistory:
    batch: Batch
    price_per_t: Decimal | None
    available: int
    retired: int
    listed_at: datetime | None = None


@dataclass
class ProjectPage:
    project: Project
    batches: list[BatchHistory] = field(default_factory=list)

    @property
    def issued(self) -> int:
        return sum(h.batch.quantity for h in self.batches)

    @property
    def available(self) -> int:
        return sum(h.available for h in self.batches)

    @property
    def retired(self) -> int:
        return sum(h.retired for h in self.batches)


def find_project(code: str) -> ProjectPage | None:
    if len(code) > 32:
        return None
    project = db.session.scalar(
        select(Project)
        .join(Project.region)
        .options(contains_eager(Project.region))
        .where(Project.code == code)
    )
    if project is None:
        return None
    rows = db.session.execute(
        select(
            Batch,
            Listing.price_per_t,
            ledger.held_per_batch(AccountKind.INVENTORY, Batch.id),
            ledger.held_per_batch(AccountKind.RETIRED, Batch.id),
            Listing.listed_at,
        )
        .outerjoin(Listing, (Listing.batch_id == Batch.id) & Listing.is_active)
        .where(Batch.project_id == project.id)
        .order_by(Batch.vintage_start, Batch.id)
    ).all()
    return ProjectPage(
        project, [BatchHistory(b, price, int(a), int(r), listed) for b, price, a, r, listed in rows]
    )
