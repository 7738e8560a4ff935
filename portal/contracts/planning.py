"""Supply planning: what active contracts still need, year by year, against what is reserved,
what forecast issuances of projects in development are counted on (forward supply), and what
listed stock nobody has reserved."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, literal, select

from portal.catalog.models import Listing, Project
from portal.contracts.models import Contract, ContractStatus, ForwardSource, Tranche
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind, Batch, Block


@dataclass
class PlanYear:
    year: int
    contracted: int = 0
    delivered: int = 0
    reserved: int = 0
    forward: int = 0
    uncovered: int = 0


@dataclass
class Plan:
    years: list[PlanYear]
    available: dict[str, int]  #: listed inventory by standard, not reserved by anyone
    active_contracts: int


def plan() -> Plan:
    """Contracted vs delivered vs reserved vs forward vs uncovered by the year tranches are due,
    for active contracts, with the unreserved listed stock beside it. The forward tonnes cover
    what the reserve leaves, in the same order.

    The database does the work: each contract's reserve is dealt to its undelivered tranches in
    due order with a running sum (a window function), and the rows come back grouped by due
    date, so the cost does not grow with the number of tranches handled in Python."""
    remaining = Tranche.quantity - Tranche.delivered
    reserve = (
        select(Account.ref.label("ref"), func.sum(Block.serial_end - Block.serial_start + 1).label("held"))
        .join(Block, Block.account_id == Account.id)
        .where(Account.kind == AccountKind.RESERVE)
        .group_by(Account.ref)
        .subquery()
    )
    forward = (
        select(
            ForwardSource.contract_id.label("contract_id"),
            func.sum(ForwardSource.quantity - ForwardSource.reserved).label("tonnes"),
        )
        .group_by(ForwardSource.contract_id)
        .subquery()
    )
    per_tranche = (
        select(
            Tranche.contract_id,
            Tranche.due,
            Tranche.quantity,
            Tranche.delivered,
            remaining.label("remaining"),
            # What the reserve has left once the earlier tranches of the contract are covered.
            (
                func.coalesce(reserve.c.held, 0)
                - func.sum(remaining).over(partition_by=Tranche.contract_id, order_by=Tranche.seq)
                + remaining
            ).label("left"),
            (
                func.coalesce(reserve.c.held, 0)
                + func.coalesce(forward.c.tonnes, 0)
                - func.sum(remaining).over(partition_by=Tranche.contract_id, order_by=Tranche.seq)
                + remaining
            ).label("left_ahead"),
        )
        .join(Contract, Contract.id == Tranche.contract_id)
        .outerjoin(reserve, reserve.c.ref == literal("contract:") + Contract.number)
        .outerjoin(forward, forward.c.contract_id == Contract.id)
        .where(Contract.status == ContractStatus.ACTIVE)
        .subquery()
    )

    def clamped(left):
        return case(
            (left <= 0, 0),
            (left >= per_tranche.c.remaining, per_tranche.c.remaining),
            else_=left,
        )

    covered = clamped(per_tranche.c.left)
    ahead = clamped(per_tranche.c.left_ahead)
    rows = db.session.execute(
        select(
            per_tranche.c.due,
            func.sum(per_tranche.c.quantity),
            func.sum(per_tranche.c.delivered),
            func.sum(covered),
            func.sum(ahead - covered),
            func.sum(per_tranche.c.remaining - ahead),
        ).group_by(per_tranche.c.due)
    )
    years: dict[int, PlanYear] = {}
    for due, contracted, delivered, reserved_, forward_, uncovered in rows:
        year = (due if isinstance(due, date) else date.fromisoformat(str(due))).year
        y = years.setdefault(year, PlanYear(year))
        y.contracted += int(contracted)
        y.delivered += int(delivered)
        y.reserved += int(reserved_)
        y.forward += int(forward_)
        y.uncovered += int(uncovered)
    active = db.session.scalar(
        select(func.count()).select_from(Contract).where(Contract.status == ContractStatus.ACTIVE)
    )
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id)
    stock = db.session.execute(
        select(Project.standard, func.sum(available))
        .select_from(Batch)
        .join(Project, Project.id == Batch.project_id)
        .join(Listing, Listing.batch_id == Batch.id)
        .where(Listing.is_active.is_(True))
        .group_by(Project.standard)
    )
    return Plan(
        [years[y] for y in sorted(years)],
        {standard: int(n or 0) for standard, n in stock},
        active,
    )
