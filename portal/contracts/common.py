"""What every part of the contracts package shares: the refusal (``ContractError``), finding and
locking a contract, numbering contracts and invoices, replaying a repeated Idempotency-Key, and
the mail to a contract's buyer and sales owner.

Locking: every action on a contract locks its row first (``FOR NO KEY UPDATE``, ``_locked``),
then makes at most one ledger movement, which locks the reserve account and the batches in the
ledger's global order. Checkout orders never lock contract rows. New stock reserved for many
contracts at once (``reserve.reserve_from_batch``) locks their rows together in id order, then the
one batch: when the batch was just issued, no other transaction can see it yet, let alone hold it;
when an existing batch is listed again, the contract rows come first there too, as in every other
action. So contract actions cannot deadlock with orders or with each other. A delivery that needs
more than the reserve holds first tops the reserve up from inventory in a transaction of its own,
then delivers from the reserve in a second one (``delivery.deliver``): each transaction makes one
movement, as the ledger's no-deadlock argument needs.
"""

from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import Integer, func, select
from sqlalchemy.exc import IntegrityError

from portal.buyers.models import User
from portal.contracts.models import Contract, Invoice, Tranche
from portal.core import idempotency, mail
from portal.core.errors import ServiceError
from portal.extensions import db

CENT = Decimal("0.01")
#: A tranche may be delivered from this many days before it is due.
EARLY_DELIVERY_DAYS = 30


class ContractError(ServiceError):
    """A refused contract action: nothing was changed, reserved, delivered or invoiced."""


# --- numbers --------------------------------------------------------------------------------------


def _next_number(column, prefix: str, width: int) -> str:
    """The prefix and one more than the highest sequence used with it (compared as numbers:
    ``…-10000`` follows ``…-9999``)."""
    sequence = func.cast(func.substr(column, len(prefix) + 1), Integer)
    last = db.session.scalar(select(func.max(sequence)).where(column.like(prefix + "%")))
    return f"{prefix}{(last or 0) + 1:0{width}d}"


def _insert_numbered(obj, column, prefix: str, width: int, existing=None):
    """Give ``obj`` the next number and insert it; a concurrent insert of the same number makes
    the unique constraint refuse one of them, which tries the next number. When another unique
    constraint refused it (a concurrent repeat of the same Idempotency-Key), ``existing()``
    finds the winner's row, which is returned instead; None when ``obj`` was inserted."""
    for _attempt in range(20):
        obj.number = _next_number(column, prefix, width)
        try:
            with db.session.begin_nested():
                db.session.add(obj)
                db.session.flush()
            return None
        except IntegrityError:
            db.session.expunge(obj) if obj in db.session else None
            if existing is not None and (found := existing()) is not None:
                return found
    raise ContractError("busy", _("Please try again."), status=503)


# --- a contract's preferences -------------------------------------------------------------------


def preferences(contract) -> tuple[str, list[str], list[str], int | None, int | None]:
    """(standard, project types, county codes, first vintage, last vintage) of ``contract`` (or
    of a row with the same columns); empty means any."""
    return (
        contract.standard or "",
        [t for t in (contract.project_types or "").split(",") if t],
        [c for c in (contract.counties or "").split(",") if c],
        contract.vintage_from or None,
        contract.vintage_to or None,
    )


# --- finding and locking --------------------------------------------------------------------------


def find(number) -> Contract | None:
    if not isinstance(number, str) or len(number) > 20:
        return None
    return db.session.scalar(select(Contract).filter_by(number=number.strip().upper()))


def find_invoice(number) -> Invoice | None:
    if not isinstance(number, str) or len(number) > 20:
        return None
    return db.session.scalar(select(Invoice).filter_by(number=number.strip().upper()))


def _locked(contract: Contract) -> Contract:
    db.session.execute(select(Contract.id).where(Contract.id == contract.id).with_for_update(key_share=True))
    db.session.refresh(contract)
    # The tranches as they are now, in one query (another transaction may have delivered).
    db.session.execute(
        select(Tranche).filter_by(contract_id=contract.id).execution_options(populate_existing=True)
    ).all()
    return contract


# --- repeated requests ----------------------------------------------------------------------------


def _replay(found, digest: str | None):
    """The earlier result for a repeated Idempotency-Key, or 422 when the request differs."""
    return idempotency.replay(found, digest, ContractError), False


def _check_key(idempotency_key) -> None:
    idempotency.check_key(idempotency_key, ContractError)


# --- mail -----------------------------------------------------------------------------------------


def _notify(contract: Contract, write) -> None:
    """Tell the buyer's administrators and the contract's sales owner, each in words of its own
    and with a link it can open: ``write(for_staff)`` gives the (subject, body) of a message,
    for the buyer (its account's pages) or for the owner (the back office's). Each message is
    written in its recipient's language."""
    recipients = [
        (user, False)
        for user in db.session.scalars(
            select(User)
            .filter_by(organisation_id=contract.organisation_id, is_org_admin=True, is_active=True)
            .order_by(User.email)
        )
    ]
    if contract.owner is not None and contract.owner.is_active:
        recipients.append((contract.owner, True))
    for user, for_staff in recipients:
        with mail.in_recipient_language(user):
            subject, body = write(for_staff)
        mail.send(user.email, subject, body)
