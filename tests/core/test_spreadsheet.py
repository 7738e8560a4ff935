"""CSV downloads: read whole in the request, safe in spreadsheets."""

import csv
import io

from sqlalchemy import select

from portal.catalog.models import Region
from portal.core.spreadsheet import csv_response
from portal.extensions import db
from tests import factories
from tests.production import production_client


def test_a_csv_of_objects_loaded_in_the_request_is_sent_whole(app):
    """The rows may be a generator over ORM objects: it is read while the request's session is
    open. Read while the body is sent, after the request's commit and teardown, the objects'
    attributes could no longer be loaded (``DetachedInstanceError`` half-way through)."""
    for n in range(3):
        factories.region(f"r{n}")
    db.session.commit()

    @app.get("/test-regions.csv")
    def regions_csv():
        regions = list(db.session.scalars(select(Region).order_by(Region.code)))
        return csv_response(([r.code, r.name_en, "=1+1"] for r in regions), "regions.csv")

    response = production_client(app).get("/test-regions.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=regions.csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert [row[0] for row in rows] == ["r0", "r1", "r2"]
    assert all(row[2] == "'=1+1" for row in rows)  # a formula, neutralised
