"""Forward supply: contracts covered by the forecast issuances of projects in development, served
first when the project's batch comes up for sale, and warned when a forecast is cut."""

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.catalog.services import stock_listed
from portal.contracts import services
from portal.contracts.models import ForwardSource
from portal.core.errors import ServiceError
from portal.core.mail import OutboxMessage
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.pipeline import services as pipeline
from tests import factories
from tests.concurrency import race
from tests.contracts.helpers import day
from tests.factories import PASSWORD
from tests.pipeline.helpers import FOREST_COMPARTMENT, aohan, project_values


def _terms(tranches, **change):
    return {
        "title": "Steel offtake",
        "start": day(-1),
        "end": day(900),
        "price_per_t": "70.00",
        "tranches": [{"due": day(d), "quantity": q} for d, q in tranches],
        **change,
    }


def _world(expected=500):
    """A registered project in development (forecast: ``expected`` t of vintages 2026 and 2027),
    a steel buyer and a sales owner. Committed."""
    region = aohan()
    parcel = pipeline.enroll_parcel(
        county="aohan",
        land_type="forest",
        tenure="state_forest_farm",
        rights_holder_name="大黑山林场",
        boundary=FOREST_COMPARTMENT,
        actor="t",
    )
    project = pipeline.create_project(project_values(), [parcel.code], actor="t")
    reviewer = factories.user("review@aohan.gov.cn", role="county", region=region)
    pipeline.review(project, decision="approved", comments="", reviewer=reviewer, actor="t")
    pipeline.record_filing(project, reference="赤林草备〔2025〕17号", filed_on=date(2025, 4, 1), actor="t")
    pipeline.revise(
        project,
        [
            {"vintage": year, "expected_t": expected, "low_t": expected // 2, "high_t": expected}
            for year in (2026, 2027)
        ],
        actor="t",
    )
    for stage, when, extra in (
        ("design_document", date(2025, 5, 1), {}),
        ("validation", date(2025, 6, 1), {"responsible_body": "中环联合认证中心"}),
        ("registration", date(2025, 7, 1), {"reference": "CCER-REG-0099"}),
    ):
        pipeline.advance(project, stage, reached_on=when, actor="t", **extra)
    steel, _cement = factories.steel_and_cement()
    sales = factories.user("sales@portal.cn", role="sales")
    db.session.commit()
    return project, steel, sales


def _contract(steel, sales, tranches, sign=True, **change):
    contract, _created = services.create_draft(steel, _terms(tranches, **change), owner=sales, actor="t")
    if sign:
        services.sign(contract, actor="t")
    db.session.flush()
    return contract


def _refused(code, work, *args, **kwargs):
    savepoint = db.session.begin_nested()
    with pytest.raises(ServiceError) as exc:
        work(*args, **kwargs)
    savepoint.rollback()
    assert exc.value.code == code, exc.value.message
    return exc.value


def _sign_in(client, email):
    client.post("/logout")
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302


def _sources() -> int:
    return db.session.scalar(select(func.count()).select_from(ForwardSource))


def test_a_contract_counts_on_a_forecast_and_shows_it_as_forward(app):
    project, steel, sales = _world()
    contract = _contract(steel, sales, [(30, 100), (400, 200)])
    services.add_forward_source(
        contract, project_code=project.code, vintage="2026", quantity="250", actor="t"
    )
    covers = services.cover(contract, forward=250)
    assert [(c.reserved, c.forward, c.uncovered) for c in covers] == [(0, 100, 0), (0, 150, 50)]
    years = {y.year: y for y in services.plan().years}
    assert sum(y.forward for y in years.values()) == 250
    assert sum(y.uncovered for y in years.values()) == 50
    event = db.session.scalars(select(AuditEvent).filter_by(action="contract.forward_add")).one()
    assert event.subject_id == contract.number


def test_claims_never_exceed_the_forecast_or_the_contracts_need(app):
    project, steel, sales = _world(expected=500)
    first = _contract(steel, sales, [(30, 300)])
    second = _contract(steel, sales, [(60, 400)])
    services.add_forward_source(first, project_code=project.code, vintage=2026, quantity=300, actor="t")
    error = _refused(
        "beyond_forecast",
        services.add_forward_source,
        second,
        project_code=project.code,
        vintage=2026,
        quantity=201,
        actor="t",
    )
    assert "200" in error.message  # what is still free
    _refused(
        "beyond_need",
        services.add_forward_source,
        first,
        project_code=project.code,
        vintage=2027,
        quantity=1,
        actor="t",
    )
    services.add_forward_source(second, project_code=project.code, vintage=2026, quantity=200, actor="t")
    assert _sources() == 2


@pytest.mark.parametrize(
    "change, code",
    [
        ({"project_code": "NO-SUCH"}, "unknown_project"),
        ({"project_code": ""}, "unknown_project"),
        ({"vintage": "2031"}, "no_forecast"),
        ({"vintage": "20x6"}, "no_forecast"),
        ({"quantity": "0"}, "invalid_quantity"),
        ({"quantity": "-5"}, "invalid_quantity"),
        ({"quantity": "1.5"}, "invalid_quantity"),
        ({"quantity": "99999999999"}, "invalid_quantity"),
        ({"quantity": None}, "invalid_quantity"),
    ],
)
def test_bad_forward_sources_are_refused_and_nothing_is_kept(app, change, code):
    project, steel, sales = _world()
    contract = _contract(steel, sales, [(30, 100)])
    values = {"project_code": project.code, "vintage": "2026", "quantity": "50", **change}
    _refused(code, services.add_forward_source, contract, actor="t", **values)
    assert _sources() == 0


def test_a_project_outside_the_contracts_preferences_or_counted_twice_is_refused(app):
    project, steel, sales = _world()
    vcs = _contract(steel, sales, [(30, 100)], standard="VCS")
    _refused(
        "not_preferred",
        services.add_forward_source,
        vcs,
        project_code=project.code,
        vintage=2026,
        quantity=10,
        actor="t",
    )
    contract = _contract(steel, sales, [(30, 100)])
    services.add_forward_source(contract, project_code=project.code, vintage=2026, quantity=10, actor="t")
    _refused(
        "duplicate_source",
        services.add_forward_source,
        contract,
        project_code=project.code,
        vintage=2026,
        quantity=5,
        actor="t",
    )
    pipeline.withdraw_project(project, reason="权属争议", actor="t")
    other = _contract(steel, sales, [(30, 100)])
    _refused(
        "project_withdrawn",
        services.add_forward_source,
        other,
        project_code=project.code,
        vintage=2026,
        quantity=5,
        actor="t",
    )
    assert _sources() == 1


def test_the_issued_batch_is_reserved_first_for_the_contract_that_counted_on_it(app):
    project, steel, sales = _world()
    # Another contract is due sooner: without forward supply it would get the batch first.
    sooner = _contract(steel, sales, [(10, 300)])
    forward = _contract(steel, sales, [(200, 250)])
    services.add_forward_source(forward, project_code=project.code, vintage=2026, quantity=200, actor="t")
    catalog = project.catalog_project
    batch = factories.batch(quantity=280, vintage=2026, project_=catalog, code="CCER-AH-2026")
    stock_listed.send(batch, actor="t")
    db.session.commit()
    assert services.reserved(forward) == 200 and services.reserved(sooner) == 80
    source = services.forward_sources(forward)[0]
    assert (source.reserved, source.forward) == (200, 0)
    assert services.cover(forward, forward=0)[0].reserved == 200
    assert verify_ledger().ok
    # A batch of another vintage serves everyone by the usual rule.
    assert {y.forward for y in services.plan().years} == {0}


def test_a_forecast_cut_below_the_claims_warns_the_sales_owner(app):
    project, steel, sales = _world(expected=500)
    contract = _contract(steel, sales, [(30, 400)])
    services.add_forward_source(contract, project_code=project.code, vintage=2026, quantity=400, actor="t")
    db.session.commit()
    assert services.forward_shortfalls() == []
    pipeline.revise(
        project,
        [
            {"vintage": 2026, "expected_t": 300, "low_t": 200, "high_t": 350},
            {"vintage": 2027, "expected_t": 500, "low_t": 250, "high_t": 500},
        ],
        actor="t",
    )
    db.session.commit()
    [shortfall] = services.forward_shortfalls()
    assert (shortfall.vintage, shortfall.expected, shortfall.claimed, shortfall.contracts) == (
        2026,
        300,
        400,
        [contract.number],
    )
    mail = db.session.scalars(select(OutboxMessage).filter_by(to="sales@portal.cn")).all()
    assert any(contract.number in m.body and "300" in m.body for m in mail)
    assert db.session.scalar(select(AuditEvent).filter_by(action="contract.forward_shortfall")) is not None


def test_stopping_to_count_on_a_forecast_keeps_what_it_reserved(app):
    project, steel, sales = _world()
    contract = _contract(steel, sales, [(30, 300)])
    source = services.add_forward_source(
        contract, project_code=project.code, vintage=2026, quantity=300, actor="t"
    )
    batch = factories.batch(quantity=120, vintage=2026, project_=project.catalog_project, code="CCER-AH-2026")
    stock_listed.send(batch, actor="t")
    services.remove_forward_source(contract, source.id, actor="t")
    db.session.commit()
    [kept] = services.forward_sources(contract)
    assert (kept.quantity, kept.reserved, kept.forward) == (120, 120, 0)
    _refused("unknown_source", services.remove_forward_source, contract, "999999", actor="t")
    _refused("unknown_source", services.remove_forward_source, contract, "x", actor="t")


def test_sales_staff_use_the_contract_page(app, client):
    project, steel, sales = _world()
    contract = _contract(steel, sales, [(30, 100)])
    db.session.commit()
    _sign_in(client, "sales@portal.cn")
    url = f"/staff/contracts/{contract.number}"
    response = client.post(
        f"{url}/forward?lang=en", data={"project": project.code, "vintage": "2026", "quantity": "0"}
    )
    assert response.status_code == 400 and "whole tonnes from 1 to 100" in response.get_data(as_text=True)
    response = client.post(
        f"{url}/forward", data={"project": project.code, "vintage": "2026", "quantity": "60"}
    )
    assert response.status_code == 303
    response = client.post(
        f"{url}/forward?lang=en", data={"project": project.code, "vintage": "2027", "quantity": "50"}
    )
    assert response.status_code == 409 and "Only 40 t of the contract" in response.get_data(as_text=True)
    assert _sources() == 1
    page = client.get(f"{url}?lang=en").get_data(as_text=True)
    assert "Forward supply" in page and project.code in page and "Stop counting on it" in page
    source = services.forward_sources(contract)[0]
    assert client.post(f"{url}/forward/{source.id}/delete").status_code == 303
    assert _sources() == 0
    assert "Forward" in client.get("/staff/contracts/planning?lang=en").get_data(as_text=True)


def test_buyers_and_auditors_cannot_change_forward_supply(app, client):
    project, steel, sales = _world()
    contract = _contract(steel, sales, [(30, 100)])
    factories.user("admin@steel.cn", organisation=steel, org_admin=True)
    factories.user("auditor@portal.cn", role="auditor")
    services.add_forward_source(contract, project_code=project.code, vintage=2026, quantity=40, actor="t")
    db.session.commit()
    for email in ("admin@steel.cn", "auditor@portal.cn"):
        _sign_in(client, email)
        response = client.post(
            f"/staff/contracts/{contract.number}/forward",
            data={"project": project.code, "vintage": "2026", "quantity": "10"},
        )
        assert response.status_code in (403, 404)
    # The buyer's own page shows no forward supply: it is the seller's plan.
    _sign_in(client, "admin@steel.cn")
    page = client.get(f"/account/contracts/{contract.number}?lang=en").get_data(as_text=True)
    assert contract.number in page and "Forward" not in page and project.code not in page
    assert _sources() == 1


@pytest.mark.postgres
def test_contracts_claiming_one_vintage_at_once_never_exceed_its_forecast(pg_app):
    project, steel, sales = _world(expected=500)
    numbers = [_contract(steel, sales, [(30, 100)]).number for _ in range(8)]
    db.session.commit()
    code = project.code

    def work(i):
        services.add_forward_source(
            services.find(numbers[i]), project_code=code, vintage=2026, quantity=100, actor=f"s{i}"
        )
        db.session.commit()
        return "claimed"

    outcomes = race(pg_app, 8, work, refused=(ServiceError,))
    assert outcomes.count("claimed") == 5 and outcomes.count("beyond_forecast") == 3
    assert db.session.scalar(select(func.sum(ForwardSource.quantity))) == 500
