"""The portal's Ed25519 signing key, canonical payloads, and signature checks.

The private key lives in a PEM file (``PORTAL_SIGNING_KEY_FILE``, else ``signing-key.pem`` in the
instance folder, generated on first use). Every public key ever used is kept in
``signing_keys`` and published, so a rotated key still verifies the certificates it signed.
"""

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app
from sqlalchemy import bindparam, select

from portal.certificates.models import SigningKey
from portal.core.database import autocommit_reader, is_postgresql, upsert_insert
from portal.extensions import db

log = logging.getLogger(__name__)

ALG = "Ed25519"


@dataclass(frozen=True)
class Signer:
    key_id: str
    private_key: Ed25519PrivateKey
    public_key_b64: str

    def sign(self, payload: str) -> str:
        return base64.b64encode(self.private_key.sign(payload.encode("utf-8"))).decode("ascii")


def canonical(document: dict) -> str:
    """The canonical JSON text of ``document``: keys sorted, no insignificant white space."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_id_of(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def key_file() -> Path:
    configured = current_app.config.get("SIGNING_KEY_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / "signing-key.pem"


def _create(path: Path) -> None:
    """Generate a key into ``path`` unless one is there. The file appears whole or not at all
    (written aside, then hard-linked into place), so a worker starting at the same moment never
    reads half of it; of two generating together, the first link wins and both use its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")  # mode 600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.link(aside, path)
    except FileExistsError:
        return
    finally:
        os.unlink(aside)
    log.info("generated a new certificate signing key in %s", path)


def _load(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"{path} does not hold an Ed25519 private key")
    return key


def _file_identity(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def signer() -> Signer:
    """The current signing key, registered as published.

    Loaded once per process and key file, and loaded again when the file is replaced (one
    ``stat`` per signature): rotating the key (an atomic rename over the file) takes effect in
    every running worker at its next signature.
    """
    path = key_file()
    cache = current_app.extensions.setdefault("portal.signers", {})
    identity = _file_identity(path)
    if identity is None:
        _create(path)
        identity = _file_identity(path)
    found = cache.get(str(path))
    if found is None or found[0] != identity:
        # The identity read before the key: should the file be replaced meanwhile, the next
        # signature sees a different identity and loads again.
        private = _load(path)
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        found = (identity, Signer(key_id_of(raw), private, base64.b64encode(raw).decode("ascii")))
        cache[str(path)] = found
    _publish(found[1])
    return found[1]


_PUBLISHED = select(SigningKey.id).where(SigningKey.key_id == bindparam("key_id"))


def _publish(found: Signer) -> None:
    """Record the key as published before its first signature.

    On PostgreSQL in a statement of its own, committed at once, on an autocommit engine apart
    from the request's pool (``core.database.autocommit_reader``: a transaction holding a pool
    connection never waits for a second one from the same pool). Retirements sign at different
    points of their transactions: an order's fulfilment before it locks its batches
    (``certificates.retiring``), the others after. A new key's row, inserted and left uncommitted
    by one of them, would make the other wait on it while holding what the first waits for. A
    published public key that no certificate uses yet harms nothing. (SQLite's writers take
    turns: there it is written in the session's own transaction.)

    On PostgreSQL the worker remembers the keys it has found published (committed, and never
    removed): a signature then costs no statement for it.
    """
    postgresql = is_postgresql()
    known = current_app.extensions.setdefault("portal.published_keys", set())
    if found.key_id in known:
        return
    if db.session.scalar(_PUBLISHED, {"key_id": found.key_id}) is None:
        statement = (
            upsert_insert(SigningKey.__table__)
            .values(key_id=found.key_id, public_key=found.public_key_b64)
            .on_conflict_do_nothing(index_elements=["key_id"])
        )
        if not postgresql:
            db.session.execute(statement)
            return
        with autocommit_reader("certificates.key_publisher").connect() as connection:
            connection.execute(statement)
    if postgresql:
        known.add(found.key_id)


def published_keys() -> list[SigningKey]:
    return list(db.session.scalars(select(SigningKey).order_by(SigningKey.id)))


def public_key(key_id: str) -> Ed25519PublicKey | None:
    """A published key (kept per process once found: published keys never change)."""
    known = current_app.extensions.setdefault("portal.public_keys", {})
    if key_id not in known:
        found = db.session.scalar(select(SigningKey).filter_by(key_id=key_id))
        if found is None:
            return None
        known[key_id] = Ed25519PublicKey.from_public_bytes(base64.b64decode(found.public_key))
    return known[key_id]


def signature_valid(payload: str, signature: str, key_id: str) -> bool:
    """Whether ``signature`` (standard base64) is ``key_id``'s signature over ``payload``."""
    key = public_key(key_id) if isinstance(key_id, str) and len(key_id) <= 32 else None
    if key is None or not isinstance(payload, str) or not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, payload.encode("utf-8"))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
