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
    """PostgreSQL: how many times ``run()`` made the session's connection wait for the server
    on statements with parameters (the protocol's Sync messages, read from the driver's own
    trace of what it sent; ``BEGIN`` and ``COMMIT`` go as simple queries, without one)."""
    import tempfile

    from psycopg import pq

    from portal.extensions import db

    driver = db.session.connection().connection.driver_connection
    with tempfile.TemporaryFile("w+") as trace:
        driver.pgconn.trace(trace.fileno())
        driver.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            run()
        finally:
            driver.pgconn.untrace()
        trace.seek(0)
        return sum(1 for line in trace if line.split("\t")[:1] == ["F"] and "\tSync" in line)
