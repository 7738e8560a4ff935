"""Read-only lookups for the pages, the API and the PDFs: what the reserve covers of each
tranche, contracts and tranches due, deliveries, and invoices with their ageing and totals.
Nothing here changes anything."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, exists, func, select

from portal.buyers.models import Organisation, User
from portal.contracts.common import CENT, EARLY_DELIVERY_DAYS
from portal.contracts.models import Contract, ContractStatus, Delivery, Invoice, InvoiceStatus, Tranche
from portal.contracts.reserve import reserved
from portal.extensions import db
from portal.timeutil import beijing_today

# --- coverage -------------------------------------------------------------------------------------


@dataclass
class TrancheCover:
    tranche: Tranche
    reserved: int
    uncovered: int
    late: bool
    invoiced: Decimal
    paid: Decimal
    #: Tonnes the forecast issuances of named projects cover (forward supply: not reserved yet).
    forward: int = 0

    @property
    def seq(self) -> int:
        return self.tranche.seq


def cover(
    contract: Contract, today: date | None = None, reserve_balance: int | None = None, forward: int = 0
) -> list[TrancheCover]:
    """Each tranche with what the reserve covers of it (soonest due first), then what ``forward``
    tonnes (forward supply, for the sales team's eyes) cover of the rest, what is uncovered,
    whether it is late, and what was invoiced and paid for it."""
    today = today or beijing_today()
    left = reserved(contract) if reserve_balance is None else reserve_balance
    money = defaultdict(lambda: [Decimal(0), Decimal(0)])
    if contract.status != ContractStatus.DRAFT:
        for tranche_id, amount, paid in db.session.execute(
            select(Delivery.tranche_id, Invoice.amount, Invoice.paid_amount)
            .join(Invoice, Invoice.delivery_id == Delivery.id)
            .where(Delivery.contract_id == contract.id)
        ):
            money[tranche_id][0] += amount
            money[tranche_id][1] += paid
    out = []
    for tranche in contract.tranches:
        covered = min(left, tranche.remaining)
        left -= covered
        ahead = min(forward, tranche.remaining - covered)
        forward -= ahead
        live = contract.status == ContractStatus.ACTIVE
        out.append(
            TrancheCover(
                tranche,
                covered,
                tranche.remaining - covered - ahead if live else 0,
                live and tranche.remaining > 0 and tranche.due < today,
                *money[tranche.id],
                forward=ahead,
            )
        )
    return out


# --- contracts ------------------------------------------------------------------------------------


def visible_to_buyer(contract: Contract | None, organisation: Organisation) -> bool:
    """A buyer sees its own contracts once signed: drafts (even terminated ones) are the sales
    team's work in progress."""
    return (
        contract is not None
        and contract.organisation_id == organisation.id
        and contract.signed_at is not None
    )


def contracts_of(organisation: Organisation) -> list[Contract]:
    """A buyer's contracts (never-signed drafts are the sales team's work and not shown)."""
    return list(
        db.session.scalars(
            select(Contract)
            .where(Contract.organisation_id == organisation.id, Contract.signed_at.is_not(None))
            .order_by(Contract.id.desc())
        )
    )


def all_contracts(
    *, owner: User | None = None, status: str | None = None, limit: int = 500
) -> list[Contract]:
    query = select(Contract).order_by(Contract.id.desc()).limit(limit)
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    if status:
        query = query.where(Contract.status == status)
    return list(db.session.scalars(query))


def due_tranches(*, owner: User | None = None, today: date | None = None, days: int = EARLY_DELIVERY_DAYS):
    """(contract, tranche) of active contracts with tonnes left that are due within ``days``
    or late, soonest first."""
    today = today or beijing_today()
    query = (
        select(Contract, Tranche)
        .join(Tranche, Tranche.contract_id == Contract.id)
        .where(
            Contract.status == ContractStatus.ACTIVE,
            Tranche.delivered < Tranche.quantity,
            Tranche.due <= today + timedelta(days=days),
        )
        .order_by(Tranche.due, Contract.id)
        .limit(500)
    )
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return db.session.execute(query).all()


def deliveries_of(contract: Contract) -> list[Delivery]:
    return list(db.session.scalars(select(Delivery).filter_by(contract_id=contract.id).order_by(Delivery.id)))


# --- invoices -------------------------------------------------------------------------------------


def invoices_of(
    *, contract: Contract | None = None, organisation: Organisation | None = None
) -> list[Invoice]:
    query = select(Invoice).order_by(Invoice.id.desc()).limit(500)
    if contract is not None:
        query = query.where(Invoice.contract_id == contract.id)
    if organisation is not None:
        query = query.where(Invoice.organisation_id == organisation.id)
    return list(db.session.scalars(query))


def overdue_invoices(*, owner: User | None = None, today: date | None = None) -> list[Invoice]:
    today = today or beijing_today()
    query = (
        select(Invoice)
        .join(Contract, Contract.id == Invoice.contract_id)
        .where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on < today)
        .order_by(Invoice.due_on)
        .limit(500)
    )
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return list(db.session.scalars(query))


#: The staff invoice list's status filters: every unpaid invoice; unpaid ones not yet past their
#: due date; unpaid ones past it (``Invoice.is_overdue``); paid ones.
INVOICE_FILTERS = ("open", "due", "overdue", "paid")


#: Ageing of what is outstanding, by days past the due date: 0–30 (due today counts as 0), 31–60,
#: 61–90 and over 90 (``None``: no upper end). What is not yet due is counted apart.
AGEING = ((0, 30), (31, 60), (61, 90), (91, None))


def days_past_due(invoice: Invoice, today: date) -> int | None:
    """Days since the invoice fell due (0 on the due date), or None: paid, or not yet due."""
    if invoice.status != InvoiceStatus.OPEN or invoice.due_on > today:
        return None
    return (today - invoice.due_on).days


def ageing_bucket(days: int | None) -> tuple[int, int | None] | None:
    """The ``AGEING`` bucket of ``days`` past due (None for None)."""
    if days is None:
        return None
    return next(b for b in AGEING if b[0] <= days and (b[1] is None or days <= b[1]))


@dataclass
class InvoiceTotals:
    count: int
    amount: Decimal
    paid: Decimal
    outstanding: Decimal
    not_due: Decimal  #: outstanding, not yet due
    ageing: dict  #: ``AGEING`` bucket → outstanding in it


def invoice_query(
    *, today: date, status: str = "", organisation: Organisation | None = None, owner: User | None = None
):
    """Invoices by status (one of ``INVOICE_FILTERS``, or "" for all), buyer and sales owner:
    unpaid first, then by due date."""
    query = select(Invoice).join(Contract, Contract.id == Invoice.contract_id)
    if status == "open":
        query = query.where(Invoice.status == InvoiceStatus.OPEN)
    elif status == "due":
        query = query.where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on >= today)
    elif status == "overdue":
        query = query.where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on < today)
    elif status == "paid":
        query = query.where(Invoice.status == InvoiceStatus.PAID)
    elif status:
        raise ValueError(status)
    if organisation is not None:
        query = query.where(Invoice.organisation_id == organisation.id)
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return query.order_by(Invoice.status, Invoice.due_on, Invoice.id)


def invoice_totals(query, today: date) -> InvoiceTotals:
    """What the invoices of ``invoice_query`` add up to, in one grouped query: invoiced, paid,
    outstanding, and the outstanding amount by age (``AGEING``)."""
    found = query.order_by(None).subquery()
    outstanding = found.c.amount - found.c.paid_amount
    unpaid = found.c.status == InvoiceStatus.OPEN

    def owed(*conditions):
        return func.coalesce(func.sum(case((and_(unpaid, *conditions), outstanding), else_=0)), 0)

    columns = [
        func.count(found.c.id),
        func.coalesce(func.sum(found.c.amount), 0),
        func.coalesce(func.sum(found.c.paid_amount), 0),
        owed(),
        owed(found.c.due_on > today),
    ]
    for low, high in AGEING:
        conditions = [found.c.due_on <= today - timedelta(days=low)]
        if high is not None:
            conditions.append(found.c.due_on >= today - timedelta(days=high))
        columns.append(owed(*conditions))
    row = db.session.execute(select(*columns)).one()
    money = [Decimal(v).quantize(CENT) for v in row[1:]]
    return InvoiceTotals(
        count=row[0],
        amount=money[0],
        paid=money[1],
        outstanding=money[2],
        not_due=money[3],
        ageing=dict(zip(AGEING, money[4:], strict=True)),
    )


def invoice_owners() -> list[User]:
    """The staff who own contracts with invoices (the invoice list's owner filter)."""
    return list(
        db.session.scalars(
            select(User)
            .where(exists().where(Contract.owner_id == User.id, Invoice.contract_id == Contract.id))
            .order_by(User.email)
        )
    )


def invoice_buyers() -> list[Organisation]:
    """The organisations that have been invoiced (the invoice list's buyer filter)."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(exists().where(Invoice.organisation_id == Organisation.id))
            .order_by(Organisation.name_zh)
        )
    )
