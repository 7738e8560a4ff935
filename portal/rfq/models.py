"""Requests for quote: what a buyer asks for (tonnes, credits, a delivery schedule), its
conversation with sales staff and, once converted, the offtake contract draft it became."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class RfqStatus(StrEnum):
    NEW = "new"  #: sent by the buyer, not yet answered
    DISCUSSION = "discussion"  #: sales staff replied or took it on
    CONVERTED = "converted"  #: an offtake contract draft was made from it
    DECLINED = "declined"  #: refused, with a reason the buyer sees


RFQ_STATUS_LABELS = labels_for(
    RfqStatus,
    {
        "new": _l("Not yet answered"),
        "discussion": _l("In discussion"),
        "converted": _l("Converted to a contract draft"),
        "declined": _l("Declined"),
    },
)
#: Statuses in which the request can still be answered, declined or converted.
OPEN_STATUSES = (RfqStatus.NEW, RfqStatus.DISCUSSION)


class ScheduleKind(StrEnum):
    ONE_OFF = "one_off"  #: one delivery of every tonne
    YEARLY = "yearly"  #: one tranche a calendar year
    QUARTERLY = "quarterly"  #: one tranche a calendar quarter


SCHEDULE_KIND_LABELS = labels_for(
    ScheduleKind,
    {
        "one_off": _l("One delivery"),
        "yearly": _l("Yearly tranches"),
        "quarterly": _l("Quarterly tranches"),
    },
)


class QuoteRequest(db.Model):
    __tablename__ = "quote_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``RFQ-2026-0007``: the year it was sent and a sequence.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The buyer's user who sent it.
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The salesperson who handles it (none until one is assigned).
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=RfqStatus.NEW, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    #: Comma-separated wanted standards (``CCER``, ``VCS``) and project types; empty means any.
    standards: Mapped[str] = mapped_column(String(40), default="")
    project_types: Mapped[str] = mapped_column(String(200), default="")
    #: Comma-separated codes of catalog projects the buyer named (optional).
    projects: Mapped[str] = mapped_column(String(400), default="")
    vintage_from: Mapped[int | None] = mapped_column(Integer)
    vintage_to: Mapped[int | None] = mapped_column(Integer)
    schedule: Mapped[str] = mapped_column(String(10), default=ScheduleKind.ONE_OFF)
    #: The most the buyer expects to pay per tonne, in yuan (optional).
    price_expectation: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    decline_reason: Mapped[str] = mapped_column(String(500), default="")
    #: The offtake contract draft it became (set once, when converted).
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped["Organisation"] = relationship(lazy="joined")  # noqa: F821
    requested_by: Mapped["User"] = relationship(foreign_keys=[requested_by_id])  # noqa: F821
    assigned_to: Mapped["User | None"] = relationship(foreign_keys=[assigned_to_id])  # noqa: F821
    contract: Mapped["Contract | None"] = relationship()  # noqa: F821
    tranches: Mapped[list["QuoteRequestTranche"]] = relationship(
        order_by="QuoteRequestTranche.seq", lazy="selectin", cascade="all, delete-orphan"
    )
    messages: Mapped[list["QuoteRequestMessage"]] = relationship(
        order_by="QuoteRequestMessage.id", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(one_of("status", RfqStatus), name="status"),
        CheckConstraint(one_of("schedule", ScheduleKind), name="schedule"),
        CheckConstraint(
            "vintage_from IS NULL OR vintage_to IS NULL OR vintage_from <= vintage_to", name="vintages"
        ),
        CheckConstraint("price_expectation IS NULL OR price_expectation > 0", name="price_positive"),
        CheckConstraint("(status = 'converted') = (contract_id IS NOT NULL)", name="converted_has_contract"),
    )

    def listed(self, column: str) -> list[str]:
        return [v for v in (getattr(self, column) or "").split(",") if v]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class QuoteRequestTranche(db.Model):
    """One wanted delivery: a date and tonnes. Numbered from 1 in date order."""

    __tablename__ = "quote_request_tranches"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("quote_requests.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due: Mapped[date]
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("request_id", "seq"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class QuoteRequestMessage(db.Model):
    """A message on a request: a reply from sales staff or the buyer, or a decline's reason."""

    __tablename__ = "quote_request_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("quote_requests.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: Written by staff (shown as the marketplace's answer) rather than by the buyer.
    from_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped["User"] = relationship(lazy="joined")  # noqa: F821
