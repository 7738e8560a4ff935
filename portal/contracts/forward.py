"""Forward supply: a contract's tranches covered by the forecast issuances of named projects in
development, before their credits exist.

Sales staff name a project of the pipeline, a vintage and tonnes (``add``). The claims on one
project's vintage, over every open contract, may not exceed the tonnes its forecast in force
expects, and a contract's forward tonnes may not exceed what its reserve does not cover yet.
When the project's batch of that vintage comes up for sale, ``allocations`` puts those contracts
first, each up to its forward tonnes, before new stock is dealt to everyone else
(``reserve.reserve_from_batch``); what was reserved is counted on the source, so the same
tonnes are never claimed twice. Until then the tonnes show as forward, not reserved, on the
contract's page and in supply planning.

A forecast cut below what contracts claim (``shortfalls``) shows on the planning page, and the
operator's revision mails the sales owners of the contracts concerned (``_forecast_revised``).

Locking: a change takes the contract's row (``_locked``), then the pipeline project's, so that
two contracts claiming the same vintage at once are checked one after the other; the reserve
takes contract rows before the sources, in the same order.
"""

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import case, func, select, update

from portal.audit import services as audit
from portal.contracts.common import ContractError, _locked, preferences
from portal.contracts.models import Contract, ContractStatus, ForwardSource
from portal.core import mail
from portal.core.i18n import absolute_url
from portal.core.numbers import whole
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind, Batch
from portal.pipeline.forecast import expected_by_vintage, forecast_revised
from portal.pipeline.models import PipelineProject, ProjectState

#: Forward sources one contract may name.
MAX_SOURCES = 50
OPEN = (ContractStatus.DRAFT, ContractStatus.ACTIVE)


def sources(contract: Contract) -> list[ForwardSource]:
    return list(
        db.session.scalars(
            select(ForwardSource)
            .filter_by(contract_id=contract.id)
            .order_by(ForwardSource.vintage, ForwardSource.id)
        )
    )


def left(contract: Contract) -> int:
    """Tonnes of ``contract`` that still await the issuance of the projects it counts on."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(ForwardSource.quantity - ForwardSource.reserved), 0)).where(
                ForwardSource.contract_id == contract.id
            )
        )
    )


def forward_by_contract() -> dict[int, int]:
    """Tonnes still awaiting issuance per open contract (supply planning)."""
    rows = db.session.execute(
        select(ForwardSource.contract_id, func.sum(ForwardSource.quantity - ForwardSource.reserved))
        .join(Contract, Contract.id == ForwardSource.contract_id)
        .where(Contract.status.in_(OPEN))
        .group_by(ForwardSource.contract_id)
    )
    return {contract_id: int(n) for contract_id, n in rows if n}


def claimed(project_id: int, vintage: int, *, excluding: int | None = None) -> int:
    """Tonnes of the project's vintage that contracts claim: the whole claim of open contracts,
    what was reserved for the others (delivered, or given back when they ended)."""
    query = (
        select(
            func.coalesce(
                func.sum(
                    case(
                        (Contract.status.in_(OPEN), ForwardSource.quantity),
                        else_=ForwardSource.reserved,
                    )
                ),
                0,
            )
        )
        .join(Contract, Contract.id == ForwardSource.contract_id)
        .where(ForwardSource.pipeline_project_id == project_id, ForwardSource.vintage == vintage)
    )
    if excluding is not None:
        query = query.where(ForwardSource.id != excluding)
    return int(db.session.scalar(query))


def _reserved(contract: Contract) -> int:
    """The contract's reserve balance (as ``reserve.reserved``: that module imports this one)."""
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.RESERVE, ref=contract.reserve_ref))
    return 0 if account is None else ledger.balance(account)


def _fits_preferences(contract: Contract, project: PipelineProject, vintage: int) -> bool:
    """``reserve.admits`` for credits not issued yet: the project's standard, type and county,
    and the vintage within the contract's years."""
    standard, types, counties, first, last = preferences(contract)
    return (
        (not standard or project.standard == standard)
        and (not types or project.type in types)
        and (not counties or project.region.code in counties)
        and (first is None or vintage >= first)
        and (last is None or vintage <= last)
    )


def add(contract: Contract, *, project_code, vintage, quantity, actor: str) -> ForwardSource:
    """Cover ``quantity`` t of ``contract`` by the forecast of ``project_code``'s ``vintage``."""
    contract = _locked(contract)
    if contract.status not in OPEN:
        raise ContractError(
            "not_open", _("Only a draft or active contract takes forward supply."), status=409
        )
    code = str(project_code or "").strip()[:32]
    project = db.session.scalar(
        select(PipelineProject).filter_by(code=code).with_for_update(of=PipelineProject)
    )
    if project is None:
        raise ContractError(
            "unknown_project", _("No project in development has the code %(code)s.", code=code or "—"), 404
        )
    if project.state != ProjectState.ACTIVE:
        raise ContractError("project_withdrawn", _("Project %(code)s is withdrawn.", code=project.code), 409)
    year = whole(vintage, 1990, 2100)
    expected = expected_by_vintage(project).get(year) if year is not None else None
    if expected is None:
        raise ContractError(
            "no_forecast",
            _(
                "Project %(code)s has no forecast for vintage %(vintage)s.",
                code=project.code,
                vintage=vintage,
            ),
        )
    tonnes = whole(quantity, 1, contract.total_quantity)
    if tonnes is None:
        raise ContractError(
            "invalid_quantity",
            _("Give whole tonnes from 1 to %(max)s.", max=f"{contract.total_quantity:,}"),
        )
    if not _fits_preferences(contract, project, year):
        raise ContractError(
            "not_preferred",
            _(
                "Project %(code)s's vintage %(vintage)s does not meet the contract's preferences.",
                code=project.code,
                vintage=year,
            ),
        )
    existing = sources(contract)
    if any(s.pipeline_project_id == project.id and s.vintage == year for s in existing):
        raise ContractError(
            "duplicate_source",
            _(
                "The contract already names vintage %(vintage)s of %(code)s: remove it first to change it.",
                code=project.code,
                vintage=year,
            ),
            status=409,
        )
    if len(existing) >= MAX_SOURCES:
        raise ContractError(
            "too_many_sources", _("A contract names at most %(n)s forward sources.", n=MAX_SOURCES)
        )
    open_need = contract.undelivered - _reserved(contract) - sum(s.forward for s in existing)
    if tonnes > open_need:
        raise ContractError(
            "beyond_need",
            _("Only %(n)s t of the contract are neither reserved nor covered forward.", n=max(open_need, 0)),
            status=409,
        )
    free = expected.expected_t - claimed(project.id, year)
    if tonnes > free:
        raise ContractError(
            "beyond_forecast",
            _(
                "Vintage %(vintage)s of %(code)s is forecast at %(expected)s t, of which %(free)s t are not yet claimed by contracts.",
                vintage=year,
                code=project.code,
                expected=f"{expected.expected_t:,}",
                free=f"{max(free, 0):,}",
            ),
            status=409,
        )
    source = ForwardSource(
        contract_id=contract.id,
        pipeline_project_id=project.id,
        vintage=year,
        quantity=tonnes,
        created_by=actor,
    )
    db.session.add(source)
    db.session.flush()
    audit.record(
        actor,
        "contract.forward_add",
        "contract",
        contract.number,
        after={"project": project.code, "vintage": year, "quantity": tonnes},
    )
    return source


def remove(contract: Contract, source_id, *, actor: str) -> None:
    """Stop counting on a forward source: what it has not yet reserved is released (what it
    did reserve stays recorded)."""
    contract = _locked(contract)
    source = db.session.scalar(
        select(ForwardSource).filter_by(id=whole(source_id, 1, 2**31 - 1) or 0, contract_id=contract.id)
    )
    if source is None:
        raise ContractError("unknown_source", _("No such forward source on this contract."), 404)
    if contract.status not in OPEN:
        raise ContractError(
            "not_open", _("Only a draft or active contract takes forward supply."), status=409
        )
    before = {"project": source.project.code, "vintage": source.vintage, "quantity": source.quantity}
    if source.reserved:
        source.quantity = source.reserved
    else:
        db.session.delete(source)
    db.session.flush()
    audit.record(actor, "contract.forward_remove", "contract", contract.number, before=before)


# --- new stock ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardClaim:
    source_id: int
    contract_id: int
    reserve_ref: str
    forward: int


def claims_on(batch: Batch, contract_ids: list[int]) -> list[ForwardClaim]:
    """The forward sources that ``batch`` fulfils (its project's vintage) among the active
    contracts ``contract_ids`` whose preferences it meets, in the order given."""
    rows = db.session.execute(
        select(
            ForwardSource.id,
            ForwardSource.contract_id,
            Contract.number,
            ForwardSource.quantity - ForwardSource.reserved,
        )
        .join(Contract, Contract.id == ForwardSource.contract_id)
        .join(PipelineProject, PipelineProject.id == ForwardSource.pipeline_project_id)
        .where(
            PipelineProject.catalog_project_id == batch.project_id,
            ForwardSource.vintage == batch.vintage_start.year,
            ForwardSource.contract_id.in_(contract_ids),
            Contract.status == ContractStatus.ACTIVE,
            ForwardSource.quantity > ForwardSource.reserved,
        )
    ).all()
    order = {cid: n for n, cid in enumerate(contract_ids)}
    return sorted(
        (ForwardClaim(sid, cid, f"contract:{number}", int(left)) for sid, cid, number, left in rows),
        key=lambda c: order[c.contract_id],
    )


def record_reserved(claims: list[ForwardClaim], given: dict[int, int]) -> None:
    """Count what the batch gave each claim's contract (``{contract id: tonnes}``) on its source."""
    for claim in claims:
        n = min(given.get(claim.contract_id, 0), claim.forward)
        if n:
            db.session.execute(
                update(ForwardSource)
                .where(ForwardSource.id == claim.source_id)
                .values(reserved=ForwardSource.reserved + n)
            )


# --- forecast cuts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortfall:
    project: PipelineProject
    vintage: int
    expected: int
    claimed: int
    contracts: list[str]


def shortfalls(project: PipelineProject | None = None) -> list[Shortfall]:
    """Vintages whose forecast in force expects less than open contracts still count on."""
    query = (
        select(
            ForwardSource.pipeline_project_id, ForwardSource.vintage, Contract.number, ForwardSource.quantity
        )
        .join(Contract, Contract.id == ForwardSource.contract_id)
        .where(Contract.status.in_(OPEN))
        .order_by(ForwardSource.pipeline_project_id, ForwardSource.vintage, Contract.number)
    )
    if project is not None:
        query = query.where(ForwardSource.pipeline_project_id == project.id)
    grouped: dict[tuple[int, int], list] = {}
    for project_id, vintage, number, quantity in db.session.execute(query):
        grouped.setdefault((project_id, vintage), []).append((number, quantity))
    found = []
    for (project_id, vintage), claims in grouped.items():
        subject = project if project is not None else db.session.get(PipelineProject, project_id)
        expected = expected_by_vintage(subject).get(vintage)
        wanted = claimed(project_id, vintage)
        limit = expected.expected_t if expected else 0
        if wanted > limit:
            found.append(Shortfall(subject, vintage, limit, wanted, sorted({n for n, _q in claims})))
    return found


@forecast_revised.connect
def _forecast_revised(project: PipelineProject, actor: str = "system", **_kwargs) -> None:
    """A revision that cuts a vintage below what contracts claim: tell each contract's sales owner
    (mail in the revision's transaction) and record it on the contract."""
    for shortfall in shortfalls(project):
        for number in shortfall.contracts:
            contract = db.session.scalar(select(Contract).filter_by(number=number))
            audit.record(
                actor,
                "contract.forward_shortfall",
                "contract",
                number,
                after={
                    "project": project.code,
                    "vintage": shortfall.vintage,
                    "expected": shortfall.expected,
                    "claimed": shortfall.claimed,
                },
            )
            owner = contract.owner
            if owner is None or not owner.is_active:
                continue
            with mail.in_recipient_language(owner):
                subject = _(
                    "Forecast cut: contract %(number)s counts on more than %(code)s is now expected to issue",
                    number=number,
                    code=project.code,
                )
                body = _(
                    "The forecast of %(code)s for vintage %(vintage)s is now %(expected)s t, but contracts "
                    "count on %(claimed)s t of it. Review the forward supply of contract %(number)s: %(url)s",
                    code=project.code,
                    vintage=shortfall.vintage,
                    expected=f"{shortfall.expected:,}",
                    claimed=f"{shortfall.claimed:,}",
                    number=number,
                    url=absolute_url("contracts.staff_contract", number=number),
                )
            mail.send(owner.email, subject, body)
