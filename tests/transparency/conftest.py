import pytest

from portal.buyers import services as buyers
from portal.extensions import db
from tests import factories


def _stock():
    steel, cement = factories.steel_and_cement()
    batch = factories.batch(quantity=5000, code="CCER-LOG-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 1000, batch_codes=[batch.code])
    db.session.commit()
    return steel, cement


@pytest.fixture
def stocked(app):
    """Steel holds 1,000 t to retire."""
    return _stock()


@pytest.fixture
def pg_stocked(pg_app):
    return _stock()
