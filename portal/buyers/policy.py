"""What an organisation may buy or retire, given its status (the city's plan).

Who may do what (roles, actions, ownership) is decided in ``portal.access``; ``home_page`` is
kept here under its old name.
"""

from portal.access import home_page

__all__ = [
    "UNAPPROVED_SPOT_LIMIT_T",
    "home_page",
    "purchase_refusal",
    "purchase_summary",
    "retirement_refusal",
]


#: An organisation not yet approved may still buy small spot offsets, up to this per order.
UNAPPROVED_SPOT_LIMIT_T = 1000


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


def purchase_refusal(organisation, quantity: int, *, contract: bool = False, bought_this_year: int = 0):
    """Why ``organisation`` may not buy ``quantity`` tonnes now (a translated sentence), or None.

    The rules of the city's plan: suspended and barred participants buy nothing; restricted
    ones within their limits; unapproved ones small spot offsets only (no contracts).
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
