"""A cache of rendered catalog pages and API results, exact to the last change.

Every cached value is keyed by the data version, read with one cheap query per request:

- the journal's last entry id (any movement changes what is available) and the catalog
  revision (bumped in the same transaction as any ORM change to a project, region, batch or
  listing, or to a model another package ``watch``-es, by the ``after_flush`` hook below). On
  SQLite, where writers are serialised, these two are exact.
- on PostgreSQL, also the current transaction snapshot (``pg_current_snapshot()``): if it is
  the same text at two moments, no write transaction started or ended in between, so nothing
  committed. This closes the gap where entry ids are assigned in one order and committed in
  another.

A hit costs no other query and no rendering; under writes the key changes and pages are
rebuilt. Each worker process keeps its own bounded LRU; nothing is shared and nothing can be
served stale, because every request compares against the database's current version.
Changes made with bulk SQL statements that bypass the ORM must call ``bump_revision``.
"""

import threading
from collections import OrderedDict

from flask import current_app, g, has_request_context
from sqlalchemy import String, cast, event, func, select, update
from sqlalchemy.orm import Session

from portal.catalog.models import CatalogRevision, Listing, Project, Region
from portal.extensions import db
from portal.ledger.models import Batch, LedgerEntry
from portal.timeutil import utcnow

_WATCHED = (Project, Region, Batch, Listing)


def watch(*models) -> None:
    """Bump the revision on ORM changes to ``models`` too: another package's data that cached
    pages show (the pipeline's public history on project pages)."""
    global _WATCHED
    _WATCHED = tuple(dict.fromkeys(_WATCHED + models))


class LRU:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_build(self, key, build):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = build()
        with self._lock:
            self.misses += 1
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def discard(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)


def data_version() -> tuple:
    columns = [
        select(func.max(LedgerEntry.id)).scalar_subquery(),
        select(CatalogRevision.n).where(CatalogRevision.id == 1).scalar_subquery(),
        # What packages above the catalog add to what a page depends on (the alliance's terms),
        # read in the same statement.
        *(column() for column in current_app.extensions.get("catalog_version_columns", ())),
    ]
    if db.engine.dialect.name == "postgresql":
        columns.append(cast(func.pg_current_snapshot(), String))
        # Its own autocommit connection: no BEGIN / COMMIT round trips, and a cache hit leaves
        # the request's session untouched.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            return tuple(connection.execute(select(*columns)).one())
    return tuple(db.session.execute(select(*columns)).one())


def cached(key, build):
    """``build()``, or its value from the cache for ``key`` at the current data version (and
    before the moment, if any, that the value said it stops being right: see ``good_until``)."""
    cache = current_app.extensions.get("catalog_cache")
    if cache is None:
        return build()
    full_key = (key, data_version())
    value, until = cache.get_or_build(full_key, lambda: _built(build))
    if until is not None and utcnow() >= until:
        cache.discard(full_key)
        value, until = cache.get_or_build(full_key, lambda: _built(build))
    return value


def good_until(moment) -> None:
    """Called while a cached value is built: the value stops being right at ``moment`` (a
    batch's members' first call ends then), though no data changes. The earliest one counts."""
    if has_request_context():
        earliest = g.get("catalog_good_until")
        if earliest is None or moment < earliest:
            g.catalog_good_until = moment


def _built(build):
    if has_request_context():
        g.pop("catalog_good_until", None)
    value = build()
    return value, (g.pop("catalog_good_until", None) if has_request_context() else None)


def viewer_key() -> tuple:
    """What a cached page depends on besides the catalog's data: who views it, as far as the
    packages above the catalog say (the alliance: its members see member prices). Each such
    package registers a function in ``app.extensions["catalog_viewer_keys"]`` at start-up."""
    return tuple(key() for key in current_app.extensions.get("catalog_viewer_keys", ()))


def bump_revision(connection) -> None:
    connection.execute(update(CatalogRevision).where(CatalogRevision.id == 1).values(n=CatalogRevision.n + 1))


def _after_flush(session, _context):
    changed = session.new | session.dirty | session.deleted
    if any(isinstance(obj, _WATCHED) for obj in changed):
        bump_revision(session.connection())


def register(app) -> None:
    size = app.config.get("CATALOG_CACHE_SIZE", 256)
    if size:
        app.extensions["catalog_cache"] = LRU(size)
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
