"""The public catalog and project pages."""

import re

import pytest

from portal.catalog import services
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from tests import factories
from tests.sql import statements_of


@pytest.fixture
def stock(app):
    aohan = factories.region("aohan")
    other = factories.region("linxi")
    forest = factories.project(code="AH-FOR-01", region_=aohan)
    grass = factories.project(
        code="LX-GRA-01", standard="VCS", type="grassland", methodology="VM0032", region_=other
    )
    batches = {
        "f21": factories.batch(quantity=1000, vintage=2021, project_=forest, code="F-2021", price="62.00"),
        "f23": factories.batch(quantity=500, vintage=2023, project_=forest, code="F-2023", price="80.50"),
        "g22": factories.batch(
            quantity=300, vintage=2022, project_=grass, code="G-2022", price="70.00", buffer=30
        ),
    }
    holding = ledger.open_account(AccountKind.HOLDING, "ORG")
    ledger.transfer(
        900, source=ledger.system_account(AccountKind.INVENTORY), destination=holding, batch_codes=["F-2021"]
    )
    ledger.retire(100, source=holding)
    db.session.commit()
    return batches


def codes(client, query):
    page = client.get("/?lang=en&" + query)
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    text = page.get_data(as_text=True)
    return [c for c in ("F-2021", "F-2023", "G-2022") if c in text], text


def test_available_comes_from_the_ledger(stock, client):
    _, text = codes(client, "")
    assert "3 batches found" in text
    assert ">100<" in text  # F-2021: 1000 issued, 900 sold
    assert ">270<" in text  # G-2022: 300 issued, 30 to the buffer
    ledger.transfer(
        50,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=ledger.open_account(AccountKind.HOLDING, "ORG"),
        batch_codes=["F-2021"],
    )
    db.session.commit()
    _, text = codes(client, "")
    assert ">50<" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("standard=VCS", ["G-2022"]),
        ("standard=CCER", ["F-2021", "F-2023"]),
        ("project_type=grassland", ["G-2022"]),
        ("county=aohan", ["F-2021", "F-2023"]),
        ("vintage=2023", ["F-2023"]),
        ("methodology=VM0032", ["G-2022"]),
        ("min_available=200", ["F-2023", "G-2022"]),
        ("min_available=101", ["F-2023", "G-2022"]),
        ("min_available=100", ["F-2021", "F-2023", "G-2022"]),
        ("price_min=70&price_max=80", ["G-2022"]),
        ("price_max=62", ["F-2021"]),
        ("standard=CCER&vintage=2021&county=aohan", ["F-2021"]),
        ("county=&standard=", ["F-2021", "F-2023", "G-2022"]),
    ],
)
def test_filters(stock, client, query, expected):
    found, _ = codes(client, query)
    assert found == expected


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("price_asc", ["F-2021", "G-2022", "F-2023"]),
        ("price_desc", ["F-2023", "G-2022", "F-2021"]),
        ("vintage_asc", ["F-2021", "G-2022", "F-2023"]),
        ("available_desc", ["F-2023", "G-2022", "F-2021"]),
    ],
)
def test_sorting(stock, app, sort, order):
    page = services.search(services.CatalogFilters.from_args({"sort": sort}))
    assert [r.batch.code for r in page.rows] == order


def test_pagination_keeps_filters(stock, client):
    page = client.get("/?lang=en&standard=CCER&per_page=1").get_data(as_text=True)
    assert "Page 1 of 2" in page
    assert "standard=CCER" in page and "page=2" in page
    second = client.get("/?lang=en&standard=CCER&per_page=1&page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and "F-2021" in second


def test_empty_results_are_said_plainly(stock, client):
    _, text = codes(client, "vintage=2030")
    assert "0 batches found" in text and "No batches match these filters" in text


@pytest.mark.parametrize(
    "query",
    [
        "vintage=abc",
        "vintage=99999",
        "min_available=-1",
        "price_min=x",
        "price_min=NaN",
        "price_max=1e999",
        "standard=GS",
        "sort=evil",
        "page=0",
        "per_page=1000",
        "price_min=90&price_max=60",
        "county=" + "x" * 300,
        "page=²",
        "vintage=²²",
        "min_available=①",
        "min_available=2147483648",
        "price_max=67.999",
        # Decimal() reads these as numbers; an amount is ASCII digits with one point.
        "price_min=%D9%A3",  # Arabic-Indic 3
        "price_min=%EF%BC%97%EF%BC%90",  # full-width 70
        "price_max=1E%2B2",
        "price_max=1e2",
        "price_max=Infinity",
        "price_min=7_0",
        "price_min=-0",
    ],
)
def test_bad_filters_are_a_400_with_a_translated_message(stock, client, query):
    response = client.get("/?lang=zh&" + query)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert 'class="flash flash-error"' in text
    assert "3 个批次" in text  # the page still shows the unfiltered catalog


def test_filters_and_language_switch_link(stock, client):
    text = client.get("/?standard=VCS&lang=zh").get_data(as_text=True)
    assert "standard=VCS&amp;lang=en" in text


def test_project_page(stock, client):
    text = client.get("/projects/AH-FOR-01?lang=en").get_data(as_text=True)
    for expected in ("F-2021", "F-2023", "1,500", "600", "100", "CCER-14-001-V01"):
        assert expected in text
    assert "No boundary has been recorded" in text
    zh = client.get("/projects/AH-FOR-01?lang=zh").get_data(as_text=True)
    assert "签发记录" in zh and "¥62.00" in zh


def test_project_boundary_is_drawn_as_inline_svg(stock, client):
    project = stock["f21"].project
    project.boundary_geojson = (
        '{"type": "Polygon", "coordinates": [[[119.9, 42.2], [120.0, 42.2], '
        "[120.0, 42.3], [119.9, 42.3], [119.9, 42.2]]]}"
    )
    db.session.commit()
    text = client.get("/projects/AH-FOR-01").get_data(as_text=True)
    assert "<svg" in text and '<path d="M' in text
    drawing = text[text.index("<svg") : text.index("</svg>")]
    assert "<script" not in drawing  # the page's only script is the buy form's, from a file
    assert [m for m in re.findall(r"<script[^>]*>", text) if "src=" not in m] == []


@pytest.mark.parametrize(
    "geojson",
    [
        '{"type": "Point", "coordinates": [1, 2]}',
        "not json",
        "[]",
        '{"type": "Polygon", "coordinates": [[[500, 1], [1, 1], [1, 2]]]}',
        '{"type": "Polygon", "coordinates": "x"}',
    ],
)
def test_bad_boundaries_are_not_drawn(geojson):
    assert services.boundary_drawing(geojson) is None


def test_unknown_project_is_404(stock, client):
    assert client.get("/projects/NOPE").status_code == 404
    assert client.get("/projects/" + "x" * 300).status_code == 404


def test_hostile_text_is_escaped(app, client):
    project = factories.project(code="XSS-01")
    project.name_en = "<script>alert(1)</script>"
    factories.batch(quantity=10, project_=project, code="XSS-2022")
    db.session.commit()
    for url in ("/?lang=en", "/projects/XSS-01?lang=en"):
        text = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_query_count_does_not_grow_with_rows(app, client):
    project = factories.project(code="MANY")
    for vintage in range(2000, 2040):
        factories.batch(quantity=10, project_=project, vintage=vintage)
    db.session.commit()
    few = len(statements_of(lambda: client.get("/?per_page=2")))
    many = len(statements_of(lambda: client.get("/?per_page=40")))
    assert few == many
    project_page = len(statements_of(lambda: client.get("/projects/MANY")))
    # The data version, the project, its batches with their stock, the development history
    # section (portal.pipeline.public) and the alliance's terms: 5 however many rows.
    assert project_page <= 5
    api_few = len(statements_of(lambda: client.get("/api/v1/batches?per_page=2")))
    api_many = len(statements_of(lambda: client.get("/api/v1/batches?per_page=40")))
    assert api_few == api_many


def test_a_bad_value_keeps_the_other_filters(stock, client):
    response = client.get("/?lang=en&standard=CCER&vintage=abc")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "2 batches found" in text  # standard=CCER still applies
    assert "Vintage (vintage) must be a whole number" in text


def test_nul_bytes_are_a_400(stock, client):
    for url in ("/?county=%00", "/projects/%00", "/api/v1/batches/%00", "/api/v1/batches?methodology=a%00"):
        assert client.get(url).status_code == 400, url


def test_a_page_beyond_the_end_says_so(stock, client):
    text = client.get("/?lang=en&page=9").get_data(as_text=True)
    assert "There is no page 9: the results end on page 1." in text
    assert "No credits are listed" not in text


def test_per_page_is_kept_when_paging(stock, client):
    text = client.get("/?lang=en&per_page=1&page=2").get_data(as_text=True)
    assert "per_page=1" in text and "page=3" in text
    assert 'name="per_page" value="1"' in text


@pytest.mark.parametrize("path", ["/%5Cevil.example", "/%2Fevil.example", "/a%3Fb%23c"])
def test_the_language_link_stays_on_this_site(client, path):
    text = client.get(path).get_data(as_text=True)
    link = text.split('hreflang="en"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert link.startswith("/") and not link.startswith("//") and "\\" not in link
    assert link.split("?")[0] in ("/%5Cevil.example", "/evil.example", "/a%3Fb%23c")


def test_405_says_what_is_allowed(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_api_varies_on_language(stock, client):
    assert "Accept-Language" in client.get("/api/v1/batches").headers["Vary"]
