"""``flask log verify``: the log recomputed from the database and checked against itself, the
signed tree heads and the certificates.

Checked: leaves numbered 0 … n−1 without gap; each leaf's hash and the subtree hashes kept
with it equal the ones recomputed from the leaf bytes; the state row's size and frontier; every
tree head's root equals the recomputed root at its size and its signature verifies; each leaf is
well formed and signed by a published key; every certificate's issuance is logged exactly once
(its payload and signature exactly), every revocation exactly once and after the issuance, and
no leaf names a certificate that does not exist or an event that did not happen.
"""

import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.certificates import signing
from portal.certificates.models import Certificate, CertificateStatus
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency.appending import KINDS, revocation_statement
from portal.transparency.heads import message
from portal.transparency.models import LogEntry, LogNode, LogState, TreeHead

_CHUNK = 5000


@dataclass
class Report:
    leaves: int = 0
    heads: int = 0
    certificates: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log() -> Report:
    report = Report()
    heads = {h.tree_size: h for h in db.session.scalars(select(TreeHead).order_by(TreeHead.tree_size))}
    report.heads = len(heads)
    expected = _expected_events(report)
    seen: dict[tuple[str, str], list[int]] = {}
    frontier: list[bytes] = []
    size = 0
    if 0 in heads:
        _check_head(report, heads[0], merkle.EMPTY_ROOT)
    last, gap = -1, False
    while True:
        rows = db.session.execute(
            select(
                LogEntry.leaf_index,
                LogEntry.kind,
                LogEntry.certificate_number,
                LogEntry.leaf_input,
                LogNode.hashes,
            )
            .outerjoin(LogNode, LogNode.leaf_index == LogEntry.leaf_index)
            .where(LogEntry.leaf_index > last)
            .order_by(LogEntry.leaf_index)
            .limit(_CHUNK)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.leaf_index != size and not gap:
                report.problems.append(f"leaf {size} is missing (the next leaf is {row.leaf_index})")
                gap = True  # no root from here on can be recomputed: the leaves are still read
            size = row.leaf_index
            data = bytes(row.leaf_input)
            if not gap:
                frontier, completed = merkle.append(frontier, size, merkle.leaf_hash(data))
                if row.hashes is None or bytes(row.hashes) != b"".join(completed):
                    report.problems.append(f"leaf {size}: its stored hashes differ from those of its data")
            _check_leaf(report, size, row.kind, row.certificate_number, data, expected)
            seen.setdefault((row.certificate_number, row.kind), []).append(size)
            size += 1
            if size in heads and not gap:
                _check_head(report, heads[size], merkle.root_of(frontier))
        last = rows[-1].leaf_index
    report.leaves = size
    nodes = db.session.scalar(select(func.count()).select_from(LogNode))
    if nodes != db.session.scalar(select(func.count()).select_from(LogEntry)):
        report.problems.append(f"{nodes} rows of subtree hashes for a different number of leaves")
    state = db.session.execute(select(LogState.tree_size, LogState.frontier).where(LogState.id == 1)).first()
    stated = (0, b"") if state is None else (state.tree_size, bytes(state.frontier))
    if not gap and stated != (size, b"".join(frontier)):
        report.problems.append(
            f"the log's state says {stated[0]} leaves and its frontier; recomputed: {size}"
        )
    for tree_size in heads:
        if tree_size > size:
            report.problems.append(f"tree head of size {tree_size} is beyond the log's {size} leaves")
    _check_events(report, expected, seen)
    return report


def _check_head(report: Report, head: TreeHead, root: bytes) -> None:
    if bytes(head.root_hash) != root:
        report.problems.append(
            f"tree head of size {head.tree_size}: its root differs from the recomputed one"
        )
    text = message(head.tree_size, bytes(head.root_hash), head.timestamp)
    if not signing.signature_valid(text, head.signature, head.key_id):
        report.problems.append(f"tree head of size {head.tree_size}: the signature does not verify")


@dataclass
class _Expected:
    digest: bytes  #: SHA-256 of the issuance statement (the payload)
    signature: str
    revocation: bytes | None  #: SHA-256 of the revocation statement, if revoked
    #: SHA-256 of each signed registry confirmation of the certificate's serials
    confirmations: frozenset = frozenset()


def _expected_events(report: Report) -> dict[str, _Expected]:
    from portal.registry.models import RegistryConfirmation

    confirmed: dict[int, set[bytes]] = {}
    for certificate_id, payload in db.session.execute(
        select(RegistryConfirmation.certificate_id, RegistryConfirmation.payload)
    ):
        confirmed.setdefault(certificate_id, set()).add(hashlib.sha256(payload.encode()).digest())
    expected = {}
    query = select(Certificate).order_by(Certificate.id).execution_options(yield_per=_CHUNK)
    for certificate in db.session.scalars(query):
        revoked = None
        if certificate.status == CertificateStatus.REVOKED:
            revoked = hashlib.sha256(revocation_statement(certificate).encode()).digest()
        expected[certificate.number] = _Expected(
            hashlib.sha256(certificate.payload.encode()).digest(),
            certificate.signature,
            revoked,
            frozenset(confirmed.get(certificate.id, ())),
        )
        db.session.expunge(certificate)
    report.certificates = len(expected)
    return expected


def _check_leaf(report: Report, index: int, kind: str, number: str, data: bytes, expected) -> None:
    try:
        leaf = json.loads(data)
        statement, sig = leaf["statement"], leaf["signature"]
        fields_ok = leaf.get("v") == 1 and leaf["kind"] == kind and leaf["certificate"] == number
        value, key_id = sig["value"], sig["key_id"]
    except (ValueError, KeyError, TypeError):
        report.problems.append(f"leaf {index}: not a well-formed log entry")
        return
    if not fields_ok or kind not in KINDS:
        report.problems.append(f"leaf {index}: its kind or certificate differs from its columns")
    if not isinstance(statement, str) or not signing.signature_valid(statement, value, key_id):
        report.problems.append(f"leaf {index}: the statement's signature does not verify")
        return
    known = expected.get(number)
    if known is None:
        report.problems.append(f"leaf {index}: certificate {number} does not exist")
        return
    digest = hashlib.sha256(statement.encode()).digest()
    if kind == "issuance" and (digest != known.digest or value != known.signature):
        report.problems.append(f"leaf {index}: not certificate {number}'s signed payload")
    if kind == "revocation" and digest != known.revocation:
        report.problems.append(f"leaf {index}: certificate {number} was not revoked so")
    if kind == "registry_confirmation" and digest not in known.confirmations:
        report.problems.append(f"leaf {index}: no such registry confirmation of certificate {number}")


def _check_events(report: Report, expected: dict[str, _Expected], seen) -> None:
    for number, known in expected.items():
        issued = seen.get((number, "issuance"), [])
        if len(issued) != 1:
            report.problems.append(f"certificate {number}: its issuance is logged {len(issued)} times")
        revoked = seen.get((number, "revocation"), [])
        if len(revoked) != (1 if known.revocation is not None else 0):
            report.problems.append(f"certificate {number}: its revocation is logged {len(revoked)} times")
        elif revoked and issued and revoked[0] < issued[0]:
            report.problems.append(f"certificate {number}: its revocation is logged before its issuance")
        confirmations = seen.get((number, "registry_confirmation"), [])
        if len(confirmations) != len(known.confirmations):
            report.problems.append(
                f"certificate {number}: {len(confirmations)} registry confirmation(s) logged,"
                f" {len(known.confirmations)} recorded"
            )
