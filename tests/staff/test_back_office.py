"""The back office: every page and action for every role, the forbidden paths included."""

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from tests import factories

STEEL, PASSWORD = factories.STEEL_USCC, factories.PASSWORD

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
    ("GET", "/staff/users", {"auditor", "operator"}),
    ("GET", "/staff/projects", {"sales", "auditor", "operator"}),
    ("GET", "/staff/projects/new", {"operator"}),
    ("GET", "/staff/orders", {"sales", "auditor", "operator"}),
    ("GET", "/staff/dashboard", {"sales", "auditor", "operator"}),
    ("GET", "/staff/revenue/", {"auditor", "operator"}),
    ("GET", "/staff/revenue/rules", {"auditor", "operator"}),
    ("GET", "/staff/orders?status=fulfilled", {"sales", "auditor", "operator"}),
    ("GET", "/account/retire", {"buyer"}),
    ("GET", "/account/certificates", {"buyer"}),
    ("GET", "/checkout", {"buyer"}),
    ("GET", "/account/orders", {"buyer"}),
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
        rows[0][:4] == ["id", "time_utc+08:00", "movement", "kind"]
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


PROJECT = {
    "code": "AH-FOR-09",
    "name_zh": "敖汉旗新造林项目",
    "name_en": "Aohan New Afforestation",
    "standard": "CCER",
    "type": "forestry",
    "methodology": "CCER-14-001-V01",
    "region_code": "aohan",
    "area_ha": "1234.50",
    "crediting_start": "2021-01-01",
    "crediting_end": "2050-12-31",
    "status": "issuing",
    "validation_body": "CQC",
    "verification_body": "CEC",
    "registry_id": "CCER-14-2026001",
    "boundary_geojson": '{"type": "Polygon", "coordinates": [[[119.9, 42.2], [120.0, 42.2], [120.0, 42.3], [119.9, 42.2]]]}',
    "description_zh": "",
    "description_en": "",
}
ISSUANCE = {
    "vintage_start": "2024-01-01",
    "vintage_end": "2024-12-31",
    "issued_on": "2025-06-01",
    "quantity": "5000",
    "buffer_quantity": "0",
    "registry_reference": "CCER-ISS-2025-0001",
    "registry_serial_start": "CN-1",
    "registry_serial_end": "CN-5000",
    "price_per_t": "72.50",
}


@pytest.fixture
def operator(office, client):
    factories.region("aohan")
    db.session.commit()
    return as_role(client, "operator")


def test_from_a_new_project_to_a_batch_on_sale(operator, client):
    assert client.post("/staff/projects/new", data=PROJECT).status_code == 303
    response = client.post("/staff/projects/AH-FOR-09/issuances", data=ISSUANCE)
    assert response.status_code == 303
    public = client.get("/?lang=en&county=aohan").get_data(as_text=True)
    assert "Aohan New Afforestation" in public and "CN¥72.50" in public and "5,000" in public
    api = client.get("/api/v1/batches/CCER-AH-FOR-09-2024").get_json()
    assert api["available_quantity"] == 5000 and api["price"]["amount"] == "72.50"

    client.post(
        "/staff/batches/CCER-AH-FOR-09-2024/listing", data={"price_per_t": "75.00"}
    )  # unticked: off sale
    assert "Aohan New Afforestation" not in client.get("/?lang=en&county=aohan").get_data(as_text=True)
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[-3:] == ["project.create", "batch.issue", "listing.update"]
    from portal.ledger.verify import verify_ledger

    assert verify_ledger().ok


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"code": "bad code!"}, "letters, digits and hyphens"),
        ({"standard": "CCER", "type": "grassland"}, "Only forestry projects are developed as CCER"),
        ({"crediting_end": "2020-01-01"}, "must end after it starts"),
        ({"boundary_geojson": '{"type": "Point", "coordinates": [1, 2]}'}, "GeoJSON Polygon"),
        ({"area_ha": "-5"}, "Number must be"),
        ({"crediting_start": "not a date"}, "Not a valid date"),
        ({"region_code": "atlantis"}, "Not a valid choice"),
    ],
)
def test_bad_projects_are_refused(operator, client, changes, expected):
    response = client.post("/staff/projects/new?lang=en", data={**PROJECT, **changes})
    assert response.status_code == 400 and expected in response.get_data(as_text=True)
    from portal.catalog.models import Project

    assert db.session.scalar(select(Project).filter_by(code="AH-FOR-09")) is None


def _deep(levels: int) -> str:
    return '{"type": "Polygon", "coordinates": ' + "[" * levels + "1" + "]" * levels + "}"


def _many_points(n: int) -> str:
    ring = ",".join(f"[{119 + i % 2},{42 + i % 3}]" for i in range(n))  # short: within the form's size
    return '{"type": "Polygon", "coordinates": [[' + ring + "]]}"


@pytest.mark.parametrize(
    ("boundary", "english", "chinese"),
    [
        # Deeper than Python's stack lets json.loads recurse: was a RecursionError, a 500.
        (_deep(60_000), "nested too deeply: at most 8 levels", "嵌套层数过多：最多 8 层"),
        (_deep(20), "nested too deeply: at most 8 levels", "嵌套层数过多：最多 8 层"),
        ("[" * 100_000, "nested too deeply: at most 8 levels", "嵌套层数过多：最多 8 层"),
        (_many_points(20_001), "too many points: at most 20000", "点数过多：最多 20000"),
        ("x" * 200_001, "cannot be longer than 200000 characters", "不能超过 200000 个字符"),
    ],
)
def test_boundaries_beyond_bounds_are_a_clear_400(operator, client, boundary, english, chinese):
    for lang, expected in (("en", english), ("zh", chinese)):
        response = client.post(
            f"/staff/projects/new?lang={lang}", data={**PROJECT, "boundary_geojson": boundary}
        )
        assert response.status_code == 400 and expected in response.get_data(as_text=True)
    from portal.catalog.models import Project

    assert db.session.scalar(select(Project).filter_by(code="AH-FOR-09")) is None
    assert not any(e.action.startswith("project.") for e in db.session.scalars(select(AuditEvent)))


def test_a_boundary_of_many_points_within_bounds_is_saved(operator, client):
    boundary = _many_points(20_000)
    assert (
        client.post("/staff/projects/new", data={**PROJECT, "boundary_geojson": boundary}).status_code == 303
    )
    page = client.get("/projects/AH-FOR-09").get_data(as_text=True)
    assert '<path d="M' in page


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"vintage_start": "2019-01-01"}, "within the crediting period"),
        ({"vintage_end": "2023-01-01"}, "must end after it starts"),
        ({"quantity": "0"}, "Number must be"),
        ({"buffer_quantity": "5000"}, "buffer share must be smaller"),
        ({"registry_reference": ""}, "This field is required."),
        ({"price_per_t": "-1"}, "must be an amount in yuan from 0.01 to 100000"),
        # Decimal() reads all of these as numbers; a price is ASCII digits and two decimals.
        ({"price_per_t": "\u0663"}, "must be an amount in yuan from 0.01 to 100000"),  # Arabic-Indic 3
        ({"price_per_t": "\uff17\uff12"}, "must be an amount in yuan from 0.01 to 100000"),  # full width
        ({"price_per_t": "1E+2"}, "must be an amount in yuan from 0.01 to 100000"),
        ({"price_per_t": "NaN"}, "must be an amount in yuan from 0.01 to 100000"),
        ({"price_per_t": "7_2"}, "must be an amount in yuan from 0.01 to 100000"),
        ({"price_per_t": "72.505"}, "must be an amount in yuan from 0.01 to 100000"),
        ({"price_per_t": "100000.01"}, "must be an amount in yuan from 0.01 to 100000"),
    ],
)
def test_bad_issuances_change_nothing(operator, client, changes, expected):
    client.post("/staff/projects/new", data=PROJECT)
    response = client.post(
        "/staff/projects/AH-FOR-09/issuances?lang=en", data={**ISSUANCE, **changes}, follow_redirects=True
    )
    assert expected in response.get_data(as_text=True)
    from portal.ledger.models import Batch

    assert db.session.scalar(select(Batch).filter_by(code="CCER-AH-FOR-09-2024")) is None


@pytest.mark.parametrize(
    "price", ["\u0663", "\uff17\uff15", "7\u0665", "1E+2", "1e2", "Infinity", "7_5", "75.001", "-75", "0"]
)
def test_a_listing_price_is_ascii_digits_and_two_decimals(operator, client, price):
    client.post("/staff/projects/new", data=PROJECT)
    client.post("/staff/projects/AH-FOR-09/issuances", data=ISSUANCE)
    response = client.post(
        "/staff/batches/CCER-AH-FOR-09-2024/listing?lang=en",
        data={"price_per_t": price, "is_active": "y"},
        follow_redirects=True,
    )
    assert "must be an amount in yuan from 0.01 to 100000" in response.get_data(as_text=True)
    from portal.catalog.models import Listing
    from portal.ledger.models import Batch

    price = select(Listing.price_per_t).join(Batch).where(Batch.code == "CCER-AH-FOR-09-2024")
    assert db.session.scalar(price) == Decimal("72.50")
    assert [e.action for e in db.session.scalars(select(AuditEvent))][-1] == "batch.issue"


def test_the_same_issuance_twice_changes_nothing_and_a_different_one_is_refused(operator, client):
    client.post("/staff/projects/new", data=PROJECT)
    client.post("/staff/projects/AH-FOR-09/issuances", data=ISSUANCE)
    again = client.post("/staff/projects/AH-FOR-09/issuances?lang=en", data=ISSUANCE, follow_redirects=True)
    assert "already recorded exactly as submitted: nothing changed" in again.get_data(as_text=True)
    other = {**ISSUANCE, "quantity": "4000", "registry_serial_end": "CN-4000"}
    refused = client.post("/staff/projects/AH-FOR-09/issuances?lang=en", data=other, follow_redirects=True)
    assert "Issued (t): recorded 5000, submitted 4000" in refused.get_data(as_text=True)
    from portal.ledger.models import Batch

    assert db.session.scalar(select(Batch).filter_by(code="CCER-AH-FOR-09-2024")).quantity == 5000


@pytest.mark.parametrize("role", ["auditor", "sales", "buyer"])
def test_only_operators_change_projects(office, client, role):
    factories.region("aohan")
    db.session.commit()
    as_role(client, role)
    assert client.post("/staff/projects/new", data=PROJECT).status_code == 403
    assert client.get("/staff/projects").status_code == (403 if role == "buyer" else 200)


def test_deactivating_a_user_ends_sessions_and_keys(office, app):
    from tests.conftest import Client

    app.test_client_class = Client
    buyer_client = app.test_client()
    as_role(buyer_client, "buyer")
    assert buyer_client.get("/account").status_code == 200
    operator_client = app.test_client()
    as_role(operator_client, "operator")
    buyer = buyers.find_user("buyer@example.cn")
    assert operator_client.post(f"/staff/users/{buyer.id}/active", data={"active": "0"}).status_code == 303
    assert buyer_client.get("/account").status_code == 302  # signed out at once
    operator = buyers.find_user("operator@example.cn")
    refused = operator_client.post(
        f"/staff/users/{operator.id}/active?lang=en", data={"active": "0"}, follow_redirects=True
    )
    assert "You cannot deactivate yourself." in refused.get_data(as_text=True)
    assert [
        e.action for e in db.session.scalars(select(AuditEvent).filter(AuditEvent.action.like("user.de%")))
    ] == ["user.deactivate"]


@pytest.mark.parametrize("role", ["auditor", "sales", "buyer", "anonymous"])
def test_only_operators_deactivate_users(office, client, role):
    as_role(client, role)
    buyer = buyers.find_user("buyer@example.cn")
    assert client.post(f"/staff/users/{buyer.id}/active", data={"active": "0"}).status_code in (302, 403)
    db.session.refresh(buyer)
    assert buyer.is_active


def test_the_dashboard_adds_up(app, client):
    from portal.demo import services as demo

    demo.load(1)
    buyers.create_user(email="auditor@example.cn", password=PASSWORD, role="auditor")
    db.session.commit()
    from datetime import date

    from portal.ledger import services as ledger
    from portal.ledger.models import AccountKind
    from portal.staff import dashboard

    figures = dashboard.inventory()
    inventory = ledger.balance(ledger.system_account(AccountKind.INVENTORY))
    assert {f.total for f in figures.values()} == {inventory}
    assert dashboard.over_time(date.today())["retired"].total > 0
    assert len(dashboard.top_buyers().rows) == 6
    as_role(client, "auditor")
    page = client.get("/staff/dashboard?lang=en").get_data(as_text=True)
    assert page.count("<svg") >= 7 and "As a table" in page
    # Months as the language writes them, not ISO's 2026-01.
    import re as _re

    from portal.timeutil import beijing_today

    this_month = beijing_today()  # the dashboard's months are Beijing's

    assert (
        f"{['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][this_month.month - 1]} {this_month.year}"
        in page
    )
    zh = client.get("/staff/dashboard?lang=zh").get_data(as_text=True)
    assert f"{this_month.year}年{this_month.month}月" in zh and not _re.search(r">\d{4}-\d{2}<", zh + page)
