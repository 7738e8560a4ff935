import pytest

from portal.buyers import services as buyers
from portal.certificates import compliance
from portal.extensions import db
from tests import factories


@pytest.fixture
def held(app):
    """Steel holds 300 t: 100 t of a 2021 CCER batch, 200 t of a 2022 VCS batch."""
    steel, cement = factories.steel_and_cement()
    ccer = factories.batch(quantity=1000, code="CCER-A-2021", vintage=2021)
    vcs_project = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=1000, code="VCS-B-2022", vintage=2022, project_=vcs_project)
    buyers.deliver_from_inventory(steel, 100, batch_codes=[ccer.code])
    buyers.deliver_from_inventory(steel, 200, batch_codes=["VCS-B-2022"])
    steel.ets_entity = True  # a national-ETS entity with 4,000 t of allowances due for 2026: cap 200 t
    compliance.declare(steel, 2026, 4000, actor="test")
    db.session.commit()
    return steel, cement
