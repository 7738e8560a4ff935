"""Fapiao requests and the e-fapiao PDFs staff attach to them."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, Numeric, String, text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class FapiaoKind(StrEnum):
    NORMAL = "normal"  #: 增值税普通发票 (普票): the buyer's name and taxpayer id
    SPECIAL = "special"  #: 增值税专用发票 (专票): also address, phone, bank and account; VAT deductible


FAPIAO_KIND_LABELS = labels_for(
    FapiaoKind,
    {
        "normal": _l("General VAT fapiao (普票)"),
        "special": _l("Special VAT fapiao (专票)"),
    },
)


class FapiaoStatus(StrEnum):
    REQUESTED = "requested"  #: waiting for staff
    ISSUED = "issued"  #: issued: number, date and the e-fapiao PDF recorded
    REJECTED = "rejected"  #: refused by staff with a reason (the buyer may ask again)
    VOIDED = "voided"  #: issued, then voided (红冲) by staff with a reason (the buyer may ask again)


FAPIAO_STATUS_LABELS = labels_for(
    FapiaoStatus,
    {
        "requested": _l("Requested"),
        "issued": _l("Issued"),
        "rejected": _l("Rejected"),
        "voided": _l("Voided"),
    },
)

#: The states in which a request stands for its order or invoice (one at a time).
STANDING = (FapiaoStatus.REQUESTED, FapiaoStatus.ISSUED)
_STANDING_SQL = text("status IN ('requested', 'issued')")


class FapiaoRequest(db.Model):
    """A buyer's request for a VAT fapiao for one paid order or one paid contract invoice."""

    __tablename__ = "fapiao_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What buyers and staff see: ``fp_`` and 16 random characters.
    public_id: Mapped[str] = mapped_column(String(24), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: Exactly one of the two: what the fapiao is for.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(10))
    #: The amount the fapiao is for (yuan, tax included): the order's or the invoice's total.
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    #: 抬头: the buyer's name as on its tax registration.
    title: Mapped[str] = mapped_column(String(200))
    #: 纳税人识别号: the buyer's unified social credit code.
    taxpayer_id: Mapped[str] = mapped_column(String(18))
    #: For a special fapiao (专票): registered address and phone, bank and account.
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    bank: Mapped[str] = mapped_column(String(100), default="")
    bank_account: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(10), default=FapiaoStatus.REQUESTED)
    requested_by: Mapped[str] = mapped_column(String(120))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The tax authority's fapiao number (发票号码: 8 or 20 digits) and issue date.
    fapiao_number: Mapped[str | None] = mapped_column(String(20))
    issued_on: Mapped[date | None] = mapped_column(Date)
    pdf_filename: Mapped[str | None] = mapped_column(String(200))
    pdf_size: Mapped[int | None] = mapped_column(Integer)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    #: Who last decided (issued, rejected, voided), when, and the reason given for a refusal.
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(300), default="")

    organisation: Mapped["Organisation"] = relationship(lazy="joined")  # noqa: F821
    order: Mapped["Order | None"] = relationship()  # noqa: F821
    invoice: Mapped["Invoice | None"] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint("(order_id IS NULL) <> (invoice_id IS NULL)", name="one_subject"),
        CheckConstraint(one_of("kind", FapiaoKind), name="kind"),
        CheckConstraint(one_of("status", FapiaoStatus), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status NOT IN ('issued', 'voided') OR (fapiao_number IS NOT NULL AND pdf_sha256 IS NOT NULL)",
            name="issued_has_fapiao",
        ),
        # One standing request per order and per invoice; a rejected or voided one makes way.
        Index(
            "uq_fapiao_requests_order_standing",
            "order_id",
            unique=True,
            sqlite_where=_STANDING_SQL,
            postgresql_where=_STANDING_SQL,
        ),
        Index(
            "uq_fapiao_requests_invoice_standing",
            "invoice_id",
            unique=True,
            sqlite_where=_STANDING_SQL,
            postgresql_where=_STANDING_SQL,
        ),
    )

    @property
    def subject_number(self) -> str:
        """The order's or the invoice's number, as the buyer knows it."""
        return self.order.public_id if self.order is not None else self.invoice.number
