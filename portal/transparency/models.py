"""The transparency log's tables: its leaves, the hashes kept with them, the tree's current
state, and every signed tree head. All but the state are append-only (database triggers)."""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class LogEntry(db.Model):
    """One leaf: an event about a certificate, as the exact bytes that were hashed."""

    __tablename__ = "log_entries"

    #: The leaf's place in the tree, from 0, without gaps.
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: ``issuance``, ``revocation`` or ``registry_confirmation`` (also inside the leaf).
    kind: Mapped[str] = mapped_column(String(32))
    #: The certificate the event is about (also inside the leaf). Deliberately no foreign key:
    #: the append, the last step before commit, must take no lock on any other row.
    certificate_number: Mapped[str] = mapped_column(String(24))
    #: The leaf data: canonical JSON of the signed statement (see ``appending.leaf_input``).
    leaf_input: Mapped[bytes] = mapped_column(LargeBinary)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("leaf_index >= 0", name="leaf_index_not_negative"),
        Index("ix_log_entries_certificate_number", "certificate_number", "leaf_index"),
    )


class LogNode(db.Model):
    """The hashes of the perfect subtrees a leaf completed when it was appended, level 0 (the
    leaf hash) first, 32 bytes each: what makes any proof a handful of primary-key reads."""

    __tablename__ = "log_nodes"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LogState(db.Model):
    """The tree as it stands (one row, id 1): its size and frontier. Locked by every append, as
    the last lock of its transaction."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    #: The frontier's hashes, largest subtree first, 32 bytes each.
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),
    )


class TreeHead(db.Model):
    """A signed tree head: the portal's Ed25519 signature over (size, root, timestamp)."""

    __tablename__ = "log_tree_heads"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    #: Milliseconds since 1970-01-01 UTC, as signed.
    timestamp: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(ForeignKey("signing_keys.key_id"))
    #: Standard base64 of the Ed25519 signature over ``heads.message(...)``.
    signature: Mapped[str] = mapped_column(String(100))

    __table_args__ = (CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),)
