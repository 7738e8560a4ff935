"""What the certificate tests share: retiring through the API, and counting what was written."""

from sqlalchemy import func, select

from portal.certificates.models import Certificate
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from tests import factories


def retire(client, key, body, **headers):
    return client.post("/api/v1/retirements", json=body, headers={**factories.bearer(key), **headers})


def counts():
    """(certificates, ledger entries), read afresh."""
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(Certificate)),
        db.session.scalar(select(func.count()).select_from(LedgerEntry)),
    )
