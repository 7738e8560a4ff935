"""An organisation's status (approve, suspend, restrict, bar, reinstate) and the measures kept
as the public notices' record."""

import logging

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit import services as audit
from portal.buyers.errors import OrganisationError
from portal.buyers.models import MEASURES, Organisation, OrgStatus, StatusMeasure, User, org_status_label
from portal.core import mail
from portal.core.i18n import absolute_url
from portal.extensions import db
from portal.timeutil import utcnow

log = logging.getLogger(__name__)


#: Which status may follow which; "reinstate" is a move back to approved.
STATUS_MOVES = {
    OrgStatus.PENDING: {OrgStatus.APPROVED, OrgStatus.BARRED},
    OrgStatus.APPROVED: {OrgStatus.SUSPENDED, OrgStatus.RESTRICTED, OrgStatus.BARRED},
    OrgStatus.SUSPENDED: {OrgStatus.APPROVED, OrgStatus.RESTRICTED, OrgStatus.BARRED},
    OrgStatus.RESTRICTED: {OrgStatus.APPROVED, OrgStatus.SUSPENDED, OrgStatus.BARRED, OrgStatus.RESTRICTED},
    OrgStatus.BARRED: {OrgStatus.APPROVED},
}


def check_status_change(
    org: Organisation,
    status: str,
    *,
    reason: str,
    order_limit_t: int | None = None,
    year_limit_t: int | None = None,
) -> str:
    """The reason as it will be kept, if ``org`` may become ``status`` with these limits;
    OrganisationError otherwise. Changes nothing (the back office asks for confirmation next)."""
    reason = (reason or "").strip()
    if not status:
        raise OrganisationError("status_required", _("Choose the new status."))
    if status not in set(OrgStatus) or status == OrgStatus.PENDING:
        raise OrganisationError("invalid_status", _("Unknown status %(status)s.", status=status))
    if status == org.status and status != OrgStatus.RESTRICTED:
        raise OrganisationError(
            "unchanged_status",
            _(
                "%(name)s already has the status %(status)s.",
                name=org.name_zh,
                status=org_status_label(status),
            ),
        )
    if status not in STATUS_MOVES[OrgStatus(org.status)]:
        raise OrganisationError(
            "invalid_status_change",
            _(
                "An organisation with status %(old)s cannot become %(new)s.",
                old=org_status_label(org.status),
                new=org_status_label(status),
            ),
        )
    if not reason or len(reason) > 2000:
        raise OrganisationError("reason_required", _("Give a reason of 1 to 2,000 characters."))
    if status == OrgStatus.RESTRICTED:
        for limit in (order_limit_t, year_limit_t):
            if limit is not None and (type(limit) is not int or limit <= 0 or limit > 2**31 - 1):
                raise OrganisationError("invalid_limit", _("A limit is a whole number of tonnes above zero."))
        if order_limit_t is None and year_limit_t is None:
            raise OrganisationError("limit_required", _("A restriction needs a per-order or per-year limit."))
    elif order_limit_t is not None or year_limit_t is not None:
        raise OrganisationError("limit_unexpected", _("Limits apply only to restricted organisations."))
    return reason


def change_status(
    org: Organisation,
    status: str,
    *,
    reason: str,
    order_limit_t: int | None = None,
    year_limit_t: int | None = None,
    actor: str = "cli",
) -> Organisation:
    """Approve, suspend, restrict (with limits), bar or reinstate an organisation, with a reason.
    A measure (suspension, restriction, bar) is kept with its dates; the one in force ends when
    the organisation is reinstated or another measure replaces it, and stays as history."""
    # The organisation's row is locked (as orders lock it), so two changes take turns and each
    # sees the status the other left.
    db.session.execute(
        select(Organisation.id).where(Organisation.id == org.id).with_for_update(key_share=True)
    )
    db.session.refresh(org)
    reason = check_status_change(
        org, status, reason=reason, order_limit_t=order_limit_t, year_limit_t=year_limit_t
    )
    before = {
        "status": org.status,
        "reason": org.status_reason,
        "order_limit_t": org.order_limit_t,
        "year_limit_t": org.year_limit_t,
    }
    now = utcnow()
    in_force = measure_in_force(org)
    if in_force is not None:
        in_force.ended_at = now
        in_force.ended_as = status
        in_force.end_reason = reason
        in_force.ended_by = actor[:120]
        db.session.flush()  # one measure in force at a time (a unique index says so)
    if status in MEASURES:
        db.session.add(
            StatusMeasure(
                organisation_id=org.id,
                status=status,
                reason=reason,
                order_limit_t=order_limit_t,
                year_limit_t=year_limit_t,
                started_at=now,
                started_by=actor[:120],
            )
        )
    org.status = status
    org.status_reason = reason
    org.status_since = now
    org.order_limit_t = order_limit_t
    org.year_limit_t = year_limit_t
    audit.record(
        actor,
        f"organisation.{status}",
        "organisation",
        org.uscc,
        before=before,
        after={
            "status": status,
            "reason": reason,
            "order_limit_t": order_limit_t,
            "year_limit_t": year_limit_t,
        },
    )
    db.session.flush()
    if before["status"] == OrgStatus.PENDING and status == OrgStatus.APPROVED:
        _tell_approved(org)
    log.info("organisation %s is now %s", org.uscc, status)
    return org


def _tell_approved(org: Organisation) -> None:
    """Tell a newly approved organisation's users that they may buy now: registering told them
    to wait for the operator's approval, and nothing else would tell them it came."""
    for email in db.session.scalars(
        select(User.email).filter_by(organisation_id=org.id, is_active=True).order_by(User.id)
    ):
        with mail.in_recipient_language(None):
            mail.send(
                email,
                _("Your organisation is approved on the Chifeng Carbon Sink Marketplace"),
                _(
                    "%(name)s is approved: you may now sign in, buy and retire carbon credits, and "
                    "sign offtake contracts.\n\n%(link)s",
                    name=org.name_zh,
                    link=absolute_url("buyers.login"),
                ),
            )


def measure_in_force(org: Organisation) -> StatusMeasure | None:
    return db.session.scalar(select(StatusMeasure).filter_by(organisation_id=org.id, ended_at=None))


#: The public notices list at most this many ended measures.
NOTICE_HISTORY = 500


def measures_in_force() -> list[StatusMeasure]:
    """The public notice: measures in force (suspended, restricted, barred), most recent first."""
    return list(
        db.session.scalars(
            select(StatusMeasure)
            .where(StatusMeasure.ended_at.is_(None))
            .order_by(StatusMeasure.started_at.desc(), StatusMeasure.id.desc())
        )
    )


def ended_measures() -> list[StatusMeasure]:
    """The notices' history: measures lifted or replaced, most recently ended first."""
    return list(
        db.session.scalars(
            select(StatusMeasure)
            .where(StatusMeasure.ended_at.is_not(None))
            .order_by(StatusMeasure.ended_at.desc(), StatusMeasure.id.desc())
            .limit(NOTICE_HISTORY)
        )
    )
