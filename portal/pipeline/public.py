"""What anyone may see of the pipeline: each project's development history (the stages reached
with their dates, the validation and verification bodies, the registry's numbers, the county's
approval and the city's filing) and the land it covers (its boundary and area).

What stays inside (staff and the project's county): the rights holders — households among them —
their agreements, the stages' notes and documents, the county's comments and the forecast.

The catalog's project page shows the history of the project it sells (``project_section``, added
to the page by ``register``); ``/development`` lists the projects still in development, which the
catalog does not (it lists only issued credits). Both are served from the catalog's cache, so the
pipeline's tables are watched by it.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import render_template
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.catalog import cache
from portal.catalog.models import Project, Region
from portal.extensions import db
from portal.pipeline.models import (
    STAGES,
    CountyReview,
    Parcel,
    ParcelStatus,
    PipelineProject,
    ReviewDecision,
    StageRecord,
)


@dataclass(frozen=True)
class PublicStage:
    stage: str
    reached_on: date
    responsible_body: str
    #: The registry's project number (registration) or the issued batch's code (issuance).
    reference: str


@dataclass(frozen=True)
class PublicHistory:
    project: PipelineProject
    stages: list[PublicStage]
    #: The date of the county's approval still in force (None: not, or no longer, approved).
    approved_on: date | None
    parcels: int
    area_ha: Decimal

    @property
    def next_stages(self) -> list[str]:
        reached = {s.stage for s in self.stages}
        return [s.value for s in STAGES if s.value not in reached]


def _history(project: PipelineProject) -> PublicHistory:
    from portal.pipeline.stages import latest_review, review_digest

    review = latest_review(project)
    approved_on = None
    if (
        review is not None
        and review.decision == ReviewDecision.APPROVED
        and review.subject_digest == review_digest(project)
    ):
        approved_on = review.reviewed_at.date()
    enrolled = [p for p in project.parcels if p.status == ParcelStatus.ENROLLED]
    return PublicHistory(
        project=project,
        stages=[PublicStage(s.stage, s.reached_on, s.responsible_body, s.reference) for s in project.stages],
        approved_on=approved_on,
        parcels=len(enrolled),
        area_ha=sum((p.area_ha for p in enrolled), start=Decimal(0)),
    )


def for_catalog_project(project_id: int) -> PublicHistory | None:
    """The development history of the catalog project ``project_id``; None when it was not
    developed through the pipeline (registered before the portal kept it)."""
    found = db.session.scalar(
        select(PipelineProject)
        .where(PipelineProject.catalog_project_id == project_id)
        .options(selectinload(PipelineProject.stages), selectinload(PipelineProject.parcels))
    )
    return None if found is None else _history(found)


def in_development(region_code: str | None = None) -> list[tuple[PipelineProject, Decimal]]:
    """Projects not yet registered (no catalog page), each with its enrolled area, by county."""
    area = (
        select(func.coalesce(func.sum(Parcel.area_ha), 0))
        .where(Parcel.project_id == PipelineProject.id, Parcel.status == ParcelStatus.ENROLLED)
        .scalar_subquery()
    )
    query = (
        select(PipelineProject, area)
        .join(Region, PipelineProject.region_id == Region.id)
        .where(PipelineProject.catalog_project_id.is_(None))
        .order_by(Region.id, PipelineProject.code)
    )
    if region_code:
        query = query.where(Region.code == region_code)
    return [(project, Decimal(a)) for project, a in db.session.execute(query)]


def counties() -> list[Region]:
    return list(db.session.scalars(select(Region).order_by(Region.id)))


def find(code: str) -> PublicHistory | None:
    """A project still in development by its code (a registered one has its catalog page)."""
    if len(code) > 32:
        return None
    found = db.session.scalar(
        select(PipelineProject)
        .where(PipelineProject.code == code, PipelineProject.catalog_project_id.is_(None))
        .options(selectinload(PipelineProject.stages), selectinload(PipelineProject.parcels))
    )
    return None if found is None else _history(found)


def project_section(project: Project) -> Markup | None:
    """The development history section of a catalog project's page."""
    history = for_catalog_project(project.id)
    if history is None:
        return None
    return Markup(render_template("pipeline/_public_history.html", history=history, catalog=project))


def register() -> None:
    """Add the history to the catalog's project pages, and make the catalog's cache see the
    pipeline's changes (the pages it caches now read them)."""
    from portal.catalog import views as catalog_views

    if project_section not in catalog_views.PROJECT_SECTIONS:
        catalog_views.PROJECT_SECTIONS.append(project_section)
    cache.watch(PipelineProject, StageRecord, CountyReview, Parcel)
