"""What an organisation may buy or retire, given its status (the city's plan).

Who may do what (roles, actions, ownership) is decided in ``portal.access``; ``home_page`` is
kept here under its old name.
"""

from portal.access import home_page

__all__ = [
    "DAY_LIMIT_T",
    "GUEST_ORDER_LIMIT_T",
    "UNAPPROVED_SPOT_LIMIT_T",
    "day_limit_t",
    "guest_refusal",
    "home_page",
    "purchase_refusal",
    "purchase_summary",
    "retirement_refusal",
]


#: An organisation not yet approved may still buy small spot offsets, up to this per order.
UNAPPROVED_SPOT_LIMIT_T = 1000
#: A guest (no account) may buy as much per order as the smallest buyer, an organisation not yet
#: approved.
GUEST_ORDER_LIMIT_T = UNAPPROVED_SPOT_LIMIT_T
#: The most tonnes one buyer (an organisation, or a guest by e-mail address) may order on one
#: Beijing day, unless ``PORTAL_ORDER_DAY_LIMIT_T`` says otherwise.
DAY_LIMIT_T = 10_000


def day_limit_t() -> int:
    """The configured per-day limit (``ORDER_DAY_LIMIT_T``), whole tonnes above zero."""
    from flask import current_app

    from portal.core.numbers import whole

    configured = current_app.config.get("ORDER_DAY_LIMIT_T", DAY_LIMIT_T)
    limit = whole(str(configured), 1, 10**12)
    if limit is None:
        raise ValueError(f"ORDER_DAY_LIMIT_T must be a whole number of tonnes above zero, not {configured!r}")
    return limit


def day_refusal(quantity: int, bought_today: int):
    """Why ``quantity`` t more may not be ordered today after ``bought_today`` t, or None."""
    from flask_babel import gettext as _

    limit = day_limit_t()
    if bought_today + quantity > limit:
        return _(
            "At most %(limit)s t may be ordered in one day; %(left)s t remain today.",
            limit=limit,
            left=max(0, limit - bought_today),
        )
    return None


def guest_refusal(quantity: int, *, bought_today: int):
    """Why a guest may not order ``quantity`` t now (a translated sentence), or None: the limits
    of the smallest buyer per order, and the per-day limit of every buyer."""
    from flask_babel import gettext as _

    if quantity > GUEST_ORDER_LIMIT_T:
        return _(
            "Without an account an order may be at most %(limit)s t: register your organisation to buy more.",
            limit=GUEST_ORDER_LIMIT_T,
        )
    return day_refusal(quantity, bought_today)


def purchase_summary(organisation) -> str:
    """What the organisation may buy, in one translated sentence (shown on its account page)."""
    from flask_babel import gettext as _

    from portal.buyers.models import OrgStatus

    if organisation.status == OrgStatus.APPROVED:
        return _("Your organisation may buy spot offsets and sign offtake contracts.")
    if organisation.status == OrgStatus.PENDING:
        return _(
            "Awaiting the operator's approval: until then, spot offsets of at most %(limit)s t per order.",
            limit=UNAPPROVED_SPOT_LIMIT_T,
        )
    if organisation.status == OrgStatus.RESTRICTED:
        return _(
            "Restricted: at most %(order)s t per order and %(year)s t a year.",
            order=organisation.order_limit_t or "—",
            year=organisation.year_limit_t or "—",
        )
    return _(
        "Your organisation may not buy at present (%(status)s).", status=_status_label(organisation.status)
    )


def _status_label(status) -> str:
    """An organisation's status as the reader's language names it."""
    from portal.buyers.models import ORG_STATUS_LABELS

    return str(ORG_STATUS_LABELS.get(status, status))


def purchase_refusal(
    organisation,
    quantity: int,
    *,
    contract: bool = False,
    bought_this_year: int = 0,
    bought_today: int | None = None,
):
    """Why ``organisation`` may not buy ``quantity`` tonnes now (a translated sentence), or None.

    The rules of the city's plan: suspended and barred participants buy nothing; restricted
    ones within their limits; unapproved ones small spot offsets only (no contracts). Spot
    orders (``bought_today`` given) also keep to the per-day limit of every buyer.
    """
    from flask_babel import gettext as _

    from portal.buyers.models import OrgStatus

    status = organisation.status
    if status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        return _(
            "%(name)s may not buy (status: %(status)s).",
            name=organisation.name_zh,
            status=_status_label(status),
        )
    if status == OrgStatus.PENDING:
        if contract:
            return _("Offtake contracts need an approved organisation.")
        if quantity > UNAPPROVED_SPOT_LIMIT_T:
            return _(
                "Until the operator approves your organisation, an order may be at most %(limit)s t.",
                limit=UNAPPROVED_SPOT_LIMIT_T,
            )
    if status == OrgStatus.RESTRICTED:
        if organisation.order_limit_t is not None and quantity > organisation.order_limit_t:
            return _(
                "Your organisation is restricted to %(limit)s t per order.", limit=organisation.order_limit_t
            )
        if organisation.year_limit_t is not None and bought_this_year + quantity > organisation.year_limit_t:
            return _(
                "Your organisation is restricted to %(limit)s t a year; %(left)s t remain this year.",
                limit=organisation.year_limit_t,
                left=max(0, organisation.year_limit_t - bought_this_year),
            )
    if bought_today is not None:
        return day_refusal(quantity, bought_today)
    return None


def retirement_refusal(organisation):
    """Why ``organisation`` may not retire credits now (a translated sentence), or None."""
    from flask_babel import gettext as _

    from portal.buyers.models import OrgStatus

    if organisation.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        return _(
            "%(name)s may not retire credits (status: %(status)s).",
            name=organisation.name_zh,
            status=_status_label(organisation.status),
        )
    return None
