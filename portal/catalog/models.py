"""Where credits come from: county-level units, projects and the listing prices of batches."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class Standard(StrEnum):
    CCER = "CCER"
    VCS = "VCS"


STANDARD_LABELS = labels_for(
    Standard,
    {"CCER": _l("CCER (China)"), "VCS": _l("VCS (Verra)")},
)


class ProjectType(StrEnum):
    FORESTRY = "forestry"
    GRASSLAND = "grassland"
    WETLAND = "wetland"
    CROPLAND = "cropland"
    MANURE = "manure"


PROJECT_TYPE_LABELS = labels_for(
    ProjectType,
    {
        "forestry": _l("Forestry (afforestation)"),
        "grassland": _l("Grassland"),
        "wetland": _l("Wetland"),
        "cropland": _l("Cropland"),
        "manure": _l("Livestock manure"),
    },
)


class ProjectStatus(StrEnum):
    REGISTERED = "registered"
    ISSUING = "issuing"
    SUSPENDED = "suspended"
    CLOSED = "closed"


PROJECT_STATUS_LABELS = labels_for(
    ProjectStatus,
    {
        "registered": _l("Registered"),
        "issuing": _l("Issuing"),
        "suspended": _l("Suspended"),
        "closed": _l("Closed"),
    },
)


def registry_link(project) -> tuple[str, str]:
    """(URL, link text) of the project's public registry record."""
    if project.standard == "VCS":
        number = project.registry_id.removeprefix("VCS")
        return (
            f"https://registry.verra.org/app/projectDetail/VCS/{number}",
            _l("Verra Registry, project %(id)s", id=project.registry_id),
        )
    return ("https://ccer.cets.org.cn/", _l("National CCER registry, project %(id)s", id=project.registry_id))


class Region(db.Model):
    """One of Chifeng's 12 county-level units (旗县区), which shares in the proceeds."""

    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable slug from the pinyin, used in URLs and filters (``aohan``).
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))
    pinyin: Mapped[str] = mapped_column(String(64))
    #: district (区), county (县) or banner (旗).
    kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (CheckConstraint("kind IN ('district', 'county', 'banner')", name="kind"),)

    def __repr__(self):
        return f"<Region {self.code}>"


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    standard: Mapped[str] = mapped_column(String(8))
    #: e.g. CCER-14-001-V01, VM0042, VM0032, AMS-III.D.
    methodology: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    area_ha: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    crediting_start: Mapped[date]
    crediting_end: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default=ProjectStatus.REGISTERED)
    validation_body: Mapped[str] = mapped_column(String(200), default="")
    verification_body: Mapped[str] = mapped_column(String(200), default="")
    #: The registry's identifier (CCER registry or Verra project id).
    registry_id: Mapped[str] = mapped_column(String(64), default="")
    #: Project boundary as a GeoJSON geometry (Polygon / MultiPolygon, WGS84).
    boundary_geojson: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped[Region] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(one_of("standard", Standard), name="standard"),
        CheckConstraint(one_of("type", ProjectType), name="type"),
        CheckConstraint(one_of("status", ProjectStatus), name="status"),
        CheckConstraint("area_ha > 0", name="area_positive"),
        CheckConstraint("crediting_start < crediting_end", name="crediting_period"),
    )

    def __repr__(self):
        return f"<Project {self.code}>"


class Listing(db.Model):
    """The price at which a batch is offered. Available quantity always comes from the ledger."""

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), unique=True)
    #: Yuan per tonne, exact.
    price_per_t: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    is_active: Mapped[bool] = mapped_column(default=True)
    #: When the batch was first listed (alliance members' first call counts from here).
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    batch: Mapped["Batch"] = relationship(back_populates="listing")  # noqa: F821

    __table_args__ = (
        CheckConstraint("price_per_t > 0", name="price_positive"),
        CheckConstraint("currency = 'CNY'", name="currency"),
    )


class CatalogRevision(db.Model):
    """One row whose counter moves whenever a project, region, batch or listing changes (see
    ``portal.catalog.cache``). With the journal's last entry id it says whether anything a
    catalog page shows may have changed."""

    __tablename__ = "catalog_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
