"""The transparency log: the public interface of the package.

Every certificate event — issuance, revocation, a registry's confirmation — is a leaf of an
append-only RFC 9162 Merkle tree. Each rule lives in its own module:

* ``merkle``: the RFC's hashing, the tree's frontier, and which subtrees a proof needs;
* ``appending``: ``record`` (call it inside the event's transaction) and the append at commit;
* ``heads``: signed tree heads and the exact message signed;
* ``proofs``: entries, tree heads, inclusion and consistency proofs, and LogError;
* ``check``: ``flask log verify``.
"""

from sqlalchemy import select

from portal.certificates.models import Certificate, CertificateStatus
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency.appending import (
    KINDS,
    PendingLeaf,
    append_locked,
    leaf_input,
    locked_state,
    record,
    revocation_statement,
)
from portal.transparency.check import Report, verify_log
from portal.transparency.heads import current_tree, head_json, message, sign_new_head
from portal.transparency.heads import latest as latest_head
from portal.transparency.models import LogEntry
from portal.transparency.proofs import (
    PAGE_LIMIT,
    Entry,
    LogError,
    certificate_proofs,
    consistency,
    entries,
    entries_of,
    heads_after,
    inclusion,
    inclusions,
    parse_size,
    tree_size,
)

__all__ = [
    "KINDS",
    "PAGE_LIMIT",
    "Entry",
    "LogError",
    "PendingLeaf",
    "Report",
    "backfill",
    "certificate_proofs",
    "consistency",
    "current_tree",
    "entries",
    "entries_of",
    "head_json",
    "heads_after",
    "inclusion",
    "inclusions",
    "issuance_leaf",
    "latest_head",
    "leaf_input",
    "message",
    "parse_size",
    "record",
    "record_issuance",
    "record_revocation",
    "sign_new_head",
    "tree_size",
    "verify_log",
]


def record_issuance(certificate: Certificate, data: bytes | None = None) -> PendingLeaf:
    """Log a new certificate: its signed payload and signature, as issued. ``data``: the leaf's
    bytes, if made beforehand (``issuance_leaf``)."""
    return record(
        "issuance",
        certificate.payload,
        certificate,
        signature=certificate.signature,
        key_id=certificate.key_id,
        data=data,
    )


def issuance_leaf(number: str, payload: str, signature: str, key_id: str) -> bytes:
    """The bytes of a new certificate's leaf (``record_issuance``), made before it is written."""
    return leaf_input("issuance", number, payload, signature, key_id)


def record_revocation(certificate: Certificate) -> PendingLeaf:
    """Log a revocation: when and why, signed now by the portal."""
    return record("revocation", revocation_statement(certificate), certificate)


def backfill() -> int:
    """Append the events of certificates issued before the log existed (or otherwise missing),
    in the order they happened; how many. Under the log's lock, so that nothing is appended
    twice however many run at once."""
    session = db.session()
    size, frontier = locked_state(session)
    logged = set(session.execute(select(LogEntry.certificate_number, LogEntry.kind)).all())
    events = []
    for certificate in session.scalars(select(Certificate).order_by(Certificate.id)):
        if (certificate.number, "issuance") not in logged:
            events.append((certificate.retired_at, 0, certificate.id, "issuance", certificate))
        if (
            certificate.status == CertificateStatus.REVOKED
            and (certificate.number, "revocation") not in logged
        ):
            events.append((certificate.revoked_at, 1, certificate.id, "revocation", certificate))
    events.sort(key=lambda e: e[:3])
    leaves = []
    for *_order, kind, certificate in events:
        if kind == "issuance":
            data = leaf_input(
                kind, certificate.number, certificate.payload, certificate.signature, certificate.key_id
            )
        else:
            from portal.certificates import signing

            statement = revocation_statement(certificate)
            signer = signing.signer()
            data = leaf_input(kind, certificate.number, statement, signer.sign(statement), signer.key_id)
        leaves.append(PendingLeaf(kind, certificate.number, data, merkle.leaf_hash(data)))
    if leaves:
        append_locked(session, size, frontier, leaves)
    return len(leaves)
