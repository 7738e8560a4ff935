"""Reading the catalog: listed batches, their projects and what is available.

Available quantities always come from the ledger's blocks (the inventory account), never from
a stored counter that could drift. Every page is a fixed number of queries, whatever the
number of rows shown.
"""

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from blinker import Namespace
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager

from portal.catalog.models import Listing, Project, ProjectType, Region, Standard
from portal.core import jsontext, numbers
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import MAX_QUANTITY as LEDGER_MAX_QUANTITY
from portal.ledger.models import AccountKind, Batch

#: Sent with a batch whose stock has just come up for sale (issued with a price, or its listing
#: switched on), inside the same transaction, which holds the batch's lock. Contracts reserve
#: from it; the catalog knows nothing of them.
stock_listed = Namespace().signal("stock-listed")

SORTS = {
    # Whole index order (ix_batches_vintage), so that a page needs only its own rows.
    "vintage_desc": (Batch.vintage_start.desc(), Batch.vintage_end.desc(), Batch.id.desc()),
    "vintage_asc": (Batch.vintage_start, Batch.vintage_end, Batch.id),
    "price_asc": (Listing.price_per_t, Batch.id),
    "price_desc": (Listing.price_per_t.desc(), Batch.id),
    "available_desc": ("available_desc", Batch.id),
    "project": (Project.code, Batch.vintage_start, Batch.id),
}
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
MAX_QUANTITY = LEDGER_MAX_QUANTITY
MAX_TEXT = 200
MAX_PRICE = Decimal("1000000")


FIELD_LABELS = {
    "standard": _l("Standard"),
    "project_type": _l("Project type"),
    "county": _l("County"),
    "vintage": _l("Vintage"),
    "methodology": _l("Methodology"),
    "min_available": _l("At least (t available)"),
    "price_min": _l("Lowest price"),
    "price_max": _l("Highest price"),
    "sort": _l("Sort by"),
    "page": _l("Page"),
    "per_page": _l("Results per page"),
}


def _field(name: str) -> str:
    return f"{FIELD_LABELS[name]} ({name})"


class FilterError(ValueError):
    """A filter value that cannot be used; ``message`` is translated and names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(message)


@dataclass
class CatalogFilters:
    standard: str | None = None
    project_type: str | None = None
    county: str | None = None
    vintage: int | None = None
    methodology: str | None = None
    min_available: int | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    sort: str = "vintage_desc"
    page: int = 1
    per_page: int = 20
    default_per_page: int = 20

    @classmethod
    def from_args(cls, args, default_per_page: int = 20) -> "CatalogFilters":
        """Parse query-string arguments strictly (the API): the first bad value raises FilterError."""
        filters, errors = cls.parse(args, default_per_page)
        if errors:
            raise errors[0]
        return filters

    @classmethod
    def parse(cls, args, default_per_page: int = 20) -> tuple["CatalogFilters", list[FilterError]]:
        """Parse query-string arguments leniently (the web page): empty values mean "any"; a bad
        value is dropped and reported, the other filters are kept."""
        errors: list[FilterError] = []

        def text(name):
            value = (args.get(name) or "").strip()
            if len(value) > MAX_TEXT:
                errors.append(FilterError(name, _("%(field)s is too long.", field=_field(name))))
                return None
            return value or None

        def whole(name, low, high):
            value = text(name)
            if value is None:
                return None
            # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
            if not (value.isascii() and value.isdigit() and len(value) <= 12 and low <= int(value) <= high):
                errors.append(
                    FilterError(
                        name,
                        _(
                            "%(field)s must be a whole number from %(low)s to %(high)s.",
                            field=_field(name),
                            low=low,
                            high=high,
                        ),
                    )
                )
                return None
            return int(value)

        def money(name):
            value = text(name)
            if value is None:
                return None
            amount = numbers.money(value, Decimal(0), MAX_PRICE)
            if amount is None:
                errors.append(
                    FilterError(
                        name, _("%(field)s must be an amount in yuan, such as 68.00.", field=_field(name))
                    )
                )
            return amount

        def choice(name, allowed):
            value = text(name)
            if value is not None and value not in allowed:
                errors.append(
                    FilterError(
                        name,
                        _(
                            "%(field)s must be one of: %(allowed)s.",
                            field=_field(name),
                            allowed=", ".join(sorted(allowed)),
                        ),
                    )
                )
                return None
            return value

        filters = cls(
            standard=choice("standard", {s.value for s in Standard}),
            project_type=choice("project_type", {t.value for t in ProjectType}),
            county=text("county"),
            vintage=whole("vintage", 2000, 2100),
            methodology=text("methodology"),
            min_available=whole("min_available", 0, MAX_QUANTITY),
            price_min=money("price_min"),
            price_max=money("price_max"),
            sort=choice("sort", set(SORTS)) or "vintage_desc",
            page=whole("page", 1, MAX_PAGE) or 1,
            per_page=whole("per_page", 1, MAX_PER_PAGE) or default_per_page,
            default_per_page=default_per_page,
        )
        if (
            filters.price_min is not None
            and filters.price_max is not None
            and filters.price_min > filters.price_max
        ):
            errors.append(FilterError("price_min", _("The lowest price is above the highest price.")))
            filters.price_min = filters.price_max = None
        return filters, errors

    def args(self, **changes) -> dict:
        """The filters as query-string arguments (for links that keep them), with changes."""
        values = {
            "standard": self.standard,
            "project_type": self.project_type,
            "county": self.county,
            "vintage": self.vintage,
            "methodology": self.methodology,
            "min_available": self.min_available,
            "price_min": self.price_min,
            "price_max": self.price_max,
            "sort": None if self.sort == "vintage_desc" else self.sort,
            "page": self.page,
            "per_page": None if self.per_page == self.default_per_page else self.per_page,
        }
        values.update(changes)
        if values.get("page") == 1:
            values["page"] = None
        return {k: v for k, v in values.items() if v is not None}

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (
                self.standard,
                self.project_type,
                self.county,
                self.vintage,
                self.methodology,
                self.min_available,
                self.price_min,
                self.price_max,
            )
        )


@dataclass
class CatalogRow:
    batch: Batch
    price_per_t: Decimal
    available: int


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
        select(Batch, Listing.price_per_t, available)
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
    return CatalogPage([CatalogRow(b, price, int(avail)) for b, price, avail in rows], filters, total)


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
    batch, price, available = row
    return CatalogRow(batch, price, int(available))


# --- projects ---------------------------------------------------------------------------------


@dataclass
class BatchHistory:
    batch: Batch
    price_per_t: Decimal | None
    available: int
    retired: int


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
        )
        .outerjoin(Listing, (Listing.batch_id == Batch.id) & Listing.is_active)
        .where(Batch.project_id == project.id)
        .order_by(Batch.vintage_start, Batch.id)
    ).all()
    return ProjectPage(project, [BatchHistory(b, price, int(a), int(r)) for b, price, a, r in rows])


# --- the boundary as SVG ------------------------------------------------------------------------


@dataclass
class BoundaryDrawing:
    """A project boundary projected into an SVG viewBox (0..width, 0..height)."""

    paths: list[str]
    width: int
    height: int
    scale_km: float  #: the length the scale bar stands for
    scale_px: float
    centre: tuple[float, float]  #: (lat, lon)


#: A boundary as typed into the project form (characters there, UTF-8 bytes when parsed: the
#: same for GeoJSON's ASCII), checked again when it is parsed.
MAX_BOUNDARY_SIZE = 200_000
#: A GeoJSON MultiPolygon nests 5 levels (object, polygons, rings, positions, numbers).
MAX_BOUNDARY_DEPTH = 8
#: Positions in all rings together, and rings in all polygons: more than a surveyed boundary
#: needs, little enough to draw on every project page.
MAX_BOUNDARY_POINTS = 20_000
MAX_BOUNDARY_RINGS = 1_000


class BoundaryError(ValueError):
    """A boundary that cannot be used; ``message`` is translated."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def boundary_geometry(geojson: str) -> dict:
    """The GeoJSON text parsed within bounds (size, nesting): BoundaryError otherwise."""
    try:
        geometry = jsontext.loads(geojson, max_bytes=MAX_BOUNDARY_SIZE, max_depth=MAX_BOUNDARY_DEPTH)
    except jsontext.JsonRefused as exc:
        raise BoundaryError(exc.message) from None
    if not isinstance(geometry, dict):
        raise BoundaryError(_("The boundary must be a GeoJSON Polygon or MultiPolygon in WGS84."))
    return geometry


def boundary_rings(geojson: str) -> list[list[tuple[float, float]]]:
    """The rings of a GeoJSON Polygon or MultiPolygon as (lon, lat) pairs in WGS84; BoundaryError
    saying what is wrong otherwise (too large, nested too deeply, too many points, not a polygon,
    coordinates off the globe)."""
    geometry = boundary_geometry(geojson)
    invalid = BoundaryError(_("The boundary must be a GeoJSON Polygon or MultiPolygon in WGS84."))
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        polygons = coordinates
    else:
        raise invalid
    if not isinstance(polygons, list) or not all(isinstance(p, list) for p in polygons):
        raise invalid
    raw_rings = [ring for polygon in polygons for ring in polygon]
    if not all(isinstance(ring, list) for ring in raw_rings):
        raise invalid
    if len(raw_rings) > MAX_BOUNDARY_RINGS or sum(map(len, raw_rings)) > MAX_BOUNDARY_POINTS:
        raise BoundaryError(
            _(
                "The boundary has too many points: at most %(points)s in at most %(rings)s rings.",
                points=MAX_BOUNDARY_POINTS,
                rings=MAX_BOUNDARY_RINGS,
            )
        )
    try:
        rings = [[(float(lon), float(lat)) for lon, lat, *_ in ring] for ring in raw_rings]
    except (TypeError, ValueError):
        raise invalid from None
    points = [p for ring in rings for p in ring]
    if not points or not all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in points):
        raise invalid
    return rings


def boundary_drawing(geojson: str | None, width: int = 480, height: int = 320, margin: int = 24):
    """Polygons of a GeoJSON geometry as SVG path data, or None when there is nothing valid.

    Equirectangular projection around the centre latitude: faithful at project scale.
    """
    if not geojson:
        return None
    try:
        rings = boundary_rings(geojson)
    except BoundaryError:
        return None
    points = [p for ring in rings for p in ring]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    centre_lat = (south + north) / 2
    kx = 111.32 * math.cos(math.radians(centre_lat))  # km per degree of longitude
    ky = 110.57
    span_x = max((east - west) * kx, 1e-6)
    span_y = max((north - south) * ky, 1e-6)
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)  # px per km
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2

    def project(lon, lat):
        x = off_x + (lon - west) * kx * scale
        y = height - (off_y + (lat - south) * ky * scale)
        return f"{x:.1f},{y:.1f}"

    paths = [
        "M" + " L".join(project(lon, lat) for lon, lat in ring) + " Z" for ring in rings if len(ring) >= 3
    ]
    if not paths:
        return None
    nice = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    target_km = span_x / 4
    scale_km = max([n for n in nice if n <= target_km] or [nice[0]])
    return BoundaryDrawing(
        paths,
        width,
        height,
        scale_km,
        scale_km * scale,
        (round(centre_lat, 4), round((west + east) / 2, 4)),
    )


# --- the operator's changes: projects, issuances, prices -----------------------------------------


class CatalogError(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


PROJECT_FIELDS = (
    "code",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "standard",
    "methodology",
    "type",
    "region_code",
    "area_ha",
    "crediting_start",
    "crediting_end",
    "status",
    "validation_body",
    "verification_body",
    "registry_id",
    "boundary_geojson",
)


def save_project(values: dict, *, project: Project | None = None, actor: str) -> Project:
    """Create a project, or change one; every rule checked before anything is written."""
    from portal.audit import services as audit

    code = (values.get("code") or "").strip()
    if project is None:
        if not code or len(code) > 32 or not all(c.isascii() and (c.isalnum() or c == "-") for c in code):
            raise CatalogError("invalid_code", _("A project code has 1 to 32 letters, digits and hyphens."))
        if db.session.scalar(select(Project.id).filter_by(code=code)) is not None:
            raise CatalogError("duplicate_code", _("A project with code %(code)s already exists.", code=code))
    region = db.session.scalar(select(Region).filter_by(code=values.get("region_code") or ""))
    if region is None:
        raise CatalogError("unknown_county", _("Choose the county-level unit."))
    if values.get("standard") not in set(Standard) or values.get("type") not in set(ProjectType):
        raise CatalogError("invalid_standard", _("Choose the standard and the project type."))
    if values["standard"] == Standard.CCER and values["type"] != ProjectType.FORESTRY:
        raise CatalogError(
            "ccer_forestry_only",
            _("Only forestry projects are developed as CCER here; other types go to VCS."),
        )
    if (
        not values.get("crediting_start")
        or not values.get("crediting_end")
        or values["crediting_start"] >= values["crediting_end"]
    ):
        raise CatalogError("crediting_period", _("The crediting period must end after it starts."))
    area = values.get("area_ha")
    if area is None or area <= 0 or area >= Decimal("10000000000"):
        raise CatalogError("invalid_area", _("The area is a positive number of hectares."))
    boundary = (values.get("boundary_geojson") or "").strip() or None
    if boundary is not None:
        try:
            boundary_rings(boundary)
        except BoundaryError as exc:
            raise CatalogError("invalid_boundary", exc.message) from None
        if boundary_drawing(boundary) is None:  # e.g. every ring has fewer than three points
            raise CatalogError(
                "invalid_boundary", _("The boundary must be a GeoJSON Polygon or MultiPolygon in WGS84.")
            )
    for name in ("name_zh", "methodology"):
        if not (values.get(name) or "").strip():
            raise CatalogError(f"missing_{name}", _("Fill in the name and the methodology."))

    before = (
        None
        if project is None
        else {f: str(getattr(project, f, "")) for f in PROJECT_FIELDS if f != "region_code"}
    )
    if project is None:
        project = Project(code=code)
        db.session.add(project)
    for name in (
        "name_zh",
        "name_en",
        "description_zh",
        "description_en",
        "methodology",
        "validation_body",
        "verification_body",
        "registry_id",
    ):
        setattr(project, name, (values.get(name) or "").strip())
    project.standard = values["standard"]
    project.type = values["type"]
    project.region = region
    project.area_ha = area
    project.crediting_start = values["crediting_start"]
    project.crediting_end = values["crediting_end"]
    project.status = values.get("status") or project.status or "registered"
    project.boundary_geojson = boundary
    db.session.flush()
    after = {f: str(getattr(project, f, "")) for f in PROJECT_FIELDS if f != "region_code"}
    audit.record(
        actor,
        "project.create" if before is None else "project.update",
        "project",
        project.code,
        before=before,
        after=after,
    )
    return project


def parse_price(value) -> Decimal:
    """A price per tonne as ``numbers.money`` reads it, from 0.01 to MAX_PRICE yuan; CatalogError
    otherwise."""
    price = numbers.money(value, Decimal("0.01"), MAX_PRICE)
    if price is None:
        raise CatalogError(
            "price",
            _(
                "The price per tonne must be an amount in yuan from 0.01 to %(max)s, with at most two decimals, such as 68.00.",
                max=MAX_PRICE,
            ),
        )
    return price


def record_issuance(
    project: Project,
    *,
    vintage_start: date,
    vintage_end: date,
    quantity: int,
    buffer_quantity: int,
    issued_on: date,
    registry_reference: str,
    registry_serial_start: str,
    registry_serial_end: str,
    price_per_t,
    actor: str,
) -> Batch:
    """A registry issuance recorded: the batch, its serials in the ledger (inventory and buffer)
    and, with a price (as typed, or a Decimal; None or empty for none), its listing. Refused
    whole if any part is wrong."""
    from portal.audit import services as audit
    from portal.ledger.errors import LedgerError

    if not vintage_start or not vintage_end or vintage_start > vintage_end:
        raise CatalogError("vintage", _("The monitoring period must end after it starts."))
    if vintage_start < project.crediting_start or vintage_end > project.crediting_end:
        raise CatalogError(
            "vintage_outside", _("The monitoring period must lie within the crediting period.")
        )
    if not registry_reference.strip():
        raise CatalogError("registry_reference", _("Give the registry's issuance reference."))
    if price_per_t is not None and not (isinstance(price_per_t, str) and not price_per_t.strip()):
        price_per_t = parse_price(price_per_t)
    else:
        price_per_t = None
    if (vintage_start.month, vintage_start.day, vintage_end.month, vintage_end.day) == (
        1,
        1,
        12,
        31,
    ) and vintage_start.year == vintage_end.year:
        code = f"{project.standard}-{project.code}-{vintage_start.year}"
    else:
        code = f"{project.standard}-{project.code}-{vintage_start:%Y%m}-{vintage_end:%Y%m}"
    if db.session.scalar(select(Batch.id).filter_by(code=code)) is not None:
        raise CatalogError("duplicate_batch", _("Batch %(code)s is already recorded.", code=code))
    batch = Batch(
        code=code,
        project_id=project.id,
        vintage_start=vintage_start,
        vintage_end=vintage_end,
        quantity=quantity,
        issued_on=issued_on,
        registry_reference=registry_reference.strip()[:120],
        registry_serial_start=registry_serial_start.strip()[:120],
        registry_serial_end=registry_serial_end.strip()[:120],
    )
    try:
        ledger.issue_batch(batch, buffer_quantity=buffer_quantity, reference=f"issuance:{code}", actor=actor)
    except LedgerError as exc:
        raise CatalogError(exc.code, exc.message) from None
    if price_per_t is not None:
        db.session.add(Listing(batch_id=batch.id, price_per_t=price_per_t))
        db.session.flush()
    audit.record(
        actor,
        "batch.issue",
        "batch",
        code,
        after={
            "quantity": quantity,
            "buffer": buffer_quantity,
            "registry_reference": registry_reference,
            "price_per_t": price_per_t,
        },
    )
    if price_per_t is not None:
        stock_listed.send(batch, actor=actor)
    return batch


def set_listing(batch: Batch, *, price_per_t, active: bool, actor: str) -> Listing:
    """The batch's price per tonne (as typed, or a Decimal) and whether it is on sale."""
    from portal.audit import services as audit

    price_per_t = parse_price(price_per_t)
    listing = batch.listing
    before = None if listing is None else {"price_per_t": listing.price_per_t, "active": listing.is_active}
    if listing is None:
        listing = Listing(batch_id=batch.id, price_per_t=price_per_t, is_active=active)
        db.session.add(listing)
    listing.price_per_t = price_per_t
    listing.is_active = active
    db.session.flush()
    audit.record(
        actor,
        "listing.update",
        "batch",
        batch.code,
        before=before,
        after={"price_per_t": price_per_t, "active": active},
    )
    if active and not (before or {}).get("active"):
        stock_listed.send(batch, actor=actor)
    return listing
