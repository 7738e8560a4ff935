"""Buyer organisations (the alliance's enterprises, government units, event organisers …)."""

import hashlib
from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class Sector(StrEnum):
    STEEL = "steel"
    NONFERROUS = "nonferrous"
    BUILDING_MATERIALS = "building_materials"
    GOVERNMENT = "government"
    PUBLIC_INSTITUTION = "public_institution"
    EVENT_ORGANISER = "event_organiser"
    OTHER = "other"


SECTOR_LABELS = labels_for(
    Sector,
    {
        "steel": _l("Steel"),
        "nonferrous": _l("Non-ferrous metals"),
        "building_materials": _l("Building materials"),
        "government": _l("Government body"),
        "public_institution": _l("Public institution"),
        "event_organiser": _l("Event organiser"),
        "other": _l("Other"),
    },
)


class OrgStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"
    RESTRICTED = "restricted"
    BARRED = "barred"


ORG_STATUS_LABELS = labels_for(
    OrgStatus,
    {
        "pending": _l("Pending approval"),
        "approved": _l("Approved"),
        "suspended": _l("Suspended"),
        "restricted": _l("Restricted"),
        "barred": _l("Barred"),
    },
)


def org_status_label(status: str) -> str:
    """How an organisation's status reads (the code itself if it is not one of ours)."""
    return str(ORG_STATUS_LABELS.get(status, status))


class Role(StrEnum):
    BUYER = "buyer"  #: a member of one organisation
    SALES = "sales"
    OPERATOR = "operator"
    AUDITOR = "auditor"  #: reads everything, changes nothing
    #: A county-level unit's reviewer: reviews its projects, reads its own county only.
    COUNTY = "county"


ROLE_LABELS = labels_for(
    Role,
    {
        "buyer": _l("Buyer"),
        "sales": _l("Sales staff"),
        "operator": _l("Operator"),
        "auditor": _l("Auditor"),
        "county": _l("County reviewer"),
    },
)


STAFF_ROLES = (Role.SALES, Role.OPERATOR, Role.AUDITOR)

#: The statuses that are measures against an organisation, announced publicly at /notices.
MEASURES = (OrgStatus.SUSPENDED, OrgStatus.RESTRICTED, OrgStatus.BARRED)


class Organisation(db.Model):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    #: Unified social credit code (统一社会信用代码), GB 32100-2015, check character verified.
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    sector: Mapped[str] = mapped_column(String(32))
    #: Member of the Green Low-Carbon Enterprise Alliance (绿色低碳企业联盟).
    alliance_member: Mapped[bool] = mapped_column(default=False)
    #: A national-ETS compliance entity (may use CCER for up to 5 % of allowances due).
    ets_entity: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=OrgStatus.PENDING)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    #: When the current status was set (barred organisations are listed with it).
    status_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    #: For ``restricted``: most tonnes per order and per calendar year.
    order_limit_t: Mapped[int | None] = mapped_column()
    year_limit_t: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it registered its first webhook endpoint; None: never, so that its events are
    #: dropped without reading its endpoints (``webhooks.services.emit``). Never unset.
    webhooks_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(one_of("sector", Sector), name="sector"),
        CheckConstraint(one_of("status", OrgStatus), name="status"),
        CheckConstraint("order_limit_t IS NULL OR order_limit_t > 0", name="order_limit_positive"),
        CheckConstraint("year_limit_t IS NULL OR year_limit_t > 0", name="year_limit_positive"),
    )

    @property
    def holding_ref(self) -> str:
        """The reference of this organisation's holding account in the ledger."""
        return self.uscc

    def __repr__(self):
        return f"<Organisation {self.uscc}>"


class StatusMeasure(db.Model):
    """A measure against an organisation (suspended, restricted with its limits, or barred),
    from when it was taken until it was lifted (back to approved) or replaced by another measure.
    Never deleted: the public notices list the measures in force and, as history, the ended ones.
    An organisation has at most one measure in force."""

    __tablename__ = "organisation_measures"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    order_limit_t: Mapped[int | None] = mapped_column()
    year_limit_t: Mapped[int | None] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(120))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The status that ended it: ``approved`` (lifted) or the measure that replaced it.
    ended_as: Mapped[str | None] = mapped_column(String(16))
    end_reason: Mapped[str] = mapped_column(Text, default="")
    ended_by: Mapped[str | None] = mapped_column(String(120))

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(one_of("status", MEASURES), name="status"),
        CheckConstraint(
            "(ended_at IS NULL) = (ended_as IS NULL) AND (ended_at IS NULL) = (ended_by IS NULL)",
            name="ended",
        ),
        Index(
            "uq_organisation_measures_in_force",
            "organisation_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
            sqlite_where=text("ended_at IS NULL"),
        ),
    )

    @property
    def lifted(self) -> bool:
        return self.ended_as == OrgStatus.APPROVED


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    #: werkzeug's scrypt hash (memory-hard).
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: A county reviewer's county-level unit (``regions``); None for everyone else.
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    #: A buyer who manages the organisation's API keys (the user who registered it).
    is_org_admin: Mapped[bool] = mapped_column(default=False)
    #: When the user proved the e-mail address is theirs; sign-in waits for it.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()
    region: Mapped["Region | None"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        CheckConstraint(one_of("role", Role), name="role"),
        # A buyer belongs to exactly one organisation; staff belong to none.
        CheckConstraint("(role = 'buyer') = (organisation_id IS NOT NULL)", name="buyer_has_organisation"),
        # A county reviewer belongs to exactly one county-level unit; nobody else to any.
        CheckConstraint("(role = 'county') = (region_id IS NOT NULL)", name="county_has_region"),
    )

    @property
    def session_stamp(self) -> str:
        """Changes with the password: sessions and remember-me cookies made before a password
        change stop working."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.id}.{self.session_stamp}"

    def __repr__(self):
        return f"<User {self.email} {self.role}>"


class ApiKey(db.Model):
    """An API key: ``cfk_<prefix>_<secret>``. Only the prefix (for look-up) and a SHA-256 of the
    secret are stored; the key itself is shown once, when it is created."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    #: An organisation's key (acts for the organisation, as a buyer) …
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: … or a staff member's key (carries that user's role).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship()
    user: Mapped[User | None] = relationship()

    __table_args__ = (CheckConstraint("(organisation_id IS NULL) <> (user_id IS NULL)", name="one_owner"),)
