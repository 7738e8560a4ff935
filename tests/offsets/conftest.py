import pytest

from portal.extensions import db
from tests import factories


@pytest.fixture
def stock(app):
    """Steel and cement; two listed batches of 100 t: OLD-2021 at 60.00 and NEW-2023 at 75.50."""
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    factories.batch(quantity=100, code="NEW-2023", vintage=2023, price="75.50")
    db.session.commit()
    return steel, cement
