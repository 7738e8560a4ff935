"""The demo data set: realistic, deterministic, and a valid ledger."""

import pytest
from sqlalchemy import func, select

from portal.catalog.models import Project, Region
from portal.extensions import db
from portal.ledger.models import Batch, Block
from portal.ledger.verify import verify_ledger
from portal.timeutil import BEIJING
from tests.conftest import _sqlite_app


def _snapshot():
    return (
        [
            tuple(r)
            for r in db.session.execute(
                select(Batch.code, Batch.quantity, Batch.buffer_quantity).order_by(Batch.code)
            )
        ],
        [
            tuple(r)
            for r in db.session.execute(
                select(Block.batch_id, Block.serial_start, Block.serial_end, Block.account_id).order_by(
                    Block.batch_id, Block.serial_start
                )
            )
        ],
    )


def test_demo_load_is_deterministic_and_verifies(app, tmp_path, sqlite_template):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Region)) == 12
    assert db.session.scalar(select(func.count()).select_from(Batch)) == 100
    types = set(db.session.scalars(select(Project.type)))
    assert types == {"forestry", "grassland", "wetland", "cropland", "manure"}
    vintages = {b.vintage_start.year for b in db.session.scalars(select(Batch))}
    assert vintages == {2021, 2022, 2023, 2024, 2025}
    report = verify_ledger()
    assert report.ok and report.retired > 0
    first = _snapshot()

    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code != 0 and "not empty" in again.output
    assert runner.invoke(args=["demo", "load", "--if-empty"]).exit_code == 0

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = _sqlite_app(other_dir, sqlite_template)
    with other.app_context():
        assert other.test_cli_runner().invoke(args=["demo", "load"]).exit_code == 0
        assert _snapshot() == first
        db.session.remove()
        db.engine.dispose()


def test_catalog_shows_demo_batches_with_ledger_availability(app, client):
    app.test_cli_runner().invoke(args=["demo", "load"])
    page = client.get("/?lang=en").get_data(as_text=True)
    assert "100 batches found" in page
    assert "CN¥" in page
    zh = client.get("/?lang=zh").get_data(as_text=True)
    assert "¥" in zh and "敖汉旗" in zh or "克什克腾旗" in zh


def test_demo_accounts_can_sign_in(app):
    from portal.demo.services import DEMO_PASSWORD
    from tests.conftest import Client

    app.test_cli_runner().invoke(args=["demo", "load"])
    app.test_client_class = Client
    client = app.test_client()
    assert (
        client.post("/login", data={"email": "buyer@demo.local", "password": DEMO_PASSWORD}).status_code
        == 302
    )
    page = client.get("/account?lang=en").get_data(as_text=True)
    assert "Total:" in page  # the steel company's delivered credits
    client.post("/logout")
    assert (
        client.post("/login", data={"email": "operator@demo.local", "password": DEMO_PASSWORD}).status_code
        == 302
    )
    assert client.get("/staff/organisations").status_code == 200


def _months_of_trading(today):
    from portal.staff import dashboard

    figures = dashboard.over_time(today)
    return (
        [month for month, amount in figures["sales"].rows if amount <= 0],
        [month for month, tonnes in figures["retired"].rows if tonnes <= 0],
    )


def test_demo_data_is_a_year_of_trading(any_app):
    """Sales, retirements, orders and contract payments in each of the last twelve months (dates
    relative to today), so that the dashboard and the statements show a year."""
    from portal.certificates.models import Certificate, CertificateStatus
    from portal.contracts.models import InvoicePayment
    from portal.offsets.models import Order, OrderStatus
    from portal.timeutil import beijing_today, utcnow

    assert any_app.test_cli_runner().invoke(args=["demo", "load"]).exit_code == 0
    today = beijing_today()
    no_sales, no_retirements = _months_of_trading(today)
    assert no_sales == [] and no_retirements == []
    orders = list(db.session.scalars(select(Order)))
    assert orders and {o.status for o in orders} == {OrderStatus.FULFILLED}
    assert len({o.paid_at.astimezone(BEIJING).strftime("%Y-%m") for o in orders}) == 12
    # Contract invoices are paid over the months, not all today.
    paid = {p.received_on for p in db.session.scalars(select(InvoicePayment))}
    assert len({(d.year, d.month) for d in paid}) >= 3 and max(paid) <= today
    revoked = db.session.scalars(select(Certificate).filter_by(status=CertificateStatus.REVOKED)).all()
    assert len(revoked) == 1 and revoked[0].revoked_reason
    # Nothing happens in the future.
    assert db.session.scalar(select(func.max(Certificate.retired_at))) <= utcnow()
    assert verify_ledger().ok


def test_demo_year_on_the_first_of_a_month(app):
    """Loaded just after midnight on the first of a month, the month just begun has its trading
    too (at its first moment)."""
    from datetime import date, datetime

    from portal.demo import services as demo

    demo.load(1, now=datetime(2025, 3, 1, 0, 5, tzinfo=BEIJING))
    db.session.commit()
    assert _months_of_trading(date(2025, 3, 1)) == ([], [])
    assert verify_ledger().ok


@pytest.mark.parametrize("scale", [1, 100, 300])
def test_the_demo_parcels_fit_their_units_and_never_meet_at_any_scale(scale):
    """The parcels' layout, without a database: at scale 100 a small district's grid once ran out
    of its extent and into its neighbours' (the load failed after a quarter of an hour)."""
    import math
    import random

    from shapely import STRtree
    from shapely.geometry import shape

    from portal.demo import data, pipeline
    from portal.pipeline import extents

    shapes, owners = [], []
    for code in data.REGION_CENTRES:
        count = pipeline.PARCELS_PER_COUNTY * scale
        per_row, cell, south, west = pipeline.grid(code, count)
        assert 0 < cell <= pipeline.CELL
        rng = random.Random(scale)
        for i in range(count):
            row, column = divmod(i, per_row)
            lat = south + row * cell
            found = shape(
                pipeline._polygon(rng, west + column * cell / math.cos(math.radians(lat)), lat, cell)
            )
            assert found.is_valid and extents.within(found.bounds, code), (code, i)
            shapes.append(found)
            owners.append(code)
    tree = STRtree(shapes)
    for i, found in enumerate(shapes):
        assert [int(j) for j in tree.query(found, predicate="intersects")] == [i], owners[i]
