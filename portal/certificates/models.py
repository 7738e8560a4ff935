"""Retirements and their certificates, the blocks each one retired, and the signing keys."""

from datetime import datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class Purpose(StrEnum):
    VOLUNTARY = "voluntary"  #: voluntary offset of a stated period's emissions
    EVENT = "event"  #: neutralising an event
    COMPLIANCE = "compliance"  #: national-ETS compliance offset (CCER only)


PURPOSE_LABELS = labels_for(
    Purpose,
    {
        "voluntary": _l("Voluntary offset"),
        "event": _l("Event neutralisation"),
        "compliance": _l("National ETS compliance offset"),
    },
)


class CertificateStatus(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"


CERTIFICATE_STATUS_LABELS = labels_for(
    CertificateStatus,
    {"valid": _l("Valid"), "revoked": _l("Revoked")},
)


class Source(StrEnum):
    """Where the retired credits came from."""

    HOLDING = "holding"  #: the organisation's own holding
    ORDER = "order"  #: a paid checkout order's hold
    CONTRACT = "contract"  #: an offtake contract's delivery


SOURCE_LABELS = labels_for(
    Source,
    {
        "holding": _l("From the organisation's holding"),
        "order": _l("From a paid checkout order"),
        "contract": _l("From an offtake contract delivery"),
    },
)


class SigningKey(db.Model):
    """A public key the portal has signed certificates with; kept for ever, so that rotating the
    private key leaves every older certificate verifiable."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The first 16 hex digits of the SHA-256 of the raw public key.
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    #: The raw 32-byte Ed25519 public key, standard base64.
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Certificate(db.Model):
    """One retirement and the certificate that proves it (always one of each, so one row).

    ``payload`` is the canonical JSON that was signed; the other columns repeat what the register
    searches by. Nothing here changes after creation except the revocation columns.
    """

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``CFC-2026-7K3Q-9XHD``: random, with a check character (see ``numbers``).
    number: Mapped[str] = mapped_column(String(24), unique=True)
    #: Found by the unique index on ``(organisation_id, idempotency_key)``, which leads with it.
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    beneficiary: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    #: The period or event the retirement is for, in the buyer's words (may be empty).
    purpose_detail: Mapped[str] = mapped_column(String(300), default="")
    #: For a national-ETS compliance offset: the compliance year it counts towards (set by the
    #: certificates service for every compliance retirement, and then fixed like the rest).
    compliance_year: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    #: The order id, the contract delivery, or empty for a retirement from the holding.
    source_ref: Mapped[str] = mapped_column(String(64), default="")
    #: The ledger movement that retired the credits.
    movement_id: Mapped[str] = mapped_column(String(36))
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    payload: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(ForeignKey("signing_keys.key_id"))
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.VALID)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
    revoked_by: Mapped[str | None] = mapped_column(String(120))
    #: A client's ``Idempotency-Key``: a repeat returns this certificate instead of retiring again.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    #: SHA-256 of the request that carried the key: the same key with another request is refused.
    request_digest: Mapped[str | None] = mapped_column(String(64))

    organisation: Mapped["Organisation"] = relationship(lazy="joined")  # noqa: F821
    blocks: Mapped[list["CertificateBlock"]] = relationship(
        back_populates="certificate", order_by="CertificateBlock.id", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(one_of("purpose", Purpose), name="purpose"),
        CheckConstraint(one_of("status", CertificateStatus), name="status"),
        CheckConstraint(one_of("source", Source), name="source"),
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_at"),
        UniqueConstraint("organisation_id", "idempotency_key"),
    )

    @property
    def is_valid(self) -> bool:
        return self.status == CertificateStatus.VALID


class CertificateBlock(db.Model):
    """A serial range of one batch retired by a certificate: answers "who retired serial X"."""

    __tablename__ = "certificate_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    serial_start: Mapped[int] = mapped_column(Integer)
    serial_end: Mapped[int] = mapped_column(Integer)

    certificate: Mapped[Certificate] = relationship(back_populates="blocks")
    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        CheckConstraint("serial_start >= 1 AND serial_start <= serial_end", name="serials"),
        Index("ix_certificate_blocks_batch_serial", "batch_id", "serial_start"),
    )

    @property
    def quantity(self) -> int:
        return self.serial_end - self.serial_start + 1


class Rendition(db.Model):
    """A certificate's public page (per language) or JSON as last drawn: served
    instead of drawing it again while its ``stamp`` still names what the certificate is now
    (``certificates.renditions``). Only ever a copy: deleting every row changes no answer."""

    __tablename__ = "certificate_renditions"

    certificate_id: Mapped[int] = mapped_column(
        ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True
    )
    #: "page:zh", "page:en" or "json".
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: What the body was drawn from: the answer's ETag and the signed payload it was checked on.
    stamp: Mapped[str] = mapped_column(String(64))
    #: The release that drew it (``core.validators.release``): the job drawing ahead redraws
    #: those of another.
    release: Mapped[str] = mapped_column(String(16))
    #: The answer's bytes as served (PostgreSQL compresses them in the row, with lz4 where it can:
    #: migration 0031).
    body: Mapped[bytes] = mapped_column(LargeBinary)
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AllowanceDeclaration(db.Model):
    """What a national-ETS entity says it must surrender for a compliance year: the base of its
    5 % CCER offset cap. Changed by declaring again (audited)."""

    __tablename__ = "allowance_declarations"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    year: Mapped[int] = mapped_column(Integer)
    #: Allowances due, in tonnes CO2.
    allowances_t: Mapped[int] = mapped_column(BigInteger)
    declared_by: Mapped[str] = mapped_column(String(120))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("allowances_t >= 0", name="allowances_not_negative"),
        CheckConstraint("year BETWEEN 2020 AND 2100", name="year"),
        UniqueConstraint("organisation_id", "year"),
    )
