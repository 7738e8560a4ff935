"""Alliance memberships (one row per application, from applying to leaving) and the terms the
operator sets for members."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.buyers.models import Organisation
from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class EmissionsBand(StrEnum):
    """Annual emissions (scopes 1 and 2), in tonnes of CO₂e."""

    UNDER_10K = "under_10k"
    FROM_10K = "10k_100k"
    FROM_100K = "100k_1m"
    OVER_1M = "over_1m"


EMISSIONS_BAND_LABELS = labels_for(
    EmissionsBand,
    {
        "under_10k": _l("Under 10,000 t CO₂e a year"),
        "10k_100k": _l("10,000 to 100,000 t CO₂e a year"),
        "100k_1m": _l("100,000 to 1 million t CO₂e a year"),
        "over_1m": _l("Over 1 million t CO₂e a year"),
    },
)


class MembershipStatus(StrEnum):
    PENDING = "pending"  #: applied, waiting for the operator
    MEMBER = "member"  #: approved and not left
    DECLINED = "declined"
    LEFT = "left"  #: was a member; left or removed


MEMBERSHIP_STATUS_LABELS = labels_for(
    MembershipStatus,
    {
        "pending": _l("Application pending"),
        "member": _l("Member"),
        "declined": _l("Declined"),
        "left": _l("Former member"),
    },
)

#: The longest pledge, in characters (it is published).
PLEDGE_MAX = 1000
#: The longest profile description, per language.
DESCRIPTION_MAX = 500
WEBSITE_MAX = 200


class Membership(db.Model):
    """One application and, if approved, the membership it became, until the organisation left.
    Never deleted: the history (joined, declined, left) is these rows. An organisation has at
    most one pending or current membership at a time."""

    __tablename__ = "alliance_memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=MembershipStatus.PENDING)
    #: The organisation's sector as it applied (``buyers.models.Sector``).
    sector: Mapped[str] = mapped_column(String(32))
    emissions_band: Mapped[str] = mapped_column(String(16))
    #: Its public pledge, in its own words (published on the alliance page).
    pledge: Mapped[str] = mapped_column(Text)
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str] = mapped_column(String(WEBSITE_MAX), default="")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_by: Mapped[str] = mapped_column(String(120))
    #: Approved (joined) or declined: when, by whom, and the reason given (required to decline).
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    left_by: Mapped[str | None] = mapped_column(String(120))
    leave_reason: Mapped[str] = mapped_column(Text, default="")

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(one_of("status", MembershipStatus), name="status"),
        CheckConstraint(one_of("emissions_band", EmissionsBand), name="emissions_band"),
        CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL) AND (decided_at IS NULL) = (decided_by IS NULL)",
            name="decided",
        ),
        CheckConstraint(
            "(status = 'left') = (left_at IS NOT NULL) AND (left_at IS NULL) = (left_by IS NULL)",
            name="left",
        ),
        Index(
            "uq_alliance_memberships_open",
            "organisation_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'member')"),
            sqlite_where=text("status IN ('pending', 'member')"),
        ),
    )

    @property
    def joined_at(self) -> datetime | None:
        return self.decided_at if self.status in (MembershipStatus.MEMBER, MembershipStatus.LEFT) else None


class AllianceTerms(db.Model):
    """What members get, as the operator set it last (one row, id 1; absent means nothing)."""

    __tablename__ = "alliance_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Percent off the listed price for members (0 to 50, two places): the member price is the
    #: listed price less this, rounded half up to the fen.
    discount_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    #: For this many days after a batch is first listed, only members may buy it (0: none).
    first_call_days: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120), default="")

    __table_args__ = (
        CheckConstraint("discount_pct >= 0 AND discount_pct <= 50", name="discount_range"),
        CheckConstraint("first_call_days >= 0 AND first_call_days <= 90", name="first_call_range"),
    )
