"""The alliance's rules: applying, the operator's decision, leaving, the terms for members and
what they mean for a price and for who may buy a newly listed batch.

``Organisation.alliance_member`` is kept here, in the same transaction as the membership row
that decides it: true exactly while the organisation has a ``member`` row.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import g, has_request_context
from flask_babel import gettext as _
from sqlalchemy import select

from portal.alliance.models import (
    DESCRIPTION_MAX,
    PLEDGE_MAX,
    WEBSITE_MAX,
    AllianceTerms,
    EmissionsBand,
    Membership,
    MembershipStatus,
)
from portal.audit import services as audit
from portal.buyers.models import Organisation, OrgStatus, Sector
from portal.core.errors import ServiceError
from portal.core.i18n import datetime_text
from portal.core.numbers import CENT, money, whole
from portal.extensions import db
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

REASON_MAX = 1000
MAX_DISCOUNT = Decimal("50")
MAX_FIRST_CALL_DAYS = 90


class AllianceError(ServiceError):
    """An application, decision, leaving or change of terms refused: nothing was changed."""


# --- reading ------------------------------------------------------------------------------------


def current(organisation) -> Membership | None:
    """The organisation's pending application or current membership, if any."""
    return db.session.scalar(
        select(Membership).where(
            Membership.organisation_id == organisation.id,
            Membership.status.in_((MembershipStatus.PENDING, MembershipStatus.MEMBER)),
        )
    )


def history(organisation) -> list[Membership]:
    """Every application of the organisation, the latest first."""
    return list(
        db.session.scalars(
            select(Membership)
            .where(Membership.organisation_id == organisation.id)
            .order_by(Membership.applied_at.desc(), Membership.id.desc())
        )
    )


def latest(organisation) -> Membership | None:
    found = history(organisation)
    return found[0] if found else None


def is_member(organisation) -> bool:
    return bool(organisation is not None and organisation.alliance_member)


def find(membership_id) -> Membership:
    membership = db.session.get(Membership, membership_id) if isinstance(membership_id, int) else None
    if membership is None:
        raise AllianceError("unknown_membership", _("There is no such alliance application."), 404)
    return membership


# --- applying, deciding, leaving ----------------------------------------------------------------


def _text(value, *, label: str, max_length: int, required: bool) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if required and not text:
        raise AllianceError(
            "missing_" + label, _("Please fill in: %(field)s.", field=_label(label)), field=label
        )
    if len(text) > max_length:
        raise AllianceError(
            label + "_too_long",
            _("%(field)s has at most %(n)s characters.", field=_label(label), n=max_length),
            field=label,
        )
    if any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise AllianceError(
            "invalid_" + label, _("%(field)s contains control characters.", field=_label(label)), field=label
        )
    return text


def _label(name: str) -> str:
    return {
        "pledge": _("Pledge"),
        "description_zh": _("Description (Chinese)"),
        "description_en": _("Description (English)"),
        "website": _("Website"),
        "reason": _("Reason"),
    }.get(name, name)


def _website(value) -> str:
    text = _text(value, label="website", max_length=WEBSITE_MAX, required=False)
    if text and (not text.startswith(("https://", "http://")) or any(c in text for c in " <>\"'")):
        raise AllianceError(
            "invalid_website",
            _("The website must be an address starting with https:// or http://."),
            field="website",
        )
    return text


def apply(
    organisation,
    *,
    sector,
    emissions_band,
    pledge,
    description_zh="",
    description_en="",
    website="",
    actor: str,
) -> Membership:
    """The organisation applies to join. Refused while it has a pending application or is a
    member, and unless it is approved (or restricted); allowed again after a decline or leaving."""
    if organisation.status not in (OrgStatus.APPROVED, OrgStatus.RESTRICTED):
        raise AllianceError(
            "organisation_not_approved",
            _("Only an approved organisation can apply to join the alliance."),
            403,
        )
    _lock(organisation)
    open_row = current(organisation)
    if open_row is not None:
        if open_row.status == MembershipStatus.PENDING:
            raise AllianceError(
                "application_pending",
                _(
                    "Your organisation has already applied (on %(date)s); the operator has not decided yet.",
                    date=open_row.applied_at.date().isoformat(),
                ),
                409,
            )
        raise AllianceError(
            "already_member", _("Your organisation is already a member of the alliance."), 409
        )
    if sector not in set(Sector):
        raise AllianceError("invalid_sector", _("Choose the sector from the list."), field="sector")
    if emissions_band not in set(EmissionsBand):
        raise AllianceError(
            "invalid_emissions_band", _("Choose the emissions band from the list."), field="emissions_band"
        )
    membership = Membership(
        organisation_id=organisation.id,
        status=MembershipStatus.PENDING,
        sector=sector,
        emissions_band=emissions_band,
        pledge=_text(pledge, label="pledge", max_length=PLEDGE_MAX, required=True),
        description_zh=_text(
            description_zh, label="description_zh", max_length=DESCRIPTION_MAX, required=False
        ),
        description_en=_text(
            description_en, label="description_en", max_length=DESCRIPTION_MAX, required=False
        ),
        website=_website(website),
        applied_at=utcnow(),
        applied_by=actor[:120],
    )
    db.session.add(membership)
    db.session.flush()
    audit.record(
        actor,
        "alliance.apply",
        "organisation",
        organisation.uscc,
        after={"membership": membership.id, "sector": sector, "emissions_band": emissions_band},
    )
    return membership


def _lock(organisation) -> None:
    """Applications and decisions for one organisation take turns (PostgreSQL row lock)."""
    db.session.execute(
        select(Organisation.id).where(Organisation.id == organisation.id).with_for_update(key_share=True)
    )


def approve(membership: Membership, *, actor: str, reason: str = "") -> Membership:
    _must_be_pending(membership)
    reason = _text(reason, label="reason", max_length=REASON_MAX, required=False)
    _decide(membership, MembershipStatus.MEMBER, actor, reason)
    membership.organisation.alliance_member = True
    log.info("alliance: %s joined", membership.organisation.uscc)
    return membership


def decline(membership: Membership, *, actor: str, reason) -> Membership:
    _must_be_pending(membership)
    reason = _text(reason, label="reason", max_length=REASON_MAX, required=True)
    _decide(membership, MembershipStatus.DECLINED, actor, reason)
    return membership


def _must_be_pending(membership: Membership) -> None:
    if membership.status != MembershipStatus.PENDING:
        raise AllianceError("not_pending", _("This application has already been decided."), 409)


def _decide(membership: Membership, status: MembershipStatus, actor: str, reason: str) -> None:
    membership.status = status
    membership.decided_at = utcnow()
    membership.decided_by = actor[:120]
    membership.decision_reason = reason
    db.session.flush()
    audit.record(
        actor,
        "alliance.approve" if status == MembershipStatus.MEMBER else "alliance.decline",
        "organisation",
        membership.organisation.uscc,
        before={"membership": membership.id, "status": MembershipStatus.PENDING},
        after={"status": status, "reason": reason, "alliance_member": status == MembershipStatus.MEMBER},
    )


def leave(organisation, *, actor: str, reason) -> Membership:
    """The member leaves (or the operator removes it): recorded, and shown as a former member."""
    reason = _text(reason, label="reason", max_length=REASON_MAX, required=True)
    _lock(organisation)
    membership = current(organisation)
    if membership is None or membership.status != MembershipStatus.MEMBER:
        raise AllianceError("not_member", _("This organisation is not a member of the alliance."), 409)
    membership.status = MembershipStatus.LEFT
    membership.left_at = utcnow()
    membership.left_by = actor[:120]
    membership.leave_reason = reason
    organisation.alliance_member = False
    db.session.flush()
    audit.record(
        actor,
        "alliance.leave",
        "organisation",
        organisation.uscc,
        before={"membership": membership.id, "status": MembershipStatus.MEMBER, "alliance_member": True},
        after={"status": MembershipStatus.LEFT, "reason": reason, "alliance_member": False},
    )
    return membership


def enrol(organisation, *, actor: str) -> Membership:
    """A member from the start (``flask orgs create --alliance``, the demo): a membership row,
    approved at once, so that the alliance's history and pages know it."""
    now = utcnow()
    membership = Membership(
        organisation_id=organisation.id,
        status=MembershipStatus.MEMBER,
        sector=organisation.sector,
        emissions_band=EmissionsBand.FROM_100K,
        pledge="",
        applied_at=now,
        applied_by=actor[:120],
        decided_at=now,
        decided_by=actor[:120],
        decision_reason="",
    )
    db.session.add(membership)
    organisation.alliance_member = True
    db.session.flush()
    audit.record(
        actor, "alliance.enrol", "organisation", organisation.uscc, after={"membership": membership.id}
    )
    return membership


# --- terms --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    discount_pct: Decimal
    first_call_days: int

    def member_price(self, listed: Decimal) -> Decimal:
        """The listed price less the member discount, rounded half up to the fen (never 0)."""
        if not self.discount_pct:
            return listed
        price = (listed * (100 - self.discount_pct) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        return max(price, CENT)

    def first_call_until(self, listed_at: datetime | None) -> datetime | None:
        """When a batch listed at ``listed_at`` opens to everyone (None: no first call)."""
        if not self.first_call_days or listed_at is None:
            return None
        return listed_at + timedelta(days=self.first_call_days)


NO_TERMS = Terms(Decimal("0"), 0)


def terms() -> Terms:
    """The terms in force (read once per request)."""
    if has_request_context() and "alliance_terms" in g:
        return g.alliance_terms
    row = db.session.get(AllianceTerms, 1)
    found = NO_TERMS if row is None else Terms(Decimal(row.discount_pct), int(row.first_call_days))
    if has_request_context():
        g.alliance_terms = found
    return found


def set_terms(discount_pct, first_call_days, *, actor: str) -> Terms:
    discount = money(discount_pct, Decimal("0"), MAX_DISCOUNT)
    if discount is None:
        raise AllianceError(
            "invalid_discount",
            _(
                "The member discount is a percentage from 0 to %(max)s, with at most two decimals.",
                max=MAX_DISCOUNT,
            ),
            field="discount_pct",
        )
    days = whole(first_call_days, 0, MAX_FIRST_CALL_DAYS)
    if days is None:
        raise AllianceError(
            "invalid_first_call_days",
            _("First call is a whole number of days from 0 to %(max)s.", max=MAX_FIRST_CALL_DAYS),
            field="first_call_days",
        )
    row = db.session.get(AllianceTerms, 1)
    before = (
        None if row is None else {"discount_pct": row.discount_pct, "first_call_days": row.first_call_days}
    )
    if row is None:
        row = AllianceTerms(id=1)
        db.session.add(row)
    row.discount_pct = discount
    row.first_call_days = days
    row.updated_at = utcnow()
    row.updated_by = actor[:120]
    db.session.flush()
    audit.record(
        actor,
        "alliance.terms",
        "alliance_terms",
        1,
        before=before,
        after={"discount_pct": discount, "first_call_days": days},
    )
    if has_request_context():
        g.pop("alliance_terms", None)
    return Terms(discount, days)


# --- what the terms mean for one buyer ----------------------------------------------------------


def price_for(organisation, listed: Decimal) -> Decimal:
    """What ``organisation`` pays per tonne for a batch listed at ``listed``."""
    return terms().member_price(listed) if is_member(organisation) else listed


def first_call_refusal(organisation, code: str, listed_at: datetime | None, now: datetime | None = None):
    """Why ``organisation`` may not yet buy batch ``code`` (translated: the members' first call,
    and when it opens to everyone); None when it may."""
    if is_member(organisation):
        return None
    until = terms().first_call_until(listed_at)
    if until is None or until <= (now or utcnow()):
        return None
    return _(
        "Batch %(batch)s is offered first to alliance members: it opens to every buyer on %(time)s.",
        batch=code,
        time=datetime_text(until),
    )


def first_call_start(now: datetime | None = None) -> datetime | None:
    """Batches listed after this moment are still in first call (None: no first call)."""
    days = terms().first_call_days
    return None if not days else (now or utcnow()) - timedelta(days=days)
