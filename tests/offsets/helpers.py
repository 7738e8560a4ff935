"""What the checkout tests share: what is left for sale, and a count of what was written."""

from sqlalchemy import func, select

from portal.certificates.models import Certificate
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, LedgerEntry
from portal.offsets.models import Order


def inventory() -> int:
    """Tonnes in the inventory account (for sale, not held)."""
    return ledger.balance(ledger.system_account(AccountKind.INVENTORY))


def state() -> tuple[int, int, int]:
    """(orders, ledger entries, certificates)."""
    return (
        db.session.scalar(select(func.count()).select_from(Order)),
        db.session.scalar(select(func.count()).select_from(LedgerEntry)),
        db.session.scalar(select(func.count()).select_from(Certificate)),
    )
