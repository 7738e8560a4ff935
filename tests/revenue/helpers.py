"""What the revenue tests share: a market of two counties, and sales paid on a given day."""

from portal.extensions import db
from portal.offsets import services as orders
from tests import factories


def setup_market():
    """Steel and cement; a CCER forestry batch in Aohan (68.35 yuan/t) and a VCS grassland batch
    in Linxi (77.77 yuan/t), 1,000 t each. Committed; returns steel."""
    steel, _ = factories.steel_and_cement()
    aohan = factories.region("aohan")
    linxi = factories.region("linxi")
    forest = factories.project(region_=aohan)
    grass = factories.project(region_=linxi, standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=1000, code="AH-2021", vintage=2021, project_=forest, price="68.35")
    factories.batch(quantity=1000, code="LX-2022", vintage=2022, project_=grass, price="77.77")
    db.session.commit()
    return steel


def paid_order(steel, quantity, when=None, **kw):
    """An order paid (the webhook's handler called directly) on ``when``."""
    order, _ = orders.create_order(steel, quantity, beneficiary="b", purpose="voluntary", actor="t", **kw)
    order.payment_intent_id = f"pi_{order.public_id}"
    if when is not None:
        order.paid_at = when
    db.session.flush()
    intent = {"id": order.payment_intent_id, "amount": int(order.amount * 100), "currency": "cny"}
    assert orders.payment_succeeded(intent) == "fulfilled"
    db.session.flush()
    return order
