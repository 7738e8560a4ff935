import pytest

from portal.alliance import services as alliance
from portal.extensions import db
from tests import factories


def apply(org, **changes):
    terms = {
        "sector": org.sector,
        "emissions_band": "100k_1m",
        "pledge": "到2030年排放减半，其余以碳汇抵消。",
        "description_zh": "钢铁企业",
        "description_en": "A steel maker",
        "website": "https://steel.example.cn",
        "actor": "user:1",
    }
    terms.update(changes)
    return alliance.apply(org, **terms)


@pytest.fixture
def stock(app):
    """Steel and cement (approved, not members); OLD-2021 at 60.00 and NEW-2023 at 75.50, 100 t each."""
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    factories.batch(quantity=100, code="NEW-2023", vintage=2023, price="75.50")
    db.session.commit()
    return steel, cement


def make_member(org, actor="user:99"):
    membership = apply(org)
    alliance.approve(membership, actor=actor)
    return membership
