"""The ledger's tables: batches of issued credits, accounts, blocks and the journal.

Every credit is a serial number 1..quantity within its batch. At every moment each serial is in
exactly one block, and each block is in exactly one account. Only ``portal.ledger.services``
writes to these tables.
"""

from datetime import date, datetime
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.labels import labels_for
from portal.core.sql import one_of
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class AccountKind(StrEnum):
    INVENTORY = "inventory"  #: the operator's stock for sale
    BUFFER = "buffer"  #: non-permanence pool (VCS AFOLU); never sold
    HOLD = "hold"  #: one per checkout order, for 30 minutes
    RESERVE = "reserve"  #: one per offtake contract
    HOLDING = "holding"  #: one per buyer organisation
    RETIRED = "retired"  #: terminal: the credits' claim is used
    CANCELLED = "cancelled"  #: terminal: withdrawn (registry cancellation, reversal)
    #: Off sale until staff resolve a difference with the registry account (reconciliation):
    #: the credits go back to inventory, or are cancelled.
    WITHHELD = "withheld"


ACCOUNT_KIND_LABELS = labels_for(
    AccountKind,
    {
        "inventory": _l("Inventory for sale"),
        "buffer": _l("Buffer pool"),
        "hold": _l("Order hold"),
        "reserve": _l("Contract reserve"),
        "holding": _l("Buyer's holding"),
        "retired": _l("Retired"),
        "cancelled": _l("Cancelled"),
        "withheld": _l("Withheld (registry difference)"),
    },
)


#: Accounts that exist once, created on first use.
SYSTEM_KINDS = (
    AccountKind.INVENTORY,
    AccountKind.BUFFER,
    AccountKind.RETIRED,
    AccountKind.CANCELLED,
    AccountKind.WITHHELD,
)
#: Nothing ever leaves these.
TERMINAL_KINDS = (AccountKind.RETIRED, AccountKind.CANCELLED)
#: Accounts opened for a purpose and limited to what that purpose needs.
OWNED_KINDS = (AccountKind.HOLD, AccountKind.RESERVE, AccountKind.HOLDING)


#: Where credits may go from each kind of account: the flows of docs/architecture.md and nothing else.
#: The buffer is never sold (only cancelled on a reversal); a holding's credits are the buyer's
#: (retired, or cancelled by a registry reversal), never re-stocked; terminal accounts give nothing.
ALLOWED_MOVES = {
    AccountKind.INVENTORY: {
        AccountKind.HOLD,
        AccountKind.RESERVE,
        AccountKind.HOLDING,
        AccountKind.BUFFER,
        AccountKind.RETIRED,
        AccountKind.CANCELLED,
        AccountKind.WITHHELD,
    },
    AccountKind.BUFFER: {AccountKind.CANCELLED},
    AccountKind.WITHHELD: {AccountKind.INVENTORY, AccountKind.CANCELLED},
    AccountKind.HOLD: {AccountKind.INVENTORY, AccountKind.HOLDING, AccountKind.RETIRED},
    AccountKind.RESERVE: {AccountKind.INVENTORY, AccountKind.HOLDING, AccountKind.RETIRED},
    AccountKind.HOLDING: {AccountKind.RETIRED, AccountKind.CANCELLED},
    AccountKind.RETIRED: set(),
    AccountKind.CANCELLED: set(),
}
#: Issuance puts credits here and nowhere else.
ISSUE_KINDS = (AccountKind.INVENTORY, AccountKind.BUFFER)
#: Holds and reserves must have a capacity; nothing else has one.
CAPACITY_KINDS = (AccountKind.HOLD, AccountKind.RESERVE)
#: Quantities are stored as 32-bit integers on every database.
MAX_QUANTITY = 2**31 - 1


class EntryKind(StrEnum):
    ISSUE = "issue"
    TRANSFER = "transfer"
    RETIRE = "retire"
    CANCEL = "cancel"


ENTRY_KIND_LABELS = labels_for(
    EntryKind,
    {
        "issue": _l("Issuance"),
        "transfer": _l("Transfer"),
        "retire": _l("Retirement"),
        "cancel": _l("Cancellation"),
    },
)


class Batch(db.Model):
    """One issuance by a registry for one project and one monitoring period (the vintage)."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The portal's code, e.g. ``CCER-AH-FOR-01-2021``; used in URLs and the API.
    code: Mapped[str] = mapped_column(String(80), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    vintage_start: Mapped[date]
    vintage_end: Mapped[date]
    #: Whole tonnes (1 credit = 1 tCO2e); portal serials are 1..quantity.
    quantity: Mapped[int] = mapped_column(Integer)
    #: Of the quantity, how many went to the buffer at issuance.
    buffer_quantity: Mapped[int] = mapped_column(Integer, default=0)
    issued_on: Mapped[date]
    #: The registry's issuance reference (notice number, Verra issuance id).
    registry_reference: Mapped[str] = mapped_column(String(120), default="")
    #: The registry's serial numbers of the first and last credit, kept exactly as given.
    registry_serial_start: Mapped[str] = mapped_column(String(120), default="")
    registry_serial_end: Mapped[str] = mapped_column(String(120), default="")
    #: Registry unit number of portal serial n is ``registry_unit_offset + n``, where known.
    registry_unit_offset: Mapped[int | None] = mapped_column(BigInteger)
    #: The namespace the registry's unit numbers are unique in (the CCER serial prefix,
    #: ``VCS-VCU`` for Verra); with the offset, where two issuances would overlap.
    #: See ``portal.ledger.serials``. Empty where the serials are not known.
    registry_series: Mapped[str] = mapped_column(String(120), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped["Project"] = relationship(lazy="joined")  # noqa: F821
    listing: Mapped["Listing | None"] = relationship(back_populates="batch", uselist=False)  # noqa: F821

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("buffer_quantity >= 0 AND buffer_quantity < quantity", name="buffer_quantity"),
        CheckConstraint("vintage_start <= vintage_end", name="vintage"),
        Index("ix_batches_vintage", "vintage_start", "vintage_end", "id"),
        Index("ix_batches_registry_units", "registry_series", "registry_unit_offset"),
    )

    def registry_unit(self, serial: int) -> int | None:
        """The registry's unit number of portal serial ``serial``, if the registry numbers units."""
        return None if self.registry_unit_offset is None else self.registry_unit_offset + serial

    def block_label(self, serial_start: int, serial_end: int) -> str:
        """A serial-range label in the Verra / Gold Standard style."""
        project = self.project
        return (
            f"CFC-{project.standard}-{project.code}-{self.vintage_start:%d%m%Y}-{self.vintage_end:%d%m%Y}"
            f"-{serial_start}-{serial_end}"
        )

    def __repr__(self):
        return f"<Batch {self.code} {self.quantity}t>"


class Account(db.Model):
    """A place credits can be: inventory, buffer, a hold, a reserve, a holding, retired, cancelled."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: What the account belongs to: an order id, a contract number, an organisation's USCC;
    #: empty for the system accounts.
    ref: Mapped[str] = mapped_column(String(64), default="")
    #: For holds and reserves: the most the account may ever contain at once.
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("kind", "ref"),
        CheckConstraint(one_of("kind", AccountKind), name="kind"),
        CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"),
        CheckConstraint("(kind IN ('hold', 'reserve')) = (capacity IS NOT NULL)", name="capacity_for_holds"),
    )

    @property
    def is_terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    def __str__(self):
        return f"{self.kind}:{self.ref}" if self.ref else self.kind

    def __repr__(self):
        return f"<Account {self}>"


class Block(db.Model):
    """A contiguous serial range of one batch, in one account."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    serial_start: Mapped[int] = mapped_column(Integer)
    serial_end: Mapped[int] = mapped_column(Integer)

    batch: Mapped[Batch] = relationship()
    account: Mapped[Account] = relationship()

    __table_args__ = (
        UniqueConstraint("batch_id", "serial_start"),
        CheckConstraint("serial_start >= 1", name="serial_start_positive"),
        CheckConstraint("serial_start <= serial_end", name="serial_range"),
        Index("ix_blocks_account_batch", "account_id", "batch_id", "serial_start"),
    )

    @property
    def quantity(self) -> int:
        return self.serial_end - self.serial_start + 1

    def __repr__(self):
        return f"<Block batch={self.batch_id} {self.serial_start}-{self.serial_end} acct={self.account_id}>"


class LedgerEntry(db.Model):
    """One journalled movement of one serial range. Append-only (a database trigger refuses
    updates and deletes); replaying the entries in id order rebuilds every block."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Entries written by one service call share it (a move may span several batches).
    movement_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    serial_start: Mapped[int] = mapped_column(Integer)
    serial_end: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    #: Empty only for issuance.
    from_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    to_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: What caused it: ``order:42``, ``contract:CT-2026-0001``, ``retirement:…``, ``cli``.
    reference: Mapped[str] = mapped_column(String(120), default="", index=True)
    #: Who: ``user:7``, ``system``, ``cli``.
    actor: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    batch: Mapped[Batch] = relationship()
    from_account: Mapped[Account | None] = relationship(foreign_keys=[from_account_id])
    to_account: Mapped[Account] = relationship(foreign_keys=[to_account_id])

    __table_args__ = (
        CheckConstraint(one_of("kind", EntryKind), name="kind"),
        CheckConstraint("serial_start >= 1 AND serial_start <= serial_end", name="serial_range"),
        CheckConstraint("quantity = serial_end - serial_start + 1", name="quantity_matches_range"),
        CheckConstraint(
            "(kind = 'issue' AND from_account_id IS NULL) OR (kind <> 'issue' AND from_account_id IS NOT NULL)",
            name="source_unless_issue",
        ),
        CheckConstraint(
            "from_account_id IS NULL OR from_account_id <> to_account_id", name="distinct_accounts"
        ),
    )
