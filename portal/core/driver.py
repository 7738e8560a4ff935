"""Statements sent in the session's transaction through the driver's own cursor.

SQLAlchemy's execution compiles, caches and sets up a result's columns at every statement; on
the paths where money moves (a movement, a retirement's certificate, the log's leaf) the
statements are prepared once (``for_driver``) and sent through psycopg's cursor kept with the
connection (``session_rows``), several together when they do not depend on each other
(``session_rows_together``: one round trip, the transaction's ``BEGIN`` included). The engine's
listeners are told of each as of any statement, and errors are raised as SQLAlchemy raises them.
PostgreSQL only: SQLite goes through SQLAlchemy.
"""

import functools
from collections.abc import Sequence

from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from sqlalchemy.exc import DBAPIError

from portal.extensions import db

_IDLE = TransactionStatus.IDLE

_CURSOR = "portal.cursor"

#: How many statements' cursors a connection keeps (the least recently used closed beyond).
CURSORS_KEPT = 32


def kept_cursor(connection, sql: str):
    """The pooled connection's own cursor for ``sql`` (binary results), made at the statement's
    first run on the connection and kept with it (``info`` lives as long as the driver's
    connection). psycopg keeps what it found for a cursor's parameters and result columns (their
    dumpers and loaders, a loader made per column) only while the cursor runs the same statement
    (the same string object) again: one cursor shared by different statements found them all
    again at every statement (an API retirement's application CPU fell by about 4 % when each
    statement got its own cursor)."""
    return _kept_cursors(connection, (sql,))[0]


def _kept_cursors(connection, statements: Sequence[str]) -> list:
    """``kept_cursor`` of each of ``statements`` (``session_rows_together``): the connection
    keeps one cursor per statement, up to ``CURSORS_KEPT``; a statement sent twice in one call
    gets a cursor of its own the second time (each cursor holds one result)."""
    kept = connection.info.get(_CURSOR)
    if kept is None:
        kept = connection.info[_CURSOR] = {}
    cursors = []
    for sql in statements:
        cursor = kept.pop(sql, None)
        if cursor is None or cursor.closed:
            cursor = connection.driver_connection.cursor(binary=True)
        kept[sql] = cursor  # the most recently used last
        if cursor in cursors:  # the same statement twice in one call
            cursor = connection.driver_connection.cursor(binary=True)
        cursors.append(cursor)
    while len(kept) > CURSORS_KEPT:
        kept.pop(next(iter(kept))).close()
    return cursors


def session_rows(sql: str, params: dict) -> list[tuple]:
    """PostgreSQL: the rows of a statement that returns rows (driver SQL, psycopg's ``%(name)s``
    parameters: a read, or a write with ``RETURNING``) in the session's transaction (it sees the
    transaction's own writes), through the driver's own cursor kept with the connection:
    SQLAlchemy's execution sets up a result's columns at every call (about 0.15 ms of CPU for a
    row of 40 columns against 0.07 ms for the whole read this way). The engine's
    ``before_cursor_execute`` listeners are told of it as of any statement, and the driver's
    errors are raised as SQLAlchemy raises them (``DBAPIError`` and its kinds), a lost
    connection invalidated, so that the request ends as for any other statement (a 503 for a
    lost database)."""
    (rows,) = session_rows_together([(sql, params)])
    return rows


def session_rows_together(statements: Sequence[tuple[str, dict]]) -> list[list[tuple]]:
    """PostgreSQL: ``session_rows`` of each of ``statements``, which do not depend on each
    other's results, sent together and answered in one round trip (the driver's pipeline mode;
    a transaction not yet begun is begun in the same round trip: ``_begin_in``). Each round
    trip saved is about 0.05 ms of the worker's CPU and 0.03 ms of the server's (its reads and
    writes of the socket), and the wait between. The statements run in their order; if one
    fails, those after it do not run and the error is raised as ``session_rows`` raises it."""
    connection = db.session.connection()
    pooled = connection.connection
    cursors = _kept_cursors(pooled, [sql for sql, _params in statements])
    for cursor, (sql, params) in zip(cursors, statements, strict=True):
        connection.dispatch.before_cursor_execute(connection, cursor, sql, params, None, False)
    dialect = connection.dialect
    driver = pooled.driver_connection
    begin = _not_begun(driver)
    try:
        if len(statements) == 1 and not begin:
            cursors[0].execute(*statements[0])
        else:
            with driver.pipeline() as pipeline:
                if begin:
                    _begin_in(pipeline, driver)
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]
    except dialect.loaded_dbapi.Error as exc:
        lost = dialect.is_disconnect(exc, pooled.dbapi_connection, cursors[0])
        if lost:
            connection.invalidate(exc)
        sql, params = statements[0] if len(statements) == 1 else ("; ".join(s for s, _ in statements), {})
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from exc


def _not_begun(driver) -> bool:
    """Whether the driver's connection has yet to begin the session's transaction."""
    return driver.pgconn.transaction_status == _IDLE and not driver.autocommit


def _begin_in(pipeline, driver) -> None:
    """Begin the transaction (not begun: ``_not_begun``) as the first statement of ``pipeline``.

    psycopg begins a transaction before its first statement with a ``BEGIN`` whose answer it
    waits for, in pipeline mode too (it sends the ``BEGIN`` with a Sync of its own): a round
    trip before every transaction's first statements (an API retirement's six became five).
    Sent here first in the pipeline, the ``BEGIN`` the driver would send (``_begin_command``),
    it is answered with the statements; its answer is read and dropped by the pipeline as the
    driver's own would be (a ``None`` in its queue of results). The driver sends no second one
    because libpq reports the connection busy while a command sent waits for its answer: so
    nothing may read an answer inside the pipeline before the statements are all sent. A
    statement that fails leaves the transaction open in error, as after a ``BEGIN`` answered
    on its own: the session rolls it back."""
    driver.pgconn.send_query_params(_begin_command(driver), None)
    pipeline.result_queue.append(None)


def _begin_command(driver) -> bytes:
    """The ``BEGIN`` psycopg sends for the connection's settings (an isolation level set by
    ``execution_options``, and left at the default one after it, is named, as the driver names
    it)."""
    parts = [b"BEGIN"]
    if driver.isolation_level is not None:
        level = IsolationLevel(driver.isolation_level)
        parts += [b"ISOLATION LEVEL", level.name.replace("_", " ").encode()]
    if driver.read_only is not None:
        parts.append(b"READ ONLY" if driver.read_only else b"READ WRITE")
    if driver.deferrable is not None:
        parts.append(b"DEFERRABLE" if driver.deferrable else b"NOT DEFERRABLE")
    return b" ".join(parts)


@functools.cache
def for_driver(statement) -> tuple[str, dict]:
    """A SQLAlchemy statement as ``session_rows`` sends it: compiled once for the session's
    database, with the values its own parameters carry (a ``LIMIT``), to be joined by the call's."""
    compiled = statement.compile(dialect=db.session.get_bind().dialect)
    return compiled.string, {k: v for k, v in compiled.params.items() if v is not None}
