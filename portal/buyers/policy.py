"""Who may do what: the one place permissions are decided.

Views and API endpoints ask here (through ``portal.api.auth.require_key`` and, for web pages,
the decorators that come with sign-in); they never compare roles themselves.
"""

from dataclasses import dataclass

from portal.buyers.models import ApiKey, Organisation, Role


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation (as a buyer) or a staff member with a role."""

    role: str
    organisation: Organisation | None
    actor: str  #: for the audit log and the ledger journal
    user: object = None  #: the staff member a staff key belongs to

    @classmethod
    def from_api_key(cls, key: ApiKey) -> "Principal":
        if key.organisation is not None:
            return cls(Role.BUYER, key.organisation, f"apikey:{key.prefix}")
        return cls(key.user.role, None, f"apikey:{key.prefix}", key.user)


#: What each role may do through the API; anything not listed is forbidden.
PERMISSIONS = {
    "holdings.read_own": {Role.BUYER},
    "retirements.create": {Role.BUYER},
    "orders.create": {Role.BUYER},
    "orders.read_own": {Role.BUYER},
    "revenue.read": {Role.OPERATOR, Role.AUDITOR},
    "contracts.manage": {Role.SALES},
    #: Buyers read their own contracts only (the endpoint filters); staff read all.
    "contracts.read": {Role.BUYER, Role.SALES, Role.OPERATOR, Role.AUDITOR},
    "invoices.record_payment": {Role.SALES, Role.OPERATOR},
    "invoices.pay": {Role.BUYER},
}


def allowed(principal: Principal, action: str) -> bool:
    return principal.role in PERMISSIONS.get(action, set())


#: Who may open which part of the web back office. GET pages and POST actions are separate:
#: the auditor reads everything and changes nothing.
WEB_PERMISSIONS = {
    "staff.read": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "organisations.read": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "organisations.change_status": {Role.OPERATOR},
    "journal.read": {Role.OPERATOR, Role.AUDITOR},
    "audit.read": {Role.OPERATOR, Role.AUDITOR},
    #: The demo's outbox: every message, password-reset links included.
    "mail.outbox_read": {Role.OPERATOR},
    "projects.read": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "projects.change": {Role.OPERATOR},
    "users.read": {Role.OPERATOR, Role.AUDITOR},
    "users.change": {Role.OPERATOR},
    "holding.retire": {Role.BUYER},
    "orders.create": {Role.BUYER},
    "orders.read": {Role.BUYER, Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "orders.read_all": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "orders.refund": {Role.OPERATOR},
    "revenue.read": {Role.OPERATOR, Role.AUDITOR},
    "revenue.change": {Role.OPERATOR},
    "dashboard.read": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "certificates.read_all": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "certificates.revoke": {Role.OPERATOR},
    "contracts.read_all": {Role.OPERATOR, Role.AUDITOR, Role.SALES},
    "contracts.manage": {Role.SALES},
    "invoices.record_payment": {Role.SALES, Role.OPERATOR},
    "contracts.read_own": {Role.BUYER},
    "invoices.pay": {Role.BUYER},
    #: The list of every contract invoice (and its exports); the auditor reads it too.
    "invoices.read_all": {Role.SALES, Role.OPERATOR, Role.AUDITOR},
}

#: Where each role starts after signing in, when it asked for no page: its own work. The buyer's
#: account page (holdings, orders, contracts); the sales team's contracts (tranches due, invoices
#: overdue); the operator's dashboard (figures and the queues to work through); the auditor's
#: back office (the latest ledger journal entries and audit events).
HOME_PAGES = {
    Role.BUYER: "buyers.account",
    Role.SALES: "contracts.staff_contracts",
    Role.OPERATOR: "staff.dashboard",
    Role.AUDITOR: "staff.index",
}


def home_page(user) -> str:
    """The endpoint ``user`` starts on (the account page for a role without one of its own)."""
    return HOME_PAGES.get(getattr(user, "role", None), "buyers.account")


def user_may(user, action: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if action == "apikeys.manage":
        # Staff manage their own keys; a buyer must be the organisation's admin, and the
        # organisation approved (unapproved ones get no keys).
        if user.role == Role.BUYER:
            return user.is_org_admin and user.organisation.status in ("approved", "restricted")
        return True
    return user.role in WEB_PERMISSIONS.get(action, set())


def require(action: str):
    """A view decorator: anonymous visitors go to sign in; signed-in users without the
    permission get 403."""
    from functools import wraps

    from flask import abort
    from flask_login import current_user

    from portal.extensions import login_manager

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not user_may(current_user, action):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


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
    from portal.catalog.labels import ORG_STATUSES

    return str(ORG_STATUSES.get(status, status))


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
