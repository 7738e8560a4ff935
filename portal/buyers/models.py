"""Buyer organisations (the alliance's enterprises, government units, event organisers …)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

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


class OrgStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"
    RESTRICTED = "restricted"
    BARRED = "barred"


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(one_of("sector", Sector), name="sector"),
        CheckConstraint(one_of("status", OrgStatus), name="status"),
    )

    @property
    def holding_ref(self) -> str:
        """The reference of this organisation's holding account in the ledger."""
        return self.uscc

    def __repr__(self):
        return f"<Organisation {self.uscc}>"
