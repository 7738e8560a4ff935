import pytest

from portal.buyers import services as buyers
from portal.certificates import compliance
from portal.extensions import db
from portal.ledger.models import Batch
from tests import factories

VERRA_SERIAL = "19309-936487628-936488627-VCS-VCU-1491-VER-CN-14-4150-01012022-31122022-0"


def numbered(batch: Batch, *, series: str, first: int, start: str, end: str = "") -> Batch:
    """Give a factory batch the registry numbering an issuance would have recorded."""
    batch.registry_series = series
    batch.registry_unit_offset = first - 1
    batch.registry_serial_start = start
    batch.registry_serial_end = end or start
    batch.registry_reference = "ISS-1"
    return batch


@pytest.fixture
def market(app):
    """Steel holds 100 t of a CCER batch (registry units 1001–2000) and 200 t of a VCS batch
    (Verra units 936487628–936488627); it may offset 200 t for 2026; an operator and an auditor
    with keys."""
    steel, cement = factories.steel_and_cement()
    ccer = numbered(
        factories.batch(quantity=1000, code="CCER-A-2021", vintage=2021),
        series="CN-CCER-14-2024001-2021",
        first=1001,
        start="CN-CCER-14-2024001-2021-000001001",
        end="CN-CCER-14-2024001-2021-000002000",
    )
    vcs_project = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    numbered(
        factories.batch(quantity=1000, code="VCS-B-2022", vintage=2022, project_=vcs_project),
        series="VCS-VCU",
        first=936487628,
        start=VERRA_SERIAL,
    )
    buyers.deliver_from_inventory(steel, 100, batch_codes=[ccer.code])
    buyers.deliver_from_inventory(steel, 200, batch_codes=["VCS-B-2022"])
    steel.ets_entity = True
    compliance.declare(steel, 2026, 4000, actor="test")
    factories.user("operator@portal.cn", role="operator")
    factories.user("auditor@portal.cn", role="auditor")
    db.session.commit()
    return {
        "steel": steel,
        "cement": cement,
        "operator": factories.api_key(app, "--user", "operator@portal.cn"),
        "auditor": factories.api_key(app, "--user", "auditor@portal.cn"),
        "buyer": factories.api_key(app, "--org", steel.uscc),
    }
