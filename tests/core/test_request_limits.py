"""Request bodies are limited before they are read: a small default for forms and API calls, a
declared limit for the views that take more (a PDF, a project boundary, Stripe's events), and a
number of fields for forms. Bodies are sent as gunicorn hands them over (a terminated input
stream), so what the portal read of one can be seen on the stream."""

import io
import json
import urllib.parse

import pytest
from flask import request
from sqlalchemy import func, select

from portal.buyers.models import Organisation, User
from portal.catalog.models import Project
from portal.certificates.views import MAX_UPLOAD
from portal.contracts.models import Contract
from portal.contracts.services import MAX_TRANCHES, TITLE_MAX
from portal.extensions import db
from tests import factories
from tests.contracts.helpers import day

FORM = "application/x-www-form-urlencoded"
TOO_LARGE_ZH = "请求内容过大。"

SIGNUP = {
    "name_zh": "赤峰测试钢铁有限公司",
    "uscc": factories.STEEL_USCC,
    "sector": "steel",
    "contact_name": "王经理",
    "contact_phone": "0476-1234567",
    "email": "buyer@steel.cn",
    "password": "long-enough-pw-7",
    "password_again": "long-enough-pw-7",
}


def send(client, path, body: bytes, content_type=FORM, chunked=False, headers=None):
    """POST ``body``; the response and how many of its bytes the portal read."""
    stream = io.BytesIO(body)
    response = client.post(
        path,
        input_stream=stream,
        content_type=content_type,
        headers={**({"Transfer-Encoding": "chunked"} if chunked else {}), **(headers or {})},
        environ_overrides={"wsgi.input_terminated": True},
    )
    return response, stream.tell()


def multipart(fields: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (name, value, filename) parts, and its content type."""
    boundary = "b0undary"
    out = io.BytesIO()
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        out.write(value + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(t)) for t in (Organisation, User))


# --- the default -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_sign_up_is_refused_unread_and_changes_nothing(app, client, chunked):
    limit = app.config["MAX_CONTENT_LENGTH"]
    padded = urllib.parse.urlencode({**SIGNUP, "padding": "x" * (1024 * 1024)}).encode()
    response, read = send(client, "/signup", padded, chunked=chunked)
    assert response.status_code == 413
    assert TOO_LARGE_ZH in response.get_data(as_text=True)  # the portal's page, translated
    # A declared length is refused before anything is read; a chunked body once past the limit.
    assert read == 0 if not chunked else read <= limit + 1
    assert counts() == (0, 0)
    # The same form without the padding signs up.
    response, _read = send(client, "/signup", urllib.parse.urlencode(SIGNUP).encode(), chunked=chunked)
    assert response.status_code == 302 and counts() == (1, 1)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_six_hundred_thousand_fields_are_refused_before_parsing(app, client, chunked):
    body = b"a=1&" * 600_000
    with client:
        response, read = send(client, "/login", body, chunked=chunked)
        assert response.status_code == 413
        assert "form" not in request.__dict__  # Werkzeug keeps the parsed form there
    assert read == 0 if not chunked else read <= app.config["MAX_CONTENT_LENGTH"] + 1


def test_a_form_with_too_many_fields_is_refused_before_it_is_split(app, client):
    parts = app.config["MAX_FORM_PARTS"]
    body = b"&".join([b"email=x"] * (parts + 1))
    assert len(body) < app.config["MAX_CONTENT_LENGTH"]  # small: refused for its fields alone
    with client:
        response, _read = send(client, "/login", body)
        assert response.status_code == 413
        assert "form" not in request.__dict__
    response, _read = send(client, "/login", b"&".join([b"email=x"] * parts))
    assert response.status_code != 413  # as many fields as allowed: the sign-in form's own answer


def test_a_multipart_form_with_too_many_fields_is_refused(app, client):
    parts = app.config["MAX_FORM_PARTS"]
    body, content_type = multipart([("a", b"", None)] * (parts + 1))
    assert len(body) < app.config["MAX_CONTENT_LENGTH"]
    response, _read = send(client, "/login", body, content_type=content_type)
    assert response.status_code == 413


@pytest.fixture
def sales_key(app):
    factories.steel_and_cement()
    factories.user("sales@portal.cn", role="sales")
    db.session.commit()
    return factories.api_key(app, "--user", "sales@portal.cn")


def contract(tranches: int, title: str) -> dict:
    return {
        "org_uscc": factories.STEEL_USCC,
        "title": title,
        "start": day(0),
        "end": day(30 * tranches + 30),
        "price_per_t": "68.50",
        "tranches": [{"due": day(30 * n), "quantity": 10} for n in range(1, tranches + 1)],
        "delivery": "holding",
    }


def test_api_bodies_fit_the_largest_contract_and_no_more(app, client, sales_key):
    headers = {**factories.bearer(sales_key), "Accept-Language": "zh-CN"}
    largest = json.dumps(contract(MAX_TRANCHES, "钢" * TITLE_MAX)).encode()
    oversized = json.dumps({**contract(2, "x"), "padding": "x" * (100 * 1024)}).encode()
    assert len(largest) < app.config["MAX_CONTENT_LENGTH"] < len(oversized)
    response, read = send(client, "/api/v1/contracts", oversized, "application/json", headers=headers)
    assert response.status_code == 413 and read == 0
    error = response.get_json()["error"]
    assert error["code"] == "request_too_large" and "过大" in error["message"]
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0
    response, _read = send(client, "/api/v1/contracts", largest, "application/json", headers=headers)
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["contract"]["tranches"]) == MAX_TRANCHES


# --- views that declare more -----------------------------------------------------------------------


def test_the_certificate_upload_takes_a_pdf_up_to_its_size(app, client):
    def upload(size):
        body, content_type = multipart([("pdf", b"%PDF-1.4\n" + b"%" * size, "c.pdf")])
        response, read = send(client, "/verify?lang=en", body, content_type=content_type)
        return response.status_code, read == len(body), response.get_data(as_text=True)

    status, read_all, page = upload(MAX_UPLOAD - 100)
    assert (status, read_all) == (400, True) and "The file is not a PDF document" in page  # checked
    status, read_all, page = upload(MAX_UPLOAD + 100)
    # Read, then refused by the check, which says so on the form: a 413, as when refused unread.
    assert (status, read_all) == (413, True) and "The file is too large" in page
    status, read_all, page = upload(MAX_UPLOAD + 200 * 1024)
    assert (status, read_all) == (413, False) and "The request is too large." in page  # unread


def test_a_project_boundary_of_the_allowed_length_is_accepted(app, client):
    factories.region("aohan")
    factories.user("operator@portal.cn", role="operator")
    db.session.commit()
    assert (
        client.post(
            "/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD}
        ).status_code
        == 302
    )
    ring = [[round(119.9 + i * 1e-5, 5), 42.2 + (i % 2) * 0.01] for i in range(10_200)]
    ring.append(ring[0])
    boundary = json.dumps({"type": "Polygon", "coordinates": [ring]})
    assert 190_000 < len(boundary) <= 200_000  # the most the form takes
    form = {
        "code": "AH-FOR-09",
        "name_zh": "敖汉旗新造林项目",
        "standard": "CCER",
        "type": "forestry",
        "methodology": "CCER-14-001-V01",
        "region_code": "aohan",
        "area_ha": "1234.50",
        "crediting_start": "2021-01-01",
        "crediting_end": "2050-12-31",
        "status": "issuing",
        "boundary_geojson": boundary,
    }
    body = urllib.parse.urlencode(form).encode()
    assert len(body) > app.config["MAX_CONTENT_LENGTH"]
    response, _read = send(client, "/staff/projects/new", body)
    assert response.status_code == 303
    assert db.session.scalar(select(Project.boundary_geojson)) == boundary


def test_stripe_events_keep_their_own_limit(app, client):
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_x"
    event = json.dumps({"id": "evt_1", "padding": "x" * (200 * 1024)}).encode()
    response, read = send(client, "/stripe/webhook", event, "application/json")
    assert response.status_code == 400 and read == len(event)  # read, and its signature checked
    assert response.get_json()["error"]["code"] == "bad_signature"
