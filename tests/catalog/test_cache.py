"""The catalog cache serves repeated pages without queries and never serves stale data."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch
from tests import factories
from tests.conftest import Client
from tests.sql import statements_of


@pytest.fixture
def web(any_app):
    any_app.test_client_class = Client
    project = factories.project(code="CACHE-01")
    factories.batch(quantity=1000, project_=project, code="CACHE-B1", price="68.00")
    db.session.commit()
    return any_app.test_client()


@pytest.mark.parametrize("url", ["/?lang=en", "/projects/CACHE-01?lang=en", "/api/v1/batches"])
def test_a_repeated_page_costs_one_query(web, url):
    first = web.get(url).get_data(as_text=True)
    statements = statements_of(lambda: web.get(url))
    assert len(statements) == 1, statements  # the data version, nothing else
    assert web.get(url).get_data(as_text=True) == first


def test_a_movement_in_another_session_shows_at_once(web, any_app):
    assert ">1,000<" in web.get("/?lang=en").get_data(as_text=True)

    with any_app.app_context():  # another request / worker
        ledger.transfer(
            10,
            source=ledger.system_account(AccountKind.INVENTORY),
            destination=ledger.open_account(AccountKind.HOLDING, "ORG"),
        )
        db.session.commit()
        db.session.remove()

    assert ">990<" in web.get("/?lang=en").get_data(as_text=True)
    assert web.get("/api/v1/batches").get_json()["items"][0]["available_quantity"] == 990
    assert ">990<" in web.get("/projects/CACHE-01?lang=en").get_data(as_text=True)


def test_price_and_name_changes_show_at_once(web):
    assert "CN¥68.00" in web.get("/?lang=en").get_data(as_text=True)
    batch = db.session.scalar(select(Batch).filter_by(code="CACHE-B1"))
    batch.listing.price_per_t = Decimal("71.50")
    db.session.commit()
    assert "CN¥71.50" in web.get("/?lang=en").get_data(as_text=True)
    batch.project.name_en = "Renamed project"
    db.session.commit()
    assert "Renamed project" in web.get("/projects/CACHE-01?lang=en").get_data(as_text=True)
    assert "Renamed project" in web.get("/?lang=en").get_data(as_text=True)


def test_languages_are_cached_apart(web):
    assert "Issued carbon credits" in web.get("/?lang=en").get_data(as_text=True)
    assert "已签发的碳信用" in web.get("/?lang=zh").get_data(as_text=True)
    assert "Project code" in web.get("/projects/CACHE-01?lang=en").get_data(as_text=True)
    assert "项目编号" in web.get("/projects/CACHE-01?lang=zh").get_data(as_text=True)


def test_flash_messages_are_never_cached(web, any_app):
    @any_app.get("/_flash")
    def set_flash():
        from flask import flash, redirect

        flash("private message for one visitor")
        return redirect("/projects/CACHE-01")

    with any_app.test_client() as visitor:
        assert "private message" in visitor.get("/_flash", follow_redirects=True).get_data(as_text=True)
    assert "private message" not in web.get("/projects/CACHE-01").get_data(as_text=True)
