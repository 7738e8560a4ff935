"""A contract's life: drafts (created, edited, deleted), signing with its first version and
reserve, versions, amendments, and early termination."""

import json
import logging

from flask_babel import gettext as _
from sqlalchemy import select, update

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers.models import Organisation, User
from portal.contracts.common import ContractError, _check_key, _insert_numbered, _locked, _notify, _replay
from portal.contracts.invoices import complete_if_done
from portal.contracts.models import Contract, ContractStatus, ContractVersion, Tranche
from portal.contracts.reserve import _release, _reserve_account, _top_up, reserved
from portal.contracts.terms import _apply, _text, parse_terms, terms_of
from portal.core.i18n import absolute_url, date_text, localized
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind
from portal.timeutil import beijing_today, utcnow

log = logging.getLogger(__name__)


# --- drafting -------------------------------------------------------------------------------------


def create_draft(
    organisation: Organisation,
    data: dict,
    *,
    owner: User,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
) -> tuple[Contract, bool]:
    """A new draft, and whether it was created now (False: replayed for its Idempotency-Key)."""
    if organisation is None:
        raise ContractError("unknown_organisation", _("There is no such organisation."), field="org_uscc")
    _check_key(idempotency_key)

    def earlier():
        if idempotency_key is None:
            return None
        return db.session.scalar(
            select(Contract).filter_by(created_by=actor, idempotency_key=idempotency_key)
        )

    if (found := earlier()) is not None:
        return _replay(found, digest)
    terms = parse_terms(data)
    contract = Contract(
        organisation_id=organisation.id,
        owner_id=owner.id,
        status=ContractStatus.DRAFT,
        version=0,
        created_by=actor,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    _apply(contract, terms)
    contract.tranches = [Tranche(seq=i, due=d, quantity=q) for i, (d, q) in enumerate(terms.tranches, 1)]
    if (
        found := _insert_numbered(contract, Contract.number, f"OC-{beijing_today().year}-", 4, earlier)
    ) is not None:
        return _replay(found, digest)
    audit.record(actor, "contract.draft", "contract", contract.number, after=terms.as_json())
    return contract, True


def check_editable(contract: Contract) -> None:
    """ContractError unless ``contract`` is a draft (the edit form asks before showing itself)."""
    if contract.status != ContractStatus.DRAFT:
        raise ContractError(
            "signed_contract",
            _("A signed contract can only be changed by an amendment."),
            status=409,
        )


def check_amendable(contract: Contract) -> None:
    """ContractError unless ``contract`` is active (the amendment form asks before showing itself)."""
    if contract.status != ContractStatus.ACTIVE:
        raise ContractError("not_active", _("Only an active contract can be amended."), status=409)


def update_draft(contract: Contract, data: dict, *, actor: str) -> Contract:
    contract = _locked(contract)
    check_editable(contract)
    terms = parse_terms(data)
    before = terms_of(contract).as_json()
    _apply(contract, terms)
    contract.tranches.clear()
    db.session.flush()
    contract.tranches.extend(Tranche(seq=i, due=d, quantity=q) for i, (d, q) in enumerate(terms.tranches, 1))
    db.session.flush()
    audit.record(actor, "contract.edit", "contract", contract.number, before=before, after=terms.as_json())
    return contract


def _snapshot(contract: Contract, reason: str, actor: str) -> ContractVersion:
    document = terms_of(contract).as_json()
    document.update(
        {
            "number": contract.number,
            "version": contract.version,
            "buyer": {"uscc": contract.organisation.uscc, "name": contract.organisation.name_zh},
            "owner": contract.owner.email,
        }
    )
    version = ContractVersion(
        contract_id=contract.id,
        version=contract.version,
        terms=json.dumps(document, ensure_ascii=False, sort_keys=True),
        reason=reason,
        actor=actor,
    )
    db.session.add(version)
    return version


def versions(contract: Contract) -> list[ContractVersion]:
    return list(
        db.session.scalars(
            select(ContractVersion).filter_by(contract_id=contract.id).order_by(ContractVersion.version)
        )
    )


def sign(contract: Contract, *, actor: str) -> Contract:
    """Draft → active: version 1 is kept, the reserve account opened and filled as far as stock
    matching the preferences allows (soonest tranches first)."""
    contract = _locked(contract)
    if contract.status != ContractStatus.DRAFT:
        raise ContractError("not_draft", _("Only a draft can be signed."), status=409)
    refusal = policy.purchase_refusal(contract.organisation, contract.total_quantity, contract=True)
    if refusal:
        raise ContractError("buyer_refused", refusal, status=403)
    contract.status = ContractStatus.ACTIVE
    contract.version = 1
    contract.signed_at = utcnow()
    _snapshot(contract, "signed", actor)
    _reserve_account(contract)
    got = _top_up(contract, actor=actor)
    audit.record(
        actor,
        "contract.sign",
        "contract",
        contract.number,
        after={"version": 1, "total": contract.total_quantity, "reserved": got},
    )

    def signed(for_staff: bool):
        return (
            _("Offtake contract %(number)s is signed", number=contract.number),
            _(
                "Offtake contract %(number)s (%(title)s) with %(buyer)s for %(total)s t is signed and "
                "active. %(reserved)s t are reserved for its deliveries.\n\n%(url)s\n",
                number=contract.number,
                title=contract.title,
                buyer=localized(contract.organisation, "name"),
                total=contract.total_quantity,
                reserved=got,
                url=absolute_url("contracts.staff_contract", number=contract.number),
            )
            if for_staff
            else _(
                "Offtake contract %(number)s (%(title)s) for %(total)s t is signed and active. "
                "%(reserved)s t are reserved for its deliveries.\n\n%(url)s\n",
                number=contract.number,
                title=contract.title,
                total=contract.total_quantity,
                reserved=got,
                url=absolute_url("contracts.buyer_contract", number=contract.number),
            ),
        )

    _notify(contract, signed)
    return contract


# --- amending and ending --------------------------------------------------------------------------


def amend(contract: Contract, data: dict, reason, *, actor: str) -> Contract:
    """A new version of an active contract's terms and schedule. Delivered tonnes stay: every
    tranche with a delivery must keep its due date and at least its delivered quantity."""
    contract = _locked(contract)
    check_amendable(contract)
    reason = _text(reason, field="reason", label=_("Reason"), max_length=500, required=True)
    terms = parse_terms(data)
    before = terms_of(contract).as_json()
    if terms.total > contract.total_quantity:
        refusal = policy.purchase_refusal(contract.organisation, terms.total, contract=True)
        if refusal:
            raise ContractError("buyer_refused", refusal, status=403)

    new = list(terms.tranches)
    kept: dict[int, Tranche] = {}  # index in new -> existing tranche carried over
    for tranche in contract.tranches:
        if tranche.delivered == 0:
            continue
        match = next(
            (
                i
                for i, (due, q) in enumerate(new)
                if i not in kept and due == tranche.due and q >= tranche.delivered
            ),
            None,
        )
        if match is None:
            raise ContractError(
                "delivered_tranche",
                _(
                    "Tranche %(seq)s (due %(due)s) has %(n)s t delivered: keep its due date and at least that quantity.",
                    seq=tranche.seq,
                    due=date_text(tranche.due),
                    n=tranche.delivered,
                ),
                field="tranches",
            )
        kept[match] = tranche
    if terms.as_json() == before:
        raise ContractError("no_change", _("The amendment changes nothing."), field="tranches")

    _apply(contract, terms)
    # Renumber without colliding on (contract, seq): park the kept ones out of the way first.
    for tranche in contract.tranches:
        if tranche not in kept.values():
            db.session.delete(tranche)
    db.session.flush()
    db.session.execute(
        update(Tranche).where(Tranche.contract_id == contract.id).values(seq=Tranche.seq + 10_000)
    )
    for i, (due, quantity) in enumerate(new, 1):
        tranche = kept.get(i - 1)
        if tranche is None:
            db.session.add(Tranche(contract_id=contract.id, seq=i, due=due, quantity=quantity))
        else:
            db.session.execute(
                update(Tranche).where(Tranche.id == tranche.id).values(seq=i, quantity=quantity)
            )
    db.session.flush()
    for tranche in kept.values():
        db.session.expire(tranche)
    db.session.expire(contract, ["tranches"])
    contract.version += 1
    _snapshot(contract, reason, actor)

    account = _reserve_account_for_amend(contract)
    excess = ledger.balance(account) - contract.undelivered
    moved = -_release(contract, excess, actor=actor, why="amended") if excess > 0 else 0
    if moved == 0:
        moved = _top_up(contract, actor=actor)
    audit.record(
        actor,
        "contract.amend",
        "contract",
        contract.number,
        before=before,
        after={**terms.as_json(), "version": contract.version, "reason": reason, "reserve_change": moved},
    )
    complete_if_done(contract, actor=actor)  # an amendment may leave nothing more to deliver
    return contract


def _reserve_account_for_amend(contract: Contract) -> Account:
    account = ledger.find_account(AccountKind.RESERVE, contract.reserve_ref)
    return ledger.raise_capacity(account, contract.total_quantity)


def check_termination(contract: Contract, reason) -> str:
    """The reason as it will be kept, if ``contract`` may be terminated; ContractError otherwise.
    Changes nothing (the contract page asks for confirmation next)."""
    if contract.status == ContractStatus.DRAFT:
        raise ContractError(
            "draft_contract", _("A draft is deleted, not terminated: it was never signed."), status=409
        )
    if contract.status != ContractStatus.ACTIVE:
        raise ContractError("not_active", _("This contract has already ended."), status=409)
    return _text(reason, field="reason", label=_("Reason"), max_length=500, required=True)


def terminate(contract: Contract, reason, *, actor: str) -> Contract:
    """End an active contract early; its reserve goes back to inventory. Invoices already
    issued stay payable. (A draft is deleted instead: see ``delete_draft``.)"""
    contract = _locked(contract)
    reason = check_termination(contract, reason)
    released = _release(contract, reserved(contract), actor=actor, why="terminated")
    contract.status = ContractStatus.TERMINATED
    contract.terminated_at = utcnow()
    contract.termination_reason = reason
    audit.record(
        actor,
        "contract.terminate",
        "contract",
        contract.number,
        after={"reason": reason, "released": released},
    )
    return contract


def check_deletable(contract: Contract) -> None:
    """ContractError (409) unless ``contract`` is a draft: only what was never signed may go."""
    if contract.status != ContractStatus.DRAFT:
        raise ContractError(
            "signed_contract",
            _("Only a draft can be deleted; a signed contract is terminated, and its record stays."),
            status=409,
        )


def delete_draft(contract: Contract, *, actor: str) -> str:
    """Delete a draft with its schedule (it was never signed: nothing was reserved, delivered or
    shown to the buyer). The audit log keeps its last terms. Returns the draft's number."""
    contract = _locked(contract)
    check_deletable(contract)
    number = contract.number
    audit.record(
        actor,
        "contract.delete",
        "contract",
        number,
        before={**terms_of(contract).as_json(), "status": contract.status},
    )
    db.session.delete(contract)
    db.session.flush()
    log.info("draft contract %s deleted", number)
    return number
