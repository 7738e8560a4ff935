"""What the pipeline's pages read: a county's supervision overview, and the operator's dashboard
figures (forecast tonnes by stage, county and vintage). Every county-scoped query takes the
region id it is confined to; the views pass the reader's own (``access.county_of``)."""

from dataclasses import dataclass, field

from sqlalchemy import func, select, true

from portal.catalog.models import Project, Region
from portal.extensions import db
from portal.ledger.models import Batch
from portal.pipeline.models import (
    STAGES,
    Agreement,
    ForecastLine,
    ForecastRevision,
    Parcel,
    ParcelStatus,
    PipelineProject,
    ProjectState,
    RightsHolder,
)


def _in_county(region_id: int | None):
    return true() if region_id is None else PipelineProject.region_id == region_id


def projects(region_id: int | None = None) -> list[PipelineProject]:
    query = select(PipelineProject).order_by(PipelineProject.region_id, PipelineProject.code)
    if region_id is not None:
        query = query.where(PipelineProject.region_id == region_id)
    return list(db.session.scalars(query))


def find_project(code: str) -> PipelineProject | None:
    return db.session.scalar(select(PipelineProject).filter_by(code=code))


def find_parcel(code: str) -> Parcel | None:
    return db.session.scalar(select(Parcel).filter_by(code=code))


def agreements(region_id: int | None = None) -> list[Agreement]:
    query = select(Agreement).join(RightsHolder).order_by(Agreement.signed_on.desc(), Agreement.id)
    if region_id is not None:
        query = query.where(RightsHolder.region_id == region_id)
    return list(db.session.scalars(query))


def batches(region_id: int, limit: int = 200) -> list[Batch]:
    """The batches issued to the county's projects, newest first."""
    return list(
        db.session.scalars(
            select(Batch)
            .join(Project, Batch.project_id == Project.id)
            .where(Project.region_id == region_id)
            .order_by(Batch.issued_on.desc(), Batch.id.desc())
            .limit(limit)
        )
    )


def _in_force():
    """(project id, revision id) of each project's forecast in force."""
    latest = (
        select(ForecastRevision.project_id, func.max(ForecastRevision.number).label("number"))
        .group_by(ForecastRevision.project_id)
        .subquery()
    )
    return (
        select(ForecastRevision.project_id, ForecastRevision.id.label("revision_id"))
        .join(
            latest,
            (latest.c.project_id == ForecastRevision.project_id)
            & (latest.c.number == ForecastRevision.number),
        )
        .subquery()
    )


@dataclass
class PipelineFigures:
    """Expected tonnes (forecasts in force of active projects) three ways, and project counts."""

    by_stage: dict[str, int] = field(default_factory=dict)
    by_county: dict[int, int] = field(default_factory=dict)
    by_vintage: dict[int, int] = field(default_factory=dict)
    projects_by_stage: dict[str, int] = field(default_factory=dict)
    regions: dict[int, Region] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_stage.values())


def figures(region_id: int | None = None) -> PipelineFigures:
    in_force = _in_force()
    rows = db.session.execute(
        select(
            PipelineProject.stage,
            PipelineProject.region_id,
            ForecastLine.vintage,
            func.sum(ForecastLine.expected_t),
        )
        .join(in_force, in_force.c.project_id == PipelineProject.id)
        .join(ForecastLine, ForecastLine.revision_id == in_force.c.revision_id)
        .where(PipelineProject.state == ProjectState.ACTIVE)
        .where(_in_county(region_id))
        .group_by(PipelineProject.stage, PipelineProject.region_id, ForecastLine.vintage)
    ).all()
    found = PipelineFigures()
    for stage, region, vintage, tonnes in rows:
        found.by_stage[stage] = found.by_stage.get(stage, 0) + int(tonnes)
        found.by_county[region] = found.by_county.get(region, 0) + int(tonnes)
        found.by_vintage[vintage] = found.by_vintage.get(vintage, 0) + int(tonnes)
    found.by_stage = {s.value: found.by_stage[s.value] for s in STAGES if s.value in found.by_stage}
    found.by_vintage = dict(sorted(found.by_vintage.items()))
    counted = db.session.execute(
        select(PipelineProject.stage, func.count())
        .where(PipelineProject.state == ProjectState.ACTIVE)
        .where(_in_county(region_id))
        .group_by(PipelineProject.stage)
    ).all()
    found.projects_by_stage = {stage: n for stage, n in counted}
    found.regions = {r.id: r for r in db.session.scalars(select(Region).order_by(Region.id))}
    found.by_county = dict(sorted(found.by_county.items(), key=lambda kv: -kv[1]))
    return found


@dataclass
class CountyOverview:
    region: Region
    parcels: int
    enrolled_ha: object
    agreements: int
    figures: PipelineFigures
    issued_t: int
    batch_count: int


def county_overview(region: Region) -> CountyOverview:
    parcels, area = db.session.execute(
        select(func.count(Parcel.id), func.coalesce(func.sum(Parcel.area_ha), 0)).where(
            Parcel.region_id == region.id, Parcel.status == ParcelStatus.ENROLLED
        )
    ).one()
    agreements_n = db.session.scalar(
        select(func.count(Agreement.id)).join(RightsHolder).where(RightsHolder.region_id == region.id)
    )
    issued, batch_count = db.session.execute(
        select(func.coalesce(func.sum(Batch.quantity), 0), func.count(Batch.id))
        .join(Project, Batch.project_id == Project.id)
        .where(Project.region_id == region.id)
    ).one()
    return CountyOverview(region, parcels, area, agreements_n, figures(region.id), int(issued), batch_count)
