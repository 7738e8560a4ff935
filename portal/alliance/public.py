"""The public alliance pages' data: current and former members with their retired tonnes per
year (from their certificates, revoked ones excluded), in a fixed number of queries."""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import extract, func, select

from portal.alliance.models import Membership, MembershipStatus
from portal.buyers.models import Organisation
from portal.certificates.models import Certificate, CertificateStatus
from portal.extensions import db


@dataclass
class MemberEntry:
    organisation: Organisation
    membership: Membership  #: the current membership, or the latest one for a former member
    #: {year: tonnes retired}, every year with a retirement.
    retired: dict[int, int] = field(default_factory=dict)
    #: Every membership that was approved (joined, and left if it did), oldest first.
    periods: list[Membership] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.membership.status == MembershipStatus.MEMBER

    @property
    def retired_total(self) -> int:
        return sum(self.retired.values())


def retired_per_year(organisation_ids) -> dict[int, dict[int, int]]:
    """{organisation id: {year: tonnes}} of the valid certificates of these organisations."""
    ids = list(organisation_ids)
    if not ids:
        return {}
    year = extract("year", Certificate.retired_at)
    found: dict[int, dict[int, int]] = defaultdict(dict)
    for org_id, y, tonnes in db.session.execute(
        select(Certificate.organisation_id, year, func.sum(Certificate.quantity))
        .where(Certificate.organisation_id.in_(ids), Certificate.status != CertificateStatus.REVOKED)
        .group_by(Certificate.organisation_id, year)
    ):
        found[org_id][int(y)] = int(tonnes)
    return found


def _entries(condition=None) -> list[MemberEntry]:
    query = (
        select(Membership)
        .where(Membership.status.in_((MembershipStatus.MEMBER, MembershipStatus.LEFT)))
        .order_by(Membership.decided_at, Membership.id)
    )
    if condition is not None:
        query = query.where(condition)
    by_org: dict[int, MemberEntry] = {}
    for membership in db.session.scalars(query):
        entry = by_org.get(membership.organisation_id)
        if entry is None:
            entry = by_org[membership.organisation_id] = MemberEntry(membership.organisation, membership)
        elif entry.membership.status != MembershipStatus.MEMBER:
            entry.membership = membership  # the latest, or the current one
        entry.periods.append(membership)
    retired = retired_per_year(by_org)
    for org_id, entry in by_org.items():
        entry.retired = retired.get(org_id, {})
    return list(by_org.values())


def members() -> tuple[list[MemberEntry], list[MemberEntry], list[int]]:
    """(current members, former members, the years with retirements, newest first). Members are
    ordered by tonnes retired (most first), then by when they joined."""
    entries = _entries()
    current = sorted((e for e in entries if e.current), key=lambda e: -e.retired_total)
    former = sorted((e for e in entries if not e.current), key=lambda e: e.membership.left_at, reverse=True)
    years = sorted({y for e in current for y in e.retired}, reverse=True)
    return current, former, years


def member(organisation_id: int) -> MemberEntry | None:
    """One member's or former member's public profile; None if it never was a member."""
    found = _entries(Membership.organisation_id == organisation_id)
    return found[0] if found else None
