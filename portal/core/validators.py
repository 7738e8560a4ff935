"""HTTP caching with validators: answers whose ETag the view computes cheaply before drawing them,
304 Not Modified when the client's copy is current, and each worker's cache of drawn answers
keyed by that same ETag.

An ETag here names exactly what the answer shows (the data's version, the language, and the
``release`` that draws it), so a client or shared cache revalidating with ``If-None-Match`` is
never told a stale copy is current, and a drawn answer cached under it is never served stale.
"""

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from flask import Response, current_app, request, session

#: Public answers that every client must revalidate before use: a change (a revocation) shows on
#: the very next request, and an unchanged answer costs a 304 without a body.
REVALIDATE = "public, no-cache"
#: The same for an answer that sets the client's session cookie (``?lang=`` remembered): no
#: shared cache may keep it.
REVALIDATE_PRIVATE = "private, no-cache"

_release: str | None = None


def release() -> str:
    """What draws the answers of this deployment: a digest of the portal's code, templates and
    compiled translations (their paths, sizes and modification times), read once per process.
    Workers of one deployment agree; a new deployment changes every ETag."""
    global _release
    if _release is None:
        root = Path(__file__).resolve().parent.parent
        digest = hashlib.sha256()
        for folder, _dirs, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.endswith((".py", ".html", ".mo")):
                    stat = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        _release = digest.hexdigest()[:16]
    return _release


def _sets_cookie() -> bool:
    """Whether the answer will carry the session cookie (the session changed, or a permanent one
    is refreshed on every request)."""
    interface = current_app.session_interface
    return session.modified or (bool(session) and interface.should_set_cookie(current_app, session))


def revalidated(
    etag: str,
    draw: Callable[[], bytes],
    *,
    mimetype: str,
    vary: Iterable[str] = (),
    cache=None,
) -> Response:
    """The answer named ``etag``: 304 if the request's ``If-None-Match`` has it, else ``draw()``'s
    bytes (from ``cache``, an LRU keyed by the ETag, when given), with the ETag, ``Cache-Control:
    public, no-cache`` (``private`` if the answer sets the session cookie) and ``Vary`` on
    ``vary``."""
    headers = [("ETag", f'"{etag}"')]
    if vary:
        headers.append(("Vary", ", ".join(vary)))
    if "HTTP_IF_NONE_MATCH" in request.environ and request.if_none_match.contains_weak(etag):
        response = Response(status=304, headers=headers)
    else:
        body = cache.get_or_build(etag, draw) if cache is not None else draw()
        response = Response(body, mimetype=mimetype, headers=headers)
    # Decided last: drawing may have changed the session.
    response.headers["Cache-Control"] = REVALIDATE_PRIVATE if _sets_cookie() else REVALIDATE
    return response
