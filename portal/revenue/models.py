"""Effective-dated sharing rules and the revenue lines they produced (integer fen: exact)."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class SharingRule(db.Model):
    """From ``effective_from`` on, sales of a county's (or any county's) projects of a type (or
    any type) are shared city : county as given. Rules are never edited: a change is a new rule
    with a later date, so past lines keep the rule they were made with."""

    __tablename__ = "sharing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    effective_from: Mapped[date]
    #: A county-level unit's region code, or "" for every county.
    region_code: Mapped[str] = mapped_column(String(32), default="")
    #: A project type, or "" for every type.
    project_type: Mapped[str] = mapped_column(String(16), default="")
    #: Shares in basis points (hundredths of a per cent): integers, so exact on every database.
    city_bp: Mapped[int] = mapped_column(Integer)
    county_bp: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("city_bp >= 0 AND county_bp >= 0", name="shares_not_negative"),
        CheckConstraint("city_bp + county_bp = 10000", name="shares_add_up"),
        UniqueConstraint("effective_from", "region_code", "project_type"),
    )

    @property
    def city_pct(self) -> Decimal:
        return Decimal(self.city_bp) / 100

    @property
    def county_pct(self) -> Decimal:
        return Decimal(self.county_bp) / 100


class RevenueLine(db.Model):
    """One paid sale portion (one batch of one sale) and its split; a refund adds a reversing
    line with negative amounts."""

    __tablename__ = "revenue_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``order`` (a paid checkout order) or ``invoice`` (a paid contract invoice).
    sale_kind: Mapped[str] = mapped_column(String(16))
    sale_ref: Mapped[str] = mapped_column(String(64), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    #: The day the money was received (Beijing time): statements are by this date.
    paid_on: Mapped[date] = mapped_column(index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    city_fen: Mapped[int] = mapped_column(BigInteger)
    county_fen: Mapped[int] = mapped_column(BigInteger)
    rule_id: Mapped[int] = mapped_column(ForeignKey("sharing_rules.id"))
    reversal_of_id: Mapped[int | None] = mapped_column(ForeignKey("revenue_lines.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821
    region: Mapped["Region"] = relationship(lazy="joined")  # noqa: F821
    rule: Mapped[SharingRule] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("city_fen + county_fen = amount_fen", name="shares_add_up"),
        Index("ix_revenue_lines_region_paid_on", "region_id", "paid_on"),
    )
