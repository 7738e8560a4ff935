"""Checkout orders for one-off offsets: a hold of blocks, a PaymentIntent, then a certificate."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"  #: blocks held until hold_expires_at
    FULFILLED = "fulfilled"  #: paid; the credits are retired and the certificate issued
    EXPIRED = "expired"  #: not paid in time: the hold went back to inventory
    FAILED = "failed"  #: the payment failed: the hold went back to inventory
    CANCELLED = "cancelled"  #: cancelled by the buyer or staff before payment
    REFUNDED = "refunded"  #: paid, but refunded before any credit was retired


ORDER_STATUS_LABELS = labels_for(
    OrderStatus,
    {
        "awaiting_payment": _l("Awaiting payment"),
        "fulfilled": _l("Paid and retired"),
        "expired": _l("Expired"),
        "failed": _l("Payment failed"),
        "cancelled": _l("Cancelled"),
        "refunded": _l("Refunded"),
    },
)


class OrderNote(StrEnum):
    """Why an order ended as it did: stored as this English text (readable in the database and
    the audit log), shown translated (``ORDER_NOTE_LABELS``)."""

    PAYMENT_UNAVAILABLE = "payment service unavailable"
    EXPIRED = "the hold expired before payment"
    PAYMENT_FAILED = "the payment failed"
    #: While the order still waits: the last attempt was declined; the hold stands until it expires.
    ATTEMPT_DECLINED = "the last payment attempt was declined"
    WRONG_AMOUNT = "the amount paid does not match the order"
    PAID_AFTER_CANCELLATION = "paid after the order was cancelled"
    STOCK_GONE = "paid after the hold was released, and the stock is gone"
    NOT_ALLOWED_NOW = "paid after the hold was released, and the organisation may not buy it now"
    HELD_AGAIN = "paid after the hold expired; held again, the amount paid shared over the new batches"
    REFUNDED_IN_STRIPE = "refunded in Stripe before fulfilment"
    REFUNDED_BY_STAFF = "refunded by staff"
    CANCELLED_BY_STAFF = "cancelled by staff"


ORDER_NOTE_LABELS = labels_for(
    OrderNote,
    {
        "payment service unavailable": _l("The payment service was not available; nothing was charged."),
        "the hold expired before payment": _l("The hold expired before payment."),
        "the payment failed": _l("The payment failed; the credits were released."),
        "the last payment attempt was declined": _l(
            "The last payment attempt was declined. The credits stay held until the hold expires: try again, with another method if you like."
        ),
        "the amount paid does not match the order": _l(
            "The amount paid did not match the order; it was refunded."
        ),
        "paid after the order was cancelled": _l(
            "Paid after the order was cancelled; the payment was refunded."
        ),
        "paid after the hold was released, and the stock is gone": _l(
            "Paid after the hold was released, when the stock was gone; the payment was refunded."
        ),
        "paid after the hold was released, and the organisation may not buy it now": _l(
            "Paid after the hold was released, when the organisation could no longer buy it; the payment was refunded."
        ),
        "paid after the hold expired; held again, the amount paid shared over the new batches": _l(
            "Paid after the hold expired: the same quantity was held again and retired for the amount paid."
        ),
        "refunded in Stripe before fulfilment": _l("Refunded before the credits were retired."),
        "refunded by staff": _l("Refunded by the operator."),
        "cancelled by staff": _l("Cancelled by the operator."),
    },
)


#: How a buyer pays (Stripe's payment method types), as the order page names them.
PAYMENT_METHOD_LABELS = {
    "card": _l("Bank card"),
    "alipay": _l("Alipay"),
    "wechat_pay": _l("WeChat Pay"),
    "bank_transfer": _l("Bank transfer"),
}


class Order(db.Model):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What buyers and the API see: ``ord_`` and 20 random characters (never the row id).
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The user who ordered on the web; None for API orders.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: A guest checkout's buyer (no account); the order then belongs to the guest organisation
    #: (``guests.guest_organisation``).
    guest_id: Mapped[int | None] = mapped_column(ForeignKey("guest_buyers.id"), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    #: The batch the buyer chose, or None for the stated allocation rule.
    batch_code: Mapped[str | None] = mapped_column(String(80))
    beneficiary: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    purpose_detail: Mapped[str] = mapped_column(String(300), default="")
    #: The emission factor set of the estimate the order came from, if any.
    estimate_version: Mapped[str] = mapped_column(String(40), default="")
    #: Total in yuan, exact: the sum of the lines.
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.AWAITING_PAYMENT)
    hold_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    #: How many PaymentIntents the order has had: a new one after a declined attempt (the
    #: declined one is cancelled first), each made with its own Stripe idempotency key.
    payment_attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    #: The buyer named each line's batch and tonnes (lines, a quote, the web order): a late
    #: payment holds those lines again, never other batches.
    by_lines: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    #: The quote the order was placed from, if any: its prices are the order's.
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quotes.id"), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(255))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    refund_id: Mapped[str | None] = mapped_column(String(255))
    #: Why the order ended as it did (expired, failed payment, refunded because …).
    note: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Paid by bank transfer (对公转账, ``offsets.transfers``): no PaymentIntent; staff record the
    #: transfer, and the hold lasts the configured days instead of 30 minutes.
    pays_by_transfer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    #: What the buyer writes in the transfer's memo (附言) so that staff can match it.
    transfer_reference: Mapped[str | None] = mapped_column(String(20), unique=True)
    #: The transfer as staff recorded it: the day it reached the account, its amount, the bank's
    #: own reference (流水号).
    transfer_received_on: Mapped[date | None] = mapped_column(Date)
    transfer_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    transfer_bank_reference: Mapped[str | None] = mapped_column(String(200), unique=True)

    organisation: Mapped["Organisation"] = relationship(lazy="joined")  # noqa: F821
    user: Mapped["User | None"] = relationship()  # noqa: F821
    guest: Mapped["GuestBuyer | None"] = relationship(lazy="joined")
    certificate: Mapped["Certificate | None"] = relationship()  # noqa: F821
    quote: Mapped["Quote | None"] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", order_by="OrderLine.id", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(one_of("status", OrderStatus), name="status"),
        CheckConstraint(
            "(status = 'fulfilled') = (certificate_id IS NOT NULL)", name="fulfilled_has_certificate"
        ),
        UniqueConstraint("organisation_id", "idempotency_key"),
        CheckConstraint("pays_by_transfer = (transfer_reference IS NOT NULL)", name="transfer_has_reference"),
    )

    @property
    def hold_ref(self) -> str:
        return f"order:{self.public_id}"


class GuestBuyer(db.Model):
    """Who bought without an account (guest checkout, voluntary and event offsets only): a name,
    an e-mail address and, if given, an organisation's name and USCC. The order's page is reached
    by a secret link sent by e-mail; only the SHA-256 of its token is kept, and the link works
    until ``link_expires_at``."""

    __tablename__ = "guest_buyers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: Stored lower-cased.
    email: Mapped[str] = mapped_column(String(254), index=True)
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    #: Checked (GB 32100-2015 check character) when given.
    uscc: Mapped[str | None] = mapped_column(String(18))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def retired_by(self) -> str:
        """Who the certificate says retired the credits: the organisation named, or the person."""
        return self.organisation_name or self.name


class OrderLine(db.Model):
    """The tonnes of one batch in an order, at that batch's listed price when ordered."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))

    order: Mapped[Order] = relationship(back_populates="lines")
    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
    )


class Quote(db.Model):
    """Priced lines given to a buyer without holding anything: valid ``QUOTE_MINUTES``, then
    priced again. An order may cite it once, at these prices, while it is valid."""

    __tablename__ = "quotes"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What buyers and the API see: ``quo_`` and 20 random characters.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    #: Total in yuan, exact: the sum of the lines.
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lines: Mapped[list["QuoteLine"]] = relationship(
        back_populates="quote", order_by="QuoteLine.id", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class QuoteLine(db.Model):
    """The tonnes of one batch in a quote, at the price quoted."""

    __tablename__ = "quote_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))

    quote: Mapped[Quote] = relationship(back_populates="lines")
    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="unit_price_positive"),
        UniqueConstraint("quote_id", "batch_id"),
    )
