"""What a signed offtake contract's PDF states, and signs: :func:`contract_document`, with the
names of the terms a version records, and the contract's address that the PDF's QR code holds."""

import json
from datetime import UTC, datetime

from sqlalchemy import select

from portal.catalog.models import Region
from portal.contracts.models import Contract
from portal.core.i18n import absolute_url
from portal.core.seller import seller
from portal.extensions import db

#: The terms a version records, in the order their changes are listed, with their names.
TERM_NAMES = {
    "title": ("合同名称", "Title"),
    "start": ("起始日", "Start"),
    "end": ("到期日", "End"),
    "total_quantity": ("合同总量（吨）", "Total quantity (t)"),
    "price_per_t": ("基准单价", "Base price per tonne"),
    "escalation_pct_per_year": ("年递增率（%）", "Yearly escalation (%)"),
    "year_prices": ("固定年度价格", "Fixed yearly prices"),
    "standard": ("标准", "Standard"),
    "project_types": ("项目类型", "Project types"),
    "counties": ("旗县区", "Counties"),
    "vintage_from": ("减排年份起", "Vintages from"),
    "vintage_to": ("减排年份止", "Vintages to"),
    "delivery": ("交付方式", "Delivery"),
    "beneficiary": ("受益方", "Beneficiary"),
    "payment_days": ("付款期限（天）", "Payment terms (days)"),
    "tranches": ("交付计划", "Schedule"),
}


def _instant(moment: datetime | None) -> str | None:
    """An aware moment as ISO 8601 UTC with a Z, to the second."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def contract_document(contract: Contract) -> dict:
    """What a contract's PDF states, and signs: the parties, the terms in force, the schedule with
    what was delivered, every delivery, and every version with its date and reason.

    It is dated by the last thing that happened to the contract (signed, amended, delivered,
    completed, terminated), never by the clock: the same contract in the same state gives the
    same document, and the same PDF.
    """
    from portal.contracts import services  # the services use nothing of this module

    terms = services.terms_of(contract).as_json()
    regions = {
        r.code: r for r in db.session.scalars(select(Region).where(Region.code.in_(terms["counties"])))
    }
    terms["counties"] = [
        {"code": code, "zh": regions[code].name_zh, "en": regions[code].name_en}
        if code in regions
        else {"code": code, "zh": code, "en": code}
        for code in terms["counties"]
    ]
    del terms["title"], terms["tranches"]
    versions = services.versions(contract)
    deliveries = services.deliveries_of(contract)
    moments = [contract.signed_at, contract.completed_at, contract.terminated_at]
    moments += [v.created_at for v in versions] + [d.created_at for d in deliveries]
    org = contract.organisation
    return {
        "v": 1,
        "document": "offtake_contract",
        "number": contract.number,
        "title": contract.title,
        "status": contract.status,
        "version": contract.version,
        "seller": {"zh": seller().name_zh, "en": seller().name_en},
        "buyer": {"name_zh": org.name_zh, "name_en": org.name_en or "", "uscc": org.uscc},
        "signed_at": _instant(contract.signed_at),
        "completed_at": _instant(contract.completed_at),
        "terminated_at": _instant(contract.terminated_at),
        "termination_reason": contract.termination_reason or "",
        "as_of": _instant(max((m for m in moments if m is not None), default=None)),
        "terms": terms,
        "tranches": [
            {
                "seq": t.seq,
                "due": t.due.isoformat(),
                "quantity": t.quantity,
                "delivered": t.delivered,
                "price_per_t": str(services.price_for(contract, t.due)),
            }
            for t in contract.tranches
        ],
        "deliveries": [
            {
                "at": _instant(d.created_at),
                "tranche": d.tranche.seq,
                "quantity": d.quantity,
                "mode": d.mode,
                "certificate": d.certificate.number if d.certificate else None,
                "invoice": d.invoice.number if d.invoice else None,
            }
            for d in deliveries
        ],
        "versions": [
            {
                "version": v.version,
                "at": _instant(v.created_at),
                "reason": v.reason,
                "terms": {k: value for k, value in json.loads(v.terms).items() if k in TERM_NAMES},
            }
            for v in versions
        ],
        "url": contract_url(contract),
    }


def contract_url(contract: Contract) -> str:
    """The contract's page, for whoever may see it (the buyer's, or the staff's)."""
    return absolute_url("contracts.contract_page", number=contract.number)
