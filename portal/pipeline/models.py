"""Land before credits: rights holders and their joint development agreements, parcels with their
boundaries, and the projects the operator develops from them, stage by stage, with the county's
review, the city's filing and the forecast of issuances.

A **pipeline project** exists from its first assessment; a catalog ``Project`` (``projects``) is
what has been registered and may carry issued batches. The pipeline project is linked to its
catalog project once it is registered (``catalog_project_id``), so the catalog keeps listing only
what can be sold while the pipeline keeps the history before it.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class Stage(StrEnum):
    """The development stages, in the only order a project may take them."""

    ASSESSMENT = "assessment"
    DESIGN_DOCUMENT = "design_document"
    VALIDATION = "validation"
    REGISTRATION = "registration"
    MONITORING = "monitoring"
    MONITORING_REPORT = "monitoring_report"
    VERIFICATION = "verification"
    ISSUANCE = "issuance"


STAGES = tuple(Stage)

STAGE_LABELS = labels_for(
    Stage,
    {
        "assessment": _l("Assessment"),
        "design_document": _l("Project design document"),
        "validation": _l("Third-party validation"),
        "registration": _l("Registration"),
        "monitoring": _l("Monitoring"),
        "monitoring_report": _l("Monitoring report"),
        "verification": _l("Third-party verification"),
        "issuance": _l("Issuance"),
    },
)


class LandType(StrEnum):
    FOREST = "forest"
    GRASSLAND = "grassland"
    WETLAND = "wetland"
    CROPLAND = "cropland"
    SHRUBLAND = "shrubland"
    DESERTIFIED = "desertified"


LAND_TYPE_LABELS = labels_for(
    LandType,
    {
        "forest": _l("Forest land"),
        "grassland": _l("Grassland"),
        "wetland": _l("Wetland"),
        "cropland": _l("Cropland"),
        "shrubland": _l("Shrubland"),
        "desertified": _l("Sandy or desertified land"),
    },
)


class Tenure(StrEnum):
    STATE_FOREST_FARM = "state_forest_farm"
    STATE_OWNED = "state_owned"
    COLLECTIVE = "collective"
    HOUSEHOLD_CONTRACT = "household_contract"
    ENTERPRISE = "enterprise"


TENURE_LABELS = labels_for(
    Tenure,
    {
        "state_forest_farm": _l("State forest farm"),
        "state_owned": _l("Other state-owned land"),
        "collective": _l("Collective (village)"),
        "household_contract": _l("Household contract"),
        "enterprise": _l("Enterprise lease"),
    },
)


class ParcelStatus(StrEnum):
    #: In the reserve library: its land may not be enrolled again.
    ENROLLED = "enrolled"
    #: Released (the agreement ended, the survey was wrong): no longer blocks its land.
    WITHDRAWN = "withdrawn"


PARCEL_STATUS_LABELS = labels_for(ParcelStatus, {"enrolled": _l("Enrolled"), "withdrawn": _l("Withdrawn")})


class ProjectState(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


PROJECT_STATE_LABELS = labels_for(
    ProjectState, {"active": _l("In development"), "withdrawn": _l("Withdrawn")}
)


class ReviewDecision(StrEnum):
    APPROVED = "approved"
    RETURNED = "returned"


REVIEW_DECISION_LABELS = labels_for(
    ReviewDecision, {"approved": _l("Approved"), "returned": _l("Returned for changes")}
)


class Document(db.Model):
    """An uploaded PDF (an agreement, a design document, a report), kept in the database so that
    every worker reads the same bytes; its SHA-256 is what the records cite."""

    __tablename__ = "pipeline_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_by: Mapped[str] = mapped_column(String(120))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("size > 0", name="size_positive"),)


class RightsHolder(db.Model):
    """Who holds the land's rights (a state forest farm, a village collective, a household …)."""

    __tablename__ = "rights_holders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: USCC or the holder's registration number, when it has one.
    identifier: Mapped[str] = mapped_column(String(40), default="")
    contact: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped["Region"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (UniqueConstraint("region_id", "name"),)


class Agreement(db.Model):
    """A joint development agreement (生态碳汇联合开发协议) with a rights holder."""

    __tablename__ = "development_agreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    rights_holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    signed_on: Mapped[date]
    term_years: Mapped[int] = mapped_column(Integer)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_documents.id"))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rights_holder: Mapped[RightsHolder] = relationship(lazy="joined")
    document: Mapped[Document | None] = relationship(lazy="joined")

    __table_args__ = (CheckConstraint("term_years BETWEEN 1 AND 70", name="term_years"),)

    @property
    def region_id(self) -> int:
        return self.rights_holder.region_id

    @property
    def ends_on(self) -> date:
        try:
            return self.signed_on.replace(year=self.signed_on.year + self.term_years)
        except ValueError:  # 29 February
            return self.signed_on.replace(year=self.signed_on.year + self.term_years, day=28)


class PipelineProject(db.Model):
    """A project in development, from its first assessment; ``stage`` is the last stage reached."""

    __tablename__ = "pipeline_projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: A catalog ProjectType and Standard.
    type: Mapped[str] = mapped_column(String(16))
    standard: Mapped[str] = mapped_column(String(8))
    methodology: Mapped[str] = mapped_column(String(40))
    crediting_start: Mapped[date]
    crediting_end: Mapped[date]
    stage: Mapped[str] = mapped_column(String(24), default=Stage.ASSESSMENT)
    state: Mapped[str] = mapped_column(String(16), default=ProjectState.ACTIVE)
    #: The city's filing (备案): its reference and date, recorded by the operator.
    filing_reference: Mapped[str] = mapped_column(String(80), default="")
    filed_on: Mapped[date | None]
    #: Set at registration: the catalog project its credits are issued to.
    catalog_project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), unique=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped["Region"] = relationship(lazy="joined")  # noqa: F821
    catalog_project: Mapped["Project | None"] = relationship()  # noqa: F821
    stages: Mapped[list["StageRecord"]] = relationship(back_populates="project", order_by="StageRecord.id")
    parcels: Mapped[list["Parcel"]] = relationship(back_populates="project", order_by="Parcel.id")

    __table_args__ = (
        CheckConstraint(one_of("stage", Stage), name="stage"),
        CheckConstraint(one_of("state", ProjectState), name="state"),
        CheckConstraint("crediting_start < crediting_end", name="crediting_period"),
    )


class Parcel(db.Model):
    """A unit of land with its surveyed boundary (GeoJSON, WGS 84). Its bounding box is kept in
    columns, and the grid cells it covers in ``parcel_cells``, so that finding the parcels a new
    boundary may overlap is an index look-up (see ``portal.pipeline.parcels``)."""

    __tablename__ = "parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``<county code>-<number>``, readable in a list.
    code: Mapped[str] = mapped_column(String(48), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    land_type: Mapped[str] = mapped_column(String(16))
    tenure: Mapped[str] = mapped_column(String(24))
    rights_holder_id: Mapped[int] = mapped_column(ForeignKey("rights_holders.id"), index=True)
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("development_agreements.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_projects.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ParcelStatus.ENROLLED)
    #: The boundary as normalised GeoJSON (Polygon or MultiPolygon, WGS 84 longitude/latitude).
    boundary_geojson: Mapped[str] = mapped_column(Text)
    #: On an equal-area projection (see ``portal.pipeline.geometry.area_ha``).
    area_ha: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    region: Mapped["Region"] = relationship(lazy="joined")  # noqa: F821
    rights_holder: Mapped[RightsHolder] = relationship(lazy="joined")
    agreement: Mapped[Agreement | None] = relationship()
    project: Mapped[PipelineProject | None] = relationship(back_populates="parcels")

    __table_args__ = (
        CheckConstraint(one_of("land_type", LandType), name="land_type"),
        CheckConstraint(one_of("tenure", Tenure), name="tenure"),
        CheckConstraint(one_of("status", ParcelStatus), name="status"),
        CheckConstraint("area_ha > 0", name="area_positive"),
        CheckConstraint("min_lon <= max_lon AND min_lat <= max_lat", name="bbox"),
    )


class ParcelCell(db.Model):
    """A grid cell (``geometry.CELL_DEGREES`` square) that an enrolled parcel's bounding box
    covers. Two boundaries can only overlap where they share a cell."""

    __tablename__ = "parcel_cells"

    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_parcel_cells_parcel_id", "parcel_id"),)


stage_documents = Table(
    "pipeline_stage_documents",
    db.metadata,
    Column("stage_id", ForeignKey("pipeline_stages.id"), primary_key=True),
    Column("document_id", ForeignKey("pipeline_documents.id"), primary_key=True),
)


class StageRecord(db.Model):
    """A stage reached: when, who was responsible (the validation or verification body, the
    registry …), the documents and notes. Never edited: the audit log keeps who recorded it."""

    __tablename__ = "pipeline_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("pipeline_projects.id"), index=True)
    stage: Mapped[str] = mapped_column(String(24))
    reached_on: Mapped[date]
    responsible_body: Mapped[str] = mapped_column(String(200), default="")
    #: The registry's project number (registration) or the issued batch's code (issuance).
    reference: Mapped[str] = mapped_column(String(120), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[PipelineProject] = relationship(back_populates="stages")
    documents: Mapped[list[Document]] = relationship(secondary=stage_documents, order_by="Document.id")

    __table_args__ = (
        CheckConstraint(one_of("stage", Stage), name="stage"),
        UniqueConstraint("project_id", "stage"),
    )


class CountyReview(db.Model):
    """The county's decision on a project's boundary and crediting period. ``subject_digest`` is
    the SHA-256 of what was reviewed; an approval counts only while the project still has it."""

    __tablename__ = "county_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("pipeline_projects.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    comments: Mapped[str] = mapped_column(Text, default="")
    subject_digest: Mapped[str] = mapped_column(String(64))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer: Mapped["User"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (CheckConstraint(one_of("decision", ReviewDecision), name="decision"),)


class ForecastRevision(db.Model):
    """One revision of a project's forecast of issuances; the latest is the forecast in force."""

    __tablename__ = "forecast_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("pipeline_projects.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list["ForecastLine"]] = relationship(order_by="ForecastLine.vintage")

    __table_args__ = (UniqueConstraint("project_id", "number"), CheckConstraint("number > 0", name="number"))


class ForecastLine(db.Model):
    """Expected issuance for one vintage (a calendar year), whole tonnes, with its range."""

    __tablename__ = "forecast_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("forecast_revisions.id"), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    expected_t: Mapped[int] = mapped_column(Integer)
    low_t: Mapped[int] = mapped_column(Integer)
    high_t: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("revision_id", "vintage"),
        CheckConstraint("0 <= low_t AND low_t <= expected_t AND expected_t <= high_t", name="range"),
        CheckConstraint("vintage BETWEEN 2000 AND 2100", name="vintage"),
    )
