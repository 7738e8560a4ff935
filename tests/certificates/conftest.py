import pytest

from portal.certificates import compliance
from portal.extensions import db
from tests import factories
from tests.certificates.helpers import hold_ccer_and_vcs


@pytest.fixture
def held(app):
    """Steel holds 300 t: 100 t of a 2021 CCER batch, 200 t of a 2022 VCS batch."""
    steel, cement = factories.steel_and_cement()
    hold_ccer_and_vcs(steel, issued=1000, ccer=100, vcs=200)
    steel.ets_entity = True  # a national-ETS entity with 4,000 t of allowances due for 2026: cap 200 t
    compliance.declare(steel, 2026, 4000, actor="test")
    db.session.commit()
    return steel, cement
