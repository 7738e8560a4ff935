"""Registry instructions (one per certificate and batch: what the operator must retire in the
official registry), the signed confirmations of them, imported registry account statements and
the serials withheld from sale until a difference is resolved."""

from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class Registry(StrEnum):
    CCER = "ccer"  #: the national CCER registry (注册登记系统)
    VERRA = "verra"  #: Verra's registry (VCS)


REGISTRY_LABELS = labels_for(Registry, {"ccer": _l("National CCER registry"), "verra": _l("Verra registry")})


class InstructionKind(StrEnum):
    CANCELLATION = "cancellation"  #: CCER 注销 for a voluntary claim
    ETS_OFFSET = "ets_offset"  #: CCER 注销 through the national ETS offset (抵销) procedure
    RETIREMENT = "retirement"  #: a Verra retirement naming the beneficiary


INSTRUCTION_KIND_LABELS = labels_for(
    InstructionKind,
    {
        "cancellation": _l("Cancellation for a voluntary claim"),
        "ets_offset": _l("Cancellation for the ETS offset procedure"),
        "retirement": _l("Retirement naming the beneficiary"),
    },
)


class InstructionStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


#: How a certificate's registry status reads (the certificate's, and its instructions').
REGISTRY_STATUS_LABELS = labels_for(
    InstructionStatus,
    {
        "pending": _l("Awaiting the registry"),
        "confirmed": _l("Confirmed by the registry"),
        "rejected": _l("Rejected by the registry"),
    },
)


class RegistryInstruction(db.Model):
    """What the operator must do in a registry for one certificate's serials of one batch.
    Written in the transaction that retires the credits; decided once (confirmed or rejected)."""

    __tablename__ = "registry_instructions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Found by the unique index on ``(certificate_id, batch_id)``, which leads with it.
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    #: Repeated from the certificate: the instruction is a document of its own.
    certificate_number: Mapped[str] = mapped_column(String(24))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    #: Which registry (column ``registry``; ``registry`` is reserved on a declarative class).
    registry_name: Mapped[str] = mapped_column("registry", String(8))
    kind: Mapped[str] = mapped_column(String(16))
    beneficiary: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16))
    compliance_year: Mapped[int | None] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    #: The portal serial ranges, ``start-end`` joined by commas, lowest first.
    ranges: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=InstructionStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(120))
    #: The registry's reference of the retirement (注销 notice, Verra retirement id).
    registry_reference: Mapped[str | None] = mapped_column(String(120))
    registry_date: Mapped[date | None]
    #: The serial range(s) as the registry's record states them.
    registry_serials: Mapped[str | None] = mapped_column(String(500))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    #: When operators were told, once, that it waits too long.
    overdue_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The decision's request digest: the same decision sent again is answered, not refused.
    decision_digest: Mapped[str | None] = mapped_column(String(64))

    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821
    confirmation: Mapped["RegistryConfirmation | None"] = relationship(
        back_populates="instruction", uselist=False, lazy="selectin"
    )

    __table_args__ = (
        UniqueConstraint("certificate_id", "batch_id"),
        CheckConstraint(one_of("registry", Registry), name="registry"),
        CheckConstraint(one_of("kind", InstructionKind), name="kind"),
        CheckConstraint(one_of("status", InstructionStatus), name="status"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "status <> 'confirmed' OR (registry_reference IS NOT NULL AND registry_date IS NOT NULL)",
            name="confirmed_with_reference",
        ),
        CheckConstraint("status <> 'rejected' OR rejection_reason IS NOT NULL", name="rejected_with_reason"),
        CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_at"),
        Index("ix_registry_instructions_queue", "status", "registry", "batch_id"),
    )

    @property
    def serial_ranges(self) -> list[tuple[int, int]]:
        return [tuple(int(n) for n in part.split("-")) for part in self.ranges.split(",") if part]


class RegistryConfirmation(db.Model):
    """The registry's confirmation of an instruction, signed with the portal's key as a record
    of its own: the certificate's signed payload never changes."""

    __tablename__ = "registry_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    instruction_id: Mapped[int] = mapped_column(ForeignKey("registry_instructions.id"), unique=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    #: Canonical JSON (as certificates are signed): certificate, registry, reference, date, serials.
    payload: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[str] = mapped_column(ForeignKey("signing_keys.key_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    instruction: Mapped[RegistryInstruction] = relationship(back_populates="confirmation")


class RegistryStatement(db.Model):
    """An account statement imported from a registry: the serial blocks it shows."""

    __tablename__ = "registry_statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Which registry (column ``registry``; ``registry`` is reserved on a declarative class).
    registry_name: Mapped[str] = mapped_column("registry", String(8))
    #: The operator's account in the registry the statement is of.
    account: Mapped[str] = mapped_column(String(120))
    #: ``portal`` (the documented columns) or ``verra`` (Verra's public export).
    format: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(200), default="")
    #: SHA-256 of the file as uploaded.
    digest: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(120))

    blocks: Mapped[list["StatementBlock"]] = relationship(
        back_populates="statement", order_by="StatementBlock.id", lazy="selectin"
    )

    __table_args__ = (CheckConstraint(one_of("registry", Registry), name="registry"),)


class BlockStatus(StrEnum):
    ACTIVE = "active"  #: held in the account
    RETIRED = "retired"
    CANCELLED = "cancelled"


BLOCK_STATUS_LABELS = labels_for(
    BlockStatus,
    {
        "active": _l("Active in the registry account"),
        "retired": _l("Retired in the registry"),
        "cancelled": _l("Cancelled in the registry"),
    },
)


class StatementBlock(db.Model):
    """One serial block a statement shows: registry units ``first..last`` of ``series``."""

    __tablename__ = "registry_statement_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("registry_statements.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    series: Mapped[str] = mapped_column(String(120))
    unit_first: Mapped[int] = mapped_column(BigInteger)
    unit_last: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))

    statement: Mapped[RegistryStatement] = relationship(back_populates="blocks")

    __table_args__ = (
        CheckConstraint("unit_first >= 1 AND unit_first <= unit_last", name="units"),
        CheckConstraint(one_of("status", BlockStatus), name="status"),
    )


class WithholdingStatus(StrEnum):
    WITHHELD = "withheld"  #: off sale, in the ledger's withheld account
    RELEASED = "released"  #: back to sale: the registry shows them after all
    CANCELLED = "cancelled"  #: the registry does not have them: cancelled in the ledger


WITHHOLDING_STATUS_LABELS = labels_for(
    WithholdingStatus,
    {
        "withheld": _l("Withheld from sale"),
        "released": _l("Released back to sale"),
        "cancelled": _l("Cancelled"),
    },
)


class Withholding(db.Model):
    """Serials a reconciliation took off sale (portal serials of one batch) until staff resolve
    the difference."""

    __tablename__ = "registry_withholdings"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("registry_statements.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    serial_start: Mapped[int] = mapped_column(Integer)
    serial_end: Mapped[int] = mapped_column(Integer)
    #: Why: ``missing`` (not in the registry account) or ``retired_in_registry``.
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=WithholdingStatus.WITHHELD)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolution_note: Mapped[str | None] = mapped_column(String(500))

    batch: Mapped["Batch"] = relationship(lazy="joined")  # noqa: F821

    __table_args__ = (
        CheckConstraint("serial_start >= 1 AND serial_start <= serial_end", name="serials"),
        CheckConstraint(one_of("status", WithholdingStatus), name="status"),
        Index("ix_registry_withholdings_open", "status", "batch_id"),
    )

    @property
    def quantity(self) -> int:
        return self.serial_end - self.serial_start + 1
