"""The operator's changes to the catalog: projects, issuances and listings (prices), each
checked whole before anything is written, and audited."""

from datetime import date
from decimal import Decimal

from blinker import Namespace
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.catalog.filters import MAX_PRICE
from portal.catalog.geometry import BoundaryError, boundary_drawing, boundary_rings
from portal.catalog.models import Listing, Project, ProjectType, Region, Standard
from portal.core import numbers
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.ledger import models as ledger_models
from portal.ledger import serials
from portal.ledger import services as ledger
from portal.ledger.models import Batch

#: Sent with a batch whose stock has just come up for sale (issued with a price, or its listing
#: switched on), inside the same transaction, which holds the batch's lock. Contracts reserve
#: from it; the catalog knows nothing of them.
stock_listed = Namespace().signal("stock-listed")


class CatalogError(ServiceError, ValueError):
    """A project, issuance or listing the operator's rules refuse (400)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code, message, status)


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


#: What a re-submitted issuance is compared on, with the label that names a difference.
ISSUANCE_FIELDS = (
    ("quantity", _l("Issued (t)")),
    ("buffer_quantity", _l("To the buffer (t)")),
    ("vintage_start", _l("Monitoring period starts")),
    ("vintage_end", _l("Monitoring period ends")),
    ("issued_on", _l("Issued on")),
    ("registry_reference", _l("Registry issuance reference")),
    ("registry_serial_start", _l("Registry serial of the first credit")),
    ("registry_serial_end", _l("Registry serial of the last credit")),
)


def record_issuance(project: Project, **values) -> Batch:
    """``submit_issuance``, for callers that only need the batch."""
    return submit_issuance(project, **values)[0]


def submit_issuance(
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
) -> tuple[Batch, bool]:
    """A registry issuance recorded: the batch, its serials in the ledger (inventory and buffer)
    and, with a price (as typed, or a Decimal; None or empty for none), its listing. Refused
    whole if any part is wrong: the registry serial range is read in the registry's format
    (``portal.ledger.serials``) and must count exactly the quantity, and may overlap no recorded
    batch's. The same issuance submitted again is answered with the recorded batch (False: not
    created); one that differs from the record is refused, naming each difference."""
    from portal.audit import services as audit
    from portal.ledger.errors import LedgerError

    if not vintage_start or not vintage_end or vintage_start > vintage_end:
        raise CatalogError("vintage", _("The monitoring period must end after it starts."))
    if vintage_start < project.crediting_start or vintage_end > project.crediting_end:
        raise CatalogError(
            "vintage_outside", _("The monitoring period must lie within the crediting period.")
        )
    if type(quantity) is not int or not 0 < quantity <= ledger_models.MAX_QUANTITY:
        raise CatalogError("quantity", _("The quantity must be a whole number of tonnes greater than zero."))
    if type(buffer_quantity) is not int or buffer_quantity < 0:
        raise CatalogError("buffer", _("The buffer share must be a whole number of tonnes, zero or more."))
    registry_reference = (registry_reference or "").strip()[:120]
    if not registry_reference:
        raise CatalogError("registry_reference", _("Give the registry's issuance reference."))
    registry_serial_start = (registry_serial_start or "").strip()[:120]
    registry_serial_end = (registry_serial_end or "").strip()[:120]
    if project.standard != Standard.CCER and not registry_serial_end:
        registry_serial_end = registry_serial_start  # Verra: one block serial names the range
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
    recorded = db.session.scalar(select(Batch).filter_by(code=code))
    if recorded is not None:
        submitted = {
            "quantity": quantity,
            "buffer_quantity": buffer_quantity,
            "vintage_start": vintage_start,
            "vintage_end": vintage_end,
            "issued_on": issued_on,
            "registry_reference": registry_reference,
            "registry_serial_start": registry_serial_start,
            "registry_serial_end": registry_serial_end,
        }
        differences = [
            _(
                "%(field)s: recorded %(recorded)s, submitted %(submitted)s",
                field=label,
                recorded=_shown(getattr(recorded, name)),
                submitted=_shown(submitted[name]),
            )
            for name, label in ISSUANCE_FIELDS
            if getattr(recorded, name) != submitted[name]
        ]
        if differences:
            raise CatalogError(
                "issuance_differs",
                _(
                    "Batch %(code)s is already recorded, and this submission differs from the record: %(differences)s. "
                    "A recorded issuance is not changed; if the registry corrected it, tell the portal's administrators.",
                    code=code,
                    differences="; ".join(differences),
                ),
                status=409,
            )
        return recorded, False
    units = _registry_units(
        project, quantity, vintage_start, vintage_end, registry_serial_start, registry_serial_end
    )
    batch = Batch(
        code=code,
        project_id=project.id,
        vintage_start=vintage_start,
        vintage_end=vintage_end,
        quantity=quantity,
        issued_on=issued_on,
        registry_reference=registry_reference,
        registry_serial_start=registry_serial_start,
        registry_serial_end=registry_serial_end,
        registry_series=units.series,
        registry_unit_offset=units.offset,
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
            "registry_serials": f"{registry_serial_start} … {registry_serial_end}",
            "price_per_t": price_per_t,
        },
    )
    if price_per_t is not None:
        stock_listed.send(batch, actor=actor)
    return batch, True


def _shown(value) -> str:
    return "—" if value in (None, "") else str(value)


def _registry_units(project, quantity, vintage_start, vintage_end, first, last) -> serials.RegistryRange:
    """The registry's unit range of a new issuance, checked: its format, its count against the
    quantity, its vintage (Verra states it) and no overlap with a recorded batch."""
    try:
        units = serials.parse_range(project.standard, first, last)
    except serials.SerialError as exc:
        raise CatalogError("registry_serials", _serial_message(project.standard, exc)) from None
    if units.count != quantity:
        raise CatalogError(
            "registry_serial_count",
            _(
                "The registry serial range %(first)s to %(last)s counts %(count)s credits; the issuance is of %(quantity)s t. "
                "They must be equal.",
                first=units.first,
                last=units.last,
                count=units.count,
                quantity=quantity,
            ),
        )
    if units.vintage_start is not None and (units.vintage_start, units.vintage_end) != (
        vintage_start,
        vintage_end,
    ):
        raise CatalogError(
            "registry_serial_vintage",
            _(
                "The Verra serial states the vintage %(serial_start)s to %(serial_end)s; the monitoring period given is "
                "%(start)s to %(end)s.",
                serial_start=units.vintage_start.isoformat(),
                serial_end=units.vintage_end.isoformat(),
                start=vintage_start.isoformat(),
                end=vintage_end.isoformat(),
            ),
        )
    if units.last > serials.MAX_UNIT:
        raise CatalogError(
            "registry_serials", _serial_message(project.standard, serials.SerialError("too_large"))
        )
    overlapping = db.session.execute(
        select(Batch.code, Batch.registry_unit_offset, Batch.quantity)
        .where(
            Batch.registry_series == units.series,
            Batch.registry_unit_offset.is_not(None),
            Batch.registry_unit_offset < units.last,
            Batch.registry_unit_offset + Batch.quantity >= units.first,
        )
        .order_by(Batch.registry_unit_offset)
        .limit(1)
    ).first()
    if overlapping is not None:
        raise CatalogError(
            "registry_serial_overlap",
            _(
                "The registry serials %(first)s to %(last)s overlap batch %(batch)s (registry units %(other_first)s to "
                "%(other_last)s): a credit is issued once.",
                first=units.first,
                last=units.last,
                batch=overlapping.code,
                other_first=overlapping.registry_unit_offset + 1,
                other_last=overlapping.registry_unit_offset + overlapping.quantity,
            ),
            status=409,
        )
    return units


def _serial_message(standard: str, exc: serials.SerialError) -> str:
    p = exc.params
    if exc.reason == "missing":
        if standard == Standard.CCER:
            return _("Give the registry serials of the first and the last credit.")
        return _("Give Verra's serial number of the issued block.")
    if exc.reason == "ccer_format":
        return _(
            "%(serial)s is not a CCER serial number: a prefix of capital letters, digits and hyphens, a hyphen, "
            "then the unit number (such as CN-CCER-14-2024001-2021-000123456).",
            serial=p["serial"],
        )
    if exc.reason == "prefix":
        return _(
            "The first and last serials belong to different series (%(first)s and %(last)s).",
            first=p["first"],
            last=p["last"],
        )
    if exc.reason == "reversed":
        return _(
            "The last serial (%(last)s) comes before the first (%(first)s).", first=p["first"], last=p["last"]
        )
    if exc.reason == "verra_one_block":
        return _(
            "A Verra issuance is one block serial: give it as the first serial and leave the last one empty."
        )
    if exc.reason == "too_large":
        return _("The registry unit numbers are too large.")
    return _(
        "%(serial)s is not a Verra VCU serial number (issuance-first-last-VCS-VCU-program-VER-country-scope-project-"
        "DDMMYYYY-DDMMYYYY-flag).",
        serial=p.get("serial", ""),
    )


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
