"""An order's hold on credits: taken from listed stock into the order's own account, released
back to inventory, and the order row locked while either happens. Refusals are OrderError."""

from datetime import UTC, datetime, time

from sqlalchemy import case, exists, func, select

from portal.alliance import services as alliance
from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers.models import Organisation
from portal.catalog.models import Listing
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind, Batch
from portal.offsets.models import GuestBuyer, Order, OrderStatus
from portal.timeutil import BEIJING, beijing_today, utcnow


class OrderError(ServiceError):
    """A refused order or order action: nothing was held, charged or retired."""


def _listed(organisation=None):
    """SQL condition on Batch: listed for sale at an active price and, given an organisation
    that is not an alliance member, past the members' first call."""
    start = None if organisation is None or alliance.is_member(organisation) else alliance.first_call_start()
    if start is None:
        return exists().where(Listing.batch_id == Batch.id, Listing.is_active.is_(True))
    return exists().where(
        Listing.batch_id == Batch.id, Listing.is_active.is_(True), Listing.listed_at <= start
    )


def _year_start():
    return utcnow().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _day_start():
    return datetime.combine(beijing_today(), time(0), BEIJING).astimezone(UTC)


def _bought_since(organisation, start):
    return select(func.coalesce(func.sum(Order.quantity), 0)).where(
        Order.organisation_id == organisation.id,
        Order.created_at >= start,
        Order.status.in_((OrderStatus.AWAITING_PAYMENT, OrderStatus.FULFILLED)),
    )


def bought_this_year(organisation) -> int:
    """Tonnes the organisation has ordered this (calendar) year, paid or still held."""
    return db.session.scalar(_bought_since(organisation, _year_start()))


def _bought_this_year_and_today(organisation) -> tuple[int, int]:
    """``(bought_this_year, bought_today)`` in one statement."""
    year, day = _year_start(), _day_start()
    this_year, today = db.session.execute(
        select(
            func.coalesce(func.sum(Order.quantity), 0),
            func.coalesce(func.sum(case((Order.created_at >= day, Order.quantity), else_=0)), 0),
        ).where(
            Order.organisation_id == organisation.id,
            Order.created_at >= min(year, day),
            Order.status.in_((OrderStatus.AWAITING_PAYMENT, OrderStatus.FULFILLED)),
        )
    ).one()
    if day < year:  # the first hours of 1 January, Beijing time: last year's orders count today
        this_year = bought_this_year(organisation)
    return int(this_year), int(today)


def bought_today(organisation, guest_email: str | None = None) -> int:
    """Tonnes ordered since midnight (Beijing) by the organisation, or, for guest orders, by the
    guest of ``guest_email``; paid or still held."""
    query = _bought_since(organisation, _day_start())
    if guest_email is not None:
        query = query.join(GuestBuyer, GuestBuyer.id == Order.guest_id).where(GuestBuyer.email == guest_email)
    return db.session.scalar(query)


def purchase_refusal(organisation, quantity: int, guest_email: str | None = None) -> str | None:
    """Why ``organisation`` (or the guest of ``guest_email``, ordering as the guest organisation)
    may not order ``quantity`` t now, or None: its status and limits, per order, per year and per
    day; a guest's as the smallest buyer's. Run while holding the organisation's order lock."""
    if guest_email is None:
        this_year, today = _bought_this_year_and_today(organisation)
        return policy.purchase_refusal(organisation, quantity, bought_this_year=this_year, bought_today=today)
    return policy.purchase_refusal(organisation, quantity) or policy.guest_refusal(
        quantity, bought_today=bought_today(organisation, guest_email)
    )


def _lock_organisation(organisation) -> None:
    """Orders of one organisation take turns from here (see ``create_order``)."""
    db.session.execute(
        select(Organisation.id).where(Organisation.id == organisation.id).with_for_update(key_share=True)
    )


def _hold(order: Order, condition):
    """Hold the order's tonnes: the lines the buyer named, each exactly (all or none, in one
    movement), or the quantity by the stated allocation rule."""
    hold = ledger.open_account(AccountKind.HOLD, order.hold_ref, capacity=order.quantity)
    if order.by_lines:
        return ledger.transfer_each(
            [(line.batch.code, line.quantity) for line in order.lines],
            source=ledger.system_account(AccountKind.INVENTORY),
            destination=hold,
            batch_condition=condition,
            reference=order.hold_ref,
            actor=order.actor,
        )
    return ledger.transfer(
        order.quantity,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=hold,
        batch_codes=[order.batch_code] if order.batch_code else None,
        batch_condition=condition,
        reference=order.hold_ref,
        actor=order.actor,
    )


def _locked(order: Order) -> Order:
    """The order row, locked for this transaction and re-read (webhooks and expiry race)."""
    return db.session.scalars(
        select(Order)
        .where(Order.id == order.id)
        # OF orders: the eagerly joined organisation is the nullable side of an outer join,
        # which PostgreSQL refuses to lock (and it needs no lock).
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    ).one()


def _release(order: Order, status: OrderStatus, note: str, *, actor: str) -> None:
    hold = db.session.scalar(select(Account).filter_by(kind=AccountKind.HOLD, ref=order.hold_ref))
    held = ledger.balance(hold) if hold is not None else 0
    if held:
        ledger.transfer(
            held,
            source=hold,
            destination=ledger.system_account(AccountKind.INVENTORY),
            reference=order.hold_ref,
            actor=actor,
        )
    before = order.status
    order.status = status
    order.note = note
    audit.record(
        actor,
        f"order.{status}",
        "order",
        order.public_id,
        before={"status": before},
        after={"status": status, "released": held, "note": note},
    )
