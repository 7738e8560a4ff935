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

from flask import Response, request

#: Public answers that every client must revalidate before use: a change (a revocation) shows on
#: the very next request, and an unchanged answer costs a 304 without a body.
REVALIDATE = "public, no-cache"

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
    public, no-cache`` and ``Vary`` on ``vary``."""
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        body = cache.get_or_build(etag, draw) if cache is not None else draw()
        response = Response(body, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = REVALIDATE
    for header in vary:
        response.vary.add(header)
    return response
