"""What anyone sees of the pipeline: a catalog project's development history, and the projects
still in development with their stages and land; never rights holders, documents, notes or the
county's comments."""

from datetime import date

import pytest

from portal.extensions import db
from portal.pipeline import services
from tests.pipeline import world
from tests.pipeline.helpers import AOHAN, aohan, project_values, rectangle

#: What the world records that is not public.
PRIVATE = ["敖汉旗大黑山林场", "AH-JDA-0001", "边界核实无误", "首次预测", "pdd.pdf", "agreement.pdf"]


def test_a_registered_projects_page_shows_its_development_history(app, client):
    w = world.build("registration")
    page = client.get(f"/projects/{w.catalog.code}?lang=en").get_data(as_text=True)
    assert "Development history" in page
    assert "Third-party validation" in page and "中环联合认证中心" in page
    # The registry's number links to the registry; the filing and the county's approval show.
    assert "CCER-REG-0099" in page and "https://ccer.cets.org.cn/" in page
    assert "赤林草备〔2025〕17号" in page and "Approved by Aohan Banner" in page
    assert "1 parcel" in page
    for text in PRIVATE + [w.parcel.code, w.document.sha256[:16]]:
        assert text not in page


def test_the_history_follows_new_stages_at_once(app, client):
    """The project page is cached: a stage recorded afterwards shows on the next request."""
    w = world.build("registration")
    url = f"/projects/{w.catalog.code}?lang=en"
    assert client.get(url).get_data(as_text=True).count('class="done"') == 4  # … registration
    services.advance(w.project, "monitoring", reached_on=date(2025, 8, 1), actor="t")
    db.session.commit()
    page = client.get(url).get_data(as_text=True)
    assert page.count('class="done"') == 5  # assessment … monitoring


def test_a_catalog_project_without_a_pipeline_has_no_history(app, client):
    from tests import factories

    batch = factories.batch(quantity=10, code="PLAIN-2025", vintage=2025)
    db.session.commit()
    page = client.get(f"/projects/{batch.project.code}?lang=en").get_data(as_text=True)
    assert "Development history" not in page


def test_projects_in_development_are_listed_but_not_in_the_catalog(app, client):
    w = world.build("validation")
    listing = client.get("/development?lang=en")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert w.project.code in text and "Third-party validation" in text
    assert w.project.code not in client.get("/?lang=en").get_data(as_text=True)
    assert client.get(f"/projects/{w.project.code}").status_code == 404
    page = client.get(f"/development/{w.project.code}?lang=en").get_data(as_text=True)
    assert "<svg" in page and "Development history" in page and "中环联合认证中心" in page
    for text in PRIVATE + [w.parcel.code]:
        assert text not in page
    # Filtered by county: Harqin has none.
    assert w.project.code not in client.get("/development?county=kalaqin").get_data(as_text=True)


def test_a_registered_project_leaves_the_development_list(app, client):
    w = world.build("registration")
    assert w.project.code not in client.get("/development").get_data(as_text=True)
    assert client.get(f"/development/{w.project.code}").status_code == 404


@pytest.mark.parametrize("path", ["/development/NO-SUCH", "/development/" + "X" * 40])
def test_unknown_projects_are_404(app, client, path):
    assert client.get(path).status_code == 404


def test_bad_filters_change_nothing(app, client):
    aohan()
    db.session.commit()
    for county in ("nowhere", "<script>", "x" * 500):
        response = client.get("/development", query_string={"county": county})
        assert response.status_code == 200 and "<script>" not in response.get_data(as_text=True)


def test_a_withdrawn_project_shows_as_withdrawn(app, client):
    aohan()
    parcel = services.enroll_parcel(
        county="aohan",
        land_type="grassland",
        tenure="collective",
        rights_holder_name="某嘎查",
        boundary=rectangle(*AOHAN, 400, 400, east_m=5000),
        actor="t",
    )
    project = services.create_project(project_values(code="AH-PIPE-09"), [parcel.code], actor="t")
    services.withdraw_project(project, reason="权属争议", actor="t")
    db.session.commit()
    text = client.get("/development/AH-PIPE-09?lang=en").get_data(as_text=True)
    assert "Withdrawn" in text and "权属争议" not in text and "某嘎查" not in text
