"""Guest checkout: a person or an organisation without an account buys a voluntary or event
retirement with a name, an e-mail address and, if they like, an organisation's name and USCC.

How it is modelled: the guest is a ``GuestBuyer`` row linked from the order (one guest row per
order), and the order belongs to the **guest organisation**, one row of ``organisations`` made on
the first guest order (approved, with a marker in place of a USCC that no real organisation can
have, since a real one's check character is verified). So a guest order is held, paid, fulfilled
by the payment webhook and refunded exactly as any other order; its certificate names the guest
(or the organisation the guest gave, with its USCC) as who retired, and is verified and listed
in the public register like any other. Staff see guest orders with every order; no account
belongs to the guest organisation, so no buyer does. Suspending the guest organisation stops
guest checkout.

Limits: a guest keeps to the smallest buyer's limit per order and to every buyer's limit per day
(counted by e-mail address), checked while holding the guest organisation's order lock, and to a
number of orders per client address (``core.throttle``). Compliance retirements and holdings
need an approved organisation.

The order's page is reached by a secret link, sent by e-mail when the order is placed: only the
SHA-256 of its token is stored, compared in constant time; a wrong or expired token finds
nothing (the pages answer 404). The receipt and the certificate's addresses follow by e-mail
once the payment is confirmed (``fulfilment``). Messages go through the outbox in the order's
transaction: none is sent for an order that was not committed.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.buyers import uscc as uscc_rules
from portal.buyers.accounts import EMAIL_PATTERN
from portal.buyers.models import Organisation, OrgStatus, Sector
from portal.certificates.models import Purpose
from portal.core import mail, throttle
from portal.core.i18n import absolute_url, datetime_text
from portal.core.text import clean_text, has_hidden_characters
from portal.extensions import db
from portal.offsets.holds import OrderError
from portal.offsets.models import GuestBuyer, Order
from portal.offsets.ordering import create_order
from portal.offsets.queries import find
from portal.timeutil import utcnow

#: Stands in for the guest organisation's USCC: not a valid code, so never a real organisation's.
GUEST_USCC = "GUEST-CHECKOUT"
#: How long the order's link works (the certificate itself is public for ever).
LINK_DAYS = 90
#: Guest orders placed from one client address per hour.
ORDERS_PER_ADDRESS = 10
ORDERS_FROM_ADDRESS = throttle.Rule("guest.orders.address", ORDERS_PER_ADDRESS, timedelta(hours=1))
NAME_MAX = 100
ORGANISATION_MAX = 200


@dataclass(frozen=True)
class GuestDetails:
    """Who the guest is, checked: name, e-mail (lower-cased), organisation name ("" if none)
    and USCC (None if none)."""

    name: str
    email: str
    organisation_name: str
    uscc: str | None


def check_details(name, email, organisation_name="", uscc="") -> GuestDetails:
    """The guest's details, checked; OrderError (400, naming the field) for anything wrong."""
    name = clean_text(
        name, field="name", label=_("Your name"), max_length=NAME_MAX, required=True, error=OrderError
    )
    if not isinstance(email, str):
        email = ""
    email = email.strip().lower()
    if not EMAIL_PATTERN.fullmatch(email) or len(email) > 254 or has_hidden_characters(email):
        raise OrderError(
            "invalid_email",
            _("%(email)s is not a valid e-mail address.", email=email[:254] or "—"),
            field="email",
        )
    organisation_name = clean_text(
        organisation_name,
        field="organisation_name",
        label=_("Organisation name"),
        max_length=ORGANISATION_MAX,
        required=False,
        error=OrderError,
    )
    code = uscc_rules.normalise(uscc) if isinstance(uscc, str) else ""
    if code:
        problem = uscc_rules.problem(code)
        if problem == "check":
            raise OrderError(
                "invalid_uscc",
                _("The check character of USCC %(uscc)s is wrong: please check the code.", uscc=code),
                field="uscc",
            )
        if problem is not None:
            raise OrderError(
                "invalid_uscc",
                _("%(uscc)s is not a unified social credit code (18 characters).", uscc=code[:40]),
                field="uscc",
            )
        if not organisation_name:
            raise OrderError(
                "invalid_organisation_name",
                _("Give the name of the organisation whose USCC you entered."),
                field="organisation_name",
            )
    return GuestDetails(name, email, organisation_name, code or None)


def guest_organisation() -> Organisation:
    """The organisation guest orders belong to, made on first use (see the module)."""
    found = db.session.scalar(select(Organisation).filter_by(uscc=GUEST_USCC))
    if found is not None:
        return found
    organisation = Organisation(
        name_zh="访客购买（无账户）",
        name_en="Guest checkout (no account)",
        uscc=GUEST_USCC,
        sector=Sector.OTHER,
        status=OrgStatus.APPROVED,
        status_since=utcnow(),
    )
    try:
        with db.session.begin_nested():  # two first guests at once: one row wins
            db.session.add(organisation)
    except IntegrityError:
        return db.session.scalar(select(Organisation).filter_by(uscc=GUEST_USCC))
    audit.record(
        "system", "organisation.create_guest", "organisation", GUEST_USCC, after={"status": "approved"}
    )
    return organisation


def is_guest_organisation(organisation) -> bool:
    return organisation is not None and organisation.uscc == GUEST_USCC


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def place_order(
    details: GuestDetails,
    *,
    lines,
    shown_prices=None,
    beneficiary="",
    purpose,
    purpose_detail="",
    address: str,
) -> tuple[Order, str]:
    """Hold a guest's order (voluntary or event only) and mail its link; (order, token). The
    token is the secret of the order's link, given back once and stored only as its hash.

    The caller commits, then attaches the payment (``ordering.attach_payment``), as for any
    order. OrderError (nothing held) for a refused order."""
    if purpose == Purpose.COMPLIANCE:
        raise OrderError(
            "guest_compliance",
            _(
                "Compliance retirements and holdings need an approved organisation: register your "
                "organisation and sign in to buy them."
            ),
            403,
            "purpose",
        )
    if purpose not in (Purpose.VOLUNTARY, Purpose.EVENT):
        raise OrderError("invalid_purpose", _("Choose an event or a voluntary offset."), field="purpose")
    if throttle.take((ORDERS_FROM_ADDRESS, (address or "unknown")[:64])) is not None:
        raise OrderError(
            "too_many_guest_orders",
            _(
                "Too many orders without an account from your address: please try again in an hour, or sign in."
            ),
            429,
        )
    organisation = guest_organisation()
    token = secrets.token_urlsafe(32)
    guest = GuestBuyer(
        name=details.name,
        email=details.email,
        organisation_name=details.organisation_name,
        uscc=details.uscc,
        token_hash=_hash(token),
        link_expires_at=utcnow() + timedelta(days=LINK_DAYS),
    )
    db.session.add(guest)
    db.session.flush()
    actor = f"guest:{guest.id}"
    order, _created = create_order(
        organisation,
        lines=lines,
        shown_prices=shown_prices,
        beneficiary=beneficiary or details.organisation_name or details.name,
        purpose=purpose,
        purpose_detail=purpose_detail,
        actor=actor,
        guest=guest,
    )
    audit.record(
        actor,
        "guest.order",
        "order",
        order.public_id,
        after={"guest": guest.id, "organisation_name": guest.organisation_name, "uscc": guest.uscc},
    )
    _mail_link(order, token)
    return order, token


def order_url(order: Order, token: str) -> str:
    """The order's secret link, absolute (for the e-mail)."""
    return absolute_url("offsets.guest_order", public_id=order.public_id, token=token)


def _mail_link(order: Order, token: str) -> None:
    body = _(
        "Hello %(name)s,\n\nyour order %(order)s of %(n)s t (%(amount)s yuan) is held for you until "
        "%(until)s. Pay it, and later download its certificate, on this page:\n%(url)s\n\n"
        "Keep this link to yourself: anyone who has it can see the order. It works for %(days)s days.\n",
        name=order.guest.name,
        order=order.public_id,
        n=order.quantity,
        amount=order.amount,
        until=datetime_text(order.hold_expires_at),
        url=order_url(order, token),
        days=LINK_DAYS,
    )
    mail.send(order.guest.email, _("Your order %(order)s", order=order.public_id), body)


def find_order(public_id, token) -> Order | None:
    """The guest order ``public_id`` if ``token`` is its link's token and the link has not
    expired; None otherwise (the hashes compared in constant time)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    order = find(public_id)
    if order is None or order.guest is None:
        return None
    if not hmac.compare_digest(_hash(token), order.guest.token_hash):
        return None
    if order.guest.link_expires_at <= utcnow():
        return None
    return order
