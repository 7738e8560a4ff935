"""Database behaviour shared by every feature: SQLite settings, one commit per request, and
what a request answers when its database connection is lost.

Services only ``flush()``. A request that ends without an error commits once; an error rolls
back. CLI commands commit themselves, once, at the end.

A connection lost in the middle of a request (the database restarted, an administrator
terminated it) is answered 503 ``database_unavailable``: the database undid the transaction, so
nothing was done and the request may simply be sent again. A connection lost *while committing*
is different: the database may have committed before the answer was lost, and the portal
cannot know. It answers 503 ``outcome_unknown`` and says so, rather than guessing either way.
(Connections dropped while idle in the pool are found when taken from it and replaced, unseen:
``_check_on_checkout``.)
"""

import functools
import logging
import select
import threading
import time
from contextlib import contextmanager

from flask import Flask, g, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, configure_mappers
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import instance_state

from portal.config import url_is_sqlite
from portal.core.driver import kept_cursor, session_rows
from portal.extensions import db

log = logging.getLogger(__name__)


@contextmanager
def unit_of_work():
    """One transaction of a batch job, committed on its own (rolled back if it fails).

    Services only flush: the request, or the CLI command, commits once. Where work must be
    committed step by step, it says so with this: a job that makes one ledger movement per
    transaction (what keeps the lock order deadlock-free), a step that must stand before Stripe
    or the next step is called, or one whose failure must not undo the others'. Used nowhere
    else; ``tests/core/test_architecture.py`` holds that services commit only through it.
    """
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def checkpoint() -> None:
    """Commit what is done so far, in the middle of a service, on purpose; the line that calls
    it says why (a reserve top-up that must stand before the delivery locks again, a mail marked
    sent as soon as it has left). Like ``unit_of_work``, the only way a service commits."""
    db.session.commit()


def commit_keeping_loaded() -> None:
    """Commit the session's transaction without expiring the objects it loaded: for a view that
    commits its own work and then answers from what it wrote, reading none of the session's
    objects again (they go with the session when the request ends). Expiring them at commit
    was work for nobody."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def configure(app: Flask) -> None:
    if not event.contains(Session, "after_transaction_end", _forget_transaction_cache):
        event.listen(Session, "after_transaction_end", _forget_transaction_cache)
    with app.app_context():
        if url_is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
            _configure_sqlite(db.engine)
        else:
            from portal.core import pgconnection

            event.listen(db.engine, "do_connect", pgconnection.connect)
            _check_on_checkout(db.engine)

    @app.after_request
    def commit_request(response):
        session = db.session()
        if not session.in_transaction() and not session.dirty:
            return response  # nothing begun or changed since the view's own commit: nothing to end
        if response.status_code >= 400:
            session.rollback()
            return response
        try:
            session.commit()
        except Exception as exc:
            # The database refused what the request did (nothing of it stays), or the connection
            # was lost: the client gets a proper error page (with the security headers), not a
            # success.
            db.session.rollback()
            from portal.core.errors import internal_error_response

            lost = connection_lost_response(exc)
            if lost is not None:
                return lost
            log.exception("commit failed at the end of %s %s", request.method, request.path)
            return internal_error_response()
        return response

    @app.errorhandler(DBAPIError)
    def handle_database_error(exc: DBAPIError):
        db.session.rollback()
        lost = connection_lost_response(exc)
        if lost is not None:
            return lost
        from portal.core.errors import unexpected_error_response

        return unexpected_error_response(exc)


_TRANSACTION_CACHE = "portal.transaction_cache"


def transaction_cache(name: str) -> dict:
    """A dict that lives as long as the current database transaction: for rows read more than
    once by one unit of work (the same organisation's webhook endpoints for two events of one
    fulfilment). Emptied when the transaction ends, committed or not; the code that changes such
    rows in the same transaction must forget them (``transaction_cache(name).clear()``)."""
    return db.session.info.setdefault(_TRANSACTION_CACHE, {}).setdefault(name, {})


def _forget_transaction_cache(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_TRANSACTION_CACHE, None)


def connection_lost_response(exc: Exception):
    """The 503 for a database connection lost during the request (None for any other error):
    ``outcome_unknown`` when it was lost while committing, else ``database_unavailable``."""
    if not isinstance(exc, DBAPIError) or not exc.connection_invalidated:
        return None
    from portal.core.errors import error_response_with_headers

    if g.pop("_db_commit_lost", False):
        log.error(
            "database connection lost while committing %s %s: outcome unknown", request.method, request.path
        )
        return error_response_with_headers(
            503,
            "outcome_unknown",
            _(
                "The connection to the database was lost while your request was being saved: it may or may "
                "not have been carried out. Please check (for example your orders) before sending it again; "
                "a request with an Idempotency-Key can be sent again safely."
            ),
        )
    log.warning("database connection lost during %s %s; nothing was saved", request.method, request.path)
    return error_response_with_headers(
        503,
        "database_unavailable",
        _("The database could not be reached. Nothing was saved; please try again in a moment."),
        {"Retry-After": "1"},
    )


# Whether a connection is committing is kept on the connection itself (a request may use more
# than one, e.g. a second engine), and read when an error is handled, before the connection is
# invalidated.
@event.listens_for(Engine, "commit")
def _committing(connection) -> None:
    connection.info["portal_committing"] = True


@event.listens_for(Engine, "begin")
def _begun(connection) -> None:
    connection.info["portal_committing"] = False


@event.listens_for(Engine, "handle_error")
def _note_lost_commit(context) -> None:
    # A commit whose connection broke: the server may have committed before the reply was lost.
    connection = context.connection
    if (
        context.is_disconnect
        and not context.is_pre_ping
        and connection is not None
        and connection.info.get("portal_committing")
        and has_request_context()
    ):
        g._db_commit_lost = True


#: A pooled connection idle for longer than this is pinged before it is used again (as
#: PgBouncer's ``server_check_delay``): what a dead connection the socket cannot show looks
#: like (a firewall or proxy that dropped it without a word).
PING_AFTER_IDLE = 30.0
_IDLE_SINCE = "portal.idle_since"


def _check_on_checkout(engine) -> None:
    """A connection taken from ``engine``'s pool is checked before use, without a round trip
    when it can be. A connection the server closed or terminated while it sat in the pool (a
    restart, an administrator's ``pg_terminate_backend``) has been written to (the server's
    last message, then the end of the stream), and a connection idle in the pool has nothing
    else to read: so one whose socket is readable, or that has been idle longer than
    ``PING_AFTER_IDLE``, is pinged, and replaced by the pool if the ping finds it dead. Others,
    under load all of them, are used at once. (SQLAlchemy's ``pool_pre_ping`` pinged every
    one: a round trip, about a tenth of an API retirement's work, on every request.)"""

    @event.listens_for(engine.pool, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _check(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None:  # just connected
            return
        if time.monotonic() - since <= PING_AFTER_IDLE and not _readable(dbapi_connection):
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("connection found dead when taken from the pool") from exc
            raise


def _readable(dbapi_connection) -> bool:
    """Whether the server has written to the connection's socket, or hung up (true, too, if
    it has no socket): ``poll`` without waiting (``select`` fails above 1,024 open files)."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError, TypeError):
        return True


def _configure_sqlite(engine) -> None:
    """SQLite: foreign keys on, WAL, and every transaction takes the write lock at BEGIN.

    ``BEGIN IMMEDIATE`` is what makes the ledger's read-then-write movements safe here: two
    writers can never both read the same blocks and then both write. pysqlite's own
    transaction handling is switched off so that SQLAlchemy's ``begin`` event decides.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"


def upsert_insert(target):
    """An INSERT of the current database's dialect, for ``ON CONFLICT`` clauses (PostgreSQL and
    SQLite spell them alike)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if is_postgresql() else sqlite.insert)(target)


def autocommit_reader(name: str, *, generic_plans: bool = False, durable: bool = True) -> Engine:
    """PostgreSQL: an engine of the worker's own for statements that need no transaction (a
    public read of one statement; an idempotent write that must commit at once, such as a
    signing key's publication), in autocommit: one round trip per query (no BEGIN, no ping, no
    reset). Made at the worker's first use under ``name`` and disposed with the application's
    engine. A connection the server closed while idle fails once, with
    ``connection_invalidated`` set, and the pool replaces it: see ``read_once_more``.

    ``generic_plans``: the server plans each prepared statement once per connection instead of
    at every execution (``plan_cache_mode``), for readers whose every query is a look-up by key
    or index, where one plan fits all values (planning was half of such a query's time).

    ``durable=False``: its commits return before their WAL is flushed (``synchronous_commit``
    off), for writes of copies that may be lost in a crash (drawn pages kept for later)."""
    from flask import current_app

    engine = current_app.extensions.get(name)
    if engine is None:
        url = db.engine.url
        settings = ["-c plan_cache_mode=force_generic_plan"] if generic_plans else []
        settings += [] if durable else ["-c synchronous_commit=off"]
        if settings:  # added to the URL's own ``options``, if it has any, not in their place
            given = url.query.get("options", ())
            given = [given] if isinstance(given, str) else list(given)
            url = url.update_query_dict({"options": " ".join([*given, *settings])})
        engine = create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            pool_size=2,
            max_overflow=8,
            pool_recycle=300,
            pool_reset_on_return=None,
        )
        current_app.extensions[name] = engine
        _KEPT[id(engine)] = {}

        @event.listens_for(db.engine, "engine_disposed")
        def _dispose_with_the_main_engine(_engine, extensions=current_app.extensions):
            extensions.pop(name, None)
            for connection in _KEPT.pop(id(engine), {}).values():
                connection.close()
            engine.dispose()

    return engine


def raw_rows(engine: Engine, sql: str, params: dict) -> list[tuple]:
    """PostgreSQL: the rows of ``sql`` (psycopg's ``%(name)s`` parameters, binary results) on a
    connection of ``engine``'s pool (an ``autocommit_reader``), through the driver's own cursor:
    a look-up costs about a quarter of the CPU it costs through SQLAlchemy's execution
    (compiling, caching, result processing). Only for columns the driver returns as the model
    does (integers, text, bytes, dates, ``timestamptz`` as aware datetimes). A connection the
    server dropped while idle is discarded (its cursor with it) and the read tried once more."""
    for attempt in (1, 2):
        connection, kept = _connection(engine)
        try:
            cursor = kept_cursor(connection, sql)
            cursor.execute(sql, params)
            return cursor.fetchall()
        except Exception:
            driver = connection.driver_connection
            if driver is None or not (driver.closed or driver.broken):
                raise
            _discard(engine, connection, kept)
            if attempt == 2:
                raise
        except BaseException:  # interrupted mid-query (a timeout, a signal): never back to the pool
            _discard(engine, connection, kept)
            raise
        finally:
            if not kept:
                connection.close()
    raise AssertionError("unreachable")


#: The connections threads keep of each ``autocommit_reader``'s pool (by id of the engine, then
#: of the thread), closed with the engine.
_KEPT: dict[int, dict[int, object]] = {}


def _connection(engine: Engine):
    """A connection of ``engine``'s pool for one read, and whether the thread keeps it. A thread
    keeps the one it reads on while fewer threads than the pool's size keep one (a sync worker's
    only thread always does): the pool's check-out and check-in were about a fifth of a
    certificate read's client CPU. Other threads, and engines not made by
    ``autocommit_reader``, check one out per read."""
    kept = _KEPT.get(id(engine))
    if kept is None:
        return engine.raw_connection(), False
    thread = threading.get_ident()
    connection = kept.get(thread)
    if connection is not None:
        return connection, True
    connection = engine.raw_connection()
    if len(kept) < engine.pool.size():
        kept[thread] = connection
        return connection, True
    return connection, False


def _discard(engine: Engine, connection, kept: bool) -> None:
    """Invalidate a connection that failed (the pool replaces it); one the thread kept is
    forgotten and given back here, another by the read's ``finally``."""
    connection.invalidate()
    if kept:
        _KEPT.get(id(engine), {}).pop(threading.get_ident(), None)
        connection.close()


def committed_reader() -> Engine:
    """PostgreSQL: the ``autocommit_reader`` for look-ups by key of rows that are then put in the
    session (``attached``); it sees only what is committed."""
    return autocommit_reader("core.reader", generic_plans=True)


def plain_columns(model) -> tuple[tuple[str, str], ...]:
    """``(attribute, column name)`` of each column ``model`` maps from its own table, in the
    table's order: what a raw read of the table selects for ``attached``."""
    mapper = model.__mapper__
    return tuple(
        (mapper.get_property_by_column(column).key, column.name) for column in model.__table__.columns
    )


def attached(model, values: dict):
    """An object of ``model`` for a row read elsewhere (``values``: every column, by attribute,
    as the ORM would load them), in the session as if the session had loaded it, without a
    statement: the session's own object for that identity if it has one (its expired
    attributes set again), else a new instance put in the identity map as the ORM's loading
    puts one (``orm.loading``: the state given its key and session, then the map), clean, its
    relationships not loaded. ``make_transient_to_detached`` and ``Session.add`` did the same
    in about four times the CPU (the add's cascade over the mapper's relationships, its
    events), eight times per API retirement."""
    session = db.session()
    mapper = model.__mapper__
    if not mapper.configured:  # as the ORM's first query would (relationships are set up then)
        configure_mappers()
    key = (mapper._identity_class, (values[_primary_key(mapper)],), None)  # ``identity_key``'s
    found = session.identity_map.get(key)
    if found is None:
        found = mapper.class_manager.new_instance()
        state = instance_state(found)
        state.dict.update(values)
        session._autobegin_t()  # as ``Session.add`` would: the object belongs to a transaction
        state.key = key
        state.identity_token = None
        state.session_id = session.hash_key
        session.identity_map._add_unpresent(state, key)
    else:
        for name in inspect(found).expired_attributes & values.keys():
            set_committed_value(found, name, values[name])
    return found


@functools.cache
def _primary_key(mapper) -> str:
    (column,) = mapper.primary_key
    return mapper.get_property_by_column(column).key


def read_attached(model, where: str, params: dict) -> list:
    """PostgreSQL: the objects of ``model`` whose rows match ``where`` (driver SQL), read in the
    session's transaction (``session_rows``) and put in the session as loaded (``attached``).
    What the session has pending is flushed first, as the ORM's own query would (unless the
    caller turned autoflush off). Only for models whose columns the driver returns as the model
    does (see ``raw_rows``)."""
    if db.session.autoflush:
        db.session.flush()
    sql, columns = _read_sql(model, where)
    return [
        attached(model, {key: row[n] for n, (key, _name) in enumerate(columns)})
        for row in session_rows(sql, params)
    ]


@functools.cache
def _read_sql(model, where: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    columns = plain_columns(model)
    selected = ", ".join(name for _key, name in columns)
    return f"SELECT {selected} FROM {model.__table__.name} WHERE {where}", columns


def at_once_writer() -> Engine:
    """PostgreSQL: the ``autocommit_reader`` for small writes that must stand however the
    request ends and must not hold a row locked while it runs (an API call's rate-limit count,
    an API key's last use): each committed at once, not durably (what a crash may lose only
    lets a few calls more through, or dates a key's last use a minute early)."""
    return autocommit_reader("core.at_once", generic_plans=True, durable=False)


def read_once_more(read):
    """``read()``, and once more if its connection had been closed by the server while idle (a
    restart, an administrator): what the application's pool does with its ping."""
    try:
        return read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return read()
