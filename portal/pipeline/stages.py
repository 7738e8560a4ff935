"""A project's way from assessment to issuance: the stages as a state machine, the county's review
of its boundary and crediting period, and the city's filing.

Rules: a stage follows the one before it, never skipping one (``STAGES``), on a date no earlier
than the previous stage's and not in the future; a project leaves assessment only with the
county's approval of what it has now (parcels, boundaries, crediting period: ``review_digest``)
and the city's filing; registration names the registry's project number and links the catalog
project its credits will be issued to; issuance names a batch issued to that catalog project.
"""

import hashlib
import json
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit import services as audit
from portal.catalog.models import Project, ProjectType, Standard
from portal.core.text import clean_text
from portal.extensions import db
from portal.ledger.models import Batch
from portal.pipeline import geometry
from portal.pipeline.errors import PipelineError
from portal.pipeline.models import (
    STAGE_LABELS,
    STAGES,
    CountyReview,
    Document,
    Parcel,
    ParcelStatus,
    PipelineProject,
    ProjectState,
    ReviewDecision,
    Stage,
    StageRecord,
)
from portal.pipeline.parcels import find_region, parse_date
from portal.timeutil import beijing_today

#: Stages whose responsible body (the validation or verification body) must be named.
NEEDS_BODY = (Stage.VALIDATION, Stage.VERIFICATION)


def _text(value, field, label, max_length, required=False) -> str:
    return clean_text(
        value, field=field, label=label, max_length=max_length, required=required, error=PipelineError
    )


def create_project(values: dict, parcel_codes: list[str], *, actor: str, documents=()) -> PipelineProject:
    """A project from its assessment: its parcels (enrolled, in its county, in no other active
    project), type, standard, methodology and crediting period; the assessment stage recorded."""
    code = (values.get("code") or "").strip() if isinstance(values.get("code"), str) else ""
    if not code or len(code) > 32 or not all(c.isascii() and (c.isalnum() or c == "-") for c in code):
        raise PipelineError(
            "invalid_code", _("A project code has 1 to 32 letters, digits and hyphens."), field="code"
        )
    taken = db.session.scalar(select(PipelineProject.id).filter_by(code=code)) or db.session.scalar(
        select(Project.id).filter_by(code=code)
    )
    if taken is not None:
        raise PipelineError(
            "duplicate_code", _("A project with code %(code)s already exists.", code=code), field="code"
        )
    region = find_region(values.get("county"))
    if values.get("standard") not in set(Standard) or values.get("type") not in set(ProjectType):
        raise PipelineError("invalid_standard", _("Choose the standard and the project type."), field="type")
    if values["standard"] == Standard.CCER and values["type"] != ProjectType.FORESTRY:
        raise PipelineError(
            "ccer_forestry_only",
            _("Only forestry projects are developed as CCER here; other types go to VCS."),
            field="standard",
        )
    start = parse_date(values.get("crediting_start"), "crediting_start", not_after_today=False)
    end = parse_date(values.get("crediting_end"), "crediting_end", not_after_today=False)
    if start >= end:
        raise PipelineError(
            "crediting_period", _("The crediting period must end after it starts."), field="crediting_end"
        )
    reached_on = parse_date(values.get("reached_on") or beijing_today(), "reached_on")
    project = PipelineProject(
        code=code,
        name_zh=_text(values.get("name_zh"), "name_zh", _("Name (Chinese)"), 200, required=True),
        name_en=_text(values.get("name_en"), "name_en", _("Name (English)"), 200),
        region_id=region.id,
        region=region,
        type=values["type"],
        standard=values["standard"],
        methodology=_text(values.get("methodology"), "methodology", _("Methodology"), 40, required=True),
        crediting_start=start,
        crediting_end=end,
        stage=Stage.ASSESSMENT,
        state=ProjectState.ACTIVE,
        created_by=actor,
    )
    db.session.add(project)
    db.session.flush()
    _attach(project, parcel_codes)
    record = StageRecord(
        project_id=project.id,
        stage=Stage.ASSESSMENT,
        reached_on=reached_on,
        responsible_body=_text(
            values.get("responsible_body"), "responsible_body", _("Responsible body"), 200
        ),
        notes=_text(values.get("notes"), "notes", _("Notes"), 4000),
        recorded_by=actor,
        documents=list(documents),
    )
    db.session.add(record)
    db.session.flush()
    audit.record(
        actor,
        "pipeline.create",
        "pipeline_project",
        project.code,
        after={
            "county": region.code,
            "type": project.type,
            "standard": project.standard,
            "crediting_start": start,
            "crediting_end": end,
            "parcels": [p.code for p in project.parcels],
        },
    )
    return project


def _attach(project: PipelineProject, parcel_codes) -> None:
    codes = sorted({c.strip() for c in parcel_codes if isinstance(c, str) and c.strip()})
    if not codes:
        raise PipelineError("no_parcels", _("Choose the project's parcels."), field="parcels")
    # Locked, so that two projects taking the same parcel at once cannot both have it.
    found = list(
        db.session.scalars(
            select(Parcel).where(Parcel.code.in_(codes)).order_by(Parcel.id).with_for_update(of=Parcel)
        )
    )
    missing = sorted(set(codes) - {p.code for p in found})
    if missing:
        raise PipelineError(
            "unknown_parcel", _("No parcel %(code)s.", code=", ".join(missing)), field="parcels"
        )
    for parcel in found:
        if parcel.region_id != project.region_id:
            raise PipelineError(
                "parcel_county", _("Parcel %(code)s is in another county.", code=parcel.code), field="parcels"
            )
        if parcel.status != ParcelStatus.ENROLLED:
            raise PipelineError(
                "parcel_withdrawn", _("Parcel %(code)s is withdrawn.", code=parcel.code), field="parcels"
            )
        if (
            parcel.project_id is not None
            and parcel.project_id != project.id
            and parcel.project.state == ProjectState.ACTIVE
        ):
            raise PipelineError(
                "parcel_in_project",
                _(
                    "Parcel %(code)s is part of project %(project)s.",
                    code=parcel.code,
                    project=parcel.project.code,
                ),
                field="parcels",
            )
        parcel.project = project
    db.session.flush()


def review_digest(project: PipelineProject) -> str:
    """SHA-256 of what the county reviews: each parcel's code and boundary, and the crediting
    period. An approval stands only while the project's digest is the one approved."""
    subject = {
        "parcels": [
            [p.code, hashlib.sha256(p.boundary_geojson.encode()).hexdigest()]
            for p in sorted(project.parcels, key=lambda p: p.code)
            if p.status == ParcelStatus.ENROLLED
        ],
        "crediting_start": project.crediting_start.isoformat(),
        "crediting_end": project.crediting_end.isoformat(),
    }
    return hashlib.sha256(json.dumps(subject, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def latest_review(project: PipelineProject) -> CountyReview | None:
    return db.session.scalar(
        select(CountyReview).filter_by(project_id=project.id).order_by(CountyReview.id.desc()).limit(1)
    )


def is_approved(project: PipelineProject) -> bool:
    """Whether the county's latest decision approves the project as it is now."""
    review = latest_review(project)
    return (
        review is not None
        and review.decision == ReviewDecision.APPROVED
        and review.subject_digest == review_digest(project)
    )


def _active(project: PipelineProject) -> None:
    if project.state != ProjectState.ACTIVE:
        raise PipelineError("project_withdrawn", _("Project %(code)s is withdrawn.", code=project.code), 409)


def review(project: PipelineProject, *, decision, comments, reviewer, actor: str) -> CountyReview:
    """The county reviewer's decision on the project's boundary and crediting period (while the
    project is at assessment); returning it needs comments saying what to change."""
    _active(project)
    if project.stage != Stage.ASSESSMENT:
        raise PipelineError(
            "review_closed", _("The project has left assessment; its review is closed."), 409, "decision"
        )
    if decision not in set(ReviewDecision):
        raise PipelineError("invalid_decision", _("Approve or return the project."), field="decision")
    comments = _text(comments, "comments", _("Comments"), 4000, required=decision == ReviewDecision.RETURNED)
    found = CountyReview(
        project_id=project.id,
        decision=decision,
        comments=comments,
        subject_digest=review_digest(project),
        reviewer_id=reviewer.id,
    )
    db.session.add(found)
    db.session.flush()
    audit.record(
        actor,
        f"pipeline.review_{decision}",
        "pipeline_project",
        project.code,
        after={"decision": decision, "comments": comments, "subject_digest": found.subject_digest},
    )
    return found


def record_filing(project: PipelineProject, *, reference, filed_on, actor: str) -> PipelineProject:
    """The city's filing (备案) of a project the county has approved."""
    _active(project)
    if not is_approved(project):
        raise PipelineError(
            "not_approved",
            _("The county must approve the project's boundary and crediting period first."),
            409,
        )
    reference = _text(reference, "filing_reference", _("Filing reference"), 80, required=True)
    filed_on = parse_date(filed_on, "filed_on")
    before = {"filing_reference": project.filing_reference, "filed_on": project.filed_on}
    project.filing_reference, project.filed_on = reference, filed_on
    db.session.flush()
    audit.record(
        actor,
        "pipeline.filing",
        "pipeline_project",
        project.code,
        before=before,
        after={"filing_reference": reference, "filed_on": filed_on},
    )
    return project


def next_stage(project: PipelineProject) -> Stage | None:
    index = STAGES.index(Stage(project.stage))
    return STAGES[index + 1] if index + 1 < len(STAGES) else None


def advance(
    project: PipelineProject,
    stage,
    *,
    reached_on,
    responsible_body="",
    reference="",
    notes="",
    documents: list[Document] = (),
    actor: str,
) -> StageRecord:
    """Record the next stage reached; every rule of the module docstring checked first."""
    _active(project)
    expected = next_stage(project)
    if stage != expected:
        if expected is None:
            message = _("The project has reached issuance, the last stage.")
        else:
            message = _(
                "The next stage of %(code)s is %(stage)s; stages are taken in order, none skipped.",
                code=project.code,
                stage=STAGE_LABELS[expected],
            )
        raise PipelineError("stage_out_of_order", message, 409, "stage")
    if project.stage == Stage.ASSESSMENT and not (is_approved(project) and project.filed_on is not None):
        raise PipelineError(
            "review_and_filing_required",
            _(
                "A project moves past assessment only once its county has approved it and the city's filing is recorded."
            ),
            409,
            "stage",
        )
    reached_on = parse_date(reached_on, "reached_on")
    previous = project.stages[-1].reached_on if project.stages else None
    if previous is not None and reached_on < previous:
        raise PipelineError(
            "stage_date", _("A stage cannot be reached before the stage before it."), field="reached_on"
        )
    body = _text(
        responsible_body, "responsible_body", _("Responsible body"), 200, required=stage in NEEDS_BODY
    )
    reference = _text(
        reference, "reference", _("Reference"), 120, required=stage in (Stage.REGISTRATION, Stage.ISSUANCE)
    )
    notes = _text(notes, "notes", _("Notes"), 4000)
    if stage == Stage.REGISTRATION:
        _register(project, reference, actor)
    if stage == Stage.ISSUANCE:
        batch = db.session.scalar(select(Batch).filter_by(code=reference))
        if (
            batch is None
            or project.catalog_project_id is None
            or batch.project_id != project.catalog_project_id
        ):
            raise PipelineError(
                "unknown_batch",
                _("Name a batch issued to this project (record the issuance first)."),
                field="reference",
            )
    record = StageRecord(
        project_id=project.id,
        stage=stage,
        reached_on=reached_on,
        responsible_body=body,
        reference=reference,
        notes=notes,
        recorded_by=actor,
        documents=list(documents),
    )
    db.session.add(record)
    before = project.stage
    project.stage = stage
    db.session.flush()
    db.session.refresh(project, ["stages"])
    audit.record(
        actor,
        "pipeline.stage",
        "pipeline_project",
        project.code,
        before={"stage": before},
        after={
            "stage": stage,
            "reached_on": reached_on,
            "responsible_body": body,
            "reference": reference,
            "documents": [d.sha256 for d in documents],
        },
    )
    return record


def boundary_geojson(project: PipelineProject, simplify_degrees: float = 0.0001) -> str | None:
    """The project's boundary, the union of its enrolled parcels, as GeoJSON (simplified by about
    10 m, for drawing and for the catalog); None without parcels."""
    from shapely import union_all

    shapes = [
        geometry.from_geojson(p.boundary_geojson)
        for p in project.parcels
        if p.status == ParcelStatus.ENROLLED
    ]
    if not shapes:
        return None
    return geometry.to_geojson(union_all(shapes).simplify(simplify_degrees))


def _register(project: PipelineProject, registry_id: str, actor: str) -> None:
    """Registration: the catalog project its credits are issued to, made from the pipeline's data
    (or the existing one of the same code, which must be in the same county)."""
    from portal.catalog import operator

    existing = db.session.scalar(select(Project).filter_by(code=project.code))
    if existing is not None:
        if existing.region_id != project.region_id:
            raise PipelineError("catalog_county", _("The catalog project of this code is in another county."))
        project.catalog_project_id = existing.id
        return
    validation = next((s for s in project.stages if s.stage == Stage.VALIDATION), None)
    created = operator.save_project(
        {
            "code": project.code,
            "name_zh": project.name_zh,
            "name_en": project.name_en,
            "standard": project.standard,
            "type": project.type,
            "methodology": project.methodology,
            "region_code": project.region.code,
            "area_ha": sum(
                (p.area_ha for p in project.parcels if p.status == ParcelStatus.ENROLLED), start=0
            ).quantize(Decimal("0.01")),
            "crediting_start": project.crediting_start,
            "crediting_end": project.crediting_end,
            "validation_body": validation.responsible_body if validation else "",
            "registry_id": registry_id,
            "boundary_geojson": boundary_geojson(project),
        },
        actor=actor,
    )
    project.catalog_project_id = created.id


def withdraw_project(project: PipelineProject, *, reason, actor: str) -> PipelineProject:
    """Stop developing a project: its parcels stay enrolled, free for another project."""
    _active(project)
    reason = _text(reason, "reason", _("Reason"), 500, required=True)
    project.state = ProjectState.WITHDRAWN
    db.session.flush()
    audit.record(
        actor,
        "pipeline.withdraw",
        "pipeline_project",
        project.code,
        after={"state": project.state, "reason": reason},
    )
    return project
