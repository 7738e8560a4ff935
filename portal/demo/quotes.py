"""The demo's requests for quote: two from the demo buyer's organisation (one the sales team is
discussing, one not yet answered), so that the buyer's and the sales team's pages show some."""

from datetime import timedelta

from sqlalchemy import select

from portal.buyers.models import User
from portal.extensions import db
from portal.rfq import services as rfq
from portal.timeutil import beijing_today


def load() -> int:
    """The requests, with deliveries asked for after today (the real today: a request's dates
    must lie ahead, also when the demo's trading was loaded as of another day)."""
    today = beijing_today()
    buyer = db_user("buyer@demo.local")
    sales = db_user("sales@demo.local")
    organisation = buyer.organisation
    first = rfq.create_request(
        organisation,
        buyer,
        {
            "quantity": "6000",
            "standards": ["CCER"],
            "project_types": ["forestry"],
            "vintage_from": "2022",
            "vintage_to": "2024",
            "schedule": "yearly",
            "tranches": [
                {"due": (today + timedelta(days=120)).isoformat(), "quantity": "2000"},
                {"due": (today + timedelta(days=485)).isoformat(), "quantity": "2000"},
                {"due": (today + timedelta(days=850)).isoformat(), "quantity": "2000"},
            ],
            "price_expectation": "66.00",
            "contact_name": "张采购",
            "contact_email": buyer.email,
            "notes": "用于 2027–2029 年度的自愿减排目标。",
        },
        actor="demo",
    )
    rfq.assign(first, str(sales.id), actor="demo")
    rfq.reply(
        first,
        sales,
        "可以分三年交付，首批价格约 68 元/吨，我们将发送合同草稿。",
        from_staff=True,
        actor="demo",
    )
    rfq.create_request(
        organisation,
        buyer,
        {
            "quantity": "1500",
            "standards": ["CCER", "VCS"],
            "schedule": "one_off",
            "tranches": [{"due": (today + timedelta(days=45)).isoformat(), "quantity": "1500"}],
            "contact_name": "张采购",
            "contact_email": buyer.email,
        },
        actor="demo",
    )
    return 2


def db_user(email: str) -> User:
    return db.session.scalar(select(User).filter_by(email=email))
