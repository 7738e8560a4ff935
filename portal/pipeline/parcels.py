"""Parcels, rights holders and joint development agreements; the rule that no land is enrolled
twice.

**How an overlap is found.** Every enrolled parcel keeps its bounding box in columns and the grid
cells (``geometry.CELL_DEGREES``) its box covers in ``parcel_cells`` (indexed). A new or changed
boundary's cells give, by an index look-up, the few parcels whose boxes can meet it; their boxes
are compared in the same query; shapely then tests the candidates exactly (an STRtree over them,
``intersects``) and measures each intersection on the equal-area projection. An overlap above
``geometry.OVERLAP_TOLERANCE_HA`` is refused, naming the parcels and the hectares. Nothing is held
in a process's memory, so every worker and every process sees the same enrolled parcels.

**Concurrency.** Before it looks, a writer locks the coarse cells (``geometry.LOCK_DEGREES``) its
boundary's box covers, in ascending order (PostgreSQL advisory locks held to the end of the
transaction; SQLite runs one writer at a time). Two overlapping boundaries share a lock cell, so
the second waits for the first to commit and then sees it.
"""

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from flask_babel import gettext as _
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.catalog.models import Region
from portal.core.text import clean_text
from portal.extensions import db
from portal.pipeline import extents, geometry
from portal.pipeline.errors import Overlap, ParcelOverlap, PipelineError
from portal.pipeline.models import (
    Agreement,
    Document,
    LandType,
    Parcel,
    ParcelCell,
    ParcelStatus,
    ProjectState,
    RightsHolder,
    Tenure,
)

#: The advisory-lock namespace of parcel boundaries (PostgreSQL's two-key form: namespace, cell).
LOCK_NAMESPACE = 0x50_41_52  # "PAR"


def find_region(code) -> Region:
    region = None
    if isinstance(code, str) and code.strip():
        region = db.session.scalar(select(Region).filter_by(code=code.strip()))
    if region is None:
        raise PipelineError(
            "unknown_county", _("Choose one of Chifeng's county-level units."), field="county"
        )
    return region


def _choice(value, vocabulary, code: str, message: str) -> str:
    if not isinstance(value, str) or value not in {m.value for m in vocabulary}:
        raise PipelineError(code, message, field=code.removeprefix("invalid_"))
    return value


# --- rights holders and agreements ---------------------------------------------------------------


def rights_holder(region: Region, name, *, actor: str, identifier="", contact="") -> RightsHolder:
    """The county's rights holder of that name, created on first mention (audited)."""
    name = clean_text(
        name,
        field="rights_holder",
        label=_("Rights holder"),
        max_length=200,
        required=True,
        error=PipelineError,
    )
    found = db.session.scalar(select(RightsHolder).filter_by(region_id=region.id, name=name))
    if found is not None:
        return found
    holder = RightsHolder(
        name=name,
        region_id=region.id,
        identifier=clean_text(
            identifier,
            field="identifier",
            label=_("Identifier"),
            max_length=40,
            required=False,
            error=PipelineError,
        ),
        contact=clean_text(
            contact, field="contact", label=_("Contact"), max_length=200, required=False, error=PipelineError
        ),
    )
    try:
        with db.session.begin_nested():  # the same holder named twice at once: one row
            db.session.add(holder)
            db.session.flush()
    except IntegrityError:
        found = db.session.scalar(select(RightsHolder).filter_by(region_id=region.id, name=name))
        if found is None:
            raise
        return found
    audit.record(
        actor, "rights_holder.create", "rights_holder", holder.id, after={"name": name, "county": region.code}
    )
    return holder


def create_agreement(
    holder: RightsHolder, *, number, signed_on, term_years, document: Document | None, actor: str
) -> Agreement:
    """A joint development agreement with ``holder``: its number, signing date, term in years and
    the signed document (a stored PDF)."""
    number = clean_text(
        number, field="number", label=_("Agreement number"), max_length=40, required=True, error=PipelineError
    )
    if db.session.scalar(select(Agreement.id).filter_by(number=number)) is not None:
        raise PipelineError(
            "duplicate_agreement",
            _("Agreement %(number)s is already recorded.", number=number),
            field="number",
        )
    signed_on = parse_date(signed_on, "signed_on")
    from portal.core.numbers import whole

    term = whole(term_years, 1, 70)
    if term is None:
        raise PipelineError(
            "invalid_term", _("The term is a whole number of years from 1 to 70."), field="term_years"
        )
    agreement = Agreement(
        number=number,
        rights_holder_id=holder.id,
        rights_holder=holder,
        signed_on=signed_on,
        term_years=term,
        document=document,
        created_by=actor,
    )
    db.session.add(agreement)
    db.session.flush()
    audit.record(
        actor,
        "agreement.create",
        "agreement",
        agreement.number,
        after={
            "rights_holder": holder.name,
            "signed_on": signed_on,
            "term_years": term,
            "document_sha256": document.sha256 if document else None,
        },
    )
    return agreement


def parse_date(value, field: str, *, not_after_today: bool = True) -> date:
    from portal.timeutil import beijing_today

    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value or "").strip())
        except ValueError:
            raise PipelineError("invalid_date", _("Enter the date as YYYY-MM-DD."), field=field) from None
    if not_after_today and day > beijing_today():
        raise PipelineError("future_date", _("The date may not be in the future."), field=field)
    return day


# --- parcels --------------------------------------------------------------------------------------


def _lock(bounds) -> None:
    if db.session.get_bind().dialect.name != "postgresql":
        return  # SQLite: every write transaction starts BEGIN IMMEDIATE, one writer at a time
    for cell in geometry.lock_cells(bounds):
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :cell)"), {"ns": LOCK_NAMESPACE, "cell": cell}
        )


def find_overlaps(shape, exclude_id: int | None = None) -> list[Overlap]:
    """The enrolled parcels ``shape`` overlaps by more than the tolerance, largest overlap first."""
    west, south, east, north = shape.bounds
    candidates = (
        select(Parcel.id, Parcel.code, Parcel.boundary_geojson)
        .where(
            Parcel.id.in_(
                select(ParcelCell.parcel_id).where(ParcelCell.cell.in_(geometry.cells(shape.bounds)))
            ),
            Parcel.status == ParcelStatus.ENROLLED,
            Parcel.min_lon <= east,
            Parcel.max_lon >= west,
            Parcel.min_lat <= north,
            Parcel.max_lat >= south,
        )
        .order_by(Parcel.id)
    )
    if exclude_id is not None:
        candidates = candidates.where(Parcel.id != exclude_id)
    rows = db.session.execute(candidates).all()
    if not rows:
        return []
    from shapely import STRtree  # loaded with the first boundary read (geometry)

    shapes = [geometry.from_geojson(row.boundary_geojson) for row in rows]
    found = []
    for index in STRtree(shapes).query(shape, predicate="intersects"):
        overlap = geometry.area_ha(shape.intersection(shapes[index]))
        if overlap > geometry.OVERLAP_TOLERANCE_HA:
            found.append(Overlap(rows[index].id, rows[index].code, round(overlap, 4)))
    return sorted(found, key=lambda o: (-o.overlap_ha, o.parcel_id))


def _checked_boundary(boundary, region: Region, exclude_id: int | None = None):
    shape = geometry.parse_boundary(boundary)
    if not extents.within(shape.bounds, region.code):
        raise geometry.GeometryError(
            "outside_county",
            _("The boundary lies outside %(county)s.", county=region.name_zh if _zh() else region.name_en),
        )
    area = Decimal(repr(geometry.area_ha(shape))).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    if area <= 0:
        raise geometry.GeometryError("empty_geometry", _("The boundary is empty."))
    _lock(shape.bounds)
    overlaps = find_overlaps(shape, exclude_id)
    if overlaps:
        raise ParcelOverlap(overlaps)
    return shape, area


def _zh() -> bool:
    from portal.core.i18n import current_language

    return current_language() == "zh"


def _place(parcel: Parcel, shape, area: Decimal) -> None:
    west, south, east, north = shape.bounds
    parcel.boundary_geojson = geometry.to_geojson(shape)
    parcel.area_ha = area
    parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat = west, south, east, north
    db.session.flush()
    db.session.execute(delete(ParcelCell).where(ParcelCell.parcel_id == parcel.id))
    db.session.add_all(ParcelCell(cell=cell, parcel_id=parcel.id) for cell in geometry.cells(shape.bounds))
    db.session.flush()


def enroll_parcel(
    *, county, land_type, tenure, rights_holder_name, boundary, actor: str, agreement: Agreement | None = None
) -> Parcel:
    """A parcel enrolled in the reserve library, after every check (county, vocabulary, boundary,
    its county's extent, no overlap with enrolled land); audited."""
    region = find_region(county)
    land_type = _choice(land_type, LandType, "invalid_land_type", _("Choose the land type."))
    tenure = _choice(tenure, Tenure, "invalid_tenure", _("Choose the tenure."))
    holder_name = clean_text(
        rights_holder_name,
        field="rights_holder",
        label=_("Rights holder"),
        max_length=200,
        required=True,
        error=PipelineError,
    )
    if agreement is not None and agreement.rights_holder.region_id != region.id:
        raise PipelineError(
            "agreement_county",
            _("The agreement is with a rights holder of another county."),
            field="agreement",
        )
    shape, area = _checked_boundary(boundary, region)
    holder = (
        agreement.rights_holder if agreement is not None else rights_holder(region, holder_name, actor=actor)
    )
    parcel = Parcel(
        code=f"new-{id(shape)}",  # replaced once the row has its id
        region_id=region.id,
        region=region,
        land_type=land_type,
        tenure=tenure,
        rights_holder=holder,
        agreement=agreement,
        status=ParcelStatus.ENROLLED,
        boundary_geojson="",
        area_ha=area,
        min_lon=0,
        min_lat=0,
        max_lon=0,
        max_lat=0,
        created_by=actor,
    )
    db.session.add(parcel)
    _place(parcel, shape, area)
    parcel.code = f"{region.code.upper()}-{parcel.id:06d}"
    db.session.flush()
    audit.record(
        actor,
        "parcel.enroll",
        "parcel",
        parcel.code,
        after={
            "county": region.code,
            "land_type": land_type,
            "tenure": tenure,
            "rights_holder": holder.name,
            "area_ha": area,
            "agreement": agreement.number if agreement else None,
        },
    )
    return parcel


def change_boundary(parcel: Parcel, boundary, *, actor: str) -> Parcel:
    """A surveyed boundary replaced: the same checks as a new parcel's, against every other one."""
    if parcel.status != ParcelStatus.ENROLLED:
        raise PipelineError("parcel_withdrawn", _("Parcel %(code)s is withdrawn.", code=parcel.code))
    shape, area = _checked_boundary(boundary, parcel.region, exclude_id=parcel.id)
    before = {
        "area_ha": parcel.area_ha,
        "bounds": [parcel.min_lon, parcel.min_lat, parcel.max_lon, parcel.max_lat],
    }
    _place(parcel, shape, area)
    audit.record(
        actor,
        "parcel.boundary",
        "parcel",
        parcel.code,
        before=before,
        after={"area_ha": area, "bounds": list(shape.bounds)},
    )
    return parcel


def withdraw_parcel(parcel: Parcel, *, reason, actor: str) -> Parcel:
    """Release a parcel's land (it stops blocking others); not while it is in an active project."""
    reason = clean_text(
        reason, field="reason", label=_("Reason"), max_length=500, required=True, error=PipelineError
    )
    if parcel.project is not None and parcel.project.state == ProjectState.ACTIVE:
        raise PipelineError(
            "parcel_in_project",
            _(
                "Parcel %(code)s is part of project %(project)s.",
                code=parcel.code,
                project=parcel.project.code,
            ),
        )
    parcel.status = ParcelStatus.WITHDRAWN
    db.session.execute(delete(ParcelCell).where(ParcelCell.parcel_id == parcel.id))
    db.session.flush()
    audit.record(
        actor, "parcel.withdraw", "parcel", parcel.code, after={"status": parcel.status, "reason": reason}
    )
    return parcel


def parcels(region_id: int | None = None, *, limit: int = 1000) -> list[Parcel]:
    query = select(Parcel).order_by(Parcel.region_id, Parcel.id).limit(limit)
    if region_id is not None:
        query = query.where(Parcel.region_id == region_id)
    return list(db.session.scalars(query))


def parcel_count(region_id: int | None = None) -> int:
    query = select(func.count(Parcel.id))
    if region_id is not None:
        query = query.where(Parcel.region_id == region_id)
    return db.session.scalar(query)
