"""What the request-for-quote tests share: a buyer organisation, the sales team, and a request's
data as the form sends it."""

from datetime import timedelta

from portal.extensions import db
from tests import factories
from tests.clock import TODAY

EMAILS = {
    "buyer": "buyer@steel.cn",
    "other_buyer": "buyer@cement.cn",
    "sales": "sales@portal.cn",
    "other_sales": "sales2@portal.cn",
    "operator": "operator@portal.cn",
    "auditor": "auditor@portal.cn",
}


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def wanted(**change) -> dict:
    """5,000 t of CCER forestry, vintages 2021–2023, in two yearly tranches."""
    data = {
        "quantity": "5000",
        "standards": ["CCER"],
        "project_types": ["forestry"],
        "projects": "",
        "vintage_from": "2021",
        "vintage_to": "2023",
        "schedule": "yearly",
        "tranches": [{"due": day(60), "quantity": "2000"}, {"due": day(430), "quantity": "3000"}],
        "price_expectation": "65.50",
        "contact_name": "王经理",
        "contact_email": "procurement@steel.cn",
        "contact_phone": "0476-1234567",
        "notes": "年度履约需求",
    }
    data.update(change)
    return data


class Desk:
    """Two buyer organisations (the steel one restricted to 100 t per order), the staff, stock."""

    def __init__(self):
        self.steel, self.cement = factories.steel_and_cement()
        self.steel.status = "restricted"
        self.steel.order_limit_t = 100
        self.buyer = factories.user(EMAILS["buyer"], organisation=self.steel, org_admin=True)
        self.other_buyer = factories.user(EMAILS["other_buyer"], organisation=self.cement, org_admin=True)
        self.sales = factories.user(EMAILS["sales"], role="sales")
        self.other_sales = factories.user(EMAILS["other_sales"], role="sales")
        self.operator = factories.user(EMAILS["operator"], role="operator")
        self.auditor = factories.user(EMAILS["auditor"], role="auditor")
        self.batch = factories.batch(quantity=300, code="CCER-2022-A", vintage=2022)
        db.session.commit()
