"""Signed tree heads: the portal's Ed25519 signature over the tree's size, root and a timestamp.

**The signed message** is ASCII text, four lines, each ending in a line feed::

    chifeng-carbon-portal transparency log tree head v1
    <tree_size in decimal>
    <root_hash in standard base64>
    <timestamp: milliseconds since 1970-01-01 UTC, in decimal>

The first line separates it from every other thing the key signs (certificate payloads are JSON
and begin with ``{``). ``flask log sign`` signs a head whenever the tree has grown since the
last one (the ``log.sign`` job runs it right after new entries and every minute); every head is kept.
"""

import base64
import time

from sqlalchemy import select

from portal.audit import services as audit
from portal.certificates import signing
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency.models import LogState, TreeHead

MESSAGE_TITLE = "chifeng-carbon-portal transparency log tree head v1"


def message(tree_size: int, root_hash: bytes, timestamp: int) -> str:
    """The exact text a tree head's signature is over (see the module's docstring)."""
    return f"{MESSAGE_TITLE}\n{tree_size}\n{base64.b64encode(root_hash).decode('ascii')}\n{timestamp}\n"


def current_tree() -> tuple[int, bytes]:
    """The committed tree's size and root hash."""
    from portal.transparency.appending import split_hashes

    row = db.session.execute(select(LogState.tree_size, LogState.frontier).where(LogState.id == 1)).first()
    if row is None:
        return 0, merkle.EMPTY_ROOT
    return row.tree_size, merkle.root_of(split_hashes(row.frontier))


def latest() -> TreeHead | None:
    return db.session.scalar(select(TreeHead).order_by(TreeHead.tree_size.desc()).limit(1))


def sign_new_head(actor: str = "system:log-signer") -> TreeHead | None:
    """Sign the tree as it stands, unless the latest head already covers it (the first head, of
    the empty tree if need be, is always signed). Its timestamp never goes back."""
    size, root = current_tree()
    last = latest()
    if last is not None and last.tree_size >= size:
        return None
    timestamp = int(time.time() * 1000)
    if last is not None:
        timestamp = max(timestamp, last.timestamp)
    signer = signing.signer()
    head = TreeHead(
        tree_size=size,
        root_hash=root,
        timestamp=timestamp,
        key_id=signer.key_id,
        signature=signer.sign(message(size, root, timestamp)),
    )
    db.session.add(head)
    db.session.flush()
    audit.record(
        actor,
        "log.tree_head",
        "log",
        size,
        after={
            "tree_size": size,
            "root_hash": base64.b64encode(root).decode("ascii"),
            "timestamp": timestamp,
        },
    )
    return head


def head_json(head: TreeHead) -> dict:
    from datetime import UTC, datetime

    return {
        "tree_size": head.tree_size,
        "root_hash": base64.b64encode(head.root_hash).decode("ascii"),
        "timestamp": head.timestamp,
        "signed_at": datetime.fromtimestamp(head.timestamp / 1000, UTC).isoformat().replace("+00:00", "Z"),
        "signature": {"alg": signing.ALG, "key_id": head.key_id, "value": head.signature},
    }


def signature_valid(head: TreeHead) -> bool:
    return signing.signature_valid(
        message(head.tree_size, head.root_hash, head.timestamp), head.signature, head.key_id
    )
