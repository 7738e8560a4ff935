"""Issuance checks: the registry serial range is read in the registry's format and counts the
quantity; overlaps and differing re-submissions are refused, naming why; the API runs the same
rules as the back office."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.ledger import serials
from portal.ledger.models import Batch, LedgerEntry
from portal.ledger.verify import verify_ledger
from tests import factories

VERRA = "19309-936487628-936491271-VCS-VCU-1491-VER-RW-3-4150-01102024-31122024-1"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(app):
    factories.user("operator@portal.cn", role="operator")
    factories.user("auditor@portal.cn", role="auditor")
    factories.project(code="AH-FOR-09")
    factories.project(code="VCS-GR-01", standard="VCS", type="grassland", methodology="VM0026")
    db.session.commit()
    return {
        "operator": factories.api_key(app, "--user", "operator@portal.cn"),
        "auditor": factories.api_key(app, "--user", "auditor@portal.cn"),
    }


def ccer(first=1, last=12000, year=2024, **changes):
    return {
        "vintage_start": f"{year}-01-01",
        "vintage_end": f"{year}-12-31",
        "issued_on": "2025-06-01",
        "quantity": last - first + 1,
        "registry_reference": "CCER-ISS-2025-0001",
        "registry_serial_start": f"CN-CCER-14-2024001-{year}-{first:09d}",
        "registry_serial_end": f"CN-CCER-14-2024001-{year}-{last:09d}",
        "price_per_t": "72.50",
        **changes,
    }


def post(client, keys, body, project="AH-FOR-09", key="operator", lang="en"):
    return client.post(
        f"/api/v1/projects/{project}/issuances",
        json=body,
        headers={**bearer(keys[key]), "Accept-Language": lang},
    )


def test_the_verra_and_ccer_formats_are_read():
    verra = serials.parse_range("VCS", VERRA, "")
    assert (verra.series, verra.first, verra.last, verra.count) == ("VCS-VCU", 936487628, 936491271, 3644)
    assert (verra.vintage_start, verra.vintage_end) == (date(2024, 10, 1), date(2024, 12, 31))
    assert serials.range_serial("VCS", "VCS-VCU", 936487700, 936487709, template=VERRA) == (
        "19309-936487700-936487709-VCS-VCU-1491-VER-RW-3-4150-01102024-31122024-1"
    )
    national = serials.parse_range(
        "CCER", "CN-CCER-14-2024001-2024-000000101", "CN-CCER-14-2024001-2024-000000200"
    )
    assert (national.series, national.offset, national.count) == ("CN-CCER-14-2024001-2024", 100, 100)
    assert serials.unit_serial(
        "CCER", national.series, 105, template="CN-CCER-14-2024001-2024-000000101"
    ) == ("CN-CCER-14-2024001-2024-000000105")


@pytest.mark.parametrize(
    ("standard", "start", "end", "reason"),
    [
        ("CCER", "CN-CCER-1-2024-000000200", "CN-CCER-1-2024-000000101", "reversed"),
        ("CCER", "CN-CCER-1-2024-000000101", "CN-CCER-2-2024-000000200", "prefix"),
        ("CCER", "CN-CCER-1-2024-00000010A", "CN-CCER-1-2024-000000200", "ccer_format"),
        ("CCER", "cn-ccer-1", "cn-ccer-2", "ccer_format"),
        ("CCER", "", "", "missing"),
        ("VCS", "936487628-936491271", "", "verra_format"),
        ("VCS", VERRA, VERRA.replace("19309", "19310"), "verra_one_block"),
        ("VCS", VERRA.replace("936491271", "936487627"), "", "reversed"),
        ("VCS", VERRA.replace("01102024", "32132024"), "", "verra_format"),
    ],
)
def test_malformed_serials_are_refused(standard, start, end, reason):
    with pytest.raises(serials.SerialError) as caught:
        serials.parse_range(standard, start, end)
    assert caught.value.reason == reason


@given(st.integers(1, 10**15), st.integers(0, 10**6), st.integers(1, 12))
def test_a_ccer_range_counts_what_it_spans(first, extra, width):
    start = f"CN-CCER-7-{first:0{width}d}"
    end = f"CN-CCER-7-{first + extra:0{width}d}"
    parsed = serials.parse_range("CCER", start, end)
    assert parsed.count == extra + 1 and parsed.offset + 1 == first


def test_an_issuance_through_the_api_then_the_same_again(client, keys):
    created = post(client, keys, ccer())
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["code"] == "CCER-AH-FOR-09-2024" and body["issued_quantity"] == 12000
    assert body["available_quantity"] == 12000 and body["price"]["amount"] == "72.50"
    again = post(client, keys, ccer())
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
    batch = db.session.scalar(select(Batch))
    assert (batch.registry_series, batch.registry_unit_offset) == ("CN-CCER-14-2024001-2024", 0)
    assert verify_ledger().ok


def test_a_count_that_differs_from_the_quantity_is_refused(client, keys):
    # The case: 11,000 serials booked for a 12,000 t batch.
    response = post(client, keys, ccer(last=11000, quantity=12000))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "registry_serial_count"
    assert "counts 11000 credits; the issuance is of 12000 t" in error["message"]
    zh = post(client, keys, ccer(last=11000, quantity=12000), lang="zh").get_json()["error"]["message"]
    assert "11000" in zh and "12000" in zh and "counts" not in zh
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0


def test_a_differing_resubmission_is_refused_naming_what_differs(client, keys):
    assert post(client, keys, ccer()).status_code == 201
    response = post(client, keys, ccer(last=12500, issued_on="2025-07-01"))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "issuance_differs"
    message = error["message"]
    assert "Issued (t): recorded 12000, submitted 12500" in message
    assert "Issued on: recorded 2025-06-01, submitted 2025-07-01" in message
    assert "000012000, submitted CN-CCER-14-2024001-2024-000012500" in message
    assert "Registry issuance reference" not in message  # the same: not named
    assert db.session.scalar(select(Batch)).quantity == 12000
    events = db.session.scalars(select(AuditEvent.action)).all()
    assert events.count("batch.issue") == 1


@pytest.mark.parametrize(
    ("first", "last"),
    [(12000, 13000), (1, 1), (5000, 6000), (0 + 11999, 20000)],
)
def test_overlapping_serials_are_refused(client, keys, first, last):
    assert post(client, keys, ccer()).status_code == 201
    # Another vintage of the same series would be a different batch code; overlap is by units.
    response = post(
        client, keys, ccer(first=first, last=last, vintage_start="2023-01-01", vintage_end="2023-12-31")
    )
    assert response.status_code == 409, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "registry_serial_overlap" and "CCER-AH-FOR-09-2024" in error["message"]
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 1


def test_adjacent_serials_are_not_an_overlap(client, keys):
    assert post(client, keys, ccer()).status_code == 201
    body = ccer(first=12001, last=13000, vintage_start="2023-01-01", vintage_end="2023-12-31")
    assert post(client, keys, body).status_code == 201


def test_verra_issuances_are_checked_against_their_vintage_and_units(client, keys):
    body = {
        "vintage_start": "2024-10-01",
        "vintage_end": "2024-12-31",
        "issued_on": "2025-03-01",
        "quantity": 3644,
        "registry_reference": "VCU issuance 19309",
        "registry_serial_start": VERRA,
    }
    # the crediting period of the factory's projects starts in 2021: fine
    assert post(client, keys, body, project="VCS-GR-01").status_code == 201
    wrong_vintage = {**body, "vintage_start": "2024-01-01"}
    error = post(client, keys, wrong_vintage, project="VCS-GR-01").get_json()["error"]
    assert error["code"] == "registry_serial_vintage"
    inside = VERRA.replace("19309-936487628-936491271", "20001-936491271-936491280")
    overlap = {
        **body,
        "vintage_start": "2024-11-01",
        "quantity": 10,
        "registry_serial_start": inside.replace("01102024", "01112024"),
    }
    error = post(client, keys, overlap, project="VCS-GR-01").get_json()["error"]
    assert error["code"] == "registry_serial_overlap"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"quantity": "12000"}, "invalid_quantity"),
        ({"quantity": 1.5}, "invalid_quantity"),
        ({"vintage_start": "2024-13-01"}, "invalid_vintage_start"),
        ({"issued_on": 20250601}, "invalid_issued_on"),
        ({"registry_serial_start": "x" * 121}, "invalid_registry_serial_start"),
        ({"registry_serial_start": ["a"]}, "invalid_registry_serial_start"),
        ({"price_per_t": 72.5}, "price"),
        ({"registry_serial_start": "CN-CCER-14-2024001-2024-00000000X"}, "registry_serials"),
        ({"registry_serial_end": ""}, "registry_serials"),
        ({"registry_reference": "  "}, "registry_reference"),
    ],
)
def test_bad_api_issuances_are_a_clear_400_and_change_nothing(client, keys, changes, code):
    response = post(client, keys, ccer(**changes))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0


def test_only_an_operator_key_records_issuances(client, keys):
    assert post(client, keys, ccer(), key="auditor").status_code == 403
    assert client.post("/api/v1/projects/AH-FOR-09/issuances", json=ccer()).status_code == 401
    assert post(client, keys, ccer(), project="NOPE").status_code == 404


def test_the_back_office_form_refuses_a_mismatch_in_both_languages(client, keys):
    client.post("/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD})
    form = {**ccer(last=11000), "quantity": "12000", "buffer_quantity": "0"}
    for lang, expected in (("en", "counts 11000 credits"), ("zh", "11000")):
        page = client.post(
            f"/staff/projects/AH-FOR-09/issuances?lang={lang}", data=form, follow_redirects=True
        ).get_data(as_text=True)
        assert expected in page
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0
    client.post(
        "/staff/projects/AH-FOR-09/issuances", data={**ccer(), "quantity": "12000", "buffer_quantity": "0"}
    )
    page = client.post(
        "/staff/projects/AH-FOR-09/issuances?lang=en",
        data={**ccer(), "quantity": "12000", "buffer_quantity": "0"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "already recorded exactly as submitted" in page


@pytest.mark.parametrize("field", ["vintage_start", "vintage_end", "issued_on"])
def test_dates_are_taken_as_yyyy_mm_dd_only(client, keys, field):
    """``2024-W01-1`` is ten characters and a date to ``date.fromisoformat``: it was recorded as
    one (1 January 2024, a Monday). The API takes YYYY-MM-DD."""
    written = {"vintage_start": "2024-W01-1", "vintage_end": "2024-W52-7", "issued_on": "2025-W23-7"}[field]
    response = post(client, keys, ccer(**{field: written}))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == f"invalid_{field}"
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 0
