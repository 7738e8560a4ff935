"""A project's forecast of issuances: vintage, expected tonnes and the range (low, high), revised
by the operator as monitoring comes in. Every revision is kept; the latest is in force.

``forecast_in_force`` and ``expected_by_vintage`` are what supply planning reads (forward
contracts covered by forecast volumes, a forecast cut below what is contracted)."""

from dataclasses import dataclass

from blinker import Namespace
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.core.numbers import whole
from portal.core.text import clean_text
from portal.extensions import db
from portal.pipeline.errors import PipelineError
from portal.pipeline.models import ForecastLine, ForecastRevision, PipelineProject, ProjectState

#: Most tonnes one vintage of one project may be forecast to yield.
MAX_TONNES = 10_000_000

#: Sent in the revision's transaction with the project and the actor: supply planning checks
#: what contracts count on (the pipeline does not import the contracts).
forecast_revised = Namespace().signal("forecast-revised")


@dataclass(frozen=True)
class Expected:
    vintage: int
    expected_t: int
    low_t: int
    high_t: int


def _line(raw, project: PipelineProject, index: int) -> Expected:
    if not isinstance(raw, dict):
        raise PipelineError(
            "invalid_forecast",
            _("Each forecast line gives vintage, expected, low and high."),
            field="forecast",
        )
    vintage = whole(raw.get("vintage"), project.crediting_start.year, project.crediting_end.year)
    if vintage is None:
        raise PipelineError(
            "forecast_vintage",
            _(
                "Line %(n)s: the vintage is a year of the crediting period (%(start)s–%(end)s).",
                n=index,
                start=project.crediting_start.year,
                end=project.crediting_end.year,
            ),
            field="forecast",
        )
    values = [whole(raw.get(k), 0, MAX_TONNES) for k in ("expected_t", "low_t", "high_t")]
    if None in values:
        raise PipelineError(
            "forecast_tonnes",
            _("Line %(n)s: tonnes are whole numbers from 0 to %(max)s.", n=index, max=f"{MAX_TONNES:,}"),
            field="forecast",
        )
    expected, low, high = values
    if not low <= expected <= high:
        raise PipelineError(
            "forecast_range", _("Line %(n)s: low ≤ expected ≤ high.", n=index), field="forecast"
        )
    return Expected(vintage, expected, low, high)


def revise(project: PipelineProject, lines: list, *, note="", actor: str) -> ForecastRevision:
    """A new revision of the project's forecast (the whole forecast, one line per vintage)."""
    if project.state != ProjectState.ACTIVE:
        raise PipelineError("project_withdrawn", _("Project %(code)s is withdrawn.", code=project.code), 409)
    if not isinstance(lines, list) or not lines or len(lines) > 60:
        raise PipelineError("invalid_forecast", _("Give one to 60 forecast lines."), field="forecast")
    parsed = [_line(raw, project, n) for n, raw in enumerate(lines, 1)]
    vintages = [line.vintage for line in parsed]
    if len(set(vintages)) != len(vintages):
        raise PipelineError(
            "forecast_duplicate", _("Each vintage appears once in a forecast."), field="forecast"
        )
    note = clean_text(
        note, field="note", label=_("Note"), max_length=1000, required=False, error=PipelineError
    )
    # The project row is locked: two revisions at once get consecutive numbers.
    db.session.scalar(select(PipelineProject.id).filter_by(id=project.id).with_for_update())
    number = (
        db.session.scalar(select(func.max(ForecastRevision.number)).filter_by(project_id=project.id)) or 0
    ) + 1
    revision = ForecastRevision(project_id=project.id, number=number, note=note, created_by=actor)
    revision.lines = [
        ForecastLine(vintage=e.vintage, expected_t=e.expected_t, low_t=e.low_t, high_t=e.high_t)
        for e in sorted(parsed, key=lambda e: e.vintage)
    ]
    db.session.add(revision)
    db.session.flush()
    audit.record(
        actor,
        "pipeline.forecast",
        "pipeline_project",
        project.code,
        after={"revision": number, "note": note, "lines": [e.__dict__ for e in parsed]},
    )
    forecast_revised.send(project, actor=actor)
    return revision


def revisions(project: PipelineProject) -> list[ForecastRevision]:
    return list(
        db.session.scalars(
            select(ForecastRevision).filter_by(project_id=project.id).order_by(ForecastRevision.number.desc())
        )
    )


def forecast_in_force(project: PipelineProject) -> ForecastRevision | None:
    return db.session.scalar(
        select(ForecastRevision)
        .filter_by(project_id=project.id)
        .order_by(ForecastRevision.number.desc())
        .limit(1)
    )


def expected_by_vintage(project: PipelineProject) -> dict[int, Expected]:
    revision = forecast_in_force(project)
    if revision is None:
        return {}
    return {
        line.vintage: Expected(line.vintage, line.expected_t, line.low_t, line.high_t)
        for line in revision.lines
    }
