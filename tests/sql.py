"""Counting the SQL a piece of code sends (N+1 checks, cache hits) and its round trips."""


def statements_of(func) -> list[str]:
    """The statements ``func()`` sends to the database, transaction control left out: on every
    engine, the application's and those it keeps for reads of their own (the catalog's data
    version, the transparency log's proofs)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        func()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return seen


def syncs_sent(run) -> int:
    """PostgreSQL: how many Sync messages ``run()`` sent on the session's connection (each ends
    a batch of statements with parameters, and the server answers it), read from the driver's
    own trace of what it sent."""
    return sum(1 for line in driver_trace(run) if line[:1] == ["F"] and "Sync" in line[2:3])


def round_trips(run) -> int:
    """PostgreSQL: how many times ``run()`` sent something on the session's connection after
    reading the server's answer (the first sending counts): the waits on the server, whatever
    the messages (a ``BEGIN`` answered on its own, a pipeline, a ``COMMIT``)."""
    return _trips(driver_trace(run))


def checked_out_round_trips(run) -> int:
    """PostgreSQL: ``round_trips`` of ``run()`` on every connection it checks out of a pool
    (a request's session's), traced from the checkout to the return. A reader's connection,
    which its thread keeps checked out (``core.database.raw_rows``), is not seen."""
    import contextlib
    import tempfile

    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    with contextlib.ExitStack() as files:
        traces = []

        def checkout(dbapi_connection, _record, _proxy):
            traces.append(files.enter_context(tempfile.TemporaryFile("w+")))
            _trace_into(dbapi_connection.pgconn, traces[-1])

        def checkin(dbapi_connection, _record):
            if dbapi_connection is not None:
                dbapi_connection.pgconn.untrace()

        event.listen(Pool, "checkout", checkout)
        event.listen(Pool, "checkin", checkin)
        try:
            run()
        finally:
            event.remove(Pool, "checkout", checkout)
            event.remove(Pool, "checkin", checkin)
        return sum(_trips(_messages(trace)) for trace in traces)


def _trips(trace: list[list[str]]) -> int:
    """How many runs of messages from the worker a trace holds (a statement's text spanning
    several lines continues its message)."""
    trips, sending = 0, False
    for line in trace:
        if line[0] in ("F", "B"):
            trips += line[0] == "F" and not sending
            sending = line[0] == "F"
    return trips


def driver_trace(run) -> list[list[str]]:
    """PostgreSQL: the protocol messages ``run()`` exchanged on the session's connection, from
    libpq's trace: each split at tabs (``F`` from the worker, ``B`` from the server, the
    length, the message's name, …)."""
    import tempfile

    from portal.extensions import db

    driver = db.session.connection().connection.driver_connection
    with tempfile.TemporaryFile("w+") as trace:
        _trace_into(driver.pgconn, trace)
        try:
            run()
        finally:
            driver.pgconn.untrace()
        return _messages(trace)


def _trace_into(pgconn, file) -> None:
    from psycopg import pq

    pgconn.trace(file.fileno())
    pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)


def _messages(file) -> list[list[str]]:
    """A trace's lines, read from the start, each split at tabs."""
    file.seek(0)
    return [line.rstrip("\n").split("\t") for line in file]
