"""What the bank-transfer and fapiao tests share: two buyer organisations with their users, the
staff, listed stock, an order of each buyer paid by bank transfer, and a paid contract invoice."""

from datetime import timedelta

from portal.contracts import services as contracts
from portal.extensions import db
from portal.offsets import services as orders
from tests import factories

STEEL, CEMENT, PASSWORD = factories.STEEL_USCC, factories.CEMENT_USCC, factories.PASSWORD
EMAILS = {
    "buyer": "buyer@steel.cn",
    "other_buyer": "buyer@cement.cn",
    "sales": "sales@portal.cn",
    "operator": "operator@portal.cn",
    "auditor": "auditor@portal.cn",
}
#: A threshold the test orders pass (10 t at 60.00 is 600.00 yuan).
THRESHOLD = "500.00"
#: The smallest PDF the checks take: its header and its end-of-file marker.
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def sign_in(client, role):
    if role != "anonymous":
        response = client.post("/login", data={"email": EMAILS[role], "password": PASSWORD})
        assert response.status_code == 302, role
    return client


def place(organisation, quantity=10, actor="t"):
    """An order of ``quantity`` t (at 60.00) for ``organisation``, not yet paid, no PaymentIntent."""
    order, _ = orders.create_order(
        organisation, quantity, beneficiary="测试受益方", purpose="voluntary", actor=actor
    )
    return order


def paid_by_transfer(organisation, quantity=10, reference="BANK-1"):
    """An order paid by bank transfer, recorded by staff: fulfilled."""
    order = orders.choose_transfer(place(organisation, quantity), actor="t")
    return orders.record_transfer(
        order, order.amount, order.created_at.date().isoformat(), reference, actor="t"
    )


class World:
    """Two approved buyers (steel, cement) with a user each, the staff, 300 t for sale; the
    steel company's paid order and unpaid order, the cement company's paid order, and a paid
    invoice of the steel company's offtake contract."""

    def __init__(self, app):
        app.config["BANK_TRANSFER_THRESHOLD"] = THRESHOLD
        self.steel, self.cement = factories.steel_and_cement()
        self.buyer = factories.user(EMAILS["buyer"], organisation=self.steel, org_admin=True)
        factories.user(EMAILS["other_buyer"], organisation=self.cement, org_admin=True)
        self.sales = factories.user(EMAILS["sales"], role="sales")
        factories.user(EMAILS["operator"], role="operator")
        factories.user(EMAILS["auditor"], role="auditor")
        factories.batch(quantity=300, code="OLD-2021", vintage=2021, price="60.00")
        db.session.commit()
        self.paid = paid_by_transfer(self.steel, reference="BANK-STEEL")
        self.unpaid = place(self.steel)
        self.theirs = paid_by_transfer(self.cement, reference="BANK-CEMENT")
        today = contracts.beijing_today()
        contract, _ = contracts.create_draft(
            self.steel,
            {
                "title": "钢铁承购",
                "start": (today - timedelta(days=10)).isoformat(),
                "end": (today + timedelta(days=400)).isoformat(),
                "price_per_t": "70.00",
                "tranches": [{"due": (today + timedelta(days=5)).isoformat(), "quantity": 20}],
                "delivery": "holding",
            },
            owner=self.sales,
            actor="t",
        )
        contracts.sign(contract, actor="t")
        delivery, _ = contracts.deliver(contract, 1, 20, actor="t")
        self.invoice = delivery.invoice
        contracts.record_payment(self.invoice, "1400.00", today.isoformat(), "BANK-INV", actor="t")
        db.session.commit()


def tax_details(**change) -> dict:
    data = {"title": "测试钢铁", "taxpayer_id": STEEL}
    data.update(change)
    return data


def special_details(**change) -> dict:
    data = tax_details(
        address="赤峰市红山区钢铁路1号",
        phone="0476-1234567",
        bank="中国工商银行赤峰分行",
        bank_account="0604 0012 3456 7890",
    )
    data.update(change)
    return data
