"""Reserving stock for a contract's tranches: the reserve account, topping it up from listed
inventory that meets the contract's preferences, new stock dealt to the contracts that want it,
and releasing what is no longer needed back to inventory.

What is reserved covers the undelivered tranches soonest due first; the reserve never holds
more than the contract still has to deliver. (Locking: see :mod:`portal.contracts.common`.)
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, exists, func, select

from portal.audit import services as audit
from portal.catalog.models import Listing, Project, Region
from portal.contracts import forward
from portal.contracts.common import _locked, preferences
from portal.contracts.models import Contract, ContractStatus, Tranche
from portal.core.database import unit_of_work
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits
from portal.ledger.models import Account, AccountKind, Batch, Block

log = logging.getLogger(__name__)


# --- the reserve account --------------------------------------------------------------------------


def _reserve_account(contract: Contract) -> Account:
    """The contract's reserve, opened at signing with the contract's volume as its capacity
    (amendments only ever raise it: see ``amend``)."""
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.RESERVE, ref=contract.reserve_ref))
    if account is None:
        account = ledger.open_account(AccountKind.RESERVE, contract.reserve_ref, contract.total_quantity)
    return account


def reserved(contract: Contract) -> int:
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.RESERVE, ref=contract.reserve_ref))
    return 0 if account is None else ledger.balance(account)


# --- a contract's preferences: one rule, read both ways --------------------------------------------


def admits(contract, batch: Batch) -> bool:
    """Whether ``batch`` meets ``contract``'s preferences: its project's standard, type and county,
    and its vintage within the contract's years. ``_matching`` is the same rule as SQL, for the
    other direction (the batches a contract may take); a test holds them equal."""
    standard, types, counties, first, last = preferences(contract)
    project = batch.project
    return (
        (not standard or project.standard == standard)
        and (not types or project.type in types)
        and (not counties or project.region.code in counties)
        and (first is None or batch.vintage_start >= date(first, 1, 1))
        and (last is None or batch.vintage_end <= date(last, 12, 31))
    )


def _matching(contract: Contract):
    """SQL condition on Batch: listed for sale and within the contract's preferences (``admits``)."""
    standard, types, counties, first, last = preferences(contract)
    project = [Project.id == Batch.project_id]
    if standard:
        project.append(Project.standard == standard)
    if types:
        project.append(Project.type.in_(types))
    if counties:
        project.append(Project.region_id.in_(select(Region.id).where(Region.code.in_(counties))))
    condition = [
        exists().where(Listing.batch_id == Batch.id, Listing.is_active.is_(True)),
        exists().where(and_(*project)),
    ]
    if first is not None:
        condition.append(Batch.vintage_start >= date(first, 1, 1))
    if last is not None:
        condition.append(Batch.vintage_end <= date(last, 12, 31))
    return and_(*condition)


# --- reserving ------------------------------------------------------------------------------------


def _top_up(
    contract: Contract, *, actor: str, batch_codes=None, limit: int | None = None, for_delivery: bool = False
) -> int:
    """Reserve what the undelivered tranches still lack, as far as matching stock allows (the
    contract row is locked by the caller): not what the contract counts on from forecast
    issuances (``forward``), unless a delivery needs the stock now. Returns the tonnes reserved."""
    account = _reserve_account(contract)
    need = contract.undelivered - ledger.balance(account) - (0 if for_delivery else forward.left(contract))
    if limit is not None:
        need = min(need, limit)
    if need <= 0:
        return 0
    try:
        movement = ledger.transfer(
            need,
            source=ledger.system_account(AccountKind.INVENTORY),
            destination=account,
            batch_codes=batch_codes,
            batch_condition=_matching(contract),
            reference=f"contract:{contract.number}:reserve",
            actor=actor,
            up_to=True,
        )
    except InsufficientCredits:
        return 0
    return movement.quantity


def reserve(contract: Contract, *, actor: str) -> int:
    """Top up one active contract's reserve (a transaction of its own)."""
    contract = _locked(contract)
    if contract.status != ContractStatus.ACTIVE:
        return 0
    got = _top_up(contract, actor=actor)
    if got:
        audit.record(actor, "contract.reserve", "contract", contract.number, after={"reserved": got})
    return got


def _by_urgency() -> list[Contract]:
    """Active contracts with undelivered tonnes, the one whose next undelivered tranche is due
    soonest first."""
    next_due = (
        select(func.min(Tranche.due))
        .where(Tranche.contract_id == Contract.id, Tranche.delivered < Tranche.quantity)
        .scalar_subquery()
    )
    return list(
        db.session.scalars(
            select(Contract)
            .where(Contract.status == ContractStatus.ACTIVE, next_due.is_not(None))
            .order_by(next_due, Contract.id)
        )
    )


def reserve_all(*, actor: str, commit: bool = True) -> dict[str, int]:
    """Top up every active contract's reserve, soonest due first, one transaction each."""
    got = {}
    for contract in _by_urgency():
        with unit_of_work() if commit else nullcontext():  # one movement per transaction
            n = reserve(contract, actor=actor)
        if n:
            got[contract.number] = n
    return got


def reserve_from_batch(batch: Batch, *, actor: str) -> dict[str, int]:
    """New stock (a batch issued or listed): reserve from it for the active contracts whose
    preferences it meets and whose tranches it does not cover yet: first those that counted on
    this batch's project and vintage (``forward``), up to what they counted on, then by the
    soonest due tranche. Runs in the caller's transaction and takes only that batch, in one
    ledger movement: the contracts it serves are locked together (in id order), their needs
    read again under the lock."""
    listed = db.session.scalar(
        select(Listing.id).where(Listing.batch_id == batch.id, Listing.is_active.is_(True))
    )
    if listed is None:
        return {}
    candidates = [c for c in _wanting(batch) if c.need > 0]
    if not candidates:
        return {}
    ids = sorted(c.id for c in candidates)
    db.session.execute(
        select(Contract.id).where(Contract.id.in_(ids)).order_by(Contract.id).with_for_update(key_share=True)
    ).all()
    needs = {c.id: c.need for c in _wanting(batch, ids)}

    # Contracts that counted on this project's vintage come first, each up to its forward tonnes.
    claims = forward.claims_on(batch, [c.id for c in candidates])
    first = {c.contract_id: min(c.forward, needs.get(c.contract_id, 0)) for c in claims}
    candidates = [c for c in candidates if first.get(c.id)] + [c for c in candidates if not first.get(c.id)]
    accounts = {
        a.ref: a
        for a in db.session.scalars(
            select(Account).where(
                Account.kind == AccountKind.RESERVE, Account.ref.in_([c.reserve_ref for c in candidates])
            )
        )
    }
    allocations = [
        (accounts[c.reserve_ref], first.get(c.id) or needs[c.id])
        for c in candidates
        if needs.get(c.id, 0) > 0 and c.reserve_ref in accounts
    ]
    if not allocations:
        return {}
    _movement, given = ledger.distribute(
        batch,
        source=ledger.system_account(AccountKind.INVENTORY),
        allocations=allocations,
        reference=f"issuance:{batch.code}:reserve",
        actor=actor,
    )
    by_account = {a.id: c for c in candidates for a in [accounts.get(c.reserve_ref)] if a is not None}
    forward.record_reserved(claims, {by_account[a].id: n for a, n in given.items()})
    got = {}
    for account_id, n in given.items():
        number = by_account[account_id].number
        got[number] = n
        audit.record(
            actor, "contract.reserve", "contract", number, after={"reserved": n, "batch": batch.code}
        )
    if got:
        log.info("batch %s: reserved %s for %s contract(s)", batch.code, sum(got.values()), len(got))
    return got


@dataclass(frozen=True)
class _Wanting:
    id: int
    number: str
    need: int
    next_due: date

    @property
    def reserve_ref(self) -> str:
        return f"contract:{self.number}"


def _wanting(batch: Batch, ids: list[int] | None = None) -> list[_Wanting]:
    """Active contracts whose preferences ``batch`` meets, with what their undelivered
    tranches lack beyond their reserve, soonest next due tranche first. Three queries."""
    preferences = (
        Contract.standard,
        Contract.project_types,
        Contract.counties,
        Contract.vintage_from,
        Contract.vintage_to,
    )
    query = (
        select(
            Contract.id,
            Contract.number,
            *preferences,
            func.sum(Tranche.quantity - Tranche.delivered).label("undelivered"),
            func.min(case((Tranche.delivered < Tranche.quantity, Tranche.due))).label("next_due"),
        )
        .join(Tranche, Tranche.contract_id == Contract.id)
        .where(Contract.status == ContractStatus.ACTIVE)
        .group_by(Contract.id, Contract.number, *preferences)
    )
    if ids is not None:
        query = query.where(Contract.id.in_(ids))
    rows = [r for r in db.session.execute(query) if r.undelivered > 0 and admits(r, batch)]
    held = _reserve_balances([f"contract:{r.number}" for r in rows])
    found = [
        _Wanting(r.id, r.number, int(r.undelivered) - held.get(f"contract:{r.number}", 0), r.next_due)
        for r in rows
    ]
    return sorted(found, key=lambda w: (w.next_due, w.id))


def _reserve_balances(refs: list[str]) -> dict[str, int]:
    if not refs:
        return {}
    rows = db.session.execute(
        select(Account.ref, func.sum(Block.serial_end - Block.serial_start + 1))
        .join(Block, Block.account_id == Account.id)
        .where(Account.kind == AccountKind.RESERVE, Account.ref.in_(refs))
        .group_by(Account.ref)
    )
    return {ref: int(n) for ref, n in rows}


def _release(contract: Contract, quantity: int, *, actor: str, why: str) -> int:
    if quantity <= 0:
        return 0
    movement = ledger.transfer(
        quantity,
        source=_reserve_account(contract),
        destination=ledger.system_account(AccountKind.INVENTORY),
        reference=f"contract:{contract.number}:{why}",
        actor=actor,
    )
    return movement.quantity


# --- new stock ------------------------------------------------------------------------------------


from portal.catalog.services import stock_listed  # noqa: E402  (the catalog must not import contracts)


@stock_listed.connect
def _reserve_new_stock(batch, actor: str = "system", **_kwargs) -> None:
    reserve_from_batch(batch, actor=actor)
