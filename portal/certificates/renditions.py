"""Certificates' public answers drawn once and kept: the page in each language and the JSON.

A certificate is looked up far more often than it changes (QR codes scanned at an event,
verifiers, the register), and mostly by number among all that were ever issued, so a worker's
own cache (``views.page_cache``) seldom has the one asked for. The canonical anonymous answers
(``/certificates/<number>`` and ``/api/v1/certificates/<number>`` with no query) are therefore
kept in ``certificate_renditions``, as they are served (the database compresses them in the
row), and read back in the same statement that reads the certificate's state
(``certificates.state``).

A kept body is served only while its ``stamp`` equals the one computed from what was just read:
the answer's ETag (the certificate's changeable state, the language, the release that draws it)
and the signed payload, signature and key it was checked on. A revocation, a registry decision,
a new log entry or a deployment changes the ETag; a payload or signature altered in the
database changes the stamp; either way the answer is drawn again from what is there, checked,
and kept in place of the old one. A kept body is never the only copy of anything.

Answers are kept when a visitor's request draws them, and ahead of visitors by the job
``certificates.draw`` (every minute, up to 500 certificates lacking them, newest first: new
certificates and those a deployment made stale) and ``flask certificates draw``.
"""

import contextvars
import hashlib
import logging
from collections.abc import Callable, Iterable

from flask import current_app, has_request_context, request
from sqlalchemy import exists, or_, select

from portal.certificates.models import Certificate, Rendition
from portal.certificates.state import CertificateState, complete
from portal.core import validators
from portal.core.database import autocommit_reader, is_postgresql, unit_of_work, upsert_insert
from portal.extensions import db
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

#: What is kept of each certificate: its page in each language ("page:zh", "page:en"), and its
#: JSON (the same in every language).
JSON_KIND = "json"


def _page_kinds() -> dict[str, str]:
    """The page's rendition per locale (``LANGUAGES``: short code → locale)."""
    return {locale: f"page:{code}" for code, locale in current_app.config["LANGUAGES"].items()}


def kinds() -> tuple[str, ...]:
    return (*_page_kinds().values(), JSON_KIND)


def kind_for(answer: str, locale: str) -> str:
    """The rendition a canonical request for ``answer`` ("page" or "json") in ``locale`` reads,
    or "" when there is none to read (no request, a query string, a locale of no language)."""
    if not has_request_context() or request.query_string:
        return ""
    if answer == "json":
        return JSON_KIND
    return _page_kinds().get(locale, "")


def stamp(etag: str, certificate: Certificate) -> str:
    """What a body drawn under ``etag`` from ``certificate`` was drawn from."""
    digest = hashlib.sha256(etag.encode())
    for part in (certificate.payload, certificate.signature, certificate.key_id):
        digest.update(b"\0" + (part or "").encode())
    return digest.hexdigest()


def answer(state: CertificateState, kind: str, etag: str, draw: Callable[[], bytes]) -> bytes:
    """The body of the answer ``kind`` named ``etag``: the kept one if it is current, else
    ``draw()``'s, kept for the next request."""
    current = stamp(etag, state.certificate)
    if state.kept is not None and state.kept.stamp == current:
        return state.kept.body
    complete(state.certificate)  # read for the kept answer only: drawn from all of it
    body = draw()
    keep(state.certificate.id, kind, current, body)
    return body


def keep(certificate_id: int, kind: str, current: str, body: bytes) -> None:
    """Store ``body`` as the certificate's rendition ``kind``, replacing the one there.

    On PostgreSQL at once, in a statement of its own on an autocommit engine whose commits do
    not wait for the disk (a kept answer lost in a crash is drawn again), so a page view never
    holds the request's transaction open for it. On SQLite in the request's own transaction
    (writers take turns there)."""
    values = {
        "certificate_id": certificate_id,
        "kind": kind,
        "stamp": current,
        "release": validators.release(),
        "body": body,
        "drawn_at": utcnow(),
    }
    statement = upsert_insert(Rendition.__table__).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["certificate_id", "kind"],
        set_={k: statement.excluded[k] for k in ("stamp", "release", "body", "drawn_at")},
    )
    if is_postgresql():
        with autocommit_reader("certificates.renditions", durable=False).connect() as connection:
            connection.execute(statement)
    else:
        db.session.execute(statement)


def _missing(limit: int, below: int | None = None) -> list[tuple[int, str]]:
    """Ids and numbers of certificates, newest first (ids below ``below``), lacking one of
    their renditions as this release draws them."""
    release = validators.release()
    lacking = [
        ~exists().where(
            Rendition.certificate_id == Certificate.id, Rendition.kind == kind, Rendition.release == release
        )
        for kind in kinds()
    ]
    query = select(Certificate.id, Certificate.number).where(or_(*lacking))
    if below is not None:
        query = query.where(Certificate.id < below)
    return [tuple(row) for row in db.session.execute(query.order_by(Certificate.id.desc()).limit(limit))]


def draw_ahead(limit: int = 500, below: int | None = None) -> tuple[int, int | None]:
    """Draw and keep every rendition of up to ``limit`` certificates lacking one (newest first,
    ids below ``below``), each by asking the portal for it as an anonymous visitor would, so
    that what is kept is exactly what a visitor is served. Returns how many were drawn and the
    last id drawn (for the next call's ``below``)."""
    with unit_of_work():  # read, and the snapshot let go of before the requests begin
        missing = _missing(limit, below)
    draw_numbers(number for _id, number in missing)
    return len(missing), (missing[-1][0] if missing else None)


def draw_numbers(numbers: Iterable[str]) -> None:
    """Draw and keep every rendition of the certificates ``numbers``, as ``draw_ahead`` does:
    a visitor's page is in the language its session remembers (chosen once with ``?lang=``)."""
    from werkzeug.test import Client

    app = current_app._get_current_object()
    base = app.config["BASE_URL"]
    visitors = {}
    for code in app.config["LANGUAGES"]:
        visitors[code] = Client(app)
        _ask(visitors[code], base, f"/verify?lang={code}")  # remembered in its session
    for number in numbers:
        for visitor in visitors.values():
            _ask(visitor, base, f"/certificates/{number}")
        _ask(visitor, base, f"/api/v1/certificates/{number}")


def _ask(client, base: str, path: str) -> None:
    """GET ``path`` as a visitor: in a context of its own, so the request gets its own
    application context (locale, ``g``, database session) and not the caller's."""
    response = contextvars.Context().run(client.get, path, base_url=base)
    if response.status_code != 200:
        log.warning("drawing %s ahead answered %s", path, response.status_code)
    response.close()
