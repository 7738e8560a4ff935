"""Idempotency keys: a client sends ``Idempotency-Key`` (the API) or a form carries a hidden key
(the web), and a repeat of the same request returns the first result instead of acting twice.

One rule for every action that takes a key (retiring, ordering, drafting a contract,
delivering): the key is 1 to ``KEY_MAX`` characters; the request is remembered by the digest of
its canonical JSON; the same key with a different request is refused (422), never replayed.
"""

import hashlib
import json

from flask_babel import gettext as _

from portal.core.errors import ServiceError

#: The longest key accepted (the columns that store keys are this wide).
KEY_MAX = 200


def check_key(key, error: type[ServiceError] = ServiceError) -> str | None:
    """``key`` when it is a usable idempotency key, None when there is none; refused otherwise
    (as ``error``, the calling package's kind of ``ServiceError``)."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= KEY_MAX:
        raise error("invalid_idempotency_key", _("Idempotency-Key must be 1 to %(n)s characters.", n=KEY_MAX))
    return key


def request_digest(document) -> str:
    """The SHA-256 of ``document`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a digest never fails on text it is only asked to compare
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def replay(earlier, digest: str | None, error: type[ServiceError] = ServiceError):
    """``earlier`` (the row a key already made, or None) when this request may be answered with
    it; refused (as ``error``) when the same key came with a different request."""
    if earlier is not None and digest is not None and earlier.request_digest != digest:
        raise error(
            "idempotency_key_reused",
            _("This Idempotency-Key was already used for a different request."),
            status=422,
        )
    return earlier
