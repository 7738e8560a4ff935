"""Appending to the log: ``record`` in the event's transaction, the append at its commit.

**Why in the event's transaction, and why at commit.** A leaf commits or rolls back with the
event it records, so no event is lost or logged twice and there is no merge delay: the moment a
certificate exists, its index does. ``record`` only prepares the leaf (its bytes and hash) and
keeps it with the session; the append itself runs in the session's ``before_commit``, after
every other change of the transaction has been flushed. It locks the log's state row — the last
lock the transaction takes, after the ledger's batch locks and any row the event changed — then
numbers the leaves, writes them with the hashes they complete, and updates the state; COMMIT
follows at once. On PostgreSQL one leaf (a transaction's usual one) takes one statement for all
of it (``_APPEND_ONE``), so the lock is held for that round trip and the commit only. So appends are serialised only for those few statements and the commit, and
since a transaction holding the state row never waits for another lock, the log cannot be part
of a deadlock with the ledger's lock order (nor with any lock order that ends before commit).

A leaf recorded inside a savepoint that is rolled back is dropped with it; one recorded in a
transaction that rolls back is never appended.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import LargeBinary, bindparam, event, insert, select, text, update
from sqlalchemy.orm import Session, SessionTransaction

from portal.certificates import signing
from portal.core import tasks
from portal.core.driver import for_driver, session_rows
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow
from portal.transparency import merkle
from portal.transparency.models import LogEntry, LogNode, LogState

#: What a leaf may record. ``registry_confirmation`` is a registry's confirmation of a
#: certificate's retirement, recorded by whichever package receives it.
KINDS = ("issuance", "revocation", "registry_confirmation")

_PENDING = "portal.transparency.pending"
#: Up to this many leaves, PostgreSQL writes an append in one statement (bind parameters are
#: limited; a bulk load, such as the demo data set, takes the longer way).
_ONE_STATEMENT = 200


@dataclass(eq=False)
class PendingLeaf:
    kind: str
    certificate_number: str
    leaf_input: bytes
    leaf_hash: bytes
    #: The innermost transaction it was recorded in: rolling that back drops it.
    transaction: SessionTransaction | None = None
    #: Where and when it was appended, once the commit has written it (the commit may still
    #: fail after that: only a caller whose commit returned may rely on them).
    leaf_index: int | None = None
    logged_at: datetime | None = None


def leaf_input(kind: str, certificate_number: str, statement: str, signature: str, key_id: str) -> bytes:
    """The bytes of a leaf: canonical JSON (keys sorted, no white space, UTF-8) of
    ``{"v": 1, "kind", "certificate", "statement", "signature": {"alg", "key_id", "value"}}``,
    where ``statement`` is the exact text that was signed and ``signature`` its Ed25519
    signature by the portal's key ``key_id``."""
    document = {
        "v": 1,
        "kind": kind,
        "certificate": certificate_number,
        "statement": statement,
        "signature": {"alg": signing.ALG, "key_id": key_id, "value": signature},
    }
    return signing.canonical(document).encode("utf-8")


def record(
    kind: str,
    statement: str,
    certificate,
    *,
    signature: str | None = None,
    key_id: str | None = None,
    data: bytes | None = None,
) -> PendingLeaf:
    """Log an event about ``certificate`` (a Certificate, or its number) in the current
    transaction: appended as a leaf when the transaction commits, never if it rolls back.

    ``statement`` is the canonical signed text of the event (a certificate's payload; a
    revocation's or a registry confirmation's own statement). Given ``signature`` and
    ``key_id`` (the certificate's own), those are logged; otherwise the portal signs the
    statement now with its current key. ``data``: the leaf's bytes, made beforehand by
    ``leaf_input`` from these same arguments (a retirement makes them before it locks its batch).
    Any package may call this inside its transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown log entry kind {kind!r}")
    number = certificate if isinstance(certificate, str) else certificate.number
    if signature is None:
        signer = signing.signer()
        signature, key_id = signer.sign(statement), signer.key_id
    if data is None:
        data = leaf_input(kind, number, statement, signature, key_id)
    session = db.session()
    leaf = PendingLeaf(
        kind,
        number,
        data,
        merkle.leaf_hash(data),
        session.get_nested_transaction() or session.get_transaction(),
    )
    session.info.setdefault(_PENDING, []).append(leaf)
    tasks.soon("log.sign")  # a tree head covering it, as soon as it is committed
    return leaf


def revocation_statement(certificate) -> str:
    """What a revocation leaf says, signed: the certificate, when and why it was revoked."""
    return signing.canonical(
        {
            "v": 1,
            "type": "revocation",
            "number": certificate.number,
            "revoked_at": certificate.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": certificate.revoked_reason,
        }
    )


# --- the append, at commit -----------------------------------------------------------------------


def locked_state(session: Session) -> tuple[int, list[bytes]]:
    """The tree's size and frontier, its state row locked until commit (created on first use)."""
    table = LogState.__table__
    query = select(table.c.tree_size, table.c.frontier).where(table.c.id == 1).with_for_update()
    row = session.execute(query).first()
    if row is None:
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert
        session.execute(
            upsert(table)
            .values(id=1, tree_size=0, frontier=b"", updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = session.execute(query).one()
    return row.tree_size, split_hashes(row.frontier)


def split_hashes(data: bytes) -> list[bytes]:
    size = merkle.HASH_SIZE
    return [bytes(data[i : i + size]) for i in range(0, len(data), size)]


def append_locked(session: Session, size: int, frontier: list[bytes], leaves: list[PendingLeaf]) -> int:
    """Number ``leaves`` from ``size`` on and write them (the state row locked): the new size."""
    now = utcnow()
    entries, nodes = [], []
    for leaf in leaves:
        leaf.leaf_index, leaf.logged_at = size, now
        frontier, completed = merkle.append(frontier, size, leaf.leaf_hash)
        entries.append(
            {
                "leaf_index": size,
                "kind": leaf.kind,
                "certificate_number": leaf.certificate_number,
                "leaf_input": leaf.leaf_input,
                "logged_at": now,
            }
        )
        nodes.append({"leaf_index": size, "hashes": b"".join(completed)})
        size += 1
    state = (
        update(LogState.__table__)
        .where(LogState.__table__.c.id == 1)
        .values(tree_size=size, frontier=b"".join(frontier), updated_at=now)
    )
    if len(entries) <= _ONE_STATEMENT and session.get_bind().dialect.name == "postgresql":
        # One round trip while the state row is locked: the leaves, their hashes and the state.
        state = state.add_cte(insert(LogEntry.__table__).values(entries).cte("leaves")).add_cte(
            insert(LogNode.__table__).values(nodes).cte("hashes")
        )
    else:
        session.execute(insert(LogEntry.__table__), entries)
        session.execute(insert(LogNode.__table__), nodes)
    session.execute(state)
    return size


#: One leaf appended on PostgreSQL in one statement, the state row locked by its first part: the
#: perfect subtrees the leaf completes are folded from the locked frontier (SHA-256 in the
#: database, exactly as ``merkle.append`` does), the leaf and its hashes written and the state
#: updated. A lock wait returns the row as the transaction before committed it (READ COMMITTED
#: re-reads a row locked FOR UPDATE), and every part of the statement uses that one reading.
#: No row when the state row does not exist yet (then nothing is written).
_APPEND_ONE = text(
    """
    WITH RECURSIVE state AS (
        SELECT tree_size, frontier FROM log_state WHERE id = 1 FOR UPDATE
    ),
    fold(level, node, rest) AS (
        SELECT 0, CAST(:leaf_hash AS bytea), state.frontier FROM state
        UNION ALL
        SELECT fold.level + 1,
               sha256('\\x01'::bytea || substring(fold.rest FROM length(fold.rest) - 31 FOR 32) || fold.node),
               substring(fold.rest FROM 1 FOR length(fold.rest) - 32)
        FROM fold, state WHERE (state.tree_size >> fold.level) & 1 = 1
    ),
    folded AS (
        SELECT string_agg(node, ''::bytea ORDER BY level) AS completed,
               (array_agg(rest || node ORDER BY level DESC))[1] AS frontier
        FROM fold
    ),
    leaf AS (
        INSERT INTO log_entries (leaf_index, kind, certificate_number, leaf_input, logged_at)
        SELECT state.tree_size, :kind, :certificate_number, :leaf_input, :now FROM state
    ),
    hashes AS (
        INSERT INTO log_nodes (leaf_index, hashes) SELECT state.tree_size, folded.completed FROM state, folded
    )
    UPDATE log_state SET tree_size = state.tree_size + 1, frontier = folded.frontier, updated_at = :now
    FROM state, folded WHERE log_state.id = 1
    RETURNING log_state.tree_size
    """
).bindparams(
    bindparam("leaf_hash", type_=LargeBinary),
    bindparam("leaf_input", type_=LargeBinary),
    bindparam("now", type_=UTCDateTime),
)


def append_one(session: Session, leaf: PendingLeaf) -> int | None:
    """PostgreSQL: append one leaf in one round trip (``_APPEND_ONE``); the new size, or None
    when the log's state row does not exist yet (nothing written). In the request's session
    through the driver's cursor (``core.driver.session_rows``: half the CPU of SQLAlchemy's
    execution, at every retirement's commit)."""
    params = {
        "leaf_hash": leaf.leaf_hash,
        "kind": leaf.kind,
        "certificate_number": leaf.certificate_number,
        "leaf_input": leaf.leaf_input,
        "now": utcnow(),
    }
    if session is db.session():
        sql, own = for_driver(_APPEND_ONE)
        rows = session_rows(sql, own | params)
        size = rows[0][0] if rows else None
    else:
        row = session.execute(_APPEND_ONE, params).first()
        size = None if row is None else row.tree_size
    if size is not None:
        leaf.leaf_index, leaf.logged_at = size - 1, params["now"]
    return size


def _before_commit(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if not pending or session.in_nested_transaction():
        return
    session.flush()  # every other change of the transaction first: the log's lock comes last
    one = len(pending) == 1 and session.get_bind().dialect.name == "postgresql"
    if not one or append_one(session, pending[0]) is None:
        size, frontier = locked_state(session)
        append_locked(session, size, frontier, pending)
    session.info[_PENDING] = []


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [leaf for leaf in pending if not _within(leaf.transaction, previous)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def register() -> None:
    """Listen on every session (once per process)."""
    for name, listener in (
        ("before_commit", _before_commit),
        ("after_soft_rollback", _after_soft_rollback),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
