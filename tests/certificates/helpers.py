"""What the certificate tests share: a holding of CCER and VCS credits, retiring through the API,
and counting what was written."""

from sqlalchemy import func, select

from portal.buyers import services as buyers
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from tests import factories


def hold_ccer_and_vcs(organisation, *, issued: int, ccer: int, vcs: int):
    """``organisation`` holds ``ccer`` t of a 2021 CCER batch (``CCER-A-2021``) and ``vcs`` t of a
    2022 VCS grassland batch (``VCS-B-2022``), each batch of ``issued`` t; returns the CCER one."""
    ccer_batch = factories.batch(quantity=issued, code="CCER-A-2021", vintage=2021)
    vcs_project = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=issued, code="VCS-B-2022", vintage=2022, project_=vcs_project)
    buyers.deliver_from_inventory(organisation, ccer, batch_codes=[ccer_batch.code])
    buyers.deliver_from_inventory(organisation, vcs, batch_codes=["VCS-B-2022"])
    return ccer_batch


def retire(client, key, body, **headers):
    return client.post("/api/v1/retirements", json=body, headers={**factories.bearer(key), **headers})


def counts():
    """(certificates, ledger entries), read afresh."""
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(Certificate)),
        db.session.scalar(select(func.count()).select_from(LedgerEntry)),
    )
