"""The back office: every page and action for every role, the forbidden paths included."""

import csv
import io

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from tests import factories

STEEL = "91350100M000100Y43"
PASSWORD = "long-enough-pw-7"
ROLES = ("anonymous", "buyer", "sales", "auditor", "operator")

#: (method, path, who may) — anyone else gets 403, or is sent to sign in when anonymous.
PAGES = [
    ("GET", "/staff/", {"sales", "auditor", "operator"}),
    ("GET", "/staff/organisations", {"sales", "auditor", "operator"}),
    ("GET", "/staff/journal", {"auditor", "operator"}),
    ("GET", "/staff/journal.csv", {"auditor", "operator"}),
    ("GET", "/staff/audit", {"auditor", "operator"}),
    ("GET", "/staff/audit.csv", {"auditor", "operator"}),
    ("POST", f"/staff/organisations/{STEEL}/status", {"operator"}),
]


@pytest.fixture
def office(app):
    org = buyers.create_organisation(name_zh="测试钢铁", uscc=STEEL, sector="steel")
    factories.batch(quantity=100, code="B-OFFICE")
    buyers.create_user(email="buyer@example.cn", password=PASSWORD, role="buyer", organisation=org)
    for role in ("sales", "auditor", "operator"):
        buyers.create_user(email=f"{role}@example.cn", password=PASSWORD, role=role)
    db.session.commit()
    return org


def as_role(client, role):
    if role != "anonymous":
        email = "buyer@example.cn" if role == "buyer" else f"{role}@example.cn"
        assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "allowed"), PAGES)
def test_permissions(office, client, role, method, path, allowed):
    as_role(client, role)
    data = {"status": "approved", "reason": "材料齐全"} if method == "POST" else None
    response = client.open(path, method=method, data=data)
    if role in allowed:
        assert response.status_code in (200, 303), (role, path, response.status_code)
    elif role == "anonymous":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    else:
        assert response.status_code == 403, (role, path, response.status_code)
    db.session.refresh(office)
    assert office.status == ("approved" if method == "POST" and role in allowed else "pending")


def test_operator_approves_with_a_reason_and_it_is_audited(office, client):
    as_role(client, "operator")
    page = client.get("/staff/organisations?lang=en").get_data(as_text=True)
    assert "Pending approval" in page and STEEL in page
    refused = client.post(
        f"/staff/organisations/{STEEL}/status?lang=en",
        data={"status": "approved", "reason": ""},
        follow_redirects=True,
    )
    assert "Give a reason" in refused.get_data(as_text=True)
    client.post(f"/staff/organisations/{STEEL}/status", data={"status": "approved", "reason": "材料齐全"})
    event = db.session.scalar(select(AuditEvent).filter_by(action="organisation.approved"))
    operator = buyers.find_user("operator@example.cn")
    assert event.actor == f"user:{operator.id}"


def test_journal_and_exports(office, client):
    as_role(client, "auditor")
    page = client.get("/staff/journal?lang=en&batch=B-OFFICE").get_data(as_text=True)
    assert "B-OFFICE" in page and "inventory" in page
    assert "No journal entries match." in client.get("/staff/journal?lang=en&batch=NOPE").get_data(
        as_text=True
    )
    response = client.get("/staff/journal.csv?batch=B-OFFICE")
    assert response.headers["Content-Disposition"].endswith("ledger-journal.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert (
        rows[0][:4] == ["id", "time_utc", "movement", "kind"]
        and rows[1][3] == "issue"
        and rows[1][7] == "100"
    )


def test_csv_cells_cannot_become_formulas(office, client):
    buyers.change_status(office, "barred", reason="x", actor='=HYPERLINK("http://evil")')
    db.session.commit()
    as_role(client, "auditor")
    text = client.get("/staff/audit.csv?action=organisation.barred").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1][2] == '\'=HYPERLINK("http://evil")'  # shown as text by a spreadsheet, never run


def test_hostile_text_in_the_audit_view_is_escaped(office, client):
    buyers.change_status(office, "barred", reason="<img src=x onerror=alert(1)>", actor="cli")
    db.session.commit()
    as_role(client, "auditor")
    page = client.get("/staff/audit").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page
