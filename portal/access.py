"""Who may do what: the one place permissions are decided, for web pages and the API alike.

``ACTIONS`` names every action once and the roles that may perform it. ``may(who, action,
obj)`` answers for a signed-in user or an API key's ``Principal``; given an object (an order, a
contract, an invoice, a certificate, an API key) it also decides ownership: a buyer reaches only
its own organisation's. Pages are guarded with ``@page(...)``, API endpoints with
``portal.api.auth.require_key(...)``, and public endpoints say so with ``@public``; each records
what it guards on the view function (``view.access``), so that a test can check every route.
Templates ask through the ``may`` global. Nothing outside this module compares roles.
"""

from dataclasses import dataclass
from functools import wraps

from portal.buyers.models import STAFF_ROLES, ApiKey, OrgStatus, Role
from portal.core.guard import guarded

BUYER = {Role.BUYER}
STAFF = set(STAFF_ROLES)
COUNTY = {Role.COUNTY}
EVERYONE = set(Role)

#: Every action and the roles that may perform it; anything not listed is forbidden. An action
#: ending in ``_own`` reaches the buyer's own organisation's objects only; ``_all`` reaches all.
ACTIONS = {
    #: The account page: who one is and where one's work is.
    "account.read": EVERYONE,
    #: API keys: staff their own; a buyer its organisation's, as its admin (see ``_may_manage_keys``).
    "apikeys.manage": EVERYONE,
    "holdings.read_own": BUYER,
    #: Webhook endpoints: an organisation's admin on the web, or the organisation's API key.
    "webhooks.manage": BUYER,
    #: Retiring from the holding (web and API), and the pages of one's certificates and compliance.
    "holdings.retire": BUYER,
    "orders.create": BUYER,
    "orders.read_own": BUYER,
    "orders.read_all": STAFF,
    "orders.refund": {Role.OPERATOR},
    "contracts.read_own": BUYER,
    "contracts.read_all": STAFF,
    "contracts.manage": {Role.SALES},
    #: Requests for quote: a buyer sends and reads its organisation's; staff read all; sales and
    #: the operator answer, assign, decline and turn them into contract drafts.
    "rfq.create": BUYER,
    "rfq.read_own": BUYER,
    "rfq.read_all": STAFF,
    "rfq.manage": {Role.SALES, Role.OPERATOR},
    "invoices.pay": BUYER,
    "invoices.record_payment": {Role.SALES, Role.OPERATOR},
    #: The list of every contract invoice (and its exports); the auditor reads it too.
    "invoices.read_all": STAFF,
    #: Orders paid by bank transfer: recording the transfer that pays one (as for invoices).
    "orders.record_transfer": {Role.SALES, Role.OPERATOR},
    #: VAT fapiao: a buyer asks for one for its paid orders and invoices and downloads it; staff
    #: read every request, and sales or the operator issue, reject or void them.
    "fapiao.request": BUYER,
    "fapiao.read_own": BUYER,
    "fapiao.read_all": STAFF,
    "fapiao.issue": {Role.SALES, Role.OPERATOR},
    #: Certificates are public (anyone verifies one by its number); only revoking is guarded.
    "certificates.revoke": {Role.OPERATOR},
    "revenue.read": {Role.OPERATOR, Role.AUDITOR},
    "revenue.change": {Role.OPERATOR},
    #: The back office. GET pages and POST actions are separate: the auditor reads everything and
    #: changes nothing.
    "staff.read": STAFF,
    "dashboard.read": STAFF,
    "organisations.read": STAFF,
    "organisations.change_status": {Role.OPERATOR},
    "journal.read": {Role.OPERATOR, Role.AUDITOR},
    "audit.read": {Role.OPERATOR, Role.AUDITOR},
    #: The demo's outbox: every message, password-reset links included.
    "mail.outbox_read": {Role.OPERATOR},
    "projects.read": STAFF,
    "projects.change": {Role.OPERATOR},
    "users.read": {Role.OPERATOR, Role.AUDITOR},
    #: The hand-off to the official registries: the queue of instructions and its exports, the
    #: statements and reconciliation reports (read); recording the registry's decisions, importing
    #: statements and resolving withheld serials (change).
    "registry.read": {Role.OPERATOR, Role.AUDITOR},
    "registry.change": {Role.OPERATOR},
    "users.change": {Role.OPERATOR},
    #: Background work that failed (job runs, webhook deliveries) and running it again.
    "operations.read": {Role.OPERATOR, Role.AUDITOR},
    "operations.retry": {Role.OPERATOR},
    #: The project pipeline: parcels, rights holders, agreements, projects at every stage and
    #: their forecasts. Staff read all; a county reviewer reads its own county's (``_own``: the
    #: object's county is the reviewer's).
    "pipeline.read_all": STAFF,
    "pipeline.read_own": COUNTY,
    "pipeline.change": {Role.OPERATOR},
    #: Approving or returning a project's boundary and crediting period: its own county only.
    "pipeline.review": COUNTY,
    #: The Green Low-Carbon Enterprise Alliance: a buyer applies for (and leaves with) its own
    #: organisation; staff read the applications and members; the operator decides, removes and
    #: sets the members' terms. The alliance's pages themselves are public.
    "alliance.apply": BUYER,
    "alliance.read": STAFF,
    "alliance.decide": {Role.OPERATOR},
    #: County supervision: its own county's issued batches, sales, revenue lines and statements.
    "county.supervise": COUNTY,
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
    Role.COUNTY: "pipeline.county_home",
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a buyer (with its organisation) or a staff member with a role, whether
    signed in on the web or presenting an API key."""

    role: str
    organisation: object = None  #: the buyer's organisation; None for staff
    actor: str = ""  #: for the audit log and the ledger journal
    user: object = None  #: the signed-in user, or the staff member a staff key belongs to

    @property
    def region_id(self) -> int | None:
        """A county reviewer's county-level unit; None for everyone else."""
        if self.role != Role.COUNTY or self.user is None:
            return None
        return self.user.region_id

    @classmethod
    def from_api_key(cls, key: ApiKey) -> "Principal":
        """A buyer key acts for its organisation; a staff key for its staff member's role."""
        if key.organisation is not None:
            return cls(Role.BUYER, key.organisation, f"apikey:{key.prefix}")
        return cls(key.user.role, None, f"apikey:{key.prefix}", key.user)

    @classmethod
    def from_user(cls, user) -> "Principal | None":
        """The signed-in ``user``; None for an anonymous visitor."""
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return cls(user.role, user.organisation, f"user:{user.id}", user)


def principal_of(who) -> Principal | None:
    """``who`` as a Principal: an API key's principal as it is, a user (or anonymous) converted."""
    return who if isinstance(who, Principal) else Principal.from_user(who)


def may(who, action: str, obj=None) -> bool:
    """Whether ``who`` (a user, anonymous, or a Principal) may perform ``action``, on ``obj`` if
    given (a buyer only on its own organisation's objects). ``"view"`` is reading one object:
    staff with the kind's ``read_all``, a buyer with its ``read_own`` when the object is its own."""
    principal = principal_of(who)
    if principal is None:
        return False
    if action == "view":
        kind = _kind(obj)
        return may(principal, f"{kind}.read_all") or (
            may(principal, f"{kind}.read_own") and owns(principal, obj)
        )
    if principal.role not in ACTIONS.get(action, ()):
        return False
    if action == "apikeys.manage" and not _may_manage_keys(principal):
        return False
    if action == "webhooks.manage" and not _may_manage_webhooks(principal):
        return False
    if obj is None or owns(principal, obj):
        return True
    # Staff act on any organisation's objects; an API key, though, is only ever its owner's.
    return principal.role in STAFF and not isinstance(obj, ApiKey)


def may_any(who, actions) -> bool:
    return any(may(who, action) for action in actions)


def roles_for(*actions) -> set:
    """The roles that may perform at least one of ``actions`` (the API's guard, for its tests)."""
    return set().union(*(ACTIONS[action] for action in actions))


def is_staff(user) -> bool:
    """Whether ``user`` is a member of the portal's staff (not of a buyer organisation)."""
    return user.role in STAFF


def holds_personal_keys(user) -> bool:
    """Whether ``user`` may hold API keys of its own (staff, county reviewers); buyers use their
    organisation's."""
    return user.role in STAFF | COUNTY


def county_of(who) -> int | None:
    """The county-level unit (region id) a county reviewer is confined to; None for anyone else
    (staff see every county; buyers none of this)."""
    principal = principal_of(who)
    return None if principal is None else principal.region_id


def home_page(user) -> str:
    """The endpoint ``user`` starts on (the account page for a role without one of its own)."""
    return HOME_PAGES.get(getattr(user, "role", None), "buyers.account")


def _may_manage_keys(principal: Principal) -> bool:
    """Staff manage their own keys; a buyer must be the organisation's admin, and the
    organisation approved or restricted (unapproved ones get no keys)."""
    if principal.role not in BUYER:
        return True
    return bool(
        principal.user is not None
        and principal.user.is_org_admin
        and principal.organisation.status in (OrgStatus.APPROVED, OrgStatus.RESTRICTED)
    )


def _may_manage_webhooks(principal: Principal) -> bool:
    """The organisation's own key, or its admin signed in; the organisation approved or
    restricted (what it is told about are its purchases)."""
    if principal.organisation is None:
        return False
    if principal.user is not None and not principal.user.is_org_admin:
        return False
    return principal.organisation.status in (OrgStatus.APPROVED, OrgStatus.RESTRICTED)


def _kind(obj) -> str:
    """The action prefix for reading ``obj`` (an invoice is read as part of its contract)."""
    from portal.contracts.models import Contract, Invoice
    from portal.fapiao.models import FapiaoRequest
    from portal.offsets.models import Order
    from portal.pipeline.models import Agreement, Parcel, PipelineProject, RightsHolder
    from portal.rfq.models import QuoteRequest

    for cls, kind in (
        (Order, "orders"),
        (Contract, "contracts"),
        (Invoice, "contracts"),
        (FapiaoRequest, "fapiao"),
        (QuoteRequest, "rfq"),
    ):
        if isinstance(obj, cls):
            return kind
    if isinstance(obj, Parcel | PipelineProject | RightsHolder | Agreement):
        return "pipeline"
    raise TypeError(f"no reading rule for {type(obj).__name__}")


def owns(who, obj) -> bool:
    """Whether ``obj`` belongs to ``who``'s organisation: its orders, certificates and keys; its
    contracts (and their invoices) once signed, since drafts (even terminated ones) are the sales
    team's work in progress. Staff own nothing; a staff key belongs to its staff member. A county
    reviewer owns what lies in its county-level unit (``obj.region_id``) and its own keys."""
    from portal.contracts.models import Contract, Invoice

    principal = principal_of(who)
    if principal is None:
        return False
    if isinstance(obj, ApiKey) and principal.organisation is None:
        return principal.user is not None and obj.user_id == principal.user.id
    if principal.region_id is not None:
        # A county reviewer owns what lies in its county (parcels, projects, holders, agreements).
        return obj is not None and getattr(obj, "region_id", None) == principal.region_id
    if principal.organisation is None or obj is None:
        return False
    if isinstance(obj, Invoice):
        obj = obj.contract
    if isinstance(obj, Contract) and obj.signed_at is None:
        return False
    return obj.organisation_id == principal.organisation.id


def page(*actions):
    """A page decorator: anonymous visitors go to sign in; signed-in users who may perform none
    of ``actions`` get 403. Objects the page shows are checked with ``may(..., obj)``."""
    from flask import abort
    from flask_login import current_user

    from portal.extensions import login_manager

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not may_any(current_user, actions):
                abort(403)
            return view(*args, **kwargs)

        return guarded(wrapper, "page", actions)

    return decorate
