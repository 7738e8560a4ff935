"""What the viewer of a catalog page is offered: the member price for an alliance member, and
for everyone else when a batch in the members' first call opens to them. The catalog's cached
pages are keyed by ``view_key`` and the terms (``version_columns``) so that each kind of viewer
gets its own copy, and a page showing a first call is rebuilt the moment it ends."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask_login import current_user
from sqlalchemy import select

from portal.alliance import services
from portal.alliance.models import AllianceTerms
from portal.catalog import cache
from portal.timeutil import utcnow


def viewer_organisation():
    """The signed-in buyer's organisation, or None."""
    if not getattr(current_user, "is_authenticated", False):
        return None
    return getattr(current_user, "organisation", None)


def viewer_is_member() -> bool:
    return services.is_member(viewer_organisation())


@dataclass(frozen=True)
class Offer:
    """A batch as one viewer may buy it."""

    listed: Decimal  #: the listed price
    price: Decimal  #: what this viewer pays per tonne
    member_price: bool  #: ``price`` is the member price (less than listed)
    #: In the members' first call until then (None: open to everyone).
    first_call_until: datetime | None
    #: The viewer may not buy it before ``first_call_until`` (not a member).
    closed: bool


def offer(listed: Decimal, listed_at: datetime | None) -> Offer:
    terms = services.terms()
    member = viewer_is_member()
    price = terms.member_price(listed) if member else listed
    until = terms.first_call_until(listed_at)
    if until is not None and until <= utcnow():
        until = None
    if until is not None:
        cache.good_until(until)  # a cached page showing this first call is right until then
    return Offer(listed, price, price != listed, until, until is not None and not member)


def view_key() -> tuple:
    """Who views a cached catalog page, as far as it matters: a member or not (the terms
    themselves are part of the catalog's data version, see ``version_columns``)."""
    return (viewer_is_member(),)


def version_columns():
    """The terms in force, read with the catalog's data version (no query of their own)."""
    return [
        select(AllianceTerms.discount_pct).where(AllianceTerms.id == 1).scalar_subquery(),
        select(AllianceTerms.first_call_days).where(AllianceTerms.id == 1).scalar_subquery(),
    ]


def register(app) -> None:
    """The catalog's cached pages are kept per kind of viewer and per terms."""
    app.extensions.setdefault("catalog_viewer_keys", []).append(view_key)
    app.extensions.setdefault("catalog_version_columns", []).extend(
        [lambda: version_columns()[0], lambda: version_columns()[1]]
    )
