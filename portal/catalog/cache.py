"""A cache of rendered catalog pages and API results, exact to the last change.

Every cached value is keyed by the data version, read with one cheap query per request:

- the journal's last entry id (any movement changes what is available) and the catalog
  revision (bumped in the same transaction as any ORM change to a project, region, batch or
  listing, or to a model another package ``watch``-es, by the ``after_flush`` hook below). On
  SQLite, where writers are serialised, these two are exact.
- on PostgreSQL, also the write transactions in progress in this database (``IN_PROGRESS``).
  This closes the gap where entry ids are assigned in one order and committed in another: an
  entry whose id is below the last one seen, committed later, belongs to a transaction that
  was in progress when the version was read, and whose end changes the version. A transaction
  that starts writing after the version was read takes higher entry ids (and a later
  revision), which change it too. Other databases on the same server change nothing (the
  cluster's whole snapshot, ``pg_current_snapshot()``, would change with every write in any of
  them, and every page would be rebuilt).

A hit costs no other query and no rendering; under writes the key changes and pages are
rebuilt. Each worker process keeps its own bounded LRU; nothing is shared and nothing can be
served stale, because every request compares against the database's current version.
Changes made with bulk SQL statements that bypass the ORM must call ``bump_revision``.
"""

import threading
from collections import OrderedDict

from flask import current_app, g, has_request_context
from sqlalchemy import String, event, func, literal_column, select, update
from sqlalchemy.orm import Session

from portal.catalog.models import CatalogRevision, Listing, Project, Region
from portal.core.database import autocommit_reader, read_once_more
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


#: The ids of the transactions of this database that hold one (that are writing), in order,
#: read from the server's activity at every version read. (Not only when the snapshot shows a
#: transaction in progress: a snapshot whose ``xmin`` equals its ``xmax`` does not mean none is,
#: since a transaction whose id is newer than every finished one lies beyond ``xmax``.) The ids
#: are read after the snapshot is taken, so they may name one more that started since; never
#: one fewer that was in progress at the snapshot and is still running. (Prepared transactions,
#: which the portal does not use, would not be seen.)
IN_PROGRESS = """SELECT coalesce(string_agg(a.backend_xid::text, ' ' ORDER BY a.backend_xid::text), '')
  FROM pg_stat_get_activity(NULL) AS a
  WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND a.backend_xid IS NOT NULL"""


def _version_sql() -> str:
    """The statement reading the data version, built and compiled once per application (the
    columns other packages add are registered at start-up): it has no parameters."""
    sql = current_app.extensions.get("catalog_version_sql")
    if sql is None:
        columns = [
            select(func.max(LedgerEntry.id)).scalar_subquery(),
            select(CatalogRevision.n).where(CatalogRevision.id == 1).scalar_subquery(),
            # What packages above the catalog add to what a page depends on (the alliance's
            # terms), read in the same statement.
            *(column() for column in current_app.extensions.get("catalog_version_columns", ())),
        ]
        if db.engine.dialect.name == "postgresql":
            columns.append(literal_column(f"({IN_PROGRESS})", String))
        sql = str(select(*columns).compile(db.engine, compile_kwargs={"literal_binds": True}))
        current_app.extensions["catalog_version_sql"] = sql
    return sql


def data_version() -> tuple:
    if db.engine.dialect.name == "postgresql":
        # Its own autocommit connection, without the pool's ping: one round trip, and a cache
        # hit leaves the request's session untouched.
        def read():
            with autocommit_reader("catalog.version_reader").connect() as connection:
                return tuple(connection.exec_driver_sql(_version_sql()).one())

        return read_once_more(read)
    return tuple(db.session.connection().exec_driver_sql(_version_sql()).one())


def current_version():
    """The data version to give ``cached`` for several values of one request (one query), or
    None when nothing is cached."""
    return None if current_app.extensions.get("catalog_cache") is None else data_version()


def cached(key, build, version=None):
    """``build()``, or its value from the cache for ``key`` at the current data version (and
    before the moment, if any, that the value said it stops being right: see ``good_until``).
    ``version``: the data version this request read already (``current_version()``), else it is read.
    A value built while another is being built (a page's body inside the whole page) passes
    its moment on to that one."""
    cache = current_app.extensions.get("catalog_cache")
    if cache is None:
        return build()
    full_key = (key, data_version() if version is None else version)
    value, until = cache.get_or_build(full_key, lambda: _built(build))
    if until is not None and utcnow() >= until:
        cache.discard(full_key)
        value, until = cache.get_or_build(full_key, lambda: _built(build))
    if until is not None:
        good_until(until)
    return value


def good_until(moment) -> None:
    """Called while a cached value is built: the value stops being right at ``moment`` (a
    batch's members' first call ends then), though no data changes. The earliest one counts."""
    if has_request_context():
        earliest = g.get("catalog_good_until")
        if earliest is None or moment < earliest:
            g.catalog_good_until = moment


def _built(build):
    if not has_request_context():
        return build(), None
    enclosing = g.pop("catalog_good_until", None)  # the moment of a value being built around this one
    try:
        value = build()
        until = g.pop("catalog_good_until", None)
    finally:
        if enclosing is not None:
            g.catalog_good_until = enclosing
    return value, until


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
