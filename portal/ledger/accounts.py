"""Accounts and what they hold: opening hold, reserve and holding accounts, the system accounts,
capacities and balances. Read by everyone; written only as part of a movement or when an
account is opened (see ``portal.ledger.services``, which re-exports these)."""

import functools
import json
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from portal.core.database import (
    attached,
    committed_reader,
    is_postgresql,
    plain_columns,
    raw_rows,
    upsert_insert,
)
from portal.core.numbers import whole
from portal.extensions import db
from portal.ledger.errors import InvalidMovement, InvalidQuantity, UnknownAccount
from portal.ledger.models import (
    CAPACITY_KINDS,
    MAX_QUANTITY,
    OWNED_KINDS,
    SYSTEM_KINDS,
    Account,
    AccountKind,
    Batch,
    Block,
)
from portal.timeutil import utcnow

# --- accounts -------------------------------------------------------------------------------


def system_account(kind: AccountKind) -> Account:
    """The single inventory, buffer, retired or cancelled account (created on first use)."""
    if kind not in SYSTEM_KINDS:
        raise ValueError(f"{kind} is not a system account kind")
    return _get_or_create(kind, "", None)


def open_account(kind: AccountKind, ref: str, capacity: int | None = None) -> Account:
    """The hold, reserve or holding account for ``ref``, opened if it does not exist yet.

    A hold or reserve is given the capacity it was opened for and can never contain more.
    """
    if kind not in OWNED_KINDS:
        raise ValueError(f"{kind} is not an owned account kind")
    if not ref or len(ref) > 64:
        raise ValueError("an owned account needs a reference of 1 to 64 characters")
    if kind in CAPACITY_KINDS:
        _check_quantity(capacity)
    elif capacity is not None:
        raise ValueError(f"a {kind} account has no capacity")
    if kind == AccountKind.HOLD:  # each order's own: new but for a repeat
        account = _create_or_get(kind, ref, capacity)
    else:
        account = _get_or_create(kind, ref, capacity)
    if account.capacity != capacity:
        raise InvalidMovement(reason="capacity_mismatch", account=str(account), capacity=account.capacity)
    return account


def raise_capacity(account: Account, capacity: int) -> Account:
    """Let a hold or reserve contain up to ``capacity`` from now on (a contract amended to a
    larger volume). Capacities only grow: ``ledger verify`` checks every past balance against
    the current capacity, and a smaller volume is the owner's rule to keep, not the account's."""
    if account.kind not in CAPACITY_KINDS:
        raise ValueError(f"a {account.kind} account has no capacity")
    _check_quantity(capacity)
    db.session.execute(select(Account.id).where(Account.id == account.id).with_for_update(key_share=True))
    db.session.refresh(account)
    if capacity > account.capacity:
        account.capacity = capacity
        db.session.flush()
    return account


#: Built once: every movement looks up its accounts.
_BY_KIND_AND_REF = select(Account).where(Account.kind == bindparam("kind"), Account.ref == bindparam("ref"))


def find_account(kind: AccountKind, ref: str = "") -> Account:
    account = _known(kind, ref) or db.session.scalar(_BY_KIND_AND_REF, {"kind": kind, "ref": ref})
    if account is None:
        raise UnknownAccount(account=f"{kind}:{ref}" if ref else str(kind))
    return account


def _get_or_create(kind: AccountKind, ref: str, capacity: int | None) -> Account:
    account = _known(kind, ref) or db.session.scalar(_BY_KIND_AND_REF, {"kind": kind, "ref": ref})
    if account is not None:
        return account
    try:
        # A concurrent request may create the same account: the unique constraint decides,
        # and the savepoint keeps the loser's transaction usable.
        with db.session.begin_nested():
            account = Account(kind=kind, ref=ref, capacity=capacity)
            db.session.add(account)
    except IntegrityError:
        account = db.session.scalar(select(Account).filter_by(kind=kind, ref=ref))
    return account


def _create_or_get(kind: AccountKind, ref: str, capacity: int | None) -> Account:
    """As ``_get_or_create``, for an account that most likely does not exist yet: one INSERT …
    ON CONFLICT DO NOTHING RETURNING, and a look-up only when it existed."""
    statement = (
        upsert_insert(Account)
        .values(kind=kind, ref=ref, capacity=capacity, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "ref"])
        .returning(Account)
    )
    account = db.session.scalars(statement).one_or_none()
    if account is None:
        account = db.session.scalar(_BY_KIND_AND_REF, {"kind": kind, "ref": ref})
    return account


#: Accounts whose row never changes once written (no capacity to raise; accounts are never
#: deleted): the system accounts and the organisations' holdings.
_FIXED_KINDS = frozenset(SYSTEM_KINDS) | {AccountKind.HOLDING}


@functools.cache
def _raw_by_kind_and_ref() -> tuple[str, tuple[str, ...]]:
    """The account by kind and reference in the driver's own SQL, and its columns' attributes;
    built at the first call (every model mapped)."""
    columns = plain_columns(Account)
    names = ", ".join(name for _key, name in columns)
    sql = f"SELECT {names} FROM accounts WHERE kind = %(kind)s AND ref = %(ref)s"
    return sql, tuple(key for key, _name in columns)


def _known(kind: AccountKind, ref: str) -> Account | None:
    """PostgreSQL: a system account or a holding as this worker has seen it committed, in the
    session without a statement (every movement names one or two; their rows never change).
    The first time, it is read on ``core.database.committed_reader``, which sees only committed
    rows: an account opened by a transaction that may still roll back is never remembered.
    None where it is not known (SQLite, other kinds, not committed yet): the session reads it."""
    if kind not in _FIXED_KINDS or not is_postgresql():
        return None
    known = current_app.extensions.setdefault("portal.ledger_accounts", {})
    values = known.get((kind, ref))
    if values is None:
        sql, keys = _raw_by_kind_and_ref()
        rows = raw_rows(committed_reader(), sql, {"kind": str(kind), "ref": ref})
        if not rows:
            return None
        values = known[(kind, ref)] = dict(zip(keys, rows[0], strict=True))
    return attached(Account, values)


# --- reading ---------------------------------------------------------------------------------

_QUANTITY = Block.serial_end - Block.serial_start + 1


def balance(account: Account, batch: Batch | None = None) -> int:
    query = select(func.coalesce(func.sum(_QUANTITY), 0)).where(Block.account_id == account.id)
    if batch is not None:
        query = query.where(Block.batch_id == batch.id)
    return int(db.session.scalar(query))


def balances_by_batch(account: Account, batch_ids: Sequence[int] | None = None) -> dict[int, int]:
    """``{batch_id: tonnes}`` of what ``account`` holds, for the given batches or all."""
    query = (
        select(Block.batch_id, func.sum(_QUANTITY))
        .where(Block.account_id == account.id)
        .group_by(Block.batch_id)
    )
    if batch_ids is not None:
        query = query.where(Block.batch_id.in_(batch_ids))
    return {batch_id: int(total) for batch_id, total in db.session.execute(query)}


def held_per_batch(kind: AccountKind, batch_id, ref: str = ""):
    """A correlated SQL expression: the tonnes of batch ``batch_id`` (a column of the enclosing
    query) that one account holds. For other packages to select, filter and sort by (the
    catalog's available quantity is the inventory's). Read-only: a missing account holds 0."""
    account_id = select(Account.id).where(Account.kind == kind, Account.ref == ref).scalar_subquery()
    return (
        select(func.coalesce(func.sum(_QUANTITY), 0))
        .where(Block.batch_id == batch_id, Block.account_id == account_id)
        .scalar_subquery()
    )


# --- quantities ---------------------------------------------------------------------------------


def parse_quantity(value) -> int:
    """A quantity typed into a form or sent in JSON, as whole tonnes; InvalidQuantity otherwise.

    Accepts an int or a string of ASCII digits (see ``portal.core.numbers.whole``)."""
    found = whole(value, 1, MAX_QUANTITY)
    if found is None:
        if _too_large(value):
            raise InvalidQuantity(value=str(value)[:20], most=f"{MAX_QUANTITY:,}")
        raise InvalidQuantity(value=_as_sent(value))
    return found


def _as_sent(value) -> str:
    """A refused quantity as its sender wrote it: a form's text as typed, a JSON value in JSON's
    spelling (``null``, ``true``, ``[1, 2]``, not Python's ``None``, ``True``), cut short."""
    if isinstance(value, str):
        return value[:20]
    try:
        shown = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # NaN or an infinity (a JSON parser that lets them through)
        shown = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), str(value))
    return shown if len(shown) <= 20 else shown[:19] + "…"


def _too_large(value) -> bool:
    """Whether ``value`` is a whole number of tonnes, only above what the ledger counts."""
    if type(value) is int:
        return value > MAX_QUANTITY
    if isinstance(value, str):
        digits = value.strip()
        return (
            digits.isascii()
            and digits.isdigit()
            and (len(digits.lstrip("0")) > 10 or int(digits) > MAX_QUANTITY)
        )
    return False


def _check_quantity(quantity) -> None:
    # bool is an int in Python; a quantity of True tonnes is not.
    if type(quantity) is not int or not 0 < quantity <= MAX_QUANTITY:
        raise InvalidQuantity(value=quantity)
