"""The stages in order, the county's review and the city's filing as the gate out of assessment,
registration and issuance tied to the catalog, forecasts revised, documents checked."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.catalog.models import Project
from portal.extensions import db
from portal.pipeline import services
from portal.pipeline.models import Stage
from portal.timeutil import beijing_today
from tests import factories
from tests.pipeline.helpers import AOHAN, FOREST_COMPARTMENT, PDF, aohan, project_values, rectangle


@pytest.fixture
def project(app):
    aohan()
    parcel = services.enroll_parcel(
        county="aohan",
        land_type="forest",
        tenure="state_forest_farm",
        rights_holder_name="大黑山林场",
        boundary=FOREST_COMPARTMENT,
        actor="t",
    )
    created = services.create_project(project_values(), [parcel.code], actor="t")
    db.session.commit()
    return created


@pytest.fixture
def reviewer(project):
    return factories.user("review@aohan.gov.cn", role="county", region=project.region)


def step(project, stage, day, **kwargs):
    return services.advance(project, stage, reached_on=day, actor="t", **kwargs)


def refused(code, work, *args, **kwargs):
    """``work`` refused with ``code``; what it began undone (a savepoint: the test's own work stays)."""
    savepoint = db.session.begin_nested()
    with pytest.raises(services.PipelineError) as exc:
        work(*args, **kwargs)
    savepoint.rollback()
    assert exc.value.code == code, exc.value.message
    return exc.value


def approve_and_file(project, reviewer):
    services.review(project, decision="approved", comments="", reviewer=reviewer, actor="t")
    services.record_filing(project, reference="赤林草备〔2025〕17号", filed_on=date(2025, 4, 1), actor="t")


def test_a_project_starts_in_assessment_with_its_parcels(project):
    assert project.stage == Stage.ASSESSMENT and [s.stage for s in project.stages] == ["assessment"]
    assert project.parcels[0].project_id == project.id


def test_it_leaves_assessment_only_with_the_countys_approval_and_the_citys_filing(project, reviewer):
    refused("review_and_filing_required", step, project, "design_document", date(2025, 5, 1))
    refused(
        "not_approved", services.record_filing, project, reference="x", filed_on=date(2025, 4, 1), actor="t"
    )
    returned = services.review(
        project, decision="returned", comments="北侧边界与村界不符", reviewer=reviewer, actor="t"
    )
    assert returned.decision == "returned"
    refused(
        "not_approved", services.record_filing, project, reference="x", filed_on=date(2025, 4, 1), actor="t"
    )
    services.review(project, decision="approved", comments="", reviewer=reviewer, actor="t")
    refused("review_and_filing_required", step, project, "design_document", date(2025, 5, 1))
    services.record_filing(project, reference="赤林草备〔2025〕17号", filed_on=date(2025, 4, 1), actor="t")
    step(project, "design_document", date(2025, 5, 1))
    assert project.stage == Stage.DESIGN_DOCUMENT
    refused(
        "review_closed",
        services.review,
        project,
        decision="approved",
        comments="",
        reviewer=reviewer,
        actor="t",
    )


def test_returning_needs_comments(project, reviewer):
    refused(
        "invalid_comments",
        services.review,
        project,
        decision="returned",
        comments=" ",
        reviewer=reviewer,
        actor="t",
    )
    refused(
        "invalid_decision",
        services.review,
        project,
        decision="maybe",
        comments="",
        reviewer=reviewer,
        actor="t",
    )


def test_an_approval_lapses_when_the_boundary_changes(project, reviewer):
    services.review(project, decision="approved", comments="", reviewer=reviewer, actor="t")
    assert services.is_approved(project)
    parcel = project.parcels[0]
    services.change_boundary(parcel, rectangle(*AOHAN, 900, 700), actor="t")
    assert not services.is_approved(project)
    refused(
        "not_approved", services.record_filing, project, reference="x", filed_on=date(2025, 4, 1), actor="t"
    )


def test_no_stage_is_skipped_and_dates_go_forward(project, reviewer):
    approve_and_file(project, reviewer)
    error = refused("stage_out_of_order", step, project, "validation", date(2025, 5, 1))
    assert error.status == 409
    refused("stage_out_of_order", step, project, "assessment", date(2025, 5, 1))
    refused("stage_out_of_order", step, project, "nonsense", date(2025, 5, 1))
    refused("stage_date", step, project, "design_document", date(2025, 2, 1))  # before the assessment
    refused("future_date", step, project, "design_document", beijing_today() + timedelta(days=1))
    step(project, "design_document", date(2025, 5, 1))
    refused("invalid_responsible_body", step, project, "validation", date(2025, 6, 1))


def test_from_assessment_to_issuance_through_the_catalog(project, reviewer):
    approve_and_file(project, reviewer)
    step(
        project,
        "design_document",
        date(2025, 5, 1),
        documents=[services.store_pdf(PDF, "pdd.pdf", actor="t")],
    )
    step(project, "validation", date(2025, 6, 1), responsible_body="中环联合认证中心")
    refused("invalid_reference", step, project, "registration", date(2025, 7, 1))
    step(project, "registration", date(2025, 7, 1), reference="CCER-REG-0099")
    catalog = db.session.get(Project, project.catalog_project_id)
    assert catalog.code == project.code and catalog.registry_id == "CCER-REG-0099"
    assert catalog.validation_body == "中环联合认证中心" and catalog.region_id == project.region_id
    assert float(catalog.area_ha) == pytest.approx(float(project.parcels[0].area_ha), abs=0.01)
    step(project, "monitoring", date(2025, 8, 1))
    step(project, "monitoring_report", date(2025, 9, 1))
    step(project, "verification", date(2025, 10, 1), responsible_body="中国质量认证中心")
    refused("unknown_batch", step, project, "issuance", date(2025, 11, 1), reference="NO-SUCH-BATCH")
    other = factories.batch(quantity=10, code="OTHER-2025", vintage=2025)
    refused("unknown_batch", step, project, "issuance", date(2025, 11, 1), reference=other.code)
    batch = factories.batch(quantity=100, vintage=2025, project_=catalog, code="CCER-AH-2025")
    step(project, "issuance", date(2025, 11, 1), reference=batch.code)
    assert [s.stage for s in project.stages] == [s.value for s in Stage]
    refused("stage_out_of_order", step, project, "issuance", date(2025, 11, 2))
    actions = db.session.scalars(select(AuditEvent.action).filter_by(subject_id=project.code)).all()
    assert actions.count("pipeline.stage") == 7 and "pipeline.filing" in actions
    assert "pipeline.review_approved" in actions and "pipeline.create" in actions


def test_a_parcel_is_in_one_active_project_only(project):
    parcel = project.parcels[0]
    refused(
        "parcel_in_project",
        services.create_project,
        project_values(code="AH-PIPE-02"),
        [parcel.code],
        actor="t",
    )
    refused("parcel_in_project", services.withdraw_parcel, parcel, reason="x", actor="t")
    services.withdraw_project(project, reason="权利人退出", actor="t")
    again = services.create_project(project_values(code="AH-PIPE-02"), [parcel.code], actor="t")
    assert parcel.project_id == again.id


def test_a_bad_project_is_refused(project):
    parcel_code = project.parcels[0].code
    refused("duplicate_code", services.create_project, project_values(), [parcel_code], actor="t")
    refused("invalid_code", services.create_project, project_values(code="有空格 的"), [], actor="t")
    refused(
        "ccer_forestry_only",
        services.create_project,
        project_values(code="X1", type="grassland"),
        [],
        actor="t",
    )
    refused(
        "crediting_period",
        services.create_project,
        project_values(code="X2", crediting_start=date(2030, 1, 1), crediting_end=date(2029, 1, 1)),
        [],
        actor="t",
    )
    refused("no_parcels", services.create_project, project_values(code="X3"), [], actor="t")
    refused("unknown_parcel", services.create_project, project_values(code="X4"), ["NOPE-1"], actor="t")


def test_forecast_revisions_are_kept_and_checked(project):
    first = services.revise(
        project, [{"vintage": 2025, "expected_t": 1000, "low_t": 800, "high_t": 1200}], actor="t"
    )
    second = services.revise(
        project,
        [
            {"vintage": 2026, "expected_t": "1500", "low_t": 1000, "high_t": 2000},
            {"vintage": 2025, "expected_t": 900, "low_t": 700, "high_t": 1100},
        ],
        note="监测数据更新",
        actor="t",
    )
    assert (first.number, second.number) == (1, 2)
    assert services.forecast_in_force(project).id == second.id
    assert [r.number for r in services.revisions(project)] == [2, 1]
    assert services.expected_by_vintage(project)[2026].expected_t == 1500
    line = {"vintage": 2025, "expected_t": 10, "low_t": 5, "high_t": 20}
    refused("forecast_range", services.revise, project, [{**line, "low_t": 11}], actor="t")
    refused("forecast_vintage", services.revise, project, [{**line, "vintage": 2020}], actor="t")
    refused("forecast_tonnes", services.revise, project, [{**line, "expected_t": -1}], actor="t")
    refused("forecast_tonnes", services.revise, project, [{**line, "expected_t": 1.5}], actor="t")
    refused("forecast_duplicate", services.revise, project, [line, line], actor="t")
    refused("invalid_forecast", services.revise, project, [], actor="t")
    assert len(services.revisions(project)) == 2


def test_documents_must_be_pdfs_within_the_size_limit(app):
    document = services.store_pdf(PDF, "协议.pdf", actor="t")
    assert len(document.sha256) == 64 and document.size == len(PDF)
    refused("not_a_pdf", services.store_pdf, b"PK\x03\x04 a zip file", "x.pdf", actor="t")
    refused("not_a_pdf", services.store_pdf, b"%PDF-1.7 cut short", "x.pdf", actor="t")
    refused("empty_document", services.store_pdf, b"", "x.pdf", actor="t")
    too_large = refused(
        "document_too_large",
        services.store_pdf,
        PDF[:9] + b" " * services.MAX_DOCUMENT_BYTES + PDF[9:],
        "x.pdf",
        actor="t",
    )
    assert too_large.status == 413
