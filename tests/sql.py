"""Counting the SQL a piece of code sends (N+1 checks, cache hits)."""


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
