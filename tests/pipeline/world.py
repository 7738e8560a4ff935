"""A pipeline in two counties: Aohan's project with every kind of record, and Harqin's reviewer."""

from datetime import date
from types import SimpleNamespace

from portal.catalog.models import Project
from portal.extensions import db
from portal.pipeline import services
from portal.revenue import services as revenue
from portal.timeutil import utcnow
from tests import factories
from tests.pipeline.helpers import FOREST_COMPARTMENT, PDF, aohan, kalaqin, project_values


def build(stage_to: str = "registration", staff: bool = True) -> SimpleNamespace:
    """Aohan: a rights holder with an agreement (PDF), a parcel, a project taken to ``stage_to``
    (reviewed, filed, a forecast, a stage document), its catalog project with a batch and a paid
    sale; Harqin: a county reviewer; with ``staff``, an operator and an auditor. Committed."""
    ah, kq = aohan(), kalaqin()
    holder = services.rights_holder(ah, "敖汉旗大黑山林场", actor="t")
    agreement = services.create_agreement(
        holder,
        number="AH-JDA-0001",
        signed_on=date(2025, 1, 10),
        term_years=40,
        document=services.store_pdf(PDF + b"agreement", "agreement.pdf", actor="t"),
        actor="t",
    )
    parcel = services.enroll_parcel(
        county="aohan",
        land_type="forest",
        tenure="state_forest_farm",
        rights_holder_name=holder.name,
        boundary=FOREST_COMPARTMENT,
        agreement=agreement,
        actor="t",
    )
    project = services.create_project(project_values(), [parcel.code], actor="t")
    reviewer_ah = factories.user("review@aohan.gov.cn", role="county", region=ah)
    reviewer_kq = factories.user("review@kalaqin.gov.cn", role="county", region=kq)
    if staff:
        factories.user("operator@portal.cn", role="operator")
        factories.user("auditor@portal.cn", role="auditor")
    services.review(project, decision="approved", comments="边界核实无误", reviewer=reviewer_ah, actor="t")
    services.record_filing(project, reference="赤林草备〔2025〕17号", filed_on=date(2025, 4, 1), actor="t")
    services.revise(
        project,
        [{"vintage": 2025, "expected_t": 1200, "low_t": 900, "high_t": 1500}],
        note="首次预测",
        actor="t",
    )
    document = services.store_pdf(PDF + b"pdd", "pdd.pdf", actor="t")
    steps = [
        ("design_document", date(2025, 5, 1), "", "", [document]),
        ("validation", date(2025, 6, 1), "中环联合认证中心", "", []),
        ("registration", date(2025, 7, 1), "", "CCER-REG-0099", []),
    ]
    for stage, day, body, reference, documents in steps:
        services.advance(
            project,
            stage,
            reached_on=day,
            responsible_body=body,
            reference=reference,
            documents=documents,
            actor="t",
        )
        if stage == stage_to:
            break
    catalog = db.session.get(Project, project.catalog_project_id) if project.catalog_project_id else None
    batch = (
        factories.batch(quantity=100, vintage=2025, project_=catalog, code="CCER-AH-PIPE-01-2025")
        if catalog
        else None
    )
    if batch is not None:
        revenue.record_sale("order", "ord_AHSALE0001", [(batch, 680)], utcnow())
    db.session.commit()
    return SimpleNamespace(
        aohan=ah,
        kalaqin=kq,
        holder=holder,
        agreement=agreement,
        parcel=parcel,
        project=project,
        catalog=catalog,
        batch=batch,
        document=document,
        reviewer_ah=reviewer_ah,
        reviewer_kq=reviewer_kq,
        #: Text only Aohan's records show: none may reach Harqin's reviewer.
        markers=[
            parcel.code,
            project.code,
            "敖汉旗大黑山林场",
            "AH-JDA-0001",
            "ord_AHSALE0001",
            document.sha256[:16],
            "CCER-REG-0099",
            "赤林草备",
        ],
    )
