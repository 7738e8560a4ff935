"""Every route, as a county reviewer of another county: nothing of Aohan reaches Harqin's
reviewer, whether on a page, in a download or through the API, and nothing changes.

Every rule of the URL map is called (each GET with every Aohan identifier in each of its
arguments; each POST the same, with an empty form or body), signed in as Harqin's reviewer and
with its API key. Public pages (the catalog, certificates …) show what everyone may see and are
left out; every guarded answer must hold none of Aohan's identifying text."""

import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from tests import factories
from tests.pipeline import world


def _candidates(built) -> list[str]:
    return [
        built.project.code,
        built.parcel.code,
        built.batch.code,
        built.agreement.number,
        str(built.document.id),
        str(built.parcel.id),
        "ord_AHSALE0001",
        "aohan",
    ]


def _urls(app, built):
    """(method, url) for every guarded rule, each argument filled with each candidate."""
    found = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        access = getattr(view, "access", None)
        if access is None or access[0] == "public":
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            if not rule.arguments:
                found.add((method, rule.rule))
                continue
            for value in _candidates(built):
                url = rule.rule
                for name in rule.arguments:
                    url = re.sub(rf"<(?:[a-z]+:)?{name}>", value, url)
                found.add((method, url))
    return sorted(found)


@pytest.fixture
def harqin(app):
    built = world.build()
    built.key = factories.api_key(app, "--user", "review@kalaqin.gov.cn")
    return built


def test_no_route_gives_another_countys_data_to_a_county_reviewer(app, client, harqin):
    events = db.session.scalar(select(func.max(AuditEvent.id)))
    assert (
        client.post(
            "/login", data={"email": "review@kalaqin.gov.cn", "password": factories.PASSWORD}
        ).status_code
        == 302
    )
    leaks = []
    urls = _urls(app, harqin)
    assert len(urls) > 100
    for method, url in urls:
        for name, headers in (("session", {}), ("key", factories.bearer(harqin.key))):
            if name == "key" and not url.startswith("/api/"):
                continue
            if url in ("/logout",):
                continue
            response = client.open(url, method=method, headers=headers, data={} if method == "POST" else None)
            assert response.status_code < 500, (method, url, response.status_code)
            text = (
                response.get_data(as_text=True)
                if response.mimetype.startswith(("text/", "application/json"))
                else ""
            )
            # Pages link to themselves (the language switch): the address asked for is no leak.
            text = text.replace(url, "").replace(quote(url), "")
            if response.mimetype == "application/pdf" or any(marker in text for marker in harqin.markers):
                leaks.append((method, url, name, response.status_code))
    assert leaks == []
    changed = db.session.scalars(select(AuditEvent.action).where(AuditEvent.id > events)).all()
    # Nothing changed, but for a key of its own (the account page's empty POST makes one).
    assert [action for action in changed if action != "apikey.create"] == []


def test_the_own_county_reviewer_does_see_them(app, client, harqin):
    """The counter-test: the same pages give Aohan's reviewer Aohan's records."""
    client.post("/login", data={"email": "review@aohan.gov.cn", "password": factories.PASSWORD})
    county = client.get("/county/").get_data(as_text=True)
    assert harqin.project.code in county and harqin.batch.code in county
    assert harqin.parcel.code in client.get("/pipeline/parcels").get_data(as_text=True)
    assert "AH-JDA-0001" in client.get("/pipeline/agreements").get_data(as_text=True)
    page = client.get(f"/pipeline/projects/{harqin.project.code}?lang=zh").get_data(as_text=True)
    # Labels end as Chinese writes them (full-width), as English does in English.
    assert "<p>旗县区审核：<strong>已批准</strong>" in page and "<p>市级备案：<code>" in page
    page = client.get(f"/pipeline/projects/{harqin.project.code}?lang=en").get_data(as_text=True)
    assert "<p>County review: " in page and "<p>City filing: " in page
    assert client.get(f"/pipeline/documents/{harqin.document.id}.pdf").status_code == 200
    statement = client.get("/staff/revenue/?period=" + str(harqin.batch.created_at.year)).get_data(
        as_text=True
    )
    assert "ord_AHSALE0001" in statement
    assert client.get("/staff/revenue/?county=kalaqin").status_code == 403
    assert client.get("/staff/").status_code == 403  # no back office
