"""Offtake contracts: terms and their versions, the delivery schedule, deliveries and invoices.

A contract's current terms are columns of ``contracts``; every signed state of them is also kept
as an immutable :class:`ContractVersion` (version 1 at signing, one more per amendment), so any
version can be read later exactly as it was agreed. The credits reserved for a contract are the
blocks in its ledger ``reserve`` account; which tranche they cover is derived (soonest due
first), never stored, so it cannot drift from the ledger.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class ContractStatus(StrEnum):
    DRAFT = "draft"  #: editable; nothing reserved
    ACTIVE = "active"  #: signed: stock is reserved and tranches are delivered
    COMPLETED = "completed"  #: every tranche delivered and every invoice paid
    TERMINATED = "terminated"  #: ended early, with a reason; the reserve went back to inventory


CONTRACT_STATUS_LABELS = labels_for(
    ContractStatus,
    {
        "draft": _l("Draft"),
        "active": _l("Active"),
        "completed": _l("Completed"),
        "terminated": _l("Terminated"),
    },
)


class DeliveryMode(StrEnum):
    HOLDING = "holding"  #: the credits move to the buyer's holding
    RETIRE = "retire"  #: retired on the buyer's behalf, with a certificate


DELIVERY_MODE_LABELS = labels_for(
    DeliveryMode,
    {
        "holding": _l("To the buyer's holding"),
        "retire": _l("Retired for the buyer, with a certificate"),
    },
)


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"


INVOICE_STATUS_LABELS = labels_for(
    InvoiceStatus,
    {"open": _l("Open"), "paid": _l("Paid")},
)


class PaymentMethod(StrEnum):
    BANK = "bank"  #: a bank transfer, recorded by staff
    STRIPE = "stripe"  #: paid online through a PaymentIntent


PAYMENT_METHOD_LABELS = labels_for(
    PaymentMethod,
    {"bank": _l("Bank transfer"), "stripe": _l("Online payment")},
)


class Contract(db.Model):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``OC-2026-0007``: the year it was drafted and a sequence (contract numbers are not secret:
    #: a buyer only ever sees its own).
    number: Mapped[str] = mapped_column(String(20), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The sales staff member who runs the contract.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    start: Mapped[date]
    end: Mapped[date]
    total_quantity: Mapped[int] = mapped_column(Integer)
    #: Price per tonne in the start year, in yuan.
    price_per_t: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    #: Yearly escalation in basis points (250 = 2.5 % a year, compounding).
    escalation_bp: Mapped[int] = mapped_column(Integer, default=0)
    #: Fixed prices for named calendar years, as JSON ``{"2027": "70.00"}``; they win over the
    #: escalation for those years.
    year_prices: Mapped[str] = mapped_column(Text, default="{}")
    #: Preferences for the credits: ``CCER``, ``VCS`` or "" (either).
    standard: Mapped[str] = mapped_column(String(8), default="")
    #: Comma-separated project types and county codes; empty means any.
    project_types: Mapped[str] = mapped_column(String(200), default="")
    counties: Mapped[str] = mapped_column(String(400), default="")
    vintage_from: Mapped[int | None] = mapped_column(Integer)
    vintage_to: Mapped[int | None] = mapped_column(Integer)
    delivery_mode: Mapped[str] = mapped_column(String(10), default=DeliveryMode.HOLDING)
    #: Who the retirement certificates name (retire mode); the organisation when empty.
    beneficiary: Mapped[str] = mapped_column(String(200), default="")
    #: Invoices are due this many days after they are issued.
    payment_days: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[str] = mapped_column(String(12), default=ContractStatus.DRAFT)
    #: The number of the latest signed version (0 while a draft).
    version: Mapped[int] = mapped_column(Integer, default=0)
    termination_reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped["Organisation"] = relationship(lazy="joined")  # noqa: F821
    owner: Mapped["User"] = relationship(lazy="joined")  # noqa: F821
    tranches: Mapped[list["Tranche"]] = relationship(
        back_populates="contract", order_by="Tranche.seq", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("total_quantity > 0", name="total_positive"),
        CheckConstraint("price_per_t > 0", name="price_positive"),
        CheckConstraint("escalation_bp >= 0 AND escalation_bp <= 5000", name="escalation"),
        CheckConstraint('start <= "end"', name="term"),
        CheckConstraint("payment_days >= 0 AND payment_days <= 365", name="payment_days"),
        CheckConstraint(one_of("status", ContractStatus), name="status"),
        CheckConstraint(one_of("delivery_mode", DeliveryMode), name="delivery_mode"),
        UniqueConstraint("created_by", "idempotency_key"),
    )

    @property
    def reserve_ref(self) -> str:
        return f"contract:{self.number}"

    @property
    def delivered(self) -> int:
        return sum(t.delivered for t in self.tranches)

    @property
    def undelivered(self) -> int:
        return sum(t.quantity - t.delivered for t in self.tranches)


class ContractVersion(db.Model):
    """One signed state of a contract's terms and schedule, as canonical JSON; never changed."""

    __tablename__ = "contract_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    terms: Mapped[str] = mapped_column(Text)
    #: Why this version exists: "signed", or the amendment's reason.
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("contract_id", "version"),)


class Tranche(db.Model):
    """One scheduled delivery: a due date and a quantity. Numbered from 1 in due order."""

    __tablename__ = "contract_tranches"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due: Mapped[date]
    quantity: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer, default=0)

    contract: Mapped[Contract] = relationship(back_populates="tranches")

    __table_args__ = (
        UniqueConstraint("contract_id", "seq"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("delivered >= 0 AND delivered <= quantity", name="delivered_within"),
    )

    @property
    def remaining(self) -> int:
        return self.quantity - self.delivered


class Delivery(db.Model):
    """Credits handed over for one tranche: moved to the buyer's holding or retired for it."""

    __tablename__ = "contract_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    tranche_id: Mapped[int] = mapped_column(ForeignKey("contract_tranches.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(10))
    #: Of the quantity, how much the reserve did not have and was taken from inventory.
    from_inventory: Mapped[int] = mapped_column(Integer, default=0)
    movement_id: Mapped[str] = mapped_column(String(32))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    actor: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tranche: Mapped[Tranche] = relationship(lazy="joined")
    certificate: Mapped["Certificate | None"] = relationship()  # noqa: F821
    lines: Mapped[list["DeliveryLine"]] = relationship(order_by="DeliveryLine.id", lazy="selectin")
    invoice: Mapped["Invoice"] = relationship(back_populates="delivery", uselist=False)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(one_of("mode", DeliveryMode), name="mode"),
        CheckConstraint("(mode = 'retire') = (certificate_id IS NOT NULL)", name="retired_has_certificate"),
        UniqueConstraint("contract_id", "idempotency_key"),
    )


class DeliveryLine(db.Model):
    """The tonnes of one batch in a delivery (for the invoice's revenue lines)."""

    __tablename__ = "contract_delivery_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("contract_deliveries.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    quantity: Mapped[int] = mapped_column(Integer)

    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class Invoice(db.Model):
    """One per delivery: quantity × the tranche's price per tonne, due after the payment terms."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``INV-2026-000123``: consecutive per year, as invoices must be.
    number: Mapped[str] = mapped_column(String(20), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("contract_deliveries.id"), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    issued_on: Mapped[date]
    due_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(8), default=InvoiceStatus.OPEN)
    paid_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0.00"))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(255))
    #: When the buyer and the owner were told the invoice is overdue (once).
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contract: Mapped[Contract] = relationship(lazy="joined")
    delivery: Mapped[Delivery] = relationship(back_populates="invoice", lazy="joined")
    payments: Mapped[list["InvoicePayment"]] = relationship(
        back_populates="invoice", order_by="InvoicePayment.id", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("paid_amount >= 0 AND paid_amount <= amount", name="paid_within"),
        CheckConstraint(one_of("status", InvoiceStatus), name="status"),
        CheckConstraint("(status = 'paid') = (paid_amount = amount)", name="paid_in_full"),
        CheckConstraint("due_on >= issued_on", name="due_after_issue"),
    )

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid_amount

    def is_overdue(self, today: date) -> bool:
        return self.status == InvoiceStatus.OPEN and self.due_on < today


class InvoicePayment(db.Model):
    """Money received against an invoice: a bank transfer recorded by staff, or a PaymentIntent."""

    __tablename__ = "invoice_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    method: Mapped[str] = mapped_column(String(8))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    received_on: Mapped[date]
    #: The bank's transaction reference, or the PaymentIntent id.
    reference: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="payments")

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(one_of("method", PaymentMethod), name="method"),
        #: One bank transfer may settle several invoices, but is recorded once on each.
        UniqueConstraint("invoice_id", "method", "reference"),
    )


class ForwardSource(db.Model):
    """Forward supply: part of a contract covered by the forecast issuance of a named project in
    development (``pipeline_projects``) for one vintage, before any of it is issued. When that
    project's batch of that vintage comes up for sale, it is reserved for this contract before
    any other contract's need (``portal.contracts.forward``); ``reserved`` counts what it gave.
    The seller's supply plan, not a term agreed with the buyer: it is not part of the contract's
    versions or documents."""

    __tablename__ = "contract_forward_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    pipeline_project_id: Mapped[int] = mapped_column(ForeignKey("pipeline_projects.id"), index=True)
    vintage: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    #: Tonnes reserved for the contract from the project's issued batches of the vintage.
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contract: Mapped[Contract] = relationship()
    project: Mapped["PipelineProject"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        UniqueConstraint("contract_id", "pipeline_project_id", "vintage"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("reserved >= 0 AND reserved <= quantity", name="reserved_range"),
    )

    @property
    def forward(self) -> int:
        """Tonnes still awaiting issuance."""
        return self.quantity - self.reserved
